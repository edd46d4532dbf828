import CSpectralXKernels
import Foundation
import Synchronization

/// What the reader found in the chosen (full-resolution) IFD, before decoding any pixel.
public struct TIFFImageInfo: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// SamplesPerPixel.
    public var bands: Int
    public var sampleType: SampleType
    /// TIFF compression code (1, 5, 8, 32773, 32946).
    public var compression: UInt16
    /// 1 none, 2 horizontal differencing, 3 floating point.
    public var predictor: Int
    /// 1 chunky (pixel-interleaved), 2 planar (band-sequential).
    public var planarConfiguration: Int
    public var photometric: Int
    public var isTiled: Bool
    /// Tile width, or the image width for strips.
    public var blockWidth: Int
    /// Tile length, or RowsPerStrip (clamped to the height) for strips.
    public var blockHeight: Int
    public var bigEndian: Bool
    public var isBigTIFF: Bool
    /// Position of the chosen IFD in the chain (overviews and masks are skipped).
    public var ifdIndex: Int
    public var geo: GeoReference
    /// Decoded size in bytes (width·height·bands·bytesPerSample).
    public var decodedBytes: Int { width * height * bands * sampleType.bytes }
}

/// GeoTIFF reader written over TIFF 6.0 + BigTIFF + GeoTIFF 1.1 (no libtiff/GDAL). Parsing the
/// header validates every structure and checks `RasterLimits` before anything is allocated;
/// decoding fails with a `RasterError`, never a trap.
///
/// Memory: a file is memory-mapped, not read (its pages come from the page cache on demand);
/// decoding allocates exactly the output raster (width·height·bands·bytesPerSample, e.g. 3.13 GB
/// for a 13-band 10980² uint16 scene) plus one scratch block per worker. To bound memory on big
/// scenes, decode band ranges with `read(bands:)`: for band-sequential files (PlanarConfiguration 2)
/// only that band's blocks are touched; pixel-interleaved files decode every block per call.
public struct TIFFReader: Sendable {
    public let info: TIFFImageInfo
    public let limits: RasterLimits
    /// The file's bytes, or for a file read by range (`pieces` set) the header pieces fetched to parse it.
    let data: Data
    let pieces: [TIFFPiece]?
    let offsets: [UInt64]
    let byteCounts: [UInt64]

    /// Opens (memory-maps) a file and parses its header.
    public init(path: String, limits: RasterLimits = .default) throws {
        try self.init(data: try readFileData(path), limits: limits)
    }

    /// Parses the header of an in-memory TIFF.
    public init(data: Data, limits: RasterLimits = .default) throws {
        self.data = data
        self.limits = limits
        pieces = nil
        (info, offsets, byteCounts) = try data.withUnsafeBytes { try TIFFReader.parseHeader(TIFFBytes(b: $0, bigEndian: false), limits: limits) }
    }

    /// Parses the header of a file read by range from the pieces fetched so far (packed in `data`);
    /// throws `TIFFMissingBytes` when it needs bytes not among them.
    init(pieces: [TIFFPiece], packed data: Data, fileSize: Int, limits: RasterLimits) throws {
        self.data = data
        self.limits = limits
        self.pieces = pieces
        (info, offsets, byteCounts) = try data.withUnsafeBytes {
            try TIFFReader.parseHeader(TIFFBytes(b: $0, bigEndian: false, fileSize: fileSize, pieces: pieces), limits: limits)
        }
    }

    /// The stored (compressed) extent of block `k` in the file; empty for a sparse block.
    /// (Offsets of non-empty blocks were checked against the file size in `parseHeader`.)
    public func blockExtent(_ k: Int) -> Range<Int> {
        byteCounts[k] == 0 ? 0..<0 : Int(offsets[k])..<(Int(offsets[k]) + Int(byteCounts[k]))
    }

    /// Convenience: reads the full-resolution image of a GeoTIFF file.
    public static func read(path: String, limits: RasterLimits = .default) throws -> Raster {
        try TIFFReader(path: path, limits: limits).read()
    }

    /// Decodes all bands.
    public func read(threads: Int = 1) throws -> Raster { try read(bands: 0..<info.bands, threads: threads) }

