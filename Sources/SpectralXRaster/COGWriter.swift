import Foundation
import SpectralXSupport

/// How `COGWriter` reduces a level to the next overview (a factor of 2 per level).
public enum OverviewResampling: String, Sendable, Codable {
    /// The most frequent valid value of each 2×2 block (labels); nodata only when all four are.
    case mode
    /// The top-left sample of each 2×2 block.
    case nearest
}

/// Layout and content options of a Cloud-Optimized GeoTIFF.
public struct COGOptions: Sendable, Equatable {
    /// Tile width and height (a multiple of 16).
    public var tileSize: Int = 512
    public var deflateLevel: Int32 = 6
    /// 2 (horizontal differencing) for integers, 3 (floating point) for floats; 1 for none.
    public var predictor: Int? = nil
    /// nil chooses BigTIFF when the file would pass 4 GiB.
    public var bigTIFF: Bool? = nil
    public var resampling: OverviewResampling = .mode
    /// Overviews are made until both sides are below this (0 disables overviews).
    public var overviewsBelow: Int = 512
    /// Palette (one RGB triple per index, at most 256) for single-band uint8 rasters → PhotometricInterpretation 3.
    public var colorMap: [(UInt8, UInt8, UInt8)]? = nil
    /// GDAL_NODATA of the main image (and the value `mode` resampling ignores).
    public var nodata: Double? = nil
    /// GDAL_METADATA XML of the main image (band descriptions, class names).
    public var gdalMetadata: String? = nil

    public init() {}

    /// The tile size of a label or score COG: 512, unless a level rio-cogeo checks (full resolution
    /// or overview with a side over 512) is exactly that wide — its validator (7.x) reads a block as
    /// wide as the image as a strip layout ("… but is not tiled") — then the first of 256, 1024, 128,
    /// 2048, … that no such level's width equals (a 512×4096 scene: levels 512, 256 and 128 wide → 1024).
    /// The levels are the ones `finish()` makes with `overviewsBelow`.
    public static func tileSize(width: Int, height: Int, overviewsBelow: Int = 512) -> Int {
        var checked = Set<Int>()
        var (w, h) = (width, height)
        while true {
            if w > 512 || h > 512 { checked.insert(w) }
            guard overviewsBelow > 0, w >= overviewsBelow || h >= overviewsBelow, !(w == 1 && h == 1) else { break }
            (w, h) = ((w + 1) / 2, (h + 1) / 2)
        }
        return [512, 256, 1024, 128, 2048, 64, 4096, 32, 16].first { !checked.contains($0) } ?? 512
    }

    public static func == (a: COGOptions, b: COGOptions) -> Bool {
        a.tileSize == b.tileSize && a.deflateLevel == b.deflateLevel && a.predictor == b.predictor && a.bigTIFF == b.bigTIFF
            && a.resampling == b.resampling && a.overviewsBelow == b.overviewsBelow && a.nodata == b.nodata
            && a.gdalMetadata == b.gdalMetadata
            && a.colorMap?.map { [$0.0, $0.1, $0.2] } == b.colorMap?.map { [$0.0, $0.1, $0.2] }
    }
}

/// Streams a raster into a Cloud-Optimized GeoTIFF (the layout of GDAL's COG driver, checked by
/// `rio cogeo validate`): rows are appended top to bottom in any chunks; every complete row of
/// tiles is compressed (Deflate + predictor) and spooled to `<path>.cog-spool/`; `finish()` makes
/// the overviews (factor 2 per level, `mode` or `nearest`, until both sides are below
/// `overviewsBelow`) by reading the spooled tiles back one tile row at a time, then writes the file:
/// header, GDAL's structural-metadata ghost area, every IFD (full resolution first, then the
/// overviews, largest first), then the tile data (smallest overview first, full resolution last),
/// BigTIFF when needed. The file appears at `path` atomically (written beside it, then renamed).
///
/// Memory: one tile row of the full-resolution image (tileSize × width × bands samples) plus one
/// tile row per overview level; never the whole image.
///
/// Resuming (`Spool.resumable`, the default): after each tile row the spool is synced and its state
/// (rows done, tile byte counts) saved; `COGWriter(resuming:…)` reopens it after a crash and
/// `rowsWritten` says where to continue (a multiple of the tile size). `abort()` removes the spool.
/// `Spool.temporary` skips that per-row durability; `Spool.memory` keeps the tiles in memory and
/// `finishData()` returns the file: no file is touched at all.
public final class COGWriter {
    /// Where the compressed tiles wait for `finish`, and how durably.
    public enum Spool: Sendable {
        /// Files in the spool directory, synced with their state after every tile row.
        case resumable
        /// Files in the spool directory, nothing synced or recorded per row (redone if interrupted).
        case temporary
        /// In memory; the writer never touches a file (`finishData()`).
        case memory
    }

