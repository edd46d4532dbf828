import CBLAS
import Dispatch
import Foundation
import Synchronization

/// Matrix multiplication through OpenBLAS `cblas_sgemm`, row-major.
///
/// Threading: one model for the whole process. By default OpenBLAS runs single-threaded and a large
/// product is split into one slice per core (along the longer of M and N), run on the same Dispatch
/// workers as every element-wise loop (``Parallel``). OpenBLAS's own pool would otherwise keep its
/// threads spinning after each call, competing for the 2 cores with the element-wise work that
/// follows. `SPECTRALX_GEMM_THREADING=openblas` restores OpenBLAS's pool (for comparison).
/// Never call these from inside a ``Parallel/forRanges(_:minChunk:_:)`` body.
public enum GEMM {
    /// Products below this many multiply-adds run as one call (splitting costs a few µs).
    static let splitThreshold = 1 << 20
    private static let sliceCount = Atomic<Int>(Parallel.cores)
    /// true: OpenBLAS's thread pool; false: our slices.
    static let useOpenBLASThreads: Bool = {
        _ = BLASRuntime.selection  // kernels first (see BLASRuntime): before any OpenBLAS call
        let openblas = ProcessInfo.processInfo.environment["SPECTRALX_GEMM_THREADING"]?.lowercased() == "openblas"
        if !openblas { openblas_set_num_threads(1) }
        return openblas
    }()

