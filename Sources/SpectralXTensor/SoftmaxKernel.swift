import Foundation

/// Row-wise numerically stable softmax (max subtraction, then exp, then normalise), in place; the
/// exponentials are vectorised (`VectorMath.expShifted`).
public enum SoftmaxKernel {
    public static func rows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int? = nil) {
        let s = stride ?? cols
        let x = SharedPointer(x)
        Parallel.forRanges(rows, minChunk: max(1, 16384 / max(cols, 1))) { range in
            for r in range { row(x + r * s, cols: cols) }
        }
    }

    /// As ``rows(_:rows:cols:stride:)`` on the calling thread (for use inside a parallel loop).
    public static func rowsSerial(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int? = nil) {
        let s = stride ?? cols
        for r in 0..<rows { row(x + r * s, cols: cols) }
    }

    @inline(__always)
    static func row(_ row: UnsafeMutablePointer<Float>, cols: Int) {
        var m = -Float.infinity
        for i in 0..<cols { m = max(m, row[i]) }
        let sum = VectorMath.expShifted(row, count: cols, shift: m)
        let inv = 1 / sum
        for i in 0..<cols { row[i] *= inv }
    }
}