    public let path: String
    public let width: Int, height: Int, bands: Int
    public let sampleType: SampleType
    public let geo: GeoReference
    public let options: COGOptions
    /// Rows durably spooled (complete tile rows); a resumed writer continues here.
    public private(set) var rowsWritten: Int
    /// Rows appended, including those buffered in the current tile row.
    public private(set) var rowsAppended: Int

    private let spoolDir: String
    /// The spool directory beside the output (`<path>.cog-spool`): tile rows durable so far and their
    /// state; removed by `finish()` and `abort()`. Callers may keep their own resume state in it.
    public var spoolDirectory: String { spoolDir }
    public static func spoolDirectory(for path: String) -> String { path + ".cog-spool" }
    public let spoolKind: Spool
    private var spool: TileSpool
    private var byteCounts: [UInt64]
    private var buffer: [UInt8]
    private var bufferedRows = 0
    private var finished = false

    var tile: Int { options.tileSize }
    var bps: Int { sampleType.bytes }
    var predictor: Int { options.predictor ?? (sampleType.format == .float ? 3 : 2) }

    /// Starts a new file (an old spool for the same path is discarded). With `.memory` the path only
    /// names the output in messages.
    public init(path: String, width: Int, height: Int, bands: Int, sampleType: SampleType, geo: GeoReference,
                options: COGOptions = COGOptions(), spool kind: Spool = .resumable) throws {
        try Self.check(width: width, height: height, bands: bands, sampleType: sampleType, options: options)
        self.path = path; self.width = width; self.height = height; self.bands = bands
        self.sampleType = sampleType; self.geo = geo; self.options = options
        spoolDir = Self.spoolDirectory(for: path)
        spoolKind = kind
        if kind == .memory {
            spool = TileSpool()
        } else {
            let fm = FileManager.default
            try? fm.removeItem(atPath: spoolDir)
            do {
                try fm.createDirectory(atPath: spoolDir, withIntermediateDirectories: true)
                spool = try TileSpool(path: spoolDir + "/" + Self.tileFileName)
            } catch { throw RasterError.io("cannot create the output spool \(spoolDir): \(error.localizedDescription)") }
        }
        rowsWritten = 0; rowsAppended = 0; byteCounts = []
        buffer = []
        try saveState()
    }

    /// Reopens the spool of an interrupted writer with the same geometry; continue at `rowsWritten`.
    /// Throws when there is no usable spool (then start a new writer).
    public init(resuming path: String, width: Int, height: Int, bands: Int, sampleType: SampleType, geo: GeoReference,
                options: COGOptions = COGOptions()) throws {
        try Self.check(width: width, height: height, bands: bands, sampleType: sampleType, options: options)
        self.path = path; self.width = width; self.height = height; self.bands = bands
        self.sampleType = sampleType; self.geo = geo; self.options = options
        spoolDir = Self.spoolDirectory(for: path)
        spoolKind = .resumable
        let stateURL = URL(fileURLWithPath: spoolDir + "/state.json")
        guard let data = try? Data(contentsOf: stateURL), let st = try? JSONDecoder().decode(SpoolState.self, from: data),
              st.width == width, st.height == height, st.bands == bands, st.sampleType == sampleType.description, st.tile == options.tileSize
        else { throw RasterError.io("no resumable output spool at \(spoolDir)") }
        let total = st.byteCounts.reduce(0, +)
        do {
            spool = try TileSpool(resuming: spoolDir + "/" + Self.tileFileName, length: total)
        } catch { throw RasterError.io("cannot reopen the output spool \(spoolDir): \(error.localizedDescription)") }
        rowsWritten = st.rowsWritten; rowsAppended = st.rowsWritten; byteCounts = st.byteCounts
        buffer = []
    }

