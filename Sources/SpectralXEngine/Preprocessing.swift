import SpectralXModel
import SpectralXRaster

/// The upstream SpectralX data pipeline (spec §3) and its inverse for outputs: the model's side of
/// the raster/model boundary (the raster layer knows nothing of 224), tested against the fixtures.
public enum Preprocessing {
    /// Model input size.
    public static let modelSize = ModelShape.imageSize

    /// Per-band min–max normalisation in float64: x ← (x − m)/((M − m) + 1e-8) with m, M the band's
    /// min and max; a constant band (M − m == 0) is left unchanged. The result is cast to float32.
    /// `values` is band-sequential with `pixelsPerBand` samples per band.
    public static func minMaxNormalize(_ values: [Double], bands: Int, pixelsPerBand: Int) throws -> [Float] {
        guard bands >= 0, pixelsPerBand >= 0, values.count == bands * pixelsPerBand else {
            throw RasterError.invalidArgument("\(values.count) values for \(bands) bands × \(pixelsPerBand) pixels")
        }
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<bands {
                    normalizeBand(UnsafeBufferPointer(rebasing: src[(b * pixelsPerBand)..<((b + 1) * pixelsPerBand)]),
                                  into: dst.baseAddress! + b * pixelsPerBand)
                }
            }
        }
        return out
    }

    static func normalizeBand(_ v: UnsafeBufferPointer<Double>, into o: UnsafeMutablePointer<Float>) {
        guard let first = v.first else { return }
        var m = first, M = first
        for x in v { if x < m { m = x }; if x > M { M = x } }
        normalize(v, min: m, max: M, into: o)
    }

    /// The min–max formula with given statistics (the one place it is written): x ← (x − m)/((M − m) + 1e-8)
    /// in float64, cast to float32; with M − m == 0 the values are only cast. A scene pipeline passes
    /// the statistics of the whole scene's valid pixels.
    public static func normalize(_ v: UnsafeBufferPointer<Double>, min m: Double, max M: Double, into o: UnsafeMutablePointer<Float>) {
        let range = M - m
        if range == 0 {
            for i in 0..<v.count { o[i] = Float(v[i]) }
        } else {
            let den = range + 1e-8
            for i in 0..<v.count { o[i] = Float((v[i] - m) / den) }
        }
    }

    /// Full upstream preprocessing of a decoded tile: float64 read (optionally divided by
    /// `divisor`, e.g. 10000 for MTS12), per-band min–max normalisation, float32 cast, then the
    /// antialiased bilinear resize to `size`×`size`. Returns (bands, size, size) float32, C order.
    /// Bands are independent, so this runs band by band: extra memory is one float64 band, one
    /// float32 band and the output, whatever the number of bands.
    public static func preprocess(_ raster: Raster, size: Int = modelSize, divisor: Double? = nil) throws -> [Float] {
        let per = raster.pixelsPerBand
        var out: [Float] = []
        out.reserveCapacity(raster.bands * size * size)
        var norm = [Float](repeating: 0, count: per)
        for b in 0..<raster.bands {
            var band = raster.bandFloat64(b)
            guard band.count == per else { throw RasterError.invalidArgument("band \(b) size") }
            if let d = divisor { for i in 0..<band.count { band[i] /= d } }
            norm.withUnsafeMutableBufferPointer { dst in
                band.withUnsafeBufferPointer { normalizeBand($0, into: dst.baseAddress!) }
            }
            out += try resizeAntialiased(norm, channels: 1, inHeight: raster.height, inWidth: raster.width,
                                         outHeight: size, outWidth: size)
        }
        return out
    }

    /// Index of the largest value along the class axis of (classes, pixels) scores; ties go to
    /// the first class (as `torch.argmax`), NaN counts as largest. At most 256 classes.
    public static func argmax(_ scores: [Float], classes: Int, pixels: Int) throws -> [UInt8] {
        guard classes > 0, classes <= 256, pixels >= 0, scores.count == classes * pixels else {
            throw RasterError.invalidArgument("argmax over \(scores.count) values as \(classes)×\(pixels)")
        }
        var best = [Float](repeating: 0, count: pixels)
        var idx = [UInt8](repeating: 0, count: pixels)
        scores.withUnsafeBufferPointer { s in
            best.withUnsafeMutableBufferPointer { b in
                idx.withUnsafeMutableBufferPointer { ix in
                    for p in 0..<pixels { b[p] = s[p] }
                    for k in 1..<max(classes, 1) {
                        let row = s.baseAddress! + k * pixels
                        for p in 0..<pixels {
                            let v = row[p]
                            if (v > b[p] || (v.isNaN && !b[p].isNaN)) { b[p] = v; ix[p] = UInt8(k) }
                        }
                    }
                }
            }
        }
        return idx
    }

    /// Inverse path for outputs: logits (classes, inHeight, inWidth) — normally 224×224 — are first
    /// resized to the tile's own size with plain bilinear interpolation (spec §5.7), then argmax'd
    /// into uint8 labels (height × width).
    public static func labels(fromLogits logits: [Float], classes: Int, inHeight: Int = modelSize, inWidth: Int = modelSize,
                              height: Int, width: Int) throws -> [UInt8] {
        let r = (inHeight == height && inWidth == width) ? logits
            : try resizeBilinear(logits, channels: classes, inHeight: inHeight, inWidth: inWidth, outHeight: height, outWidth: width)
        return try argmax(r, classes: classes, pixels: height * width)
    }
}
