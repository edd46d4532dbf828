import CSpectralXKernels
import Dispatch

/// An `nn.Linear` weight `(n, k)` packed once at load for the AVX2 micro-kernel of
/// `CSpectralXKernels/packed_gemm.c`, which then computes `y = x·Wᵀ (+ b) (+ y)` without repacking the
/// weight on every call the way `cblas_sgemm` must. Used where it is faster than OpenBLAS
/// (``isPreferred``: CPUs without AVX-512; `SPECTRALX_GEMM=openblas|packed` overrides). The packed copy
/// is the size of the weight, columns rounded up to 16.
public struct PackedWeight: Sendable {
    public let n: Int, k: Int
    let storage: FloatStorage

    /// true when this CPU can run the packed kernel (AVX2 + FMA, `SPECTRALX_SIMD` not `generic`).
    public static let isAvailable: Bool = sx_packed_gemm_available() != 0
    /// true when layers should use it (see the type's comment).
    public static let isPreferred: Bool = sx_packed_gemm_preferred() != 0
    /// Columns per panel, the unit work is split by.
    static let panelColumns = Int(sx_packed_panel_columns())

    /// Packs `weight` (row-major `(n, k)`), or nil when the kernel is not available here.
    public init?(weight: UnsafePointer<Float>, n: Int, k: Int) {
        guard Self.isAvailable, n > 0, k > 0 else { return nil }
        self.n = n
        self.k = k
        storage = FloatStorage(uninitializedCount: sx_packed_weight_count(n, k))
        sx_pack_weight(weight, n, k, storage.base)
    }

    /// `y[r, 0..<n] = x[r, 0..<k]·Wᵀ + bias (+ y[r, :] when accumulate)` for `rows` rows; row strides
    /// `lda` and `ldc`. Whole panels are split across ``GEMM/threads`` workers (the Dispatch workers of
    /// every other parallel loop: one threading model).
    public func multiply(_ x: UnsafePointer<Float>, rows: Int, lda: Int, bias: UnsafePointer<Float>?,
                         accumulate: Bool, into y: UnsafeMutablePointer<Float>, ldc: Int) {
        guard rows > 0 else { return }
        precondition(lda >= k && ldc >= n)
        let panels = (n + Self.panelColumns - 1) / Self.panelColumns
        let slices = min(GEMM.threads, panels, rows * n * k < GEMM.splitThreshold ? 1 : panels)
        let px = SharedPointer(x), py = SharedPointer(y), w = SharedPointer(UnsafePointer(storage.base))
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
