/// Layout operations between the ViT's token rows and channel-first feature maps.
public enum TokenAssembly {
    /// timm `_pos_embed` for `images` images laid out image after image: row 0 of each image is
    /// `classToken + positions[0]`, row k + 1 is `tokens[k] + positions[k + 1]`. `tokens` is
    /// `(images, n, dim)`, `positions` `(n + 1, dim)`, `stream` receives `(images·(n + 1), dim)`.
    public static func assemble(tokens: UnsafePointer<Float>, images: Int, tokensPerImage n: Int, dim d: Int,
                                classToken: UnsafePointer<Float>, positions: UnsafePointer<Float>,
                                into stream: UnsafeMutablePointer<Float>) {
        let src = SharedPointer(tokens), dst = SharedPointer(stream)
        let cls = SharedPointer(classToken), pos = SharedPointer(positions)
        let t = n + 1
        Parallel.forRanges(images * t, minChunk: max(1, 65536 / max(d, 1))) { range in
            for row in range {
                let i = row / t, k = row % t
                let out = dst + row * d, p = pos + k * d
                if k == 0 {
                    for f in 0..<d { out[f] = cls[f] + p[f] }
                } else {
                    let x = src + (i * n + k - 1) * d
                    for f in 0..<d { out[f] = x[f] + p[f] }
                }
            }
        }
    }

    /// Drops each image's leading class-token row and lays the rest out channel-first:
    /// `(images·(side² + 1), dim)` → `(images, dim, side, side)`, token k at (k / side, k % side).
    public static func featureMap(_ stream: Tensor, images: Int, side: Int) -> Tensor {
        let n = side * side, t = n + 1
        let d = stream.count / (images * t)
        precondition(d * images * t == stream.count, "stream \(stream.shape) is not \(images) × \(t) rows")
        let map = Tensor(zeros: [images, d, side, side])
        for k in 0..<images {
            Elementwise.transpose(stream.pointer + (k * t + 1) * d, rows: n, cols: d, into: map.mutablePointer + k * d * n)
        }
        return map
    }
}

/// Non-overlapping square windows over a row-major grid of token rows (timm `window_partition` /
/// `window_unpartition` without padding: the grid side must be a multiple of the window).
public enum WindowPartition {
    /// Row of window order for grid position (image b, window row wr, window col wc, r, c).
    @inline(__always)
    static func gridRow(_ b: Int, _ wr: Int, _ wc: Int, _ r: Int, _ c: Int, side: Int, window: Int) -> Int {
        (b * side + wr * window + r) * side + wc * window + c
    }

    /// `(images·side², dim)` in grid order → `(images·side², dim)` in window order
    /// (image, window row, window column, row in window, column in window).
    public static func partition(_ x: Tensor, images: Int, side: Int, window: Int) -> Tensor {
        precondition(side % window == 0, "grid \(side) is not a multiple of the window \(window)")
        let dim = x.count / (images * side * side)
        let y = Tensor(zeros: x.shape)
        forEachRow(images: images, side: side, window: window) { k, g in
            (y.mutablePointer + k * dim).update(from: x.pointer + g * dim, count: dim)
        }
        return y
    }

    /// The inverse of ``partition(_:images:side:window:)``, added onto `grid` (a residual update).
    public static func unpartitionAdding(_ windows: Tensor, images: Int, side: Int, window: Int, into grid: Tensor) {
        precondition(side % window == 0 && windows.count == grid.count)
        let dim = grid.count / (images * side * side)
        forEachRow(images: images, side: side, window: window) { k, g in
            let dst = grid.mutablePointer + g * dim, src = windows.pointer + k * dim
            for i in 0..<dim { dst[i] += src[i] }
        }
    }

    /// Calls `body(windowRow, gridRow)` for every row; parallel over images·windows.
    private static func forEachRow(images: Int, side: Int, window: Int, _ body: @Sendable (Int, Int) -> Void) {
        let per = side / window, w2 = window * window
        Parallel.forRanges(images * per * per, minChunk: 1) { range in
            for win in range {
                let b = win / (per * per), wr = (win / per) % per, wc = win % per
                for r in 0..<window {
                    for c in 0..<window {
                        body(win * w2 + r * window + c, gridRow(b, wr, wc, r, c, side: side, window: window))
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// Concatenates `(B, Ci, H, W)` maps along the channel axis.
    public static func concatenateChannels(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.shape.count == 4 })
        let b = parts[0].shape[0], h = parts[0].shape[2], w = parts[0].shape[3], hw = h * w
        precondition(parts.allSatisfy { $0.shape[0] == b && $0.shape[2] == h && $0.shape[3] == w },
                     "concatenateChannels: \(parts.map(\.shape))")
        let total = parts.reduce(0) { $0 + $1.shape[1] }
        let out = Tensor(zeros: [b, total, h, w])
        for i in 0..<b {
            var at = i * total * hw
            for p in parts {
                let n = p.shape[1] * hw
                (out.mutablePointer + at).update(from: p.pointer + i * n, count: n)
                at += n
            }
        }
        return out
    }
}

/// Means along one axis of a row-major matrix.
public enum Reduction {
    /// `(rows × cols)` → the `cols` column means (the mean over rows of each column).
    public static func columnMeans(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [Float] {
        var s = [Float](repeating: 0, count: cols)
        s.withUnsafeMutableBufferPointer { acc in
            for r in 0..<rows {
                let row = x + r * cols
                for c in 0..<cols { acc[c] += row[c] }
            }
            for c in 0..<cols { acc[c] /= Float(rows) }
        }
        return s
    }

    /// `(rows × cols)` → the `rows` row means.
    public static func rowMeans(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [Float] {
        (0..<rows).map { r in
            var s: Float = 0
            let row = x + r * cols
            for c in 0..<cols { s += row[c] }
            return s / Float(cols)
        }
    }
}