    private static func check(width: Int, height: Int, bands: Int, sampleType: SampleType, options: COGOptions) throws {
        guard width > 0, height > 0, bands > 0, bands <= 65535 else { throw RasterError.invalidArgument("COG of \(width)×\(height)×\(bands)") }
        guard options.tileSize > 0, options.tileSize % 16 == 0 else { throw RasterError.invalidArgument("tile size \(options.tileSize)") }
        if let c = options.colorMap {
            guard bands == 1, sampleType == .uint8, c.count <= 256 else {
                throw RasterError.invalidArgument("a colour map needs a single-band uint8 raster with at most 256 colours")
            }
        }
    }

    private struct SpoolState: Codable {
        var width: Int, height: Int, bands: Int, sampleType: String, tile: Int
        var rowsWritten: Int
        var byteCounts: [UInt64]
    }

    /// What the spool at `spoolDirectory` vouches for: durable rows and the tile file's byte counts
    /// (their sum is the tile file's durable length); nil without a readable state. Lets a caller ship
    /// the durable part of a spool elsewhere (a fleet job's row bands).
    public static func durableState(spoolDirectory dir: String) -> (rows: Int, byteCounts: [UInt64])? {
        guard let data = FileManager.default.contents(atPath: dir + "/state.json"),
              let st = try? JSONDecoder().decode(SpoolState.self, from: data) else { return nil }
        return (st.rowsWritten, st.byteCounts)
    }

    /// The spool's tile file (level 0), whose first bytes `durableState` vouches for.
    public static let tileFileName = "level0.tiles"

    private func saveState() throws {
        guard spoolKind == .resumable else { return }
        let st = SpoolState(width: width, height: height, bands: bands, sampleType: sampleType.description, tile: tile,
                            rowsWritten: rowsWritten, byteCounts: byteCounts)
        do {
            try spool.synchronize()
            try AtomicFile.write(try JSONEncoder().encode(st), to: spoolDir + "/state.json", durable: false)
        } catch let e as FileSystemError {
            throw RasterError.io("cannot save the output spool state: \(e)")
        } catch { throw RasterError.io("cannot save the output spool state: \(error.localizedDescription)") }
    }

    /// Appends `rows` rows, band-sequential host-order samples (bands × rows × width).
    public func append(_ data: UnsafeRawBufferPointer, rows: Int) throws {
        guard !finished else { throw RasterError.invalidArgument("append after finish") }
        guard rows >= 0, rowsAppended + rows <= height, data.count == rows * width * bands * bps else {
            throw RasterError.invalidArgument("append of \(data.count) bytes as \(rows) rows at row \(rowsAppended) of \(height)")
        }
        let rowBytes = width * bps
        if buffer.isEmpty { buffer = [UInt8](repeating: 0, count: bands * tile * rowBytes) }
        var done = 0
        while done < rows {
            let n = min(rows - done, tile - bufferedRows)
            buffer.withUnsafeMutableBytes { dst in
                for b in 0..<bands {
                    let s = data.baseAddress! + (b * rows + done) * rowBytes
                    (dst.baseAddress! + (b * tile + bufferedRows) * rowBytes).copyMemory(from: s, byteCount: n * rowBytes)
                }
            }
            bufferedRows += n; done += n; rowsAppended += n
            if bufferedRows == tile || rowsAppended == height { try flushTileRow() }
        }
    }

    /// Convenience for typed samples.
    public func append<T: RasterScalar>(_ values: [T], rows: Int) throws {
        try values.withUnsafeBytes { try append($0, rows: rows) }
    }