    /// Decodes a contiguous range of bands (for planar files only their blocks are read), e.g. to
    /// process a large scene band by band with memory bounded by one band. `threads` > 1 decodes
    /// blocks concurrently (each worker holds one scratch block).
    public func read(bands: Range<Int>, threads: Int = 1) throws -> Raster {
        guard bands.lowerBound >= 0, bands.upperBound <= info.bands else {
            throw RasterError.invalidArgument("band range \(bands) outside 0..<\(info.bands)")
        }
        guard pieces == nil else { throw RasterError.invalidArgument("a TIFF read by range is read in windows (TIFFScene)") }
        let out = try data.withUnsafeBytes { try decode($0, bands: bands, threads: threads) }
        return try Raster(width: info.width, height: info.height, bands: bands.count, sampleType: info.sampleType, data: out, geo: info.geo)
    }

    // MARK: header

    static func parseHeader(_ whole: TIFFBytes, limits: RasterLimits) throws -> (TIFFImageInfo, [UInt64], [UInt64]) {
        let raw = whole.b
        guard raw.count >= 8 else { throw RasterError.truncated("TIFF header needs 8 bytes, file has \(raw.count)") }
        let big: Bool
        switch (raw[0], raw[1]) {
        case (0x49, 0x49): big = false
        case (0x4D, 0x4D): big = true
        default: throw RasterError.notRecognized("not a TIFF file (byte order mark missing)")
        }
        let f = TIFFBytes(b: raw, bigEndian: big, fileSize: whole.fileSize, pieces: whole.pieces)
        let version = f.u16(2)
        let bigTIFF: Bool
        var ifdOffset: UInt64
        switch version {
        case 42: bigTIFF = false; ifdOffset = UInt64(f.u32(4))
        case 43:
            guard raw.count >= 16 else { throw RasterError.truncated("BigTIFF header needs 16 bytes") }
            guard f.u16(4) == 8, f.u16(6) == 0 else { throw RasterError.malformed("BigTIFF offset size \(f.u16(4)) is not 8") }
            bigTIFF = true; ifdOffset = f.u64(8)
        default: throw RasterError.notRecognized("TIFF version \(version) (expected 42 or 43)")
        }
        guard ifdOffset != 0 else { throw RasterError.malformed("TIFF has no image file directory") }
        var seen = Set<UInt64>()
        var index = 0
        while ifdOffset != 0 {
            if seen.contains(ifdOffset) { throw RasterError.ifdLoop(offset: ifdOffset) }
            seen.insert(ifdOffset)
            if index >= limits.maxIFDCount {
                throw RasterError.limitExceeded(what: "IFD count", value: UInt64(index + 1), limit: UInt64(limits.maxIFDCount))
            }
            let dir = try TIFFDirectory.parse(f, at: ifdOffset, bigTIFF: bigTIFF, limits: limits)
            let newSubfile = try dir.int(TIFFTag.newSubfileType, "NewSubfileType") ?? 0
            let oldSubfile = try dir.int(TIFFTag.subfileType, "SubfileType") ?? 1
            if newSubfile & 0b101 == 0 && oldSubfile != 2 && oldSubfile != 3 {
                return try imageInfo(dir, f: f, big: big, bigTIFF: bigTIFF, index: index, limits: limits)
            }
            ifdOffset = dir.next
            index += 1
        }
        throw RasterError.malformed("no full-resolution image (every IFD is an overview or a mask)")
    }

