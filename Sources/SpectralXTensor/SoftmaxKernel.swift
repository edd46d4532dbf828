/// Row-wise numerically stable softmax (max subtraction, then exp, then normalise), in place
/// (``VectorMath`` kernels).
public enum SoftmaxKernel {
    public static func rows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int? = nil) {
        let s = stride ?? cols
        let x = SharedPointer(x)
        Parallel.forRanges(rows, minChunk: max(1, 16384 / max(cols, 1))) { range in
            VectorMath.best.softmaxRows(x + range.lowerBound * s, rows: range.count, cols: cols, stride: s)
        }
    }

    /// As ``rows(_:rows:cols:stride:)`` on the calling thread (for use inside a parallel loop).
    public static func rowsSerial(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int? = nil) {
        VectorMath.best.softmaxRows(x, rows: rows, cols: cols, stride: stride ?? cols)
    }
}