    private func flushTileRow() throws {
        let tiles = try TileCoder.encodeRow(buffer, rows: bufferedRows, width: width, bands: bands, bps: bps, tile: tile,
                                            predictor: predictor, level: options.deflateLevel)
        do {
            for t in tiles { try spool.write(t); byteCounts.append(UInt64(t.count)) }
        } catch { throw RasterError.io("cannot write the output spool: \(error.localizedDescription)") }
        rowsWritten += bufferedRows
        bufferedRows = 0
        buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
        try saveState()
    }

    /// Removes the spool (and any partial output).
    public func abort() {
        try? spool.close()
        if spoolKind != .memory { try? FileManager.default.removeItem(atPath: spoolDir) }
    }

    /// Builds the overviews and writes the COG to `path` durably and atomically (`AtomicFile`: a
    /// reader sees the old file or the new one); removes the spool.
    public func finish() throws {
        guard spoolKind != .memory else { throw RasterError.invalidArgument("an in-memory COG is finished with finishData()") }
        try checkComplete()
        defer { try? FileManager.default.removeItem(atPath: spoolDir) }
        do {
            try AtomicFile.write(to: path, durable: true) { out in try assemble { try out.write($0) } }
        } catch let e as RasterError { throw e } catch let e as FileSystemError {
            throw RasterError.io("cannot write \(path): \(e)")
        } catch {
            throw RasterError.io("cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// Builds the overviews and returns the COG's bytes (any spool kind; for `.memory`, no file is touched).
    public func finishData() throws -> Data {
        try checkComplete()
        defer { if spoolKind != .memory { try? FileManager.default.removeItem(atPath: spoolDir) } }
        var out = Data()
        try assemble { out.append($0) }
        return out
    }

    /// Closes the spool, builds the overviews and hands the file's bytes to `emit` in order.
    private func checkComplete() throws {
        guard rowsAppended == height, !finished else {
            throw RasterError.invalidArgument("finish after \(rowsAppended) of \(height) rows")
        }
    }

    private func assemble(_ emit: (Data) throws -> Void) throws {
        finished = true
        do { try spool.close() } catch { throw RasterError.io("cannot close the output spool: \(error.localizedDescription)") }
        buffer = []

        // Overview levels, built by reading the full-resolution tiles back one tile row at a time.
        var levels: [OverviewLevel] = []
        var (w, h) = (width, height)
        if options.overviewsBelow > 0 {
            while w >= options.overviewsBelow || h >= options.overviewsBelow {
                (w, h) = ((w + 1) / 2, (h + 1) / 2)
                levels.append(try OverviewLevel(width: w, height: h, writer: self, index: levels.count + 1))
                if w == 1 && h == 1 { break }
            }
        }
        if let first = levels.first {
            let reader = try spool.reader()
            let across = (width + tile - 1) / tile
            var k = 0
            var y = 0
            while y < height {
                let rows = min(tile, height - y)
                var counts: [Int] = []
                for _ in 0..<across { counts.append(Int(byteCounts[k])); k += 1 }
                let row = try TileCoder.decodeRow(reader, counts: counts, rows: rows, width: width, bands: bands, bps: bps, tile: tile,
                                                  predictor: predictor)
                try first.feed(row, rows: rows, levels: levels, depth: 0)
                y += rows
            }
            for (i, l) in levels.enumerated() { try l.close(levels: levels, depth: i) }
        }

        // Layout: header, ghost area, IFDs (main, then overviews), data (smallest overview first).
        let dataBytes = byteCounts.reduce(0, +) + levels.reduce(0) { $0 + $1.byteCounts.reduce(0, +) }
        let big = options.bigTIFF ?? (dataBytes + UInt64(64 << 20) > UInt64(UInt32.max))
        let ghost = Self.ghostArea()
        let headerSize = big ? 16 : 8
        func buildIFDs(dataStart: UInt64) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: headerSize)
            out += ghost
            // Data positions: overviews from the smallest, then full resolution.
            var pos = dataStart
            var starts = [UInt64](repeating: 0, count: levels.count + 1)
            for li in stride(from: levels.count - 1, through: 0, by: -1) {
                starts[li + 1] = pos; pos += levels[li].byteCounts.reduce(0, +)
            }
            starts[0] = pos
            var ats: [Int] = [], nextFields: [Int] = []
            for li in 0...levels.count {
                let counts = li == 0 ? byteCounts : levels[li - 1].byteCounts
                var offs: [UInt64] = []
                var p = starts[li]
                for c in counts { offs.append(p); p += c }
                let (lw, lh) = li == 0 ? (width, height) : (levels[li - 1].width, levels[li - 1].height)
                var ifd = IFDBuilder(bigEndian: false, bigTIFF: big)
                if li > 0 { ifd.shorts(TIFFTag.newSubfileType, [1]) }
                ifd.shorts(TIFFTag.imageWidth, [lw])
                ifd.shorts(TIFFTag.imageLength, [lh])
                ifd.shorts(TIFFTag.bitsPerSample, [Int](repeating: sampleType.bits, count: bands), forceShort: true)
                ifd.shorts(TIFFTag.compression, [Int(TIFFCompression.deflate.rawValue)], forceShort: true)
                ifd.shorts(TIFFTag.photometric, [options.colorMap != nil ? 3 : 1], forceShort: true)
                ifd.shorts(TIFFTag.samplesPerPixel, [bands], forceShort: true)
                ifd.shorts(TIFFTag.planarConfiguration, [1], forceShort: true)
                if predictor != 1 { ifd.shorts(TIFFTag.predictor, [predictor], forceShort: true) }
                if let cm = options.colorMap {
                    var v = [Int](repeating: 0, count: 768)
                    for (i, c) in cm.enumerated() { v[i] = Int(c.0) * 257; v[256 + i] = Int(c.1) * 257; v[512 + i] = Int(c.2) * 257 }
                    ifd.shorts(TIFFTag.colorMap, v, forceShort: true)
                }
                ifd.shorts(TIFFTag.tileWidth, [tile])
                ifd.shorts(TIFFTag.tileLength, [tile])
                ifd.offsets(TIFFTag.tileOffsets, offs)
                ifd.offsets(TIFFTag.tileByteCounts, counts)
                if bands > 1 { ifd.shorts(TIFFTag.extraSamples, [Int](repeating: 0, count: bands - 1), forceShort: true) }
                ifd.shorts(TIFFTag.sampleFormat, [Int](repeating: Int(sampleType.format.rawValue), count: bands), forceShort: true)
                if li == 0 {
                    ifd.georeference(geo)
                    if let v = options.gdalMetadata { ifd.ascii(TIFFTag.gdalMetadata, v) }
                }
                if let nd = options.nodata { ifd.ascii(TIFFTag.gdalNodata, Self.nodataText(nd)) }
                let at = Int(try ifd.append(to: &out))
                ats.append(at)
                nextFields.append(at + (big ? 8 : 2) + ifd.entries.count * (big ? 20 : 12))
            }
            // Chain the IFDs (each next-IFD field → the following IFD) and point the header at the first.
            for i in 0..<(ats.count - 1) {
                var w = ByteWriter(bigEndian: false)
                if big { w.u64(UInt64(ats[i + 1])) } else { w.u32(UInt32(ats[i + 1])) }
                out.replaceSubrange(nextFields[i]..<(nextFields[i] + w.bytes.count), with: w.bytes)
            }
            var hw = ByteWriter(bigEndian: false)
            hw.bytes += [0x49, 0x49]
            if big { hw.u16(43); hw.u16(8); hw.u16(0); hw.u64(UInt64(ats[0])) } else { hw.u16(42); hw.u32(UInt32(ats[0])) }
            out.replaceSubrange(0..<hw.bytes.count, with: hw.bytes)
            return out
        }
        // First pass measures the IFD region (its size does not depend on the offsets); the second
        // writes the real offsets, the data following right after the region.
        let probe = try buildIFDs(dataStart: 0)
        let region = try buildIFDs(dataStart: UInt64(probe.count))
        guard big || UInt64(region.count) + dataBytes <= UInt64(UInt32.max) else {
            throw RasterError.invalidArgument("COG exceeds 4 GiB: use BigTIFF")
        }

        try emit(Data(region))
        for l in levels.reversed() { try l.spool.copy(to: emit) }
        try spool.copy(to: emit)
    }

    static func nodataText(_ v: Double) -> String {
        v.isNaN ? "nan" : (v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v))
    }

