import SpectralXTensor

/// `y = x·Wᵀ + b` (PyTorch `nn.Linear`, weight `(out, in)`), over the last axis.
public struct Linear: Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    /// The weight packed for the AVX-512 kernel (``packedForInference()``); nil: OpenBLAS.
    public let packed: PackedWeight?
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public init(_ scope: WeightScope, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) {
        weight = scope.tensor("weight", [outFeatures, inFeatures])
        self.bias = bias ? scope.tensor("bias", [outFeatures]) : nil
        packed = nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
        packed = nil
    }

    private init(weight: Tensor, bias: Tensor?, packed: PackedWeight?) {
        self.weight = weight
        self.bias = bias
        self.packed = packed
    }

    /// This layer with its weight packed for the AVX-512 kernel when the CPU has one (the frozen ViT
    /// linears, whose 197-row products OpenBLAS would repack the weight for on every call). A weight
    /// borrowed from the checkpoint mapping is then released from the resident set: `weight` stays
    /// valid (re-read from the file on access) but the process does not hold both copies.
    public func packedForInference() -> Linear {
        guard packed == nil, let p = PackedWeight(weight: weight.pointer, n: outFeatures, k: inFeatures) else { return self }
        if weight.offset == 0 && weight.count == weight.storage.count { weight.storage.releaseResidentPages() }
        return Linear(weight: weight, bias: bias, packed: p)
    }

    /// `rows` input rows (stride `inStride`) → output rows (stride `outStride`); `accumulate` adds to `y`.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, inStride: Int? = nil,
                      into y: UnsafeMutablePointer<Float>, outStride: Int? = nil, accumulate: Bool = false) {
        let ldc = outStride ?? outFeatures
        if let packed {
            packed.multiply(x, rows: rows, lda: inStride ?? inFeatures, bias: bias?.pointer, accumulate: accumulate, into: y, ldc: ldc)
            return
        }
        GEMM.multiply(transB: true, m: rows, n: outFeatures, k: inFeatures,
                      a: x, lda: inStride ?? inFeatures, b: weight.pointer, ldb: inFeatures,
                      beta: accumulate ? 1 : 0, c: y, ldc: ldc)
        if let bias { Elementwise.addRowBias(y, rows: rows, dim: outFeatures, stride: ldc, bias: bias.pointer) }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear(\(inFeatures)→\(outFeatures)) got \(x.shape)")
        let rows = x.count / inFeatures
        let y = Tensor(zeros: Array(x.shape.dropLast()) + [outFeatures])
        apply(x.pointer, rows: rows, into: y.mutablePointer)
        return y
    }
}