    static func imageInfo(_ d: TIFFDirectory, f: TIFFBytes, big: Bool, bigTIFF: Bool, index: Int, limits: RasterLimits) throws -> (TIFFImageInfo, [UInt64], [UInt64]) {
        guard let width = try d.int(TIFFTag.imageWidth, "ImageWidth") else { throw RasterError.missingTag("ImageWidth (256)") }
        guard let height = try d.int(TIFFTag.imageLength, "ImageLength") else { throw RasterError.missingTag("ImageLength (257)") }
        guard width > 0, height > 0 else { throw RasterError.malformed("image size \(width)×\(height)") }
        try limits.check("image width", width, limits.maxDimension)
        try limits.check("image height", height, limits.maxDimension)
        try limits.check("pixel count", try checkedMul(width, height, "pixel count"), limits.maxPixels)
        let spp = try d.int(TIFFTag.samplesPerPixel, "SamplesPerPixel") ?? 1
        guard spp > 0 else { throw RasterError.malformed("SamplesPerPixel is 0") }
        try limits.check("bands (SamplesPerPixel)", spp, limits.maxBands)

        let bitsList = try d.uints(TIFFTag.bitsPerSample) ?? [1]
        guard let bits0 = bitsList.first else { throw RasterError.malformed("BitsPerSample has no value") }
        // TIFF 6.0: one value per sample. Fewer is a broken writer; guessing the rest could misread the data.
        guard bitsList.count >= spp else {
            throw RasterError.malformed("BitsPerSample lists \(bitsList.count) values for \(spp) samples per pixel")
        }
        guard bitsList.allSatisfy({ $0 == bits0 }) else { throw RasterError.unsupported("different BitsPerSample per band \(bitsList.prefix(8))") }
        if bits0 == 1 { throw RasterError.unsupported("1-bit (bilevel) samples") }
        guard [8, 16, 32, 64].contains(bits0) else { throw RasterError.unsupported("\(bits0)-bit samples") }
        let bits = Int(bits0)

        let formats = try d.uints(TIFFTag.sampleFormat) ?? [1]
        guard let fmt0 = formats.first else { throw RasterError.malformed("SampleFormat has no value") }
        guard formats.allSatisfy({ $0 == fmt0 }) else { throw RasterError.unsupported("different SampleFormat per band") }
        let format: SampleFormat
        switch fmt0 {
        case 1, 4: format = .uint   // 4 = "void": undefined data, read as unsigned like libtiff
        case 2: format = .int
        case 3: format = .float
        case 5, 6: throw RasterError.unsupported("complex samples (SampleFormat \(fmt0))")
        default: throw RasterError.malformed("unknown SampleFormat \(fmt0)")
        }
        if format == .float && bits == 16 { throw RasterError.unsupported("16-bit floating point samples") }
        if format == .float && bits == 8 { throw RasterError.malformed("8-bit floating point samples") }

        let compression = try d.int(TIFFTag.compression, "Compression") ?? 1
        guard compression <= 0xFFFF, let comp = TIFFCompression(rawValue: UInt16(compression)) else {
            throw RasterError.unsupported(TIFFCompression.unsupportedName(UInt64(compression)), kind: .tiffCompression)
        }
        let photometric = try d.int(TIFFTag.photometric, "PhotometricInterpretation") ?? 1
        switch photometric {
        case 0, 1, 2, 5: break
        // Palette images (label rasters with a colour map) read as their indices.
        case 3: guard spp == 1 else { throw RasterError.unsupported("palette color images with \(spp) samples per pixel") }
        case 4: throw RasterError.unsupported("transparency mask images (PhotometricInterpretation 4)")
        case 6: throw RasterError.unsupported("YCbCr images (PhotometricInterpretation 6)")
        case 8, 9, 10: throw RasterError.unsupported("CIE L*a*b* images (PhotometricInterpretation \(photometric))")
        case 32844, 32845: throw RasterError.unsupported("LogLuv images (PhotometricInterpretation \(photometric))")
        default: throw RasterError.unsupported("PhotometricInterpretation \(photometric)")
        }
        if let fo = try d.int(TIFFTag.fillOrder, "FillOrder"), fo == 2 { throw RasterError.unsupported("FillOrder 2 (reversed bit order)") }
        let planar = try d.int(TIFFTag.planarConfiguration, "PlanarConfiguration") ?? 1
        guard planar == 1 || planar == 2 else { throw RasterError.malformed("PlanarConfiguration \(planar)") }
        let predictor = try d.int(TIFFTag.predictor, "Predictor") ?? 1
        switch predictor {
        case 1: break
        case 2: break
        case 3: guard format == .float else { throw RasterError.malformed("floating-point predictor on \(format) samples") }
        default: throw RasterError.unsupported("Predictor \(predictor)")
        }

        let tiled = d.fields[TIFFTag.tileWidth] != nil || d.fields[TIFFTag.tileOffsets] != nil
        let bw: Int, bh: Int
        let offs: [UInt64], counts: [UInt64]
        if tiled {
            guard let tw = try d.int(TIFFTag.tileWidth, "TileWidth") else { throw RasterError.missingTag("TileWidth (322)") }
            guard let tl = try d.int(TIFFTag.tileLength, "TileLength") else { throw RasterError.missingTag("TileLength (323)") }
            guard tw > 0, tl > 0 else { throw RasterError.malformed("tile size \(tw)×\(tl)") }
            try limits.check("tile width", tw, limits.maxDimension)
            try limits.check("tile length", tl, limits.maxDimension)
            bw = tw; bh = tl
            guard let o = try d.uints(TIFFTag.tileOffsets) else { throw RasterError.missingTag("TileOffsets (324)") }
            guard let c = try d.uints(TIFFTag.tileByteCounts) else { throw RasterError.missingTag("TileByteCounts (325)") }
            offs = o; counts = c
        } else {
            let rps = try d.int(TIFFTag.rowsPerStrip, "RowsPerStrip") ?? height
            guard rps > 0 else { throw RasterError.malformed("RowsPerStrip is 0") }
            bw = width; bh = min(rps, height)
            guard let o = try d.uints(TIFFTag.stripOffsets) else { throw RasterError.missingTag("StripOffsets (273)") }
            guard let c = try d.uints(TIFFTag.stripByteCounts) else { throw RasterError.missingTag("StripByteCounts (279)") }
            offs = o; counts = c
        }
        let bytesPerSample = bits / 8
        let spb = planar == 1 ? spp : 1
        let blockBytes = try checkedMul(try checkedMul(try checkedMul(bw, bh, "block size"), spb, "block size"), bytesPerSample, "block size")
        try limits.check("decoded block bytes", blockBytes, limits.maxBlockBytes)
        let across = (width + bw - 1) / bw, down = (height + bh - 1) / bh
        let planes = planar == 1 ? 1 : spp
        let nBlocks = try checkedMul(try checkedMul(across, down, "block count"), planes, "block count")
        guard offs.count >= nBlocks, counts.count >= nBlocks else {
            throw RasterError.malformed("\(tiled ? "tile" : "strip") offsets/byte counts have \(offs.count)/\(counts.count) values, image needs \(nBlocks)")
        }
        let decoded = try checkedMul(try checkedMul(width * height, spp, "decoded size"), bytesPerSample, "decoded size")
        try limits.check("decoded image bytes", decoded, limits.maxDecodedBytes)
        let allBlocks = try checkedMul(nBlocks, blockBytes, "decoded block total")
        // Edge tiles decode to full tiles: allow padding of at most as much again as the image.
        let (paddedLimit, overflow) = limits.maxDecodedBytes.multipliedReportingOverflow(by: 2)
        try limits.check("total decompressed bytes", allBlocks, overflow ? Int.max : paddedLimit)
        for k in 0..<nBlocks where counts[k] != 0 {
            try f.check("\(tiled ? "tile" : "strip") \(k)", offs[k], counts[k] > UInt64(Int.max) ? -1 : Int(counts[k]))
        }

        let geo = GeoReference(
            pixelScale: d.doubles(TIFFTag.modelPixelScale), tiepoints: d.doubles(TIFFTag.modelTiepoint),
            transformation: d.doubles(TIFFTag.modelTransformation),
            geoKeyDirectory: (try d.uints(TIFFTag.geoKeyDirectory))?.map { UInt16(truncatingIfNeeded: $0) },
            geoDoubleParams: d.doubles(TIFFTag.geoDoubleParams), geoAsciiParams: d.ascii(TIFFTag.geoAsciiParams),
            nodata: d.ascii(TIFFTag.gdalNodata), gdalMetadata: d.ascii(TIFFTag.gdalMetadata))
        let info = TIFFImageInfo(width: width, height: height, bands: spp, sampleType: SampleType(format: format, bits: bits),
                                 compression: UInt16(compression), predictor: predictor, planarConfiguration: planar,
                                 photometric: photometric, isTiled: tiled, blockWidth: bw, blockHeight: bh,
                                 bigEndian: big, isBigTIFF: bigTIFF, ifdIndex: index, geo: geo)
        _ = comp
        return (info, Array(offs.prefix(nBlocks)), Array(counts.prefix(nBlocks)))
    }

