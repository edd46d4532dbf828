/// Bilinear resize with `align_corners=False` and no antialiasing (PyTorch `upsample_bilinear2d`, as
/// used by mmseg's `resize`), computed in float32 with PyTorch's interpolation order.
public enum BilinearResize {
    /// Source index and weights along one axis for each output position.
    public struct AxisWeights: Sendable {
        public var i0: [Int]
        public var i1: [Int]
        public var w0: [Float]
        public var w1: [Float]
    }

    /// `scale` is input/output (or 1/scale_factor when the caller gave a scale factor; in this model
    /// both agree).
    public static func axis(input: Int, output: Int, scale: Float? = nil) -> AxisWeights {
        let s = scale ?? Float(input) / Float(output)
        var a = AxisWeights(i0: [], i1: [], w0: [], w1: [])
        for d in 0..<output {
            var src = s * (Float(d) + 0.5) - 0.5
            if src < 0 { src = 0 }
            let i0 = min(Int(src), input - 1)
            let i1 = i0 < input - 1 ? i0 + 1 : i0
            let l1 = src - Float(i0)
            a.i0.append(i0); a.i1.append(i1); a.w0.append(1 - l1); a.w1.append(l1)
        }
        return a
    }

    /// `(planes, ih, iw)` → `(planes, oh, ow)`.
    public static func apply(_ x: UnsafePointer<Float>, planes: Int, inputHeight ih: Int, inputWidth iw: Int,
                             outputHeight oh: Int, outputWidth ow: Int,
                             into y: UnsafeMutablePointer<Float>) {
        let ay = axis(input: ih, output: oh), ax = axis(input: iw, output: ow)
        let src = SharedPointer(x), dst = SharedPointer(y)
        Parallel.forRanges(planes, minChunk: max(1, 32768 / max(oh * ow, 1))) { range in
            for p in range {
                let s = src + p * ih * iw
                let d = dst + p * oh * ow
                for oy in 0..<oh {
                    let r0 = s + ay.i0[oy] * iw, r1 = s + ay.i1[oy] * iw
                    let h0 = ay.w0[oy], h1 = ay.w1[oy]
                    for ox in 0..<ow {
                        let x0 = ax.i0[ox], x1 = ax.i1[ox]
                        let w0 = ax.w0[ox], w1 = ax.w1[ox]
                        d[oy * ow + ox] = h0 * (w0 * r0[x0] + w1 * r0[x1]) + h1 * (w0 * r1[x0] + w1 * r1[x1])
                    }
                }
            }
        }
    }

    /// `(B, C, H, W)` → `(B, C, oh, ow)`.
    public static func resize(_ x: Tensor, height oh: Int, width ow: Int) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if h == oh && w == ow { return x }
        let y = Tensor(zeros: [b, c, oh, ow])
        apply(x.pointer, planes: b * c, inputHeight: h, inputWidth: w, outputHeight: oh, outputWidth: ow, into: y.mutablePointer)
        return y
    }
}

/// Adaptive average pooling (PyTorch `AdaptiveAvgPool2d`): bin o covers [⌊o·I/O⌋, ⌈(o+1)·I/O⌉).
public enum AdaptiveAveragePool {
    public static func pool(_ x: Tensor, size o: Int) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let y = Tensor(zeros: [b, c, o, o])
        func bins(_ n: Int) -> [(Int, Int)] { (0..<o).map { i in (i * n / o, ((i + 1) * n + o - 1) / o) } }
        let by = bins(h), bx = bins(w)
        let src = x.pointer, dst = y.mutablePointer
        for p in 0..<(b * c) {
            for (oy, (y0, y1)) in by.enumerated() {
                for (ox, (x0, x1)) in bx.enumerated() {
                    var s: Float = 0
                    for yy in y0..<y1 { for xx in x0..<x1 { s += src[(p * h + yy) * w + xx] } }
                    dst[(p * o + oy) * o + ox] = s / Float((y1 - y0) * (x1 - x0))
                }
            }
        }
        return y
    }
}
