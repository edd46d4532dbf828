import CSpectralXKernels
import Foundation

/// An `nn.Linear` weight `(n, k)` packed once at load for the AVX-512 micro-kernel of
/// `CSpectralXKernels/packed_gemm.c`, which then computes `y = x·Wᵀ (+ b) (+ y)` without repacking
/// the weight on every call the way `cblas_sgemm` must (at the ViT's 197 rows per image that repacking
/// was ~9 % of a forward). Only on CPUs with AVX-512 (``isAvailable``); elsewhere layers keep OpenBLAS.
/// The packed copy is the same size as the weight (columns rounded up to 32).
public struct PackedWeight: Sendable {
    public let n: Int, k: Int
    let storage: FloatStorage

    /// true when this CPU runs the packed kernel (and `SPECTRALX_SIMD` does not cap it below AVX-512).
    public static let isAvailable: Bool = sx_packed_gemm_available() != 0

    /// Packs `weight` (row-major `(n, k)`), or nil when the kernel is not available here.
    public init?(weight: UnsafePointer<Float>, n: Int, k: Int) {
        guard Self.isAvailable, n > 0, k > 0 else { return nil }
        self.n = n
        self.k = k
        storage = FloatStorage(uninitializedCount: sx_packed_weight_count(n, k))
        sx_pack_weight(weight, n, k, storage.base)
    }

    /// `y[r, 0..<n] = x[r, 0..<k]·Wᵀ + bias (+ y[r, :] when accumulate)` for `rows` rows; row strides
    /// `lda` and `ldc`. The 32-column panels are split across ``GEMM/threads`` workers.
    public func multiply(_ x: UnsafePointer<Float>, rows: Int, lda: Int, bias: UnsafePointer<Float>?,
                         accumulate: Bool, into y: UnsafeMutablePointer<Float>, ldc: Int) {
        guard rows > 0 else { return }
        let panels = (n + 31) / 32
        let slices = min(GEMM.threads, panels, rows * n * k < GEMM.splitThreshold ? 1 : panels)
        let px = SharedPointer(x), py = SharedPointer(y), w = SharedPointer(storage.base)
        let b = bias.map { SharedPointer($0) }
        let (n, k) = (n, k)
        let run: @Sendable (Int) -> Void = { s in
            let p0 = s * panels / slices, p1 = (s + 1) * panels / slices
            guard p0 < p1 else { return }
            let status = sx_gemm_packed(px.base, lda, rows, w.base, n, k, p0, p1, b?.base, accumulate ? 1 : 0, py.base, ldc)
            precondition(status == 0, "sx_gemm_packed failed (\(status)): out of memory for the activation block")
        }
        if slices <= 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: slices, execute: run) }
    }
}
