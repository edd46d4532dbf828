/// Row-wise LayerNorm: y = (x − μ) / √(σ² + eps) · γ + β, σ² the biased variance.
///
/// Moments are accumulated in Float64 so the result is at least as accurate as PyTorch's float32 path;
/// the per-site eps (1e-6 in the ViT, 1e-5 in every SpectralX module) is the caller's.
public enum LayerNormKernel {
    public static func apply(
        _ x: UnsafePointer<Float>, rows: Int, dim: Int, rowStride: Int? = nil,
        gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
        into y: UnsafeMutablePointer<Float>, outStride: Int? = nil
    ) {
        let xs = rowStride ?? dim
        let ys = outStride ?? dim
        let x = SharedPointer(x), y = SharedPointer(y)
        let g = SharedPointer(gamma), b = SharedPointer(beta)
        Parallel.forRanges(rows, minChunk: max(1, 16384 / max(dim, 1))) { range in
            for r in range {
                let row = x + r * xs
                var sum = 0.0
                for i in 0..<dim { sum += Double(row[i]) }
                let mean = sum / Double(dim)
                var sq = 0.0
                for i in 0..<dim { let d = Double(row[i]) - mean; sq += d * d }
                let variance = sq / Double(dim)
                let inv = Float(1.0 / (variance + Double(eps)).squareRoot())
                let m = Float(mean)
                let out = y + r * ys
                for i in 0..<dim { out[i] = (row[i] - m) * inv * g[i] + b[i] }
            }
        }
    }
}
