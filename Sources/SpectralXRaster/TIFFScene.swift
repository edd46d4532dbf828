import Foundation
import Synchronization

/// Windowed reading of a GeoTIFF (strips or tiles, chunky or planar, every codec and predictor of
/// `TIFFReader`, classic TIFF or BigTIFF): a read decodes only the blocks the window touches and
/// keeps recently decoded blocks in a small LRU cache bounded in bytes (`cacheBytes`, at least one
/// block), so reading a scene top to bottom in row bands decodes each block about once.
///
/// A file read in place by range (`init(source:)`, a COG over HTTP or S3) is parsed from its first
/// bytes (more only when the IFDs lie beyond them); each read then fetches the stored bytes of the
/// blocks it needs and does not hold, all in one `ByteRangeSource.read` (which coalesces neighbours).
///
/// Memory: the file is memory-mapped and the pages of each block are released from the resident
/// set after decoding (`releaseMappedPages`), so a scene costs the cache plus the caller's window,
/// whatever the file size. A GDAL internal mask (a full-resolution IFD with NewSubfileType bit 2,
/// PhotometricInterpretation 4, 1- or 8-bit) is found and read the same way.
///
/// `@unchecked Sendable`: the mutable state (cache, inflater) is only touched under `lock` (a
/// `Mutex` guarding no value of its own, as the cache's fields are used together with `reader`).
public final class TIFFScene: RasterSource, @unchecked Sendable {
    public let reader: TIFFReader
    public var info: TIFFImageInfo { reader.info }
    public var width: Int { reader.info.width }
    public var height: Int { reader.info.height }
    public var bands: Int { reader.info.bands }
    public var sampleType: SampleType { reader.info.sampleType }
    public var geo: GeoReference { reader.info.geo }
    public var hasMask: Bool { mask != nil }
    /// Number of blocks decoded so far (cache misses), for tests and diagnostics.
    public var blocksDecoded: Int { lock.withLock { _ in decodedCount } }

    private let fileBacked: Bool
    /// Set for a file read by range; nil when `reader.data` is the whole file.
    public let source: (any ByteRangeSource)?
    private let mask: TIFFMaskIFD?
    private let lock = Mutex(())
    private var cache: [Int: [UInt8]] = [:]
    private var lru: [Int] = []
    private var cachedBytes = 0
    /// The buffer of the last evicted block, decoded into next: the cache's blocks live in the same
    /// few buffers for the whole scene instead of a fresh 10–20 MB allocation per block (which, with
    /// the allocator retaining freed memory, fragments the heap and lets the resident set creep up).
    private var spare: [UInt8]?
    private let cacheBytes: Int
    private var decodedCount = 0
    private let inflater = Deflate.Inflater()

    /// Opens (maps) a file.
    public convenience init(path: String, limits: RasterLimits = .default, cacheBytes: Int = 32 << 20) throws {
        try self.init(mapped: try readFileData(path), limits: limits, cacheBytes: cacheBytes)
    }

    /// A TIFF held in memory (e.g. a small request body).
    public convenience init(data: Data, limits: RasterLimits = .default, cacheBytes: Int = 32 << 20) throws {
        try self.init(data: data, fileBacked: false, limits: limits, cacheBytes: cacheBytes)
    }

    /// `data` is a read-only mapping of a file (`Data(contentsOf:options:.alwaysMapped)`).
    convenience init(mapped data: Data, limits: RasterLimits = .default, cacheBytes: Int = 32 << 20) throws {
        try self.init(data: data, fileBacked: true, limits: limits, cacheBytes: cacheBytes)
    }

    private init(data: Data, fileBacked: Bool, limits: RasterLimits, cacheBytes: Int) throws {
        reader = try TIFFReader(data: data, limits: limits)
        self.fileBacked = fileBacked
        self.cacheBytes = cacheBytes
        source = nil
        let info = reader.info
        mask = try data.withUnsafeBytes { try TIFFMaskIFD.find(TIFFBytes(b: $0, bigEndian: info.bigEndian), info: info, limits: limits) }
    }

