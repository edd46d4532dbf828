import Foundation
import SpectralXRaster
import SpectralXTensor

/// Separable resampling weights for one axis: for each output index the first input index,
/// the number of taps and `maxTaps` weights (zero padded).
struct ResampleWeights {
    var starts: [Int]
    var sizes: [Int]
    var weights: [Float]
    var maxTaps: Int

    /// Weights of PyTorch's antialiased bilinear resize (`_upsample_bilinear2d_aa`, CPU,
    /// align_corners=False) for float32 tensors, reproducing its mixed float/double arithmetic:
    /// a triangle filter whose support is widened by the scale factor when downscaling, each
    /// output's weights normalised by their float32 sum.
    static func antialiasedBilinear(inSize: Int, outSize: Int) -> ResampleWeights {
        let scale = Float(inSize) / Float(outSize)
        let support: Float = scale >= 1 ? Float(1.0 * Double(scale)) : 1.0
        let maxTaps = Int(ceilf(support)) * 2 + 1
        let invscale: Float = scale >= 1 ? Float(1.0 / Double(scale)) : 1.0
        var starts = [Int](repeating: 0, count: outSize)
        var sizes = [Int](repeating: 0, count: outSize)
        var weights = [Float](repeating: 0, count: outSize * maxTaps)
        for i in 0..<outSize {
            let center = Float(Double(scale) * (Double(i) + 0.5))
            let xmin = max(Int(Double(center - support) + 0.5), 0)
            var xsize = min(Int(Double(center + support) + 0.5), inSize) - xmin
            xsize = max(0, min(xsize, maxTaps))
            var total: Float = 0
            for j in 0..<xsize {
                let arg = Float((Double(Float(j + xmin) - center) + 0.5) * Double(invscale))
                let x = abs(arg)
                let w: Float = x < 1 ? Float(1.0 - Double(x)) : 0
                weights[i * maxTaps + j] = w
                total += w
            }
            if total != 0 {
                for j in 0..<xsize { weights[i * maxTaps + j] /= total }
            }
            starts[i] = xmin; sizes[i] = xsize
        }
        return ResampleWeights(starts: starts, sizes: sizes, weights: weights, maxTaps: maxTaps)
    }
}

extension Preprocessing {
    /// torchvision 0.19 `resize(..., BILINEAR, antialias=True)` of a float32 (C, H, W) tensor, as
    /// PyTorch's CPU kernel computes it: horizontal pass (along W) first, then vertical, float32
    /// accumulation in tap order, `t = s0·w0` then `t = fma(sj, wj, t)` — PyTorch's AVX2 build
    /// contracts `t += s·w` to a fused multiply-add, and matching that makes the result bit-exact
    /// to the reference fixtures (plain multiply-add differs by up to 1.8e-7). An axis whose size
    /// does not change is copied.
    public static func resizeAntialiased(_ x: [Float], channels: Int, inHeight: Int, inWidth: Int,
                                         outHeight: Int, outWidth: Int) throws -> [Float] {
        guard channels >= 0, inHeight > 0, inWidth > 0, outHeight > 0, outWidth > 0,
              x.count == channels * inHeight * inWidth else {
            throw RasterError.invalidArgument("resize input \(x.count) values vs \(channels)×\(inHeight)×\(inWidth)")
        }
        var cur = x
        var curW = inWidth
        if outWidth != inWidth {
            let wx = ResampleWeights.antialiasedBilinear(inSize: inWidth, outSize: outWidth)
            let rows = channels * inHeight
            cur = [Float](unsafeUninitializedCapacity: rows * outWidth) { out, n in
                x.withUnsafeBufferPointer { src in
                    wx.weights.withUnsafeBufferPointer { w in
                        for r in 0..<rows {
                            let s = src.baseAddress! + r * inWidth
                            let o = out.baseAddress! + r * outWidth
                            for i in 0..<outWidth {
                                let st = wx.starts[i], sz = wx.sizes[i]
                                let wp = w.baseAddress! + i * wx.maxTaps
                                var acc: Float = 0
                                if sz > 0 {
                                    acc = s[st] * wp[0]
                                    for j in 1..<max(sz, 1) { acc = acc.addingProduct(s[st + j], wp[j]) }
                                }
                                o[i] = acc
                            }
                        }
                    }
                }
                n = rows * outWidth
            }
            curW = outWidth
        }
        if outHeight == inHeight { return cur }
        let wy = ResampleWeights.antialiasedBilinear(inSize: inHeight, outSize: outHeight)
        return [Float](unsafeUninitializedCapacity: channels * outHeight * curW) { out, n in
            cur.withUnsafeBufferPointer { src in
                wy.weights.withUnsafeBufferPointer { w in
                    for c in 0..<channels {
                        let plane = src.baseAddress! + c * inHeight * curW
                        for i in 0..<outHeight {
                            let st = wy.starts[i], sz = wy.sizes[i]
                            let wp = w.baseAddress! + i * wy.maxTaps
                            let o = out.baseAddress! + (c * outHeight + i) * curW
                            if sz == 0 { o.initialize(repeating: 0, count: curW); continue }
                            let w0 = wp[0]
                            let r0 = plane + st * curW
                            for xx in 0..<curW { o[xx] = r0[xx] * w0 }
                            for j in 1..<max(sz, 1) {
                                let wj = wp[j]
                                let rj = plane + (st + j) * curW
                                for xx in 0..<curW { o[xx] = o[xx].addingProduct(rj[xx], wj) }
                            }
                        }
                    }
                }
            }
            n = channels * outHeight * curW
        }
    }

    /// Plain bilinear resize, align_corners=False, no antialiasing (PyTorch `upsample_bilinear2d`,
    /// spec §5.7), float32: brings logits back to the tile size before the argmax. The model's own
    /// kernel (`BilinearResize`), so the decode head and the post-processing resize identically.
    public static func resizeBilinear(_ x: [Float], channels: Int, inHeight: Int, inWidth: Int,
                                      outHeight: Int, outWidth: Int) throws -> [Float] {
        guard channels >= 0, inHeight > 0, inWidth > 0, outHeight > 0, outWidth > 0,
              x.count == channels * inHeight * inWidth else {
            throw RasterError.invalidArgument("resize input \(x.count) values vs \(channels)×\(inHeight)×\(inWidth)")
        }
        return [Float](unsafeUninitializedCapacity: channels * outHeight * outWidth) { out, n in
            x.withUnsafeBufferPointer { src in
                if channels > 0 {
                    BilinearResize.apply(src.baseAddress!, planes: channels, inputHeight: inHeight, inputWidth: inWidth,
                                         outputHeight: outHeight, outputWidth: outWidth, into: out.baseAddress!)
                }
            }
            n = channels * outHeight * outWidth
        }
    }
}