    /// GDAL's structural metadata ("ghost area") right after the header: tells GDAL the IFDs come
    /// before the data and the tiles are in row-major order.
    static func ghostArea() -> [UInt8] {
        let body = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nKNOWN_INCOMPATIBLE_EDITION=NO\n "
        let head = String(format: "GDAL_STRUCTURAL_METADATA_SIZE=%06d bytes\n", body.utf8.count)
        return Array((head + body).utf8)
    }


    /// One overview level being built: a tile-row buffer, its spool file, and a pending odd row
    /// for the reduction into the next level.
    final class OverviewLevel {
        let width: Int, height: Int
        let spool: TileSpool
        unowned let writer: COGWriter
        var byteCounts: [UInt64] = []
        private var buffer: [UInt8]
        private var bufferedRows = 0
        private var rowsDone = 0
        private var pending: [UInt8]?

        init(width: Int, height: Int, writer: COGWriter, index: Int) throws {
            self.width = width; self.height = height; self.writer = writer
            spool = writer.spoolKind == .memory ? TileSpool() : try TileSpool(path: writer.spoolDir + "/level\(index).tiles")
            buffer = [UInt8](repeating: 0, count: writer.bands * writer.tile * width * writer.bps)
        }

        /// Reduces `rows` rows of the finer level (band-sequential, fine width) into this level.
        func feed(_ fine: [UInt8], rows: Int, levels: [OverviewLevel], depth: Int) throws {
            let fineWidth = depth == 0 ? writer.width : levels[depth - 1].width
            let rowBytes = fineWidth * writer.bps
            var r = 0
            // Row pairs; a pending row from the previous call pairs with the first row.
            var produced: [[UInt8]] = []
            func rowBands(_ data: [UInt8], _ rowsIn: Int, _ i: Int) -> [UInt8] {
                var o: [UInt8] = []
                o.reserveCapacity(writer.bands * rowBytes)
                for b in 0..<writer.bands { o += data[((b * rowsIn + i) * rowBytes)..<((b * rowsIn + i + 1) * rowBytes)] }
                return o
            }
            while r < rows {
                let row = rowBands(fine, rows, r)
                if let p = pending { produced.append(reduce(p, row, fineWidth: fineWidth)); pending = nil } else { pending = row }
                r += 1
            }
            for p in produced { try take(p, levels: levels, depth: depth) }
        }

