import Synchronization
import SpectralXTensor

/// `y = x·Wᵀ + b` (PyTorch `nn.Linear`, weight `(out, in)`), over the last axis.
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    /// The weight packed for the AVX2 kernel (``packedForInference()``); nil: OpenBLAS.
    public let packed: PackedWeight?
    /// The bf16 copy of a frozen backbone linear (``frozenForInference(packFloat32:)``), made at load or by
    /// the first `.bf16` product; nil for every other linear, which computes in float32 in every precision.
    let bf16: LazyBF16Weight?
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public init(_ scope: WeightScope, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) {
        weight = scope.tensor("weight", [outFeatures, inFeatures])
        self.bias = bias ? scope.tensor("bias", [outFeatures]) : nil
        packed = nil
        bf16 = nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
        packed = nil
        bf16 = nil
    }

    private init(weight: Tensor, bias: Tensor?, packed: PackedWeight?, bf16: LazyBF16Weight?) {
        self.weight = weight
        self.bias = bias
        self.packed = packed
        self.bf16 = bf16
    }

    /// This layer with its weight packed for the AVX2 kernel where that is faster here
    /// (``PackedWeight/isPreferred``): for the frozen ViT linears, whose 197-row products OpenBLAS would
    /// repack the weight for on every call. Only a weight borrowed whole from the checkpoint mapping is
    /// packed, and its pages are then released from the resident set (`weight` stays valid, re-read from
    /// the file on access), so the process never holds both copies; others stay on OpenBLAS.
    public func packedForInference() -> Linear {
        guard packed == nil, PackedWeight.isPreferred, weight.storage.isBorrowed,
              weight.offset == 0, weight.count == weight.storage.count,
              let p = PackedWeight(weight: weight.pointer, n: outFeatures, k: inFeatures) else { return self }
        weight.storage.releaseResidentPages()
        return Linear(weight: weight, bias: bias, packed: p, bf16: bf16)
    }

    /// A frozen backbone linear (qkv, proj, fc1, fc2) ready for both precisions: packed for float32 when
    /// `packFloat32` and `.fp32` is in ``Precision/packedAtLoad`` (see ``packedForInference()``), rounded to
    /// bf16 now when `.bf16` is in it, else on the first bf16 product. A process that runs only bf16 so never
    /// holds the float32 packed copy; its float32 products, if any, pack the weight per call (same bits).
    /// `bf16` false: a linear that computes in float32 in every precision (packed as `packFloat32` says).
    public func frozenForInference(packFloat32: Bool = true, bf16 capable: Bool = true) -> Linear {
        guard bf16 == nil else { return self }
        guard capable else { return packFloat32 ? packedForInference() : self }
        let atLoad = Precision.packedAtLoad
        let base = packFloat32 && atLoad.contains(.fp32) ? packedForInference() : self
        let lazy = LazyBF16Weight()
        if atLoad.contains(.bf16) { lazy.weight(of: weight, n: outFeatures, k: inFeatures) }
        return Linear(weight: weight, bias: bias, packed: base.packed, bf16: lazy)
    }

    /// Bytes of the packed copies this linear holds now (float32, bf16).
    public var packedBytes: (fp32: Int, bf16: Int) {
        (packed.map { $0.n.roundedUp(to: 16) * $0.k * 4 } ?? 0, bf16?.bytes ?? 0)
    }

    /// `rows` input rows (stride `inStride`) → output rows (stride `outStride`); `accumulate` adds to `y`.
    /// `.bf16` runs the bf16 kernel on a frozen backbone linear; any other linear computes in float32.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, inStride: Int? = nil,
                      into y: UnsafeMutablePointer<Float>, outStride: Int? = nil, accumulate: Bool = false,
                      precision: Precision = .fp32) {
        if precision == .bf16, let bf16 {
            bf16.weight(of: weight, n: outFeatures, k: inFeatures)
                .multiply(x, rows: rows, lda: inStride ?? inFeatures, bias: bias?.pointer, accumulate: accumulate,
                          into: y, ldc: outStride ?? outFeatures)
            return
        }
        if let packed {
            packed.multiply(x, rows: rows, lda: inStride ?? inFeatures, bias: bias?.pointer, accumulate: accumulate,
                            into: y, ldc: outStride ?? outFeatures)
            return
        }
        Self.product(x, rows: rows, lda: inStride ?? inFeatures, weight: weight.pointer, outputs: outFeatures, k: inFeatures,
                     bias: bias?.pointer, accumulate: accumulate, into: y, ldc: outStride ?? outFeatures)
    }

    /// y (rows × outputs, stride ldc) = x·wᵀ + b (+ y when accumulating) through `cblas_sgemm`: the one
    /// float32 path of both `apply` forms.
    private static func product(_ x: UnsafePointer<Float>, rows: Int, lda: Int, weight w: UnsafePointer<Float>, outputs n: Int,
                                k: Int, bias: UnsafePointer<Float>?, accumulate: Bool, into y: UnsafeMutablePointer<Float>, ldc: Int) {
        GEMM.multiply(transB: true, m: rows, n: n, k: k, a: x, lda: lda, b: w, ldb: k, beta: accumulate ? 1 : 0, c: y, ldc: ldc)
        if let bias { Elementwise.addRowBias(y, rows: rows, dim: n, stride: ldc, bias: bias) }
    }

    /// Output features `outputs` only (weight rows and bias entries of that range), written to columns
    /// `outputs` of `y` (row stride `outStride`). `float64Accumulation` computes them with
    /// ``GEMM/multiplyTransposedFloat64(m:n:k:a:lda:b:ldb:bias:c:ldc:)`` — each the correctly rounded
    /// float32 of the exact `x·wᵀ + b` — instead of `cblas_sgemm` (used where a later rounding, such as
    /// DINOv3's bf16 q/k, would turn float32 summation-order noise into whole steps).
    public func apply(_ x: UnsafePointer<Float>, rows: Int, outputs: Range<Int>, float64Accumulation: Bool = false,
                      into y: UnsafeMutablePointer<Float>, outStride: Int) {
        precondition(outputs.lowerBound >= 0 && outputs.upperBound <= outFeatures && outStride >= outputs.upperBound)
        let w = weight.pointer + outputs.lowerBound * inFeatures, b = bias.map { $0.pointer + outputs.lowerBound }
        let c = y + outputs.lowerBound
        if float64Accumulation {
            GEMM.multiplyTransposedFloat64(m: rows, n: outputs.count, k: inFeatures, a: x, lda: inFeatures, b: w, ldb: inFeatures,
                                           bias: b, c: c, ldc: outStride)
            return
        }
        Self.product(x, rows: rows, lda: inFeatures, weight: w, outputs: outputs.count, k: inFeatures, bias: b,
                     accumulate: false, into: c, ldc: outStride)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear(\(inFeatures)→\(outFeatures)) got \(x.shape)")
        let rows = x.count / inFeatures
        let y = Tensor(zeros: Array(x.shape.dropLast()) + [outFeatures])
        apply(x.pointer, rows: rows, into: y.mutablePointer)
        return y
    }
}

/// A frozen linear's bf16 packed weight, made once: at load, or by the first bf16 product (by whichever
/// thread gets there first; the others wait for it), then shared by every domain and request.
final class LazyBF16Weight: Sendable {
    private let packed = Mutex<PackedBF16Weight?>(nil)

    /// The bf16 copy of `weight` (`n × k`), made now if need be. A weight borrowed from the checkpoint
    /// mapping then has its pages released (re-read from the file if the float32 path needs them).
    @discardableResult
    func weight(of weight: Tensor, n: Int, k: Int) -> PackedBF16Weight {
        packed.withLock { p in
            if let p { return p }
            guard let made = PackedBF16Weight(weight: weight.pointer, n: n, k: k) else {
                preconditionFailure("an empty frozen linear (\(n) × \(k))")
            }
            weight.storage.releaseResidentPages()
            p = made
            return made
        }
    }

    /// Bytes of the bf16 copy, 0 before it is made.
    var bytes: Int { packed.withLock { $0?.bytes ?? 0 } }
}

private extension Int {
    func roundedUp(to m: Int) -> Int { (self + m - 1) / m * m }
}
