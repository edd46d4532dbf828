import Foundation
import SpectralXTensor
import Testing

/// Float64 bilinear resize, align_corners=False (spec §5.7), of `(planes, h, w)` values.
func referenceResize(_ x: [Double], planes: Int, h: Int, w: Int, oh: Int, ow: Int) -> [Double] {
    func src(_ d: Int, _ input: Int, _ output: Int) -> (Int, Int, Double) {
        let s = max(Double(input) / Double(output) * (Double(d) + 0.5) - 0.5, 0)
        let i0 = min(Int(s), input - 1)
        return (i0, min(i0 + 1, input - 1), s - Double(i0))
    }
    var y = [Double](repeating: 0, count: planes * oh * ow)
    for p in 0..<planes { for oy in 0..<oh { for ox in 0..<ow {
        let (y0, y1, ly) = src(oy, h, oh), (x0, x1, lx) = src(ox, w, ow)
        func v(_ r: Int, _ c: Int) -> Double { x[(p * h + r) * w + c] }
        y[(p * oh + oy) * ow + ox] = (1 - ly) * ((1 - lx) * v(y0, x0) + lx * v(y0, x1)) + ly * ((1 - lx) * v(y1, x0) + lx * v(y1, x1))
    } } }
    return y
}

/// Float64 3×3 pad-1 cross-correlation of `(B, in, H, W)` values.
func referenceConv3x3(_ x: [Double], batch: Int, inChannels c: Int, outChannels oc: Int, h: Int, w: Int,
                      weight: Tensor) -> [Double] {
    var out = [Double](repeating: 0, count: batch * oc * h * w)
    for n in 0..<batch { for o in 0..<oc { for y in 0..<h { for xx in 0..<w {
        var s = 0.0
        for i in 0..<c { for ky in 0..<3 { for kx in 0..<3 {
            let iy = y - 1 + ky, ix = xx - 1 + kx
            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
            s += x[((n * c + i) * h + iy) * w + ix] * Double(weight.pointer[((o * c + i) * 3 + ky) * 3 + kx])
        } } }
        out[((n * oc + o) * h + y) * w + xx] = s
    } } } }
    return out
}

@Suite("Resized 3×3 convolution")
struct ResizedConvolutionTests {
    /// (batch, in, out, low side h×w, resized side H×W): ×4 and ×2 as in the neck/head, 7→56 (f3),
    /// identity, odd sizes and a non-square map.
    @Test("conv3×3(resize(x)) equals the float64 definition, borders included", arguments: [
        (1, 6, 5, 7, 7, 28, 28),
        (3, 4, 3, 5, 5, 10, 10),
        (1, 5, 4, 7, 7, 56, 56),
        (3, 3, 2, 9, 9, 9, 9),
        (1, 4, 3, 5, 3, 13, 11),
        (3, 2, 3, 3, 4, 7, 9),
    ])
    func matchesDefinition(_ b: Int, _ c: Int, _ oc: Int, _ h: Int, _ w: Int, _ oh: Int, _ ow: Int) {

        let x = randomTensor([b, c, h, w], seed: 21)
        let wt = randomTensor([oc, c, 3, 3], seed: 22)
        let conv = ResizedConvolution(outChannels: oc, inChannels: c, weight: wt.pointer)
        let y = randomTensor([b, oc, oh, ow], seed: 23)          // accumulates onto existing values
        let before = y.toArray()
        conv.accumulate(x, into: y)
        let up = referenceResize(x.toArray().map(Double.init), planes: b * c, h: h, w: w, oh: oh, ow: ow)
        let ref = referenceConv3x3(up, batch: b, inChannels: c, outChannels: oc, h: oh, w: ow, weight: wt)
        let scale = ref.map(abs).max()!
        var worst = 0.0, borderWorst = 0.0
        for n in 0..<b { for o in 0..<oc { for yy in 0..<oh { for xx in 0..<ow {
            let i = ((n * oc + o) * oh + yy) * ow + xx
            let e = abs(Double(y.pointer[i]) - Double(before[i]) - ref[i])
            worst = max(worst, e)
            if yy == 0 || xx == 0 || yy == oh - 1 || xx == ow - 1 { borderWorst = max(borderWorst, e) }
        } } } }
        #expect(worst < 1e-6 + 2e-6 * scale, "max error \(worst) (border rows/columns \(borderWorst)), scale \(scale)")
    }

    /// A 1×1 linear map with bias in front of the resize, composed into the taps: the constant of each
    /// tap must vanish outside the map exactly like the zero padding of the original.
    @Test("composed lateral with bias: tap bias vanishes outside the map", arguments: [(1, 7, 28), (3, 5, 9), (3, 6, 6)])
    func composedLinear(_ b: Int, _ h: Int, _ oh: Int) {
        let c = 4, mid = 5, oc = 3
        let x = randomTensor([b, c, h, h], seed: 31)
        let l = randomTensor([mid, c], seed: 32), lb = randomTensor([mid], seed: 33)
        let wt = randomTensor([oc, mid, 3, 3], seed: 34)
        // Taps A_t = W_t·L and tap bias W_t·b in float64.
        var taps = [Double](repeating: 0, count: 9 * oc * c), tapBias = [Double](repeating: 0, count: 9 * oc)
        for t in 0..<9 {
            let wtd = (0..<(oc * mid)).map { Double(wt.pointer[$0 * 9 + t]) }
            let a = LinearComposition.product(wtd, (0..<(mid * c)).map { Double(l.pointer[$0]) }, m: oc, k: mid, n: c)
            let cb = LinearComposition.apply(wtd, (0..<mid).map { Double(lb.pointer[$0]) }, m: oc, k: mid)
            for i in 0..<(oc * c) { taps[t * oc * c + i] = a[i] }
            for o in 0..<oc { tapBias[t * oc + o] = cb[o] }
        }
        let conv = ResizedConvolution(taps: LinearComposition.tensor(taps, shape: [9 * oc, c]),
                                      tapBias: LinearComposition.tensor(tapBias, shape: [9 * oc]))
        let y = Tensor(zeros: [b, oc, oh, oh])
        conv.accumulate(x, into: y)
        // Reference: L·x + b at low resolution, resize, 3×3 conv — all float64.
        var lx = [Double](repeating: 0, count: b * mid * h * h)
        for n in 0..<b { for m in 0..<mid { for p in 0..<(h * h) {
            var s = Double(lb.pointer[m])
            for i in 0..<c { s += Double(l.pointer[m * c + i]) * Double(x.pointer[(n * c + i) * h * h + p]) }
            lx[(n * mid + m) * h * h + p] = s
        } } }
        let up = referenceResize(lx, planes: b * mid, h: h, w: h, oh: oh, ow: oh)
        let ref = referenceConv3x3(up, batch: b, inChannels: mid, outChannels: oc, h: oh, w: oh, weight: wt)
        let scale = ref.map(abs).max()!
        let worst = (0..<y.count).map { abs(Double(y.pointer[$0]) - ref[$0]) }.max()!
        #expect(worst < 1e-6 + 2e-6 * scale, "max error \(worst), scale \(scale)")
    }
}
