import Foundation

/// Windowed reading of a `.npy` scene of shape (C, H, W) or (H, W), C or Fortran order, any
/// numeric dtype and byte order, straight from a memory mapping of the file: nothing is decoded up
/// front, a read gathers the window's samples (byte-swapped to host order when the file is
/// big-endian) and, for a file mapping, releases the rows it touched from the resident set.
/// Booleans read as uint8. No georeferencing.
public final class NpyScene: RasterSource, @unchecked Sendable {
    // @unchecked: immutable after init (Data is a read-only mapping or an immutable buffer).
    public let width: Int, height: Int, bands: Int
    public let sampleType: SampleType
    public var geo: GeoReference { GeoReference() }
    public let fortranOrder: Bool
    private let data: Data
    private let dataOffset: Int
    private let swap: Bool
    private let fileBacked: Bool

    public convenience init(path: String, limits: RasterLimits = .default) throws {
        try self.init(mapped: try readFileData(path), limits: limits)
    }

    public convenience init(data: Data, limits: RasterLimits = .default) throws {
        try self.init(data: data, fileBacked: false, limits: limits)
    }

    convenience init(mapped data: Data, limits: RasterLimits = .default) throws {
        try self.init(data: data, fileBacked: true, limits: limits)
    }

    private init(data: Data, fileBacked: Bool, limits: RasterLimits) throws {
        let h = try data.withUnsafeBytes { try NpyHeader.parse($0, limits: limits) }
        let (c, hh, w): (Int, Int, Int)
        switch h.shape.count {
        case 2: (c, hh, w) = (1, h.shape[0], h.shape[1])
        case 3: (c, hh, w) = (h.shape[0], h.shape[1], h.shape[2])
        default: throw RasterError.invalidArgument("a NumPy raster must have shape (C,H,W) or (H,W), got \(h.shape)")
        }
        guard c > 0, hh > 0, w > 0 else { throw RasterError.invalidArgument("NumPy raster has an empty axis: \(h.shape)") }
        try limits.check("image width", w, limits.maxDimension)
        try limits.check("image height", hh, limits.maxDimension)
        try limits.check("pixel count", try checkedMul(w, hh, "pixel count"), limits.maxPixels)
        try limits.check("bands", c, limits.maxBands)
        let need = try checkedMul(h.count, h.dtype.size, "npy byte count")
        try limits.check("npy data bytes", need, limits.maxDecodedBytes)
        guard data.count - h.dataOffset >= need else {
            throw RasterError.truncated("npy data: need \(need) bytes after the header, have \(data.count - h.dataOffset)")
        }
        switch h.dtype.kind {
        case .float: sampleType = SampleType(format: .float, bits: h.dtype.size * 8)
        case .int: sampleType = SampleType(format: .int, bits: h.dtype.size * 8)
        case .uint, .bool: sampleType = SampleType(format: .uint, bits: h.dtype.size * 8)
        }
        (bands, height, width) = (c, hh, w)
        fortranOrder = h.fortranOrder && h.shape.count > 1
        self.data = data
        dataOffset = h.dataOffset
        swap = !h.dtype.littleEndian && h.dtype.size > 1
        self.fileBacked = fileBacked
    }

    public func read(_ win: PixelWindow) throws -> Raster {
        try checkWindow(win)
        let bps = sampleType.bytes
        let (C, H, W) = (bands, height, width)
        var out = [UInt8](repeating: 0, count: win.pixels * C * bps)
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataOffset
            out.withUnsafeMutableBytes { dst in
                for b in 0..<C {
                    for r in 0..<win.height {
                        let y = win.y + r
                        let d = dst.baseAddress! + ((b * win.height + r) * win.width) * bps
                        if !fortranOrder {
                            d.copyMemory(from: base + ((b * H + y) * W + win.x) * bps, byteCount: win.width * bps)
                        } else {
                            // Fortran order: element (b, y, x) at b + C·(y + H·x).
                            for c in 0..<win.width {
                                (d + c * bps).copyMemory(from: base + (b + C * (y + H * (win.x + c))) * bps, byteCount: bps)
                            }
                        }
                    }
                }
                if swap { Predictor.byteSwap(dst, count: dst.count / bps, bytesPerSample: bps) }
            }
            if fileBacked && !fortranOrder {
                for b in 0..<C {
                    let first = ((b * H + win.y) * W) * bps
                    releaseMappedPages(base, offset: first, count: win.height * W * bps)
                }
            }
        }
        return try Raster(width: win.width, height: win.height, bands: C, sampleType: sampleType, data: out)
    }
}