    /// C (m×n) = alpha · op(A) · op(B) + beta · C, with op = transpose when the flag is set.
    /// `lda`, `ldb`, `ldc` are row strides of the matrices as stored.
    public static func multiply(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let slices = useOpenBLASThreads ? 1 : sliceCount.load(ordering: .relaxed)
        if slices <= 1 || m * n * k < splitThreshold || max(m, n) < 2 * 16 {
            serial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc)
            return
        }
        let pa = SharedPointer(a), pb = SharedPointer(b), pc = SharedPointer(c)
        if n >= m {
            // Column slices of B and C, ⌈n/slices⌉ rounded up to 16 columns (the kernels' register
            // blocking); the last slice takes the rest.
            let per = ((n + slices - 1) / slices + 15) / 16 * 16
            Parallel.perform(slices) { s in
                let j0 = s * per, j1 = min(n, j0 + per)
                guard j0 < j1 else { return }
                serial(transA: transA, transB: transB, m: m, n: j1 - j0, k: k, alpha: alpha, a: pa.base, lda: lda,
                       b: pb.base + (transB ? j0 * ldb : j0), ldb: ldb, beta: beta, c: pc + j0, ldc: ldc)
            }
        } else {
            let per = ((m + slices - 1) / slices + 15) / 16 * 16
            Parallel.perform(slices) { s in
                let i0 = s * per, i1 = min(m, i0 + per)
                guard i0 < i1 else { return }
                serial(transA: transA, transB: transB, m: i1 - i0, n: n, k: k, alpha: alpha,
                       a: pa.base + (transA ? i0 : i0 * lda), lda: lda, b: pb.base, ldb: ldb, beta: beta, c: pc + i0 * ldc, ldc: ldc)
            }
        }
    }

    /// One `cblas_sgemm` call on the calling thread (OpenBLAS's own pool only in `openblas` mode).
    @inline(__always)
    public static func serial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        ArithmeticCount.product(m: m, n: n, k: k)
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Float64 C (m×n) = A·B (row-major, no transposes), for composing weights at load time.
    public static func multiplyDouble(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
                                      b: UnsafePointer<Double>, ldb: Int, c: UnsafeMutablePointer<Double>, ldc: Int) {
        let slices = useOpenBLASThreads ? 1 : sliceCount.load(ordering: .relaxed)
        ArithmeticCount.product(m: m, n: n, k: k)
        guard slices > 1, n >= 2 * 16 else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                        b, Int32(ldb), 0, c, Int32(ldc))
            return
        }
        let pa = SharedPointer(a), pb = SharedPointer(b), pc = SharedPointer(c)
        let per = ((n + slices - 1) / slices + 15) / 16 * 16
        Parallel.perform(slices) { s in
            let j0 = s * per, j1 = min(n, j0 + per)
            guard j0 < j1 else { return }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(j1 - j0), Int32(k), 1, pa.base, Int32(lda),
                        pb.base + j0, Int32(ldb), 0, pc + j0, Int32(ldc))
        }
    }

    /// Output columns converted and multiplied at a time by ``multiplyTransposedFloat64(m:n:k:a:lda:b:ldb:bias:c:ldc:)``:
    /// the widened weight is only ever held one panel per core (4 MB for a 1024-wide layer), never in
    /// full. Each `cblas_dgemm` call repacks all of A, so fewer, wider panels are cheaper: for DINOv3's
    /// q/k (201 rows, 2048 × 1024, 2 cores, SkylakeX kernels) 512 measured 2.4× the float32 GEMM's time,
    /// 128 2.8× (float64 arithmetic alone, on a pre-widened weight: 1.8×).
    static let float64Panel = 512

    /// `C (m×n) = A·Bᵀ + bias` from float32 operands with float64 accumulation, rounded once to float32:
    /// A (`m × k`, row stride `lda`) and B (`n × k`, a Linear weight, row stride `ldb`) are widened
    /// exactly, multiplied by `cblas_dgemm`, the bias added in float64. Every element is then the
    /// correctly rounded float32 of the exact sum (to float64 error), whatever the summation order, so
    /// it is as close as float32 can be to any reference's value. For the few products whose float32
    /// results are rounded further in a way that turns summation-order noise into whole steps (DINOv3's
    /// bf16 q/k); it costs about 2.4× the float32 GEMM, conversions included. The weight is converted per
    /// call, one panel of ``float64Panel`` rows at a time, so no float64 copy of it is kept.
    public static func multiplyTransposedFloat64(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                                 b: UnsafePointer<Float>, ldb: Int, bias: UnsafePointer<Float>?,
                                                 c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        precondition(k > 0 && lda >= k && ldb >= k && ldc >= n)
        ArithmeticCount.product(m: m, n: n, k: k)
        let wide = UnsafeMutablePointer<Double>.allocate(capacity: m * k)
        defer { wide.deallocate() }
        let pa = SharedPointer(a), pw = SharedPointer(wide)
        Parallel.forRanges(m, minChunk: max(1, 16384 / k)) { range in
            for i in range { for j in 0..<k { pw[i * k + j] = Double(pa[i * lda + j]) } }
        }
        let panel = float64Panel
        let panels = (n + panel - 1) / panel
        let slices = useOpenBLASThreads ? 1 : max(1, min(sliceCount.load(ordering: .relaxed), panels))
        let pb = SharedPointer(b), pc = SharedPointer(c)
        let pbias = bias.map { SharedPointer($0) }
        // Whole panels per core (contiguous runs of them); each core widens only its own weight rows.
        let slice: @Sendable (Int) -> Void = { s in
            let p0 = s * panels / slices, p1 = (s + 1) * panels / slices
            guard p0 < p1 else { return }
            let wb = UnsafeMutablePointer<Double>.allocate(capacity: panel * k)
            let wc = UnsafeMutablePointer<Double>.allocate(capacity: m * panel)
            defer { wb.deallocate(); wc.deallocate() }
            for p in p0..<p1 {
                let j0 = p * panel, w = min(panel, n - j0)
                for r in 0..<w { for j in 0..<k { wb[r * k + j] = Double(pb[(j0 + r) * ldb + j]) } }
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(w), Int32(k), 1, pw.base, Int32(k),
                            wb, Int32(k), 0, wc, Int32(w))
                for i in 0..<m {
                    let out = pc + i * ldc + j0, row = wc + i * w
                    if let pbias {
                        for r in 0..<w { out[r] = Float(row[r] + Double(pbias[j0 + r])) }
                    } else {
                        for r in 0..<w { out[r] = Float(row[r]) }
                    }
                }
            }
        }
        if slices == 1 { slice(0) } else { Parallel.perform(slices, slice) }
    }

    /// Runs `body` with OpenBLAS's own pool at `threads` (for `bench --kernels` comparisons of the two
    /// threading models; calls from `body` should use ``serial(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``).
    public static func withOpenBLASPool<T>(threads: Int, _ body: () -> T) -> T {
        _ = useOpenBLASThreads
        let before = openblas_get_num_threads()
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(before) }
        return body()
    }

    /// Cores a GEMM uses (OpenBLAS pool threads in `openblas` mode, our slices otherwise).
    public static var threads: Int {
        get { useOpenBLASThreads ? Int(openblas_get_num_threads()) : sliceCount.load(ordering: .relaxed) }
        set {
            if useOpenBLASThreads { openblas_set_num_threads(Int32(newValue)) } else { sliceCount.store(max(1, newValue), ordering: .relaxed) }
        }
    }
}