        /// Flushes the last (odd) row and the last partial tile row.
        func close(levels: [OverviewLevel], depth: Int) throws {
            if let p = pending {
                let fineWidth = depth == 0 ? writer.width : levels[depth - 1].width
                try take(reduce(p, nil, fineWidth: fineWidth), levels: levels, depth: depth)
                pending = nil
            }
            if bufferedRows > 0 { try flush(levels: levels, depth: depth) }
            try spool.close()
        }

        /// One reduced row (all bands) into the tile-row buffer.
        private func take(_ row: [UInt8], levels: [OverviewLevel], depth: Int) throws {
            let rb = width * writer.bps
            buffer.withUnsafeMutableBytes { dst in
                row.withUnsafeBytes { src in
                    for b in 0..<writer.bands {
                        (dst.baseAddress! + (b * writer.tile + bufferedRows) * rb).copyMemory(from: src.baseAddress! + b * rb, byteCount: rb)
                    }
                }
            }
            bufferedRows += 1
            rowsDone += 1
            if bufferedRows == writer.tile || rowsDone == height { try flush(levels: levels, depth: depth) }
        }

        private func flush(levels: [OverviewLevel], depth: Int) throws {
            let tiles = try TileCoder.encodeRow(buffer, rows: bufferedRows, width: width, bands: writer.bands, bps: writer.bps,
                                                tile: writer.tile, predictor: writer.predictor, level: writer.options.deflateLevel)
            for t in tiles { try spool.write(t); byteCounts.append(UInt64(t.count)) }
            // The tile row (compacted to bufferedRows rows) feeds the next level.
            if depth + 1 < levels.count {
                let rb = width * writer.bps
                var compact: [UInt8] = []
                compact.reserveCapacity(writer.bands * bufferedRows * rb)
                for b in 0..<writer.bands { compact += buffer[(b * writer.tile * rb)..<((b * writer.tile + bufferedRows) * rb)] }
                try levels[depth + 1].feed(compact, rows: bufferedRows, levels: levels, depth: depth + 1)
            }
            bufferedRows = 0
            buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
        }

