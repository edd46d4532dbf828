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
            VectorMath.best.layerNormRows(x + range.lowerBound * xs, rows: range.count, dim: dim, rowStride: xs,
                                          gamma: g.base, beta: b.base, eps: eps, into: y + range.lowerBound * ys, outStride: ys)
        }
    }
}