    // MARK: decoding

    /// Geometry shared by all block decoders of one read.
    private struct DecodePlan: Sendable {
        var sel: Range<Int>
        var across: Int, perPlane: Int, planeBytes: Int, bps: Int, spb: Int
        var comp: TIFFCompression
        var direct: Bool
    }

    /// Pointers handed to block decoders. `@unchecked Sendable` because raw pointers are not
    /// Sendable: the input is only read, both buffers outlive `concurrentPerform` (which returns
    /// after every worker finished), and each block writes a disjoint rectangle of the output.
    private struct DecodeBuffers: @unchecked Sendable {
        let raw: UnsafeRawBufferPointer
        let out: UnsafeMutablePointer<UInt8>
    }

    private func decode(_ raw: UnsafeRawBufferPointer, bands sel: Range<Int>, threads: Int) throws -> [UInt8] {
        let i = info
        let bps = i.sampleType.bytes
        let spb = i.planarConfiguration == 1 ? i.bands : 1
        let across = (i.width + i.blockWidth - 1) / i.blockWidth
        let down = (i.height + i.blockHeight - 1) / i.blockHeight
        let perPlane = across * down
        let planeBytes = i.width * i.height * bps
        let outBytes = planeBytes * sel.count
        let maxBlock = i.blockWidth * i.blockHeight * spb * bps
        let comp = TIFFCompression(rawValue: i.compression) ?? .none
        // Uncompressed host-order planar rows are copied straight from the file, without scratch.
        let plan = DecodePlan(sel: sel, across: across, perPlane: perPlane, planeBytes: planeBytes, bps: bps, spb: spb,
                              comp: comp, direct: comp == .none && spb == 1 && !(i.bigEndian && bps > 1))
        // Blocks to decode (for planar files only those of the selected bands).
        let blocks: [Int] = spb == 1 ? Array((sel.lowerBound * perPlane)..<(sel.upperBound * perPlane)) : Array(0..<offsets.count)
        return try [UInt8](unsafeUninitializedCapacity: outBytes) { outBuf, initialized in
            sx_advise_huge_pages(UnsafeMutableRawPointer(outBuf.baseAddress!), outBytes)
            let buffers = DecodeBuffers(raw: raw, out: outBuf.baseAddress!)
            let workers = max(1, min(threads, blocks.count))
            if workers == 1 {
                var scratch = [UInt8](repeating: 0, count: maxBlock)
                let inflater = Deflate.Inflater()
                try scratch.withUnsafeMutableBytes { s in
                    for k in blocks { try decodeOne(k, plan, buffers, s, inflater) }
                }
            } else {
                let failure = FirstError()
                DispatchQueue.concurrentPerform(iterations: workers) { t in
                    var scratch = [UInt8](repeating: 0, count: maxBlock)
                    let inflater = Deflate.Inflater()
                    scratch.withUnsafeMutableBytes { s in
                        var j = t
                        while j < blocks.count && !failure.isSet {
                            do { try decodeOne(blocks[j], plan, buffers, s, inflater) } catch { failure.set(error) }
                            j += workers
                        }
                    }
                }
                if let e = failure.error { throw e }
            }
            initialized = outBytes
        }
    }

