/// Scaled dot-product attention over one sequence, all heads, from a fused QKV matrix.
public enum AttentionKernel {
    /// `qkv` is `(n, 3·dim)` with columns `[Q | K | V]`, head j using columns `j·e..<(j+1)·e` of each;
    /// writes `(n, dim)` head-major into `out` (row stride `dim`). `scores` must hold `heads·n·n` floats
    /// (one score matrix per head). Heads read Q, K, V in place through strides (no per-head copies);
    /// the 1/√e scale rides on the QKᵀ GEMM's alpha. The heads run in parallel, one GEMM pair and a
    /// softmax each on one core.
    public static func selfAttention(
        qkv: UnsafePointer<Float>, tokens n: Int, dim: Int, heads: Int,
        scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>
    ) {
        let e = dim / heads
        let scale = 1 / Float(e).squareRoot()
        let src = SharedPointer(qkv), dst = SharedPointer(out), sc = SharedPointer(scores)
        let oneHead: @Sendable (Int, Bool) -> Void = { h, parallelSoftmax in
            // The 1/√e scale is applied to Q as it is packed: a power of two for e = 64 (exact).
            let q = src + h * e, k = src + dim + h * e, v = src + 2 * dim + h * e
            let s = sc + h * n * n
            GEMM.serial(transB: true, m: n, n: n, k: e, alpha: scale, a: q, lda: 3 * dim, b: k, ldb: 3 * dim, c: s, ldc: n)
            if parallelSoftmax { SoftmaxKernel.rows(s, rows: n, cols: n) } else { SoftmaxKernel.rowsSerial(s, rows: n, cols: n) }
            GEMM.serial(m: n, n: e, k: n, a: s, lda: n, b: v, ldb: 3 * dim, c: dst + h * e, ldc: dim)
        }
        Parallel.forRanges(heads, minChunk: 1) { range in for h in range { oneHead(h, false) } }
    }
}
