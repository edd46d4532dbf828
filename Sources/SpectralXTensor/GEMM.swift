import CBLAS
import CSpectralXKernels
import Foundation
import Synchronization

/// Matrix multiplication for the forward pass, row-major, on the packed micro-kernels of
/// `CSpectralXKernels` (`sx_sgemm`: both operands packed per call) and, in float64, on `float64_gemm.c`.
///
/// Why not OpenBLAS: its kernels, and so the order in which each element's sum is taken, change with the
/// CPU (and with `OPENBLAS_CORETYPE`), so a near-tie in the model (an MMoE routing decision, an
/// Are-adapter argmax) could fall one way on one machine and the other way on the next. Here every
/// element is one FMA chain per 256-deep K block, blocks added in order, on every CPU, vector width,
/// thread count and batch: the same bits everywhere. OpenBLAS stays linked only as the benchmark's
/// reference (``Reference``).
///
/// Threading: a large product is split into one slice per core (along the longer of M and N) on the
/// worker pool of every parallel loop (``Parallel``); which core computes an element never changes it.
/// Never call the splitting forms from inside a ``Parallel/forRanges(_:minChunk:_:)`` body.
public enum GEMM {
    /// Products below this many multiply-adds run as one call (splitting costs a few µs).
    static let splitThreshold = 1 << 20
    private static let sliceCount = Atomic<Int>(Parallel.cores)