    /// Decodes block `k` and stores its valid part into the band-sequential output.
    private func decodeOne(_ k: Int, _ p: DecodePlan, _ b: DecodeBuffers, _ scratchBuf: UnsafeMutableRawBufferPointer,
                           _ inflater: Deflate.Inflater) throws {
        let i = info
        let W = i.width, H = i.height, bps = p.bps, spb = p.spb
        let plane = k / p.perPlane
        let r = k % p.perPlane
        let by = r / p.across, bx = r % p.across
        let y0 = by * i.blockHeight, x0 = bx * i.blockWidth
        let storedRows = i.isTiled ? i.blockHeight : min(i.blockHeight, H - y0)
        let rowSamples = i.blockWidth * spb
        let expected = storedRows * rowSamples * bps
        let validRows = min(i.blockHeight, H - y0), validCols = min(i.blockWidth, W - x0)
        let src: UnsafeRawPointer
        if p.direct && byteCounts[k] != 0 {
            guard Int(byteCounts[k]) >= expected else {
                throw RasterError.truncated("\(i.isTiled ? "tile" : "strip") \(k): uncompressed data gives \(byteCounts[k]) of \(expected) bytes")
            }
            src = b.raw.baseAddress! + Int(offsets[k])
        } else {
            let blk = UnsafeMutableRawBufferPointer(rebasing: scratchBuf[0..<expected])
            try decodeBlock(UnsafeRawBufferPointer(rebasing: b.raw[blockExtent(k)]), k, p.comp, into: blk, rows: storedRows, rowSamples: rowSamples, stride: spb, inflater: inflater)
            src = UnsafeRawPointer(blk.baseAddress!)
        }
        if spb == 1 {
            let ob = plane - p.sel.lowerBound
            for row in 0..<validRows {
                let dst = b.out + ob * p.planeBytes + ((y0 + row) * W + x0) * bps
                UnsafeMutableRawPointer(dst).copyMemory(from: src + row * rowSamples * bps, byteCount: validCols * bps)
            }
        } else {
            let g = Scatter(out: UnsafeMutableRawPointer(b.out), blk: src, W: W, H: H, x0: x0, y0: y0,
                            rows: validRows, cols: validCols, blockWidth: i.blockWidth, spp: spb, bands: p.sel)
            switch bps {
            case 1: g.run(UInt8.self)
            case 2: g.run(UInt16.self)
            case 4: g.run(UInt32.self)
            default: g.run(UInt64.self)
            }
        }
    }

