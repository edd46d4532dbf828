import CBLAS

/// Matrix multiplication through OpenBLAS `cblas_sgemm`, row-major.
public enum GEMM {
    /// C (m×n) = alpha · op(A) · op(B) + beta · C, with op = transpose when the flag is set.
    /// `lda`, `ldb`, `ldc` are row strides of the matrices as stored.
    @inline(__always)
    public static func multiply(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Float64 C (m×n) = A·B (row-major, no transposes), for composing weights at load time.
    public static func multiplyDouble(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
                                      b: UnsafePointer<Double>, ldb: Int, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                    b, Int32(ldb), 0, c, Int32(ldc))
    }

    /// OpenBLAS worker threads (it spawns its own pthreads; kernels never call it from several threads).
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}
