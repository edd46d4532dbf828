/// Per-pixel reductions over the class axis of (K, pixels) logits.
enum ClassScores {
    /// Softmax over classes for each pixel, in place (numerically stable: max subtracted first).
    static func softmax(_ x: inout [Float], classes k: Int, pixels n: Int) {
        x.withUnsafeMutableBufferPointer { p in
            let b = p.baseAddress!
            var maxRow = [Float](repeating: -.infinity, count: n)
            var sum = [Float](repeating: 0, count: n)
            for c in 0..<k { let r = b + c * n; for i in 0..<n where r[i] > maxRow[i] { maxRow[i] = r[i] } }
            for c in 0..<k { let r = b + c * n; for i in 0..<n { let e = expf(r[i] - maxRow[i]); r[i] = e; sum[i] += e } }
            for c in 0..<k { let r = b + c * n; for i in 0..<n { r[i] /= sum[i] } }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