    /// Decompresses block `k`, whose stored bytes are `src`, into `dst` (exactly its expected size),
    /// converts to host order and undoes the predictor. Sparse blocks (byte count 0) decode as zeros, as in GDAL.
    func decodeBlock(_ src: UnsafeRawBufferPointer, _ k: Int, _ comp: TIFFCompression, into dst: UnsafeMutableRawBufferPointer,
                             rows: Int, rowSamples: Int, stride: Int, inflater: Deflate.Inflater) throws {
        let what = info.isTiled ? "tile \(k)" : "strip \(k)"
        let count = Int(byteCounts[k])   // range-checked in parseHeader
        if count == 0 {
            dst.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        guard src.count == count else { throw RasterError.truncated("\(what): \(src.count) of \(count) stored bytes") }
        let produced: Int
        let codec: String
        switch comp {
        case .none:
            codec = "uncompressed"
            produced = min(count, dst.count)
            dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: produced)
        case .deflate, .adobeDeflate:
            codec = "Deflate"
            produced = try inflater.inflate(src, into: dst)
        case .lzw:
            codec = "LZW"
            produced = try LZW.decode(src, into: dst)
        case .packBits:
            codec = "PackBits"
            produced = PackBits.decode(src, into: dst)
        }
        guard produced == dst.count else {
            throw RasterError.truncated("\(what): \(codec) data gives \(produced) of \(dst.count) bytes")
        }
        let bps = info.sampleType.bytes
        // As libtiff (and so GDAL) does, the Predictor tag only applies to LZW and Deflate data.
        let predictor = (comp == .none || comp == .packBits) ? 1 : info.predictor
        if predictor == 3 {
            Predictor.undoFloatingPoint(dst, rows: rows, rowSamples: rowSamples, stride: stride, bytesPerSample: bps)
            return
        }
        if info.bigEndian && bps > 1 { Predictor.byteSwap(dst, count: dst.count / bps, bytesPerSample: bps) }
        if predictor == 2 {
            Predictor.undoHorizontal(dst, rows: rows, rowSamples: rowSamples, stride: stride, bytesPerSample: bps)
        }
    }
}

/// De-interleaves a chunky (PlanarConfiguration 1) block into band-sequential output.
private struct Scatter {
    let out: UnsafeMutableRawPointer
    let blk: UnsafeRawPointer
    let W: Int, H: Int, x0: Int, y0: Int, rows: Int, cols: Int, blockWidth: Int, spp: Int
    let bands: Range<Int>

    func run<T>(_: T.Type) {
        let o = out.assumingMemoryBound(to: T.self)
        let s = blk.assumingMemoryBound(to: T.self)
        for b in bands {
            let ob = o + (b - bands.lowerBound) * W * H
            for r in 0..<rows {
                let d = ob + (y0 + r) * W + x0
                var p = s + r * blockWidth * spp + b
                for c in 0..<cols { d[c] = p.pointee; p += spp }
            }
        }
    }
}

/// First error raised by concurrent block decoders (the others stop early).
private final class FirstError: Sendable {
    private let stored = Mutex<(any Error)?>(nil)
    var isSet: Bool { stored.withLock { $0 != nil } }
    var error: (any Error)? { stored.withLock { $0 } }
    func set(_ e: any Error) { stored.withLock { if $0 == nil { $0 = e } } }
}