        /// 2×2 reduction of two fine rows (all bands each; `b` nil at an odd bottom edge).
        private func reduce(_ a: [UInt8], _ b: [UInt8]?, fineWidth: Int) -> [UInt8] {
            let bps = writer.bps, bands = writer.bands
            var out = [UInt8](repeating: 0, count: bands * width * bps)
            let modeLabels = writer.options.resampling == .mode && bps == 1
            let nd: Int? = writer.options.nodata.flatMap { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() ? Int($0) : nil }
            for band in 0..<bands {
                let ra = band * fineWidth * bps
                for x in 0..<width {
                    let x0 = 2 * x, x1 = min(2 * x + 1, fineWidth - 1)
                    if modeLabels {
                        var cand: [UInt8] = [a[ra + x0]]
                        if x1 != x0 { cand.append(a[ra + x1]) }
                        if let b { cand.append(b[ra + x0]); if x1 != x0 { cand.append(b[ra + x1]) } }
                        let valid = cand.filter { nd == nil || Int($0) != nd! }
                        var best = cand[0], bestCount = 0
                        for v in valid {
                            let c = valid.reduce(0) { $0 + ($1 == v ? 1 : 0) }
                            if c > bestCount { best = v; bestCount = c }
                        }
                        out[band * width + x] = best
                    } else {
                        let s = ra + x0 * bps
                        for i in 0..<bps { out[(band * width + x) * bps + i] = a[s + i] }
                    }
                }
            }
            return out
        }
    }
}

/// Tile (de)compression for the COG writer: a row of tiles from band-sequential rows, pixel-interleaved
/// inside each tile, predictor then Deflate.
enum TileCoder {
    static func encodeRow(_ buffer: [UInt8], rows: Int, width: Int, bands: Int, bps: Int, tile: Int, predictor: Int,
                          level: Int32) throws -> [[UInt8]] {
        let across = (width + tile - 1) / tile
        let bufRows = buffer.count / max(1, bands * width * bps)
        var out: [[UInt8]] = []
        var blk = [UInt8](repeating: 0, count: tile * tile * bands * bps)
        try buffer.withUnsafeBytes { src in
            for tx in 0..<across {
                let x0 = tx * tile, cols = min(tile, width - x0)
                try blk.withUnsafeMutableBytes { b in
                    b.initializeMemory(as: UInt8.self, repeating: 0)
                    for r in 0..<rows {
                        for band in 0..<bands {
                            let s = src.baseAddress! + ((band * bufRows + r) * width + x0) * bps
                            let d = b.baseAddress! + (r * tile * bands + band) * bps
                            if bands == 1 {
                                d.copyMemory(from: s, byteCount: cols * bps)
                            } else {
                                for c in 0..<cols { (d + c * bands * bps).copyMemory(from: s + c * bps, byteCount: bps) }
                            }
                        }
                    }
                    switch predictor {
                    case 2: Predictor.applyHorizontal(b, rows: tile, rowSamples: tile * bands, stride: bands, bytesPerSample: bps)
                    case 3: Predictor.applyFloatingPoint(b, rows: tile, rowSamples: tile * bands, stride: bands, bytesPerSample: bps)
                    default: break
                    }
                    out.append(try Deflate.deflate(UnsafeRawBufferPointer(b), level: level))
                }
            }
        }
        return out
    }

