import Foundation

/// A rectangle of pixels: columns `x ..< x + width`, rows `y ..< y + height`.
public struct PixelWindow: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) { self.x = x; self.y = y; self.width = width; self.height = height }
    public var pixels: Int { width * height }
    public var description: String { "\(width)×\(height)+\(x)+\(y)" }
}

/// Random access to the pixels of a raster without decoding all of it: what a scene pipeline reads
/// from. Implementations: `TIFFScene` (a GeoTIFF on disk or in memory, decoded block by block),
/// `NpyScene` (a memory-mapped `.npy`), `Raster` (already decoded) and `StackedRasterSource`
/// (bands of several files on one grid).
///
/// Reads may be called from any thread but are not expected to run concurrently on one source
/// (implementations serialise them).
public protocol RasterSource: Sendable {
    var width: Int { get }
    var height: Int { get }
    var bands: Int { get }
    /// Sample type of `read(_:)`'s raster.
    var sampleType: SampleType { get }
    /// Georeferencing copied to outputs (CRS, transform; nodata as declared by the file).
    var geo: GeoReference { get }
    /// Declared nodata value of each band (GDAL_NODATA; nil when none). NaN samples are always nodata.
    var bandNodata: [Double?] { get }
    /// True when the source has a per-pixel validity mask (GDAL internal mask IFD).
    var hasMask: Bool { get }
    /// All bands of `window` (which must lie inside the raster), band-sequential, native type.
    func read(_ window: PixelWindow) throws -> Raster
    /// The same, decoding into `storage` when it has the window's size (a loop over windows of one
    /// size passes the same array each time, so no buffer is allocated per window); the returned
    /// raster shares that storage until it is released. Sources without a reusing path allocate.
    func read(_ window: PixelWindow, reusing storage: inout [UInt8]) throws -> Raster
    /// The validity mask of `window` (0 = invalid, anything else valid), or nil without a mask.
    func readMask(_ window: PixelWindow) throws -> [UInt8]?
}

extension RasterSource {
    public var bandNodata: [Double?] { [Double?](repeating: geo.nodataValue, count: bands) }
    public var hasMask: Bool { false }
    public func read(_ window: PixelWindow, reusing storage: inout [UInt8]) throws -> Raster { try read(window) }
    public func readMask(_ window: PixelWindow) throws -> [UInt8]? { nil }

    /// Checks that `w` is a non-empty window inside the raster.
    public func checkWindow(_ w: PixelWindow) throws {
        guard w.width > 0, w.height > 0, w.x >= 0, w.y >= 0, w.x + w.width <= width, w.y + w.height <= height else {
            throw RasterError.invalidArgument("window \(w) outside the \(width)×\(height) raster")
        }
    }
}

extension Raster: RasterSource {
    /// Copies a window out of the decoded raster.
    public func read(_ w: PixelWindow) throws -> Raster {
        try checkWindow(w)
        if w.x == 0 && w.y == 0 && w.width == width && w.height == height { return self }
        let bps = sampleType.bytes
        var out = [UInt8](repeating: 0, count: w.pixels * bands * bps)
        data.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                for b in 0..<bands {
                    for r in 0..<w.height {
                        let s = src.baseAddress! + ((b * height + w.y + r) * width + w.x) * bps
                        let d = dst.baseAddress! + ((b * w.height + r) * w.width) * bps
                        d.copyMemory(from: s, byteCount: w.width * bps)
                    }
                }
            }
        }
        return try Raster(width: w.width, height: w.height, bands: bands, sampleType: sampleType, data: out, geo: geo)
    }
}

/// Opens a scene file by its content (TIFF/BigTIFF or NumPy magic), for windowed reading.
public enum RasterFile {
    /// `TIFFScene` or `NpyScene` for the file at `path`; unknown formats are `.notRecognized`.
    public static func open(path: String, limits: RasterLimits = .default, cacheBytes: Int = 32 << 20) throws -> any RasterSource {
        let data = try readFileData(path)
        switch RasterFormat.detect(data) {
        case .tiff: return try TIFFScene(mapped: data, limits: limits, cacheBytes: cacheBytes)
        case .npy: return try NpyScene(mapped: data, limits: limits)
        case .unknown: throw RasterError.notRecognized("\(path) is neither a TIFF nor a NumPy file")
        }
    }

    /// The same for bytes held in memory (a small request body).
    public static func open(data: Data, limits: RasterLimits = .default) throws -> any RasterSource {
        switch RasterFormat.detect(data) {
        case .tiff: return try TIFFScene(data: data, limits: limits)
        case .npy: return try NpyScene(data: data, limits: limits)
        case .unknown: throw RasterError.notRecognized("the data is neither a TIFF nor a NumPy file")
        }
    }
}

/// Releases the pages of a read-only file mapping that a read has touched: file-backed pages count
/// in the process's resident set, so a scene read front to back would otherwise look (to
/// `/usr/bin/time`, cgroups, the OOM killer) as large as the file. The data stays in the page
/// cache; a later access faults it back in. Only ever called on mappings of files (never on
/// anonymous memory, where it would discard data).
func releaseMappedPages(_ base: UnsafeRawPointer, offset: Int, count: Int) {
    #if os(Linux)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = (Int(bitPattern: base) + offset) & ~(page - 1)
    let end = (Int(bitPattern: base) + offset + count + page - 1) & ~(page - 1)
    guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
    _ = madvise(p, end - start, MADV_DONTNEED)
    #endif
}
