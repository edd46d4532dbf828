import Foundation

/// Container formats the raster layer reads.
public enum RasterFormat: Sendable, Equatable {
    case tiff, npy, unknown

    /// Detects the format from the first bytes (TIFF/BigTIFF byte-order mark, NumPy magic).
    public static func detect(_ bytes: UnsafeRawBufferPointer) -> RasterFormat {
        if bytes.count >= 4 {
            let a = bytes[0], b = bytes[1], v0 = bytes[2], v1 = bytes[3]
            if a == 0x49 && b == 0x49 && (v0 == 42 || v0 == 43) && v1 == 0 { return .tiff }
            if a == 0x4D && b == 0x4D && v0 == 0 && (v1 == 42 || v1 == 43) { return .tiff }
        }
        if bytes.count >= 6 && bytes[0] == 0x93 && bytes[1] == 0x4E && bytes[2] == 0x55 && bytes[3] == 0x4D && bytes[4] == 0x50 && bytes[5] == 0x59 {
            return .npy
        }
        return .unknown
    }

    public static func detect(_ data: Data) -> RasterFormat { data.withUnsafeBytes { detect($0) } }
}

extension NpyArray {
    /// Parses `.npy` bytes held in `Data` (e.g. an HTTP request body).
    public static func decode(data: Data, limits: RasterLimits = .default) throws -> NpyArray {
        try data.withUnsafeBytes { try decode($0, limits: limits) }
    }

    /// Interprets a (C, H, W) or (H, W) array (C or Fortran order, any byte order) as a band-sequential
    /// raster (no georeferencing), through the same reader as `.npy` scenes. Bool arrays become uint8.
    public func toRaster() throws -> Raster {
        let scene = try NpyScene(data: Data(try NpyWriter.encodeRaw(data, dtype: dtype, shape: shape, fortranOrder: fortranOrder)))
        return try scene.read(PixelWindow(x: 0, y: 0, width: scene.width, height: scene.height))
    }
}

extension GeoTIFFWriter {
    /// Label GeoTIFF as bytes (for an HTTP response body): uint8, Deflate, 256×256 tiles.
    public static func encodeLabels(_ labels: [UInt8], width: Int, height: Int, geo: GeoReference,
                                    options: TIFFWriteOptions = .labels) throws -> [UInt8] {
        try encode(try Raster(width: width, height: height, bands: 1, values: labels, geo: geo), options: options)
    }
}
