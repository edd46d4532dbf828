import Foundation

/// Bands of several rasters on one grid, in the given order (e.g. Sentinel-2 B02.tif, B03.tif, …):
/// every input must have the same CRS and extent; grids coarser than the finest by an integer
/// factor (20 m and 60 m bands next to 10 m ones) are resampled to the finest bilinearly (pixel
/// centres aligned, edges clamped, as GDAL's bilinear), and an output pixel next to a coarse
/// nodata (or NaN) sample is nodata. Different CRS, extents or non-integer ratios are
/// `.invalidArgument` errors that name the file.
///
/// Samples come out in the common sample type when no band is resampled and all types agree,
/// float64 otherwise.
public struct StackedRasterSource: RasterSource {
    public let sources: [any RasterSource]
    /// Names used in error messages (file paths).
    public let names: [String]
    public let width: Int, height: Int, bands: Int
    public let sampleType: SampleType
    public let geo: GeoReference
    public let bandNodata: [Double?]
    /// Per source: how many output pixels one of its pixels spans (1 for the finest grid).
    public let factors: [Int]

    public init(_ sources: [any RasterSource], names: [String]) throws {
        guard let first = sources.first else { throw RasterError.invalidArgument("no rasters to stack") }
        self.sources = sources
        self.names = names.count == sources.count ? names : sources.indices.map { "input \($0 + 1)" }
        let finest = sources.indices.max { sources[$0].width < sources[$1].width }!
        let ref = sources[finest]
        width = ref.width; height = ref.height
        var f: [Int] = []
        for (i, s) in sources.enumerated() {
            let n = self.names[i]
            guard ref.width % s.width == 0, ref.height % s.height == 0, ref.width / s.width == ref.height / s.height else {
                throw RasterError.invalidArgument(
                    "\(n): grid \(s.width)×\(s.height) is not an integer fraction of the finest grid \(ref.width)×\(ref.height) (\(self.names[finest]))")
            }
            let k = ref.width / s.width
            if !Self.sameCRS(s.geo, ref.geo) {
                throw RasterError.invalidArgument("\(n): CRS differs from \(self.names[finest]) (EPSG \(s.geo.epsg.map(String.init) ?? "?") vs \(ref.geo.epsg.map(String.init) ?? "?"))")
            }
            if let a = s.geo.geoTransform, let b = ref.geo.geoTransform {
                let tol = 1e-6 * max(abs(b[1]), abs(b[5]), 1e-9)
                let ok = abs(a[0] - b[0]) <= tol && abs(a[3] - b[3]) <= tol
                    && abs(a[1] - b[1] * Double(k)) <= tol * Double(k) && abs(a[5] - b[5] * Double(k)) <= tol * Double(k)
                guard ok else {
                    throw RasterError.invalidArgument("\(n): extent differs from \(self.names[finest]) (origin \(a[0]), \(a[3]) pixel \(a[1]) vs origin \(b[0]), \(b[3]) pixel \(b[1]))")
                }
            } else if (s.geo.geoTransform == nil) != (ref.geo.geoTransform == nil) {
                throw RasterError.invalidArgument("\(n): one input is georeferenced and another is not")
            }
            f.append(k)
        }
        factors = f
        bands = sources.reduce(0) { $0 + $1.bands }
        let types = Set(sources.map(\.sampleType))
        sampleType = (types.count == 1 && f.allSatisfy { $0 == 1 }) ? first.sampleType : .float64
        var g = ref.geo
        g.nodata = nil
        geo = g
        bandNodata = sources.flatMap(\.bandNodata)
    }

    static func sameCRS(_ a: GeoReference, _ b: GeoReference) -> Bool {
        if let x = a.epsg, let y = b.epsg { return x == y }
        return a.geoKeyDirectory == b.geoKeyDirectory && a.geoAsciiParams == b.geoAsciiParams
    }

    public var hasMask: Bool { sources.contains { $0.hasMask } }

    /// A pixel is unmasked when every input's mask (where present) says valid.
    public func readMask(_ w: PixelWindow) throws -> [UInt8]? {
        var out: [UInt8]?
        for (i, s) in sources.enumerated() where s.hasMask {
            let m = try resampledMask(s, factor: factors[i], w)
            if out == nil { out = m } else { for j in 0..<m.count where m[j] == 0 { out![j] = 0 } }
        }
        return out
    }

