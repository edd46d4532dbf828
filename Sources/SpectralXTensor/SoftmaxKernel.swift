import Foundation

/// Row-wise numerically stable softmax (max subtraction, then exp, then normalise), in place.
public enum SoftmaxKernel {
    public static func rows(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int? = nil) {
        let s = stride ?? cols
        let x = SharedPointer(x)
        Parallel.forRanges(rows, minChunk: max(1, 16384 / max(cols, 1))) { range in
            for r in range {
                let row = x + r * s
                var m = -Float.infinity
                for i in 0..<cols { m = max(m, row[i]) }
                var sum: Float = 0
                for i in 0..<cols { let e = expf(row[i] - m); row[i] = e; sum += e }
                let inv = 1 / sum
                for i in 0..<cols { row[i] *= inv }
            }
        }
    }
}
