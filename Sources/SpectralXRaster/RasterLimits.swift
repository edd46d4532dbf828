/// Resource bounds applied while parsing untrusted rasters. Every bound is checked from header
/// values before the corresponding allocation, so a hostile file (huge dimensions, a deflate bomb,
/// thousands of IFDs) fails with `RasterError.limitExceeded` instead of exhausting memory or time.
public struct RasterLimits: Sendable, Equatable {
    /// Largest accepted width and height (each).
    public var maxDimension: Int
    /// Largest accepted width × height.
    public var maxPixels: Int
    /// Largest accepted number of bands (samples per pixel).
    public var maxBands: Int
    /// Largest decoded size of one strip or tile, in bytes.
    public var maxBlockBytes: Int
    /// Largest total decoded size of an image (all bands, native sample width), in bytes.
    public var maxDecodedBytes: Int
    /// Largest number of IFDs followed in the chain.
    public var maxIFDCount: Int
    /// Largest number of entries in one IFD.
    public var maxTagCount: Int
    /// Largest number of values in one tag (e.g. StripOffsets).
    public var maxTagValues: Int
    /// Largest NumPy header length in bytes.
    public var maxNpyHeaderBytes: Int
    /// Largest number of bytes read to parse the header and IFDs of a TIFF read by range.
    public var maxHeaderBytes: Int = 64 << 20

    public init(maxDimension: Int = 1 << 17, maxPixels: Int = 1 << 28, maxBands: Int = 1024,
                maxBlockBytes: Int = 256 << 20, maxDecodedBytes: Int = 4 << 30, maxIFDCount: Int = 256,
                maxTagCount: Int = 1024, maxTagValues: Int = 1 << 24, maxNpyHeaderBytes: Int = 1 << 16) {
        self.maxDimension = maxDimension
        self.maxPixels = maxPixels
        self.maxBands = maxBands
        self.maxBlockBytes = maxBlockBytes
        self.maxDecodedBytes = maxDecodedBytes
        self.maxIFDCount = maxIFDCount
        self.maxTagCount = maxTagCount
        self.maxTagValues = maxTagValues
        self.maxNpyHeaderBytes = maxNpyHeaderBytes
    }

    /// Defaults: 131072 px per side, 2^28 pixels (16384²), 1024 bands, 256 MiB per block,
    /// 4 GiB decoded per image (a 13-band 10980² uint16 Sentinel-2 scene is 3.1 GB).
    public static let `default` = RasterLimits()

    /// Tight bounds for fuzzing and for request bodies of a server.
    public static let strict = RasterLimits(maxDimension: 1 << 14, maxPixels: 1 << 24, maxBands: 256,
                                            maxBlockBytes: 16 << 20, maxDecodedBytes: 64 << 20,
                                            maxIFDCount: 32, maxTagCount: 256, maxTagValues: 1 << 20)

    func check(_ what: String, _ value: Int, _ limit: Int) throws {
        if value > limit { throw RasterError.limitExceeded(what: what, value: UInt64(max(value, 0)), limit: UInt64(max(limit, 0))) }
    }
}

/// Overflow-checked arithmetic on sizes derived from untrusted headers.
@inline(__always) func checkedMul(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    if o || r < 0 { throw RasterError.malformed("\(what()) overflows") }
    return r
}

@inline(__always) func checkedAdd(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (r, o) = a.addingReportingOverflow(b)
    if o { throw RasterError.malformed("\(what()) overflows") }
    return r
}