    /// A TIFF read in place by range. The header and IFDs come from a first read of `firstRead`
    /// bytes, and more reads only for IFDs or tag values beyond them (at most `limits.maxHeaderBytes` in all).
    public init(source: any ByteRangeSource, limits: RasterLimits = .default, cacheBytes: Int = 32 << 20,
                firstRead: Int = 16 << 10) throws {
        var pieces: [TIFFPiece] = []
        var packed = Data()
        func fetch(_ r: Range<Int>) throws {
            let total = packed.count + r.count
            try limits.check("TIFF header bytes read by range", total, limits.maxHeaderBytes)
            guard let d = try source.read([r]).first, d.count == r.count else {
                throw RasterError.truncated("\(source.name): short read of bytes \(r.lowerBound)..<\(r.upperBound)")
            }
            pieces.append(TIFFPiece(file: r.lowerBound, at: packed.count, count: r.count))
            packed.append(d)
        }
        try fetch(0..<min(source.size, max(16, firstRead)))
        // Each round fetches what the last parse missed; every round adds ≥ 1 byte under the header
        // limit, and the IFD count is bounded, so the loop ends (64 rounds is far beyond any real file).
        var parsed: (TIFFReader, TIFFMaskIFD?)?
        for round in 0... {
            do {
                let r = try TIFFReader(pieces: pieces, packed: packed, fileSize: source.size, limits: limits)
                let info = r.info
                let m = try packed.withUnsafeBytes {
                    try TIFFMaskIFD.find(TIFFBytes(b: $0, bigEndian: info.bigEndian, fileSize: source.size, pieces: pieces),
                                         info: info, limits: limits)
                }
                parsed = (r, m)
                break
            } catch let missing as TIFFMissingBytes {
                guard round < 64 else { throw RasterError.malformed("\(source.name): TIFF header scattered over too many places") }
                let lo = missing.range.lowerBound
                try fetch(lo..<min(source.size, max(missing.range.upperBound, lo + max(16, firstRead))))
            }
        }
        guard let parsed else { throw RasterError.malformed("\(source.name): TIFF header not parsed") }
        (reader, mask) = parsed
        self.source = source
        fileBacked = false
        self.cacheBytes = cacheBytes
    }

    /// All bands of `window`, band-sequential, native sample type.
    public func read(_ w: PixelWindow) throws -> Raster {
        var fresh: [UInt8] = []
        return try read(w, reusing: &fresh)
    }

