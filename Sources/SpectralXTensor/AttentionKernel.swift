/// Scaled dot-product attention over one sequence, all heads, from a fused QKV matrix.
public enum AttentionKernel {
    /// `qkv` is `(n, 3·dim)` with columns `[Q | K | V]`, head j using columns `j·e..<(j+1)·e` of each;
    /// writes `(n, dim)` head-major into `out` (row stride `dim`). `scores` must hold `n·n` floats.
    public static func selfAttention(
        qkv: UnsafePointer<Float>, tokens n: Int, dim: Int, heads: Int,
        scores: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>
    ) {
        let e = dim / heads
        let scale = 1 / Float(e).squareRoot()
        for h in 0..<heads {
            let q = qkv + h * e, k = qkv + dim + h * e, v = qkv + 2 * dim + h * e
            GEMM.multiply(transB: true, m: n, n: n, k: e, alpha: scale, a: q, lda: 3 * dim, b: k, ldb: 3 * dim,
                          c: scores, ldc: n)
            SoftmaxKernel.rows(scores, rows: n, cols: n)
            GEMM.multiply(m: n, n: e, k: n, a: scores, lda: n, b: v, ldb: 3 * dim, c: out + h * e, ldc: dim)
        }
    }
}