    private func resampledMask(_ s: any RasterSource, factor k: Int, _ w: PixelWindow) throws -> [UInt8] {
        if k == 1 { return try s.readMask(w) ?? [UInt8](repeating: 1, count: w.pixels) }
        let cw = PixelWindow(x: w.x / k, y: w.y / k, width: (w.x + w.width - 1) / k - w.x / k + 1, height: (w.y + w.height - 1) / k - w.y / k + 1)
        let m = try s.readMask(cw) ?? [UInt8](repeating: 1, count: cw.pixels)
        var out = [UInt8](repeating: 0, count: w.pixels)
        for r in 0..<w.height { for c in 0..<w.width { out[r * w.width + c] = m[((w.y + r) / k - cw.y) * cw.width + (w.x + c) / k - cw.x] } }
        return out
    }

    public func read(_ w: PixelWindow) throws -> Raster {
        try checkWindow(w)
        if sampleType != .float64 {
            var data: [UInt8] = []
            data.reserveCapacity(w.pixels * bands * sampleType.bytes)
            for s in sources { data += try s.read(w).data }
            return try Raster(width: w.width, height: w.height, bands: bands, sampleType: sampleType, data: data, geo: geo)
        }
        var values: [Double] = []
        values.reserveCapacity(w.pixels * bands)
        for (i, s) in sources.enumerated() {
            let k = factors[i]
            if k == 1 { values += try s.read(w).toFloat64(); continue }
            values += try upsample(s, factor: k, w, nodata: s.bandNodata)
        }
        return try Raster(width: w.width, height: w.height, bands: bands, values: values, geo: geo)
    }

    /// Bilinear upsampling by `k` of the coarse samples covering `w` (source coordinate (d + ½)/k − ½).
    private func upsample(_ s: any RasterSource, factor k: Int, _ w: PixelWindow, nodata: [Double?]) throws -> [Double] {
        let fk = Double(k)
        func src(_ d: Int, _ n: Int) -> (Int, Int, Double) {
            let p = min(max((Double(d) + 0.5) / fk - 0.5, 0), Double(n - 1))
            let i0 = Int(p.rounded(.down)), i1 = min(i0 + 1, n - 1)
            return (i0, i1, p - Double(i0))
        }
        let ys = (0..<w.height).map { src(w.y + $0, s.height) }, xs = (0..<w.width).map { src(w.x + $0, s.width) }
        let cy0 = ys.first!.0, cy1 = ys.last!.1, cx0 = xs.first!.0, cx1 = xs.last!.1
        let cw = PixelWindow(x: cx0, y: cy0, width: cx1 - cx0 + 1, height: cy1 - cy0 + 1)
        let coarse = try s.read(cw).toFloat64()
        var out = [Double](repeating: 0, count: w.pixels * s.bands)
        for b in 0..<s.bands {
            let nd = nodata[b]
            let plane = b * cw.pixels
            for (r, (y0, y1, ly)) in ys.enumerated() {
                for (c, (x0, x1, lx)) in xs.enumerated() {
                    let a = coarse[plane + (y0 - cy0) * cw.width + x0 - cx0], bb = coarse[plane + (y0 - cy0) * cw.width + x1 - cx0]
                    let cc = coarse[plane + (y1 - cy0) * cw.width + x0 - cx0], dd = coarse[plane + (y1 - cy0) * cw.width + x1 - cx0]
                    var v = (a * (1 - lx) + bb * lx) * (1 - ly) + (cc * (1 - lx) + dd * lx) * ly
                    if let nd {
                        let used = [(a, (1 - lx) * (1 - ly)), (bb, lx * (1 - ly)), (cc, (1 - lx) * ly), (dd, lx * ly)]
                        if used.contains(where: { $0.1 > 0 && ($0.0 == nd || $0.0.isNaN) }) { v = nd }
                    }
                    out[b * w.pixels + r * w.width + c] = v
                }
            }
        }
        return out
    }
}