    /// Every byte of the window is written (the blocks tile the image), so a reused buffer needs no clearing.
    public func read(_ w: PixelWindow, reusing storage: inout [UInt8]) throws -> Raster {
        try checkWindow(w)
        let i = reader.info
        let bps = i.sampleType.bytes
        let chunky = i.planarConfiguration == 1 && i.bands > 1
        let spb = chunky ? i.bands : 1
        let across = (i.width + i.blockWidth - 1) / i.blockWidth
        let down = (i.height + i.blockHeight - 1) / i.blockHeight
        let bx0 = w.x / i.blockWidth, bx1 = (w.x + w.width - 1) / i.blockWidth
        let by0 = w.y / i.blockHeight, by1 = (w.y + w.height - 1) / i.blockHeight
        let size = w.pixels * i.bands * bps
        var out = storage
        storage = []   // `out` holds the only reference, so it is written in place
        if out.count != size { out = [UInt8](repeating: 0, count: size) }
        defer { storage = out }
        var keys: [Int] = []
        for plane in 0..<(chunky ? 1 : i.bands) {
            for by in by0...by1 { for bx in bx0...bx1 { keys.append(plane * across * down + by * across + bx) } }
        }
        try lock.withLock { _ in
            try withStoredBlocks(keys.filter { cache[$0] == nil }, extent: reader.blockExtent) { stored in
                for k in keys {
                    let by = (k % (across * down)) / across, bx = k % across, plane = k / (across * down)
                    let block = try decoded(k, stored)
                    // Intersection of the block and the window, in image coordinates.
                    let x0 = max(w.x, bx * i.blockWidth), x1 = min(w.x + w.width, (bx + 1) * i.blockWidth)
                    let y0 = max(w.y, by * i.blockHeight), y1 = min(w.y + w.height, (by + 1) * i.blockHeight)
                    let rowSamples = i.blockWidth * spb
                    block.withUnsafeBytes { src in
                        out.withUnsafeMutableBytes { dst in
                            for y in y0..<y1 {
                                let srow = src.baseAddress! + ((y - by * i.blockHeight) * rowSamples) * bps
                                let cx = x0 - bx * i.blockWidth
                                if !chunky {
                                    let d = dst.baseAddress! + ((plane * w.height + y - w.y) * w.width + x0 - w.x) * bps
                                    d.copyMemory(from: srow + cx * bps, byteCount: (x1 - x0) * bps)
                                } else {
                                    switch bps {
                                    case 1: deinterleave(UInt8.self, srow, dst.baseAddress!, cx, x0, x1, y, w, spb)
                                    case 2: deinterleave(UInt16.self, srow, dst.baseAddress!, cx, x0, x1, y, w, spb)
                                    case 4: deinterleave(UInt32.self, srow, dst.baseAddress!, cx, x0, x1, y, w, spb)
                                    default: deinterleave(UInt64.self, srow, dst.baseAddress!, cx, x0, x1, y, w, spb)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return try Raster(width: w.width, height: w.height, bands: i.bands, sampleType: i.sampleType, data: out, geo: i.geo)
    }

    public func readMask(_ w: PixelWindow) throws -> [UInt8]? {
        guard let mask else { return nil }
        try checkWindow(w)
        return try lock.withLock { _ in
            try withStoredBlocks(mask.keys(w), extent: mask.extent) { stored in
                try mask.read(stored, window: w, inflater: inflater, release: fileBacked)
            }
        }
    }

    /// Pixel-interleaved block row → band-sequential window rows.
    private func deinterleave<T>(_: T.Type, _ srow: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ cx: Int, _ x0: Int, _ x1: Int,
                                 _ y: Int, _ w: PixelWindow, _ spp: Int) {
        let s = srow.assumingMemoryBound(to: T.self) + cx * spp
        let d = dst.assumingMemoryBound(to: T.self)
        let n = x1 - x0
        for b in 0..<spp {
            let o = d + (b * w.height + y - w.y) * w.width + x0 - w.x
            var p = s + b
            for c in 0..<n { o[c] = p.pointee; p += spp }
        }
    }

    /// Runs `body` with the stored bytes of blocks `keys` at hand: in place in the file's bytes, or
    /// (read by range) fetched now, all in one read. Sparse blocks give an empty buffer. Caller holds `lock`.
    private func withStoredBlocks<R>(_ keys: [Int], extent: @escaping (Int) -> Range<Int>,
                                     _ body: ((Int) -> UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let source else {
            return try reader.data.withUnsafeBytes { raw in
                try body { k in
                    let e = extent(k)
                    return e.isEmpty ? UnsafeRawBufferPointer(start: nil, count: 0) : UnsafeRawBufferPointer(rebasing: raw[e])
                }
            }
        }
        let wanted = keys.filter { !extent($0).isEmpty }
        // A stored block is never much larger than decoded (LZW on noise grows it by half at most):
        // a hostile byte count is refused before it becomes a request.
        let storedLimit = reader.limits.maxBlockBytes * 2 + (1 << 20)
        for k in wanted { try reader.limits.check("stored bytes of block \(k)", extent(k).count, storedLimit) }
        let fetched = wanted.isEmpty ? [] : try source.read(wanted.map(extent))
        var arena = [UInt8]()
        arena.reserveCapacity(fetched.reduce(0) { $0 + $1.count })
        var at: [Int: Range<Int>] = [:]
        for (k, d) in zip(wanted, fetched) {
            guard d.count == extent(k).count else {
                throw RasterError.truncated("\(source.name): block \(k) read \(d.count) of \(extent(k).count) bytes")
            }
            at[k] = arena.count..<(arena.count + d.count)
            arena.append(contentsOf: d)
        }
        return try arena.withUnsafeBytes { a in
            try body { k in at[k].map { UnsafeRawBufferPointer(rebasing: a[$0]) } ?? UnsafeRawBufferPointer(start: nil, count: 0) }
        }
    }

    /// Decoded block `k` (host order, predictor undone), from the cache or decoded now from its
    /// stored bytes (`stored`). Caller holds `lock`.
    private func decoded(_ k: Int, _ stored: (Int) -> UnsafeRawBufferPointer) throws -> [UInt8] {
        if let b = cache[k] {
            if let j = lru.lastIndex(of: k) { lru.remove(at: j) }
            lru.append(k)
            return b
        }
        let i = reader.info
        let spb = i.planarConfiguration == 1 ? i.bands : 1
        let across = (i.width + i.blockWidth - 1) / i.blockWidth
        let down = (i.height + i.blockHeight - 1) / i.blockHeight
        let by = (k % (across * down)) / across
        let storedRows = i.isTiled ? i.blockHeight : min(i.blockHeight, i.height - by * i.blockHeight)
        let rowSamples = i.blockWidth * spb
        let n = storedRows * rowSamples * i.sampleType.bytes
        // Strips shorter than RowsPerStrip are padded to a full block so row arithmetic stays simple.
        let full = i.blockHeight * rowSamples * i.sampleType.bytes
        // Make room first, so the evicted block's buffer is the one decoded into.
        while cachedBytes + full > cacheBytes, lru.count > 0 {
            let old = lru.removeFirst()
            if let b = cache.removeValue(forKey: old) { cachedBytes -= b.count; spare = b }
        }
        var block: [UInt8]
        if var b = spare, b.count == full {
            spare = nil
            if n < full { b.withUnsafeMutableBytes { _ = UnsafeMutableRawBufferPointer(rebasing: $0[n...]).initializeMemory(as: UInt8.self, repeating: 0) } }
            block = b
        } else {
            spare = nil
            block = [UInt8](repeating: 0, count: full)
        }
        let comp = TIFFCompression(rawValue: i.compression) ?? .none
        func decode(_ src: UnsafeRawBufferPointer) throws {
            try block.withUnsafeMutableBytes { b in
                try reader.decodeBlock(src, k, comp, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), rows: storedRows,
                                       rowSamples: rowSamples, stride: spb, inflater: inflater)
            }
        }
        let src = stored(k)
        if let source, src.count < reader.blockExtent(k).count {
            // Cached when the window's blocks were fetched, evicted since by another of its blocks.
            try (try source.read([reader.blockExtent(k)]).first ?? Data()).withUnsafeBytes { try decode($0) }
        } else {
            try decode(src)
        }
        if fileBacked && src.count > 0 { releaseMappedPages(src.baseAddress!, offset: 0, count: src.count) }
        decodedCount += 1
        cache[k] = block
        lru.append(k)
        cachedBytes += block.count
        return block
    }
}

/// The GDAL internal mask of a TIFF: a full-resolution IFD flagged as a transparency mask
/// (NewSubfileType bit 2, PhotometricInterpretation 4), 1-bit (or 8-bit), one sample per pixel.
struct TIFFMaskIFD: Sendable {
    let bits: Int
    let compression: TIFFCompression
    let blockWidth: Int, blockHeight: Int, tiled: Bool
    let width: Int, height: Int
    let big: Bool
    let offsets: [UInt64], counts: [UInt64]

    /// Walks the IFD chain for a mask of the image's size; nil when there is none.
    static func find(_ f: TIFFBytes, info: TIFFImageInfo, limits: RasterLimits) throws -> TIFFMaskIFD? {
        var off: UInt64 = info.isBigTIFF ? f.u64(8) : UInt64(f.u32(4))
        var seen = Set<UInt64>()
        while off != 0, seen.count < limits.maxIFDCount, !seen.contains(off) {
            seen.insert(off)
            let d = try TIFFDirectory.parse(f, at: off, bigTIFF: info.isBigTIFF, limits: limits)
            off = d.next
            let sub = try d.int(TIFFTag.newSubfileType, "NewSubfileType") ?? 0
            guard sub & 4 != 0, sub & 1 == 0, try d.int(TIFFTag.photometric, "PhotometricInterpretation") == 4,
                  try d.int(TIFFTag.imageWidth, "ImageWidth") == info.width,
                  try d.int(TIFFTag.imageLength, "ImageLength") == info.height else { continue }
            let bits = try d.int(TIFFTag.bitsPerSample, "BitsPerSample") ?? 1
            guard bits == 1 || bits == 8 else { throw RasterError.unsupported("\(bits)-bit internal mask") }
            guard (try d.int(TIFFTag.samplesPerPixel, "SamplesPerPixel") ?? 1) == 1 else { throw RasterError.unsupported("multi-sample mask") }
            let code = try d.int(TIFFTag.compression, "Compression") ?? 1
            guard code <= 0xFFFF, let comp = TIFFCompression(rawValue: UInt16(code)) else {
                throw RasterError.unsupported("mask with " + TIFFCompression.unsupportedName(UInt64(code)), kind: .tiffCompression)
            }
            let tiled = d.fields[TIFFTag.tileWidth] != nil
            let bw: Int, bh: Int, o: [UInt64]?, c: [UInt64]?
            if tiled {
                bw = try d.int(TIFFTag.tileWidth, "TileWidth") ?? 0; bh = try d.int(TIFFTag.tileLength, "TileLength") ?? 0
                o = try d.uints(TIFFTag.tileOffsets); c = try d.uints(TIFFTag.tileByteCounts)
            } else {
                bw = info.width; bh = min(info.height, try d.int(TIFFTag.rowsPerStrip, "RowsPerStrip") ?? info.height)
                o = try d.uints(TIFFTag.stripOffsets); c = try d.uints(TIFFTag.stripByteCounts)
            }
            guard bw > 0, bh > 0, let o, let c else { throw RasterError.malformed("internal mask without block layout") }
            let n = ((info.width + bw - 1) / bw) * ((info.height + bh - 1) / bh)
            guard o.count >= n, c.count >= n else { throw RasterError.malformed("internal mask has \(o.count) blocks, needs \(n)") }
            try limits.check("mask block bytes", try checkedMul((bw * bits + 7) / 8, bh, "mask block"), limits.maxBlockBytes)
            for k in 0..<n where c[k] != 0 {
                try f.check("mask block \(k)", o[k], c[k] > UInt64(Int.max) ? -1 : Int(c[k]))
            }
            return TIFFMaskIFD(bits: bits, compression: comp, blockWidth: bw, blockHeight: bh, tiled: tiled, width: info.width,
                               height: info.height, big: info.bigEndian, offsets: Array(o.prefix(n)), counts: Array(c.prefix(n)))
        }
        return nil
    }

    /// The blocks a window touches.
    func keys(_ w: PixelWindow) -> [Int] {
        let across = (width + blockWidth - 1) / blockWidth
        var out: [Int] = []
        for by in (w.y / blockHeight)...((w.y + w.height - 1) / blockHeight) {
            for bx in (w.x / blockWidth)...((w.x + w.width - 1) / blockWidth) { out.append(by * across + bx) }
        }
        return out
    }

    /// The stored extent of block `k` in the file.
    func extent(_ k: Int) -> Range<Int> { counts[k] == 0 ? 0..<0 : Int(offsets[k])..<(Int(offsets[k]) + Int(counts[k])) }

    /// Mask values (0 invalid, 1 valid) of a window; `stored` gives each block's stored bytes.
    func read(_ stored: (Int) -> UnsafeRawBufferPointer, window w: PixelWindow, inflater: Deflate.Inflater, release: Bool) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: w.pixels)
        let across = (width + blockWidth - 1) / blockWidth
        let rowBytes = (blockWidth * bits + 7) / 8
        var block = [UInt8](repeating: 0, count: rowBytes * blockHeight)
        for by in (w.y / blockHeight)...((w.y + w.height - 1) / blockHeight) {
            for bx in (w.x / blockWidth)...((w.x + w.width - 1) / blockWidth) {
                let k = by * across + bx
                let rows = tiled ? blockHeight : min(blockHeight, height - by * blockHeight)
                let need = rows * rowBytes
                try block.withUnsafeMutableBytes { b in
                    let dst = UnsafeMutableRawBufferPointer(rebasing: b[0..<need])
                    let count = Int(counts[k])
                    if count == 0 { dst.initializeMemory(as: UInt8.self, repeating: 0); return }
                    let src = stored(k)
                    guard src.count == count else { throw RasterError.truncated("mask block \(k): \(src.count) of \(count) stored bytes") }
                    let produced: Int
                    switch compression {
                    case .none: produced = min(count, need); dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: produced)
                    case .deflate, .adobeDeflate: produced = try inflater.inflate(src, into: dst)
                    case .lzw: produced = try LZW.decode(src, into: dst)
                    case .packBits: produced = PackBits.decode(src, into: dst)
                    }
                    guard produced == need else { throw RasterError.truncated("mask block \(k): \(produced) of \(need) bytes") }
                    if release { releaseMappedPages(src.baseAddress!, offset: 0, count: count) }
                }
                let x0 = max(w.x, bx * blockWidth), x1 = min(w.x + w.width, (bx + 1) * blockWidth)
                let y0 = max(w.y, by * blockHeight), y1 = min(w.y + w.height, (by + 1) * blockHeight)
                for y in y0..<y1 {
                    let r = (y - by * blockHeight) * rowBytes
                    for x in x0..<x1 {
                        let c = x - bx * blockWidth
                        let v = bits == 1 ? (block[r + c >> 3] >> (7 - UInt8(c & 7))) & 1 : block[r + c]
                        out[(y - w.y) * w.width + x - w.x] = v
                    }
                }
            }
        }
        return out
    }
}