    /// C (m×n) = alpha · op(A) · op(B) (+ C when `beta` is 1), with op = transpose when the flag is set.
    /// `lda`, `ldb`, `ldc` are row strides of the matrices as stored. `beta` is 0 or 1; alpha scales A
    /// as it is packed (exact for powers of two, such as attention's 1/8).
    public static func multiply(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let slices = sliceCount.load(ordering: .relaxed)
        if slices <= 1 || m * n * k < splitThreshold || max(m, n) < 2 * 16 {
            serial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc)
            return
        }
        let pa = SharedPointer(a), pb = SharedPointer(b), pc = SharedPointer(c)
        if n >= m {
            // Column slices of B and C, ⌈n/slices⌉ rounded up to whole 16-column panels.
            let per = ((n + slices - 1) / slices + 15) / 16 * 16
            Parallel.perform(slices) { s in
                let j0 = s * per, j1 = min(n, j0 + per)
                guard j0 < j1 else { return }
                serial(transA: transA, transB: transB, m: m, n: j1 - j0, k: k, alpha: alpha, a: pa.base, lda: lda,
                       b: pb.base + (transB ? j0 * ldb : j0), ldb: ldb, beta: beta, c: pc + j0, ldc: ldc)
            }
        } else {
            let per = ((m + slices - 1) / slices + 5) / 6 * 6
            Parallel.perform(slices) { s in
                let i0 = s * per, i1 = min(m, i0 + per)
                guard i0 < i1 else { return }
                serial(transA: transA, transB: transB, m: i1 - i0, n: n, k: k, alpha: alpha,
                       a: pa.base + (transA ? i0 : i0 * lda), lda: lda, b: pb.base, ldb: ldb, beta: beta, c: pc + i0 * ldc, ldc: ldc)
            }
        }
    }

    /// ``multiply(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`` on the calling thread (for use
    /// inside a parallel loop); the same bits.
    public static func serial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(beta == 0 || beta == 1, "GEMM: beta must be 0 or 1")
        let status = sx_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta == 1 ? 1 : 0, c, ldc)
        precondition(status == 0, "sx_sgemm failed (\(status)): out of memory for the packed operands")
    }

    /// Float64 C (m×n) = A·B (row-major, no transposes), for composing weights at load time: each element
    /// one FMA chain over k in order, so a composed weight has the same bits on every CPU.
    public static func multiplyDouble(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
                                      b: UnsafePointer<Double>, ldb: Int, c: UnsafeMutablePointer<Double>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        let pa = SharedPointer(a), pb = SharedPointer(b), pc = SharedPointer(c)
        float64Panels(n: n, work: m * n * k) { p0, p1 in
            let status = sx_dgemm_nn(m, k, pa.base, lda, pb.base, ldb, n, p0, p1, pc.base, ldc)
            precondition(status == 0, "sx_dgemm_nn failed (\(status))")
        }
    }

    /// `C (m×n) = A·Bᵀ + bias` from float32 operands with float64 accumulation, rounded once to float32:
    /// A (`m × k`, row stride `lda`) and B (`n × k`, a Linear weight, row stride `ldb`) are widened
    /// exactly, each element summed as one float64 FMA chain over k in order, the bias added in float64.
    /// For the few products whose float32 results are rounded further in a way that turns last-bit noise
    /// into whole steps (DINOv3's bf16 q/k). The weight is widened per call, one 16-column panel at a time
    /// per core, so no float64 copy of it is kept.
    public static func multiplyTransposedFloat64(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                                 b: UnsafePointer<Float>, ldb: Int, bias: UnsafePointer<Float>?,
                                                 c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        precondition(k > 0 && lda >= k && ldb >= k && ldc >= n)
        let wide = UnsafeMutablePointer<Double>.allocate(capacity: m * k)
        defer { wide.deallocate() }
        let pa = SharedPointer(a), pw = SharedPointer(wide)
        Parallel.forRanges(m, minChunk: max(1, 16384 / k)) { range in
            for i in range { for j in 0..<k { pw[i * k + j] = Double(pa[i * lda + j]) } }
        }
        let pb = SharedPointer(b), pc = SharedPointer(c)
        let pbias = bias.map { SharedPointer($0) }
        float64Panels(n: n, work: m * n * k) { p0, p1 in
            let status = sx_dgemm_nt_f32(m, k, pw.base, k, pb.base, ldb, n, p0, p1, pbias?.base, pc.base, ldc)
            precondition(status == 0, "sx_dgemm_nt_f32 failed (\(status))")
        }
    }

    /// Runs `body(p0, p1)` over the 16-column panels of an n-wide float64 product: contiguous runs of
    /// panels, one per core (serially below ``splitThreshold``).
    private static func float64Panels(n: Int, work: Int, _ body: @escaping @Sendable (Int, Int) -> Void) {
        let nr = Int(sx_dgemm_panel_columns())
        let panels = (n + nr - 1) / nr
        let slices = work < splitThreshold ? 1 : max(1, min(sliceCount.load(ordering: .relaxed), panels))
        if slices == 1 { body(0, panels); return }
        Parallel.perform(slices) { s in
            let p0 = s * panels / slices, p1 = (s + 1) * panels / slices
            if p0 < p1 { body(p0, p1) }
        }
    }

    /// Cores a product is split over.
    public static var threads: Int {
        get { sliceCount.load(ordering: .relaxed) }
        set { sliceCount.store(max(1, newValue), ordering: .relaxed) }
    }

    /// OpenBLAS `cblas_sgemm`, for the benchmark's reference figures only (the machine's sgemm peak, kernel
    /// comparisons): never on the model's path.
    public enum Reference {
        /// OpenBLAS single-threaded unless ``withPool(threads:_:)``; set before the first call.
        private static let configured: Bool = {
            _ = BLASRuntime.selection  // kernels first (see BLASRuntime): before any OpenBLAS call
            openblas_set_num_threads(1)
            return true
        }()

        /// One `cblas_sgemm` call on the calling thread.
        public static func serial(transB: Bool = false, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                  b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
            _ = configured
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
        }

        /// C = A·B split into one column slice per core on the worker pool (how the forward used to run).
        public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                    c: UnsafeMutablePointer<Float>) {
            let slices = max(1, sliceCount.load(ordering: .relaxed))
            let pa = SharedPointer(a), pb = SharedPointer(b), pc = SharedPointer(c)
            let per = ((n + slices - 1) / slices + 15) / 16 * 16
            ArithmeticCount.product(m: m, n: n, k: k)
            Parallel.perform(slices) { s in
                let j0 = s * per, j1 = min(n, j0 + per)
                guard j0 < j1 else { return }
                serial(m: m, n: j1 - j0, k: k, a: pa.base, lda: k, b: pb.base + j0, ldb: n, c: pc + j0, ldc: n)
            }
        }

        /// Runs `body` with OpenBLAS's own pool at `threads` (for `bench --kernels` comparisons).
        public static func withPool<T>(threads: Int, _ body: () -> T) -> T {
            _ = configured
            let before = openblas_get_num_threads()
            openblas_set_num_threads(Int32(threads))
            defer { openblas_set_num_threads(before) }
            return body()
        }
    }
}