    /// Reads and decodes one row of tiles back into band-sequential rows (bands × rows × width).
    static func decodeRow(_ h: TileSpool.Reader, counts: [Int], rows: Int, width: Int, bands: Int, bps: Int, tile: Int,
                          predictor: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bands * rows * width * bps)
        var blk = [UInt8](repeating: 0, count: tile * tile * bands * bps)
        let inflater = Deflate.Inflater()
        for (tx, n) in counts.enumerated() {
            guard let data = try h.read(upToCount: n), data.count == n else { throw RasterError.truncated("output spool tile") }
            try blk.withUnsafeMutableBytes { b in
                let got = try data.withUnsafeBytes { try inflater.inflate($0, into: b) }
                guard got == b.count else { throw RasterError.truncated("output spool tile: \(got) of \(b.count) bytes") }
                switch predictor {
                case 2: Predictor.undoHorizontal(b, rows: tile, rowSamples: tile * bands, stride: bands, bytesPerSample: bps)
                case 3: Predictor.undoFloatingPoint(b, rows: tile, rowSamples: tile * bands, stride: bands, bytesPerSample: bps)
                default: break
                }
                let x0 = tx * tile, cols = min(tile, width - x0)
                out.withUnsafeMutableBytes { o in
                    for r in 0..<rows {
                        for band in 0..<bands {
                            let d = o.baseAddress! + ((band * rows + r) * width + x0) * bps
                            let s = b.baseAddress! + (r * tile * bands + band) * bps
                            if bands == 1 { d.copyMemory(from: s, byteCount: cols * bps) }
                            else { for c in 0..<cols { (d + c * bps).copyMemory(from: s + c * bands * bps, byteCount: bps) } }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Compressed tiles waiting for `COGWriter`'s `finish`: appended in order, read back once in order,
/// then copied into the output. A file of the spool directory, or memory.
final class TileSpool {
    private let handle: FileHandle?
    private let path: String?
    private var data = Data()

    /// In memory.
    init() { handle = nil; path = nil }

    /// A new (empty) file.
    init(path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        self.path = path
    }

    /// An existing file cut to the `length` bytes its saved state vouches for.
    init(resuming path: String, length: UInt64) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: length)
        try h.seekToEnd()
        handle = h
        self.path = path
    }

    func write<D: DataProtocol>(_ bytes: D) throws {
        if let handle { try handle.write(contentsOf: bytes) } else { data.append(contentsOf: bytes) }
    }

    func synchronize() throws { try handle?.synchronize() }

    func close() throws { try handle?.close() }

    /// Sequential reads from the start.
    final class Reader {
        private let handle: FileHandle?
        private let data: Data
        private var offset = 0
        init(handle: FileHandle?, data: Data) { self.handle = handle; self.data = data }
        deinit { try? handle?.close() }

        func read(upToCount n: Int) throws -> Data? {
            if let handle { return try handle.read(upToCount: n) }
            let end = min(data.count, offset + n)
            defer { offset = end }
            return offset < end ? data.subdata(in: (data.startIndex + offset)..<(data.startIndex + end)) : nil
        }
    }

    func reader() throws -> Reader {
        if let path { return Reader(handle: try FileHandle(forReadingFrom: URL(fileURLWithPath: path)), data: Data()) }
        return Reader(handle: nil, data: data)
    }

    /// Hands the whole spool to `emit` in 4 MiB chunks (memory: at once).
    func copy(to emit: (Data) throws -> Void) throws {
        guard path != nil else { if !data.isEmpty { try emit(data) }; return }
        let r = try reader()
        while let chunk = try r.read(upToCount: 4 << 20), !chunk.isEmpty { try emit(chunk) }
    }
}
