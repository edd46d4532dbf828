/// Georeferencing of a GeoTIFF kept verbatim, so that outputs carry exactly the input's CRS keys,
/// tie points, pixel scale or transformation, nodata and GDAL metadata.
public struct GeoReference: Sendable, Equatable {
    /// ModelPixelScaleTag (33550): (ScaleX, ScaleY, ScaleZ).
    public var pixelScale: [Double]?
    /// ModelTiepointTag (33922): groups of (I, J, K, X, Y, Z).
    public var tiepoints: [Double]?
    /// ModelTransformationTag (34264): 4×4 row-major matrix.
    public var transformation: [Double]?
    /// GeoKeyDirectoryTag (34735): header (version, revision, minor, count) + 4 shorts per key.
    public var geoKeyDirectory: [UInt16]?
    /// GeoDoubleParamsTag (34736).
    public var geoDoubleParams: [Double]?
    /// GeoAsciiParamsTag (34737), without the trailing NUL.
    public var geoAsciiParams: String?
    /// GDAL_NODATA (42113) as text, e.g. "0" or "-9999".
    public var nodata: String?
    /// GDAL_METADATA (42112) XML.
    public var gdalMetadata: String?

    public init(pixelScale: [Double]? = nil, tiepoints: [Double]? = nil, transformation: [Double]? = nil,
                geoKeyDirectory: [UInt16]? = nil, geoDoubleParams: [Double]? = nil, geoAsciiParams: String? = nil,
                nodata: String? = nil, gdalMetadata: String? = nil) {
        self.pixelScale = pixelScale; self.tiepoints = tiepoints; self.transformation = transformation
        self.geoKeyDirectory = geoKeyDirectory; self.geoDoubleParams = geoDoubleParams
        self.geoAsciiParams = geoAsciiParams; self.nodata = nodata; self.gdalMetadata = gdalMetadata
    }

    /// True when no georeferencing tag is present.
    public var isEmpty: Bool {
        pixelScale == nil && tiepoints == nil && transformation == nil && geoKeyDirectory == nil
            && geoDoubleParams == nil && geoAsciiParams == nil && nodata == nil && gdalMetadata == nil
    }

    /// One GeoKey: id, the tag holding its value (0 = inline short), count, value/index.
    public struct GeoKey: Sendable, Equatable {
        public var id: UInt16, location: UInt16, count: UInt16, valueOffset: UInt16
    }

    /// GeoKeys parsed from the directory; keys running past the directory are dropped.
    public var geoKeys: [GeoKey] {
        guard let d = geoKeyDirectory, d.count >= 4 else { return [] }
        let n = min(Int(d[3]), (d.count - 4) / 4)
        return (0..<n).map { i in GeoKey(id: d[4 + 4 * i], location: d[5 + 4 * i], count: d[6 + 4 * i], valueOffset: d[7 + 4 * i]) }
    }

    /// EPSG code of the projected (3072) or, failing that, geographic (2048) CRS key, if inline.
    public var epsg: Int? {
        let keys = geoKeys
        for id: UInt16 in [3072, 2048] {
            if let k = keys.first(where: { $0.id == id && $0.location == 0 }), k.valueOffset != 0, k.valueOffset != 32767 {
                return Int(k.valueOffset)
            }
        }
        return nil
    }

    /// GDAL-style affine geotransform (x0, dx, rx, y0, ry, dy) of the pixel-corner grid, from the
    /// transformation matrix or from the first tie point and the pixel scale.
    public var geoTransform: [Double]? {
        if let t = transformation, t.count >= 8 { return [t[3], t[0], t[1], t[7], t[4], t[5]] }
        if let tp = tiepoints, tp.count >= 6, let s = pixelScale, s.count >= 2 {
            return [tp[3] - tp[0] * s[0], s[0], 0, tp[4] + tp[1] * s[1], 0, -s[1]]
        }
        return nil
    }

    /// Nodata parsed as a number, if present and numeric.
    public var nodataValue: Double? {
        guard let s = nodata?.trimmingCharacters(in: .whitespaces) else { return nil }
        switch s.lowercased() {
        case "nan": return .nan
        case "inf": return .infinity
        case "-inf": return -.infinity
        default: return Double(s)
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: CharacterSetLite) -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" || f == "\0" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" || l == "\0" { s.removeLast() }
        return String(s)
    }
}

fileprivate enum CharacterSetLite { case whitespaces }
