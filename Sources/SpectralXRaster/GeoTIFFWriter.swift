import Foundation

/// How `GeoTIFFWriter` lays out and compresses a raster. The defaults write a little-endian
/// classic TIFF, band-sequential, Deflate, strips of about 64 KiB.
public struct TIFFWriteOptions: Sendable, Equatable {
    public var compression: TIFFCompression
    /// 1 none, 2 horizontal differencing (any sample type), 3 floating point (float only).
    /// Only with LZW or Deflate: libtiff (hence GDAL) applies predictors only in those codecs.
    public var predictor: Int
    /// 1 chunky (pixel-interleaved), 2 band-sequential.
    public var planarConfiguration: Int
    /// Tile size (multiples of 16, as TIFF requires); nil writes strips.
    public var tileWidth: Int?
    public var tileLength: Int?
    /// Rows per strip; nil picks about 64 KiB per strip.
    public var rowsPerStrip: Int?
    public var bigEndian: Bool
    public var bigTIFF: Bool
    public var deflateLevel: Int32
    /// PhotometricInterpretation (1 = min-is-black).
    public var photometric: Int
    /// Write GDAL_METADATA (42112) when the GeoReference has it.
    public var includeGDALMetadata: Bool

    public init(compression: TIFFCompression = .deflate, predictor: Int = 1, planarConfiguration: Int = 2,
                tileWidth: Int? = nil, tileLength: Int? = nil, rowsPerStrip: Int? = nil, bigEndian: Bool = false,
                bigTIFF: Bool = false, deflateLevel: Int32 = 6, photometric: Int = 1, includeGDALMetadata: Bool = true) {
        self.compression = compression; self.predictor = predictor; self.planarConfiguration = planarConfiguration
        self.tileWidth = tileWidth; self.tileLength = tileLength; self.rowsPerStrip = rowsPerStrip
        self.bigEndian = bigEndian; self.bigTIFF = bigTIFF; self.deflateLevel = deflateLevel
        self.photometric = photometric; self.includeGDALMetadata = includeGDALMetadata
    }

    /// Label rasters: Deflate, 256×256 tiles.
    public static let labels = TIFFWriteOptions(compression: .deflate, predictor: 1, tileWidth: 256, tileLength: 256, includeGDALMetadata: false)
    /// Float32 score rasters: Deflate + floating-point predictor, band-sequential 256×256 tiles.
    public static let scores = TIFFWriteOptions(compression: .deflate, predictor: 3, planarConfiguration: 2, tileWidth: 256, tileLength: 256, includeGDALMetadata: false)
}

/// GeoTIFF writer for outputs and test files. Georeferencing (GeoKey directory, double/ascii
/// params, pixel scale, tie points, transformation, GDAL_NODATA and optionally GDAL_METADATA)
/// is copied verbatim from `raster.geo`, so GDAL, rasterio and tifffile see the input's CRS,
/// transform and nodata.
public enum GeoTIFFWriter {
    /// uint8 single-band label raster (class indices), Deflate, tiled 256×256.
    public static func writeLabels(_ labels: [UInt8], width: Int, height: Int, geo: GeoReference, to path: String,
                                   options: TIFFWriteOptions = .labels) throws {
        let r = try Raster(width: width, height: height, bands: 1, values: labels, geo: geo)
        try write(r, to: path, options: options)
    }

    /// float32 multi-band score raster (band-sequential values), Deflate + predictor 3, tiled.
    public static func writeScores(_ scores: [Float], bands: Int, width: Int, height: Int, geo: GeoReference, to path: String,
                                   options: TIFFWriteOptions = .scores) throws {
        let r = try Raster(width: width, height: height, bands: bands, values: scores, geo: geo)
        try write(r, to: path, options: options)
    }

    /// Writes any raster to a file.
    public static func write(_ raster: Raster, to path: String, options: TIFFWriteOptions = TIFFWriteOptions()) throws {
        try writeFileBytes(try encode(raster, options: options), path)
    }

    /// Encodes a raster as TIFF bytes (every supported sample type × compression × predictor ×
    /// planar configuration × strips/tiles × byte order × classic/BigTIFF).
    public static func encode(_ raster: Raster, options o: TIFFWriteOptions = TIFFWriteOptions()) throws -> [UInt8] {
        let W = raster.width, H = raster.height, spp = raster.bands
        let st = raster.sampleType, bps = st.bytes
        guard W > 0, H > 0, spp > 0 else { throw RasterError.invalidArgument("cannot write an empty raster \(W)×\(H)×\(spp)") }
        guard spp <= 65535 else { throw RasterError.invalidArgument("\(spp) bands") }
        guard o.planarConfiguration == 1 || o.planarConfiguration == 2 else { throw RasterError.invalidArgument("PlanarConfiguration \(o.planarConfiguration)") }
        switch o.predictor {
        case 1, 2: break
        case 3: guard st.format == .float else { throw RasterError.invalidArgument("predictor 3 needs float samples") }
        default: throw RasterError.invalidArgument("predictor \(o.predictor)")
        }
        if o.predictor != 1 && (o.compression == .none || o.compression == .packBits) {
            throw RasterError.invalidArgument("libtiff/GDAL ignore Predictor with \(o.compression) compression; use LZW or Deflate")
        }
        let planar = spp == 1 ? 1 : o.planarConfiguration
        let spb = planar == 1 ? spp : 1
        let tiled = o.tileWidth != nil || o.tileLength != nil
        let bw: Int, bh: Int
        if tiled {
            bw = o.tileWidth ?? 256; bh = o.tileLength ?? 256
            guard bw > 0, bh > 0, bw % 16 == 0, bh % 16 == 0 else { throw RasterError.invalidArgument("tile size \(bw)×\(bh) must be positive multiples of 16") }
        } else {
            bw = W
            bh = max(1, min(H, o.rowsPerStrip ?? max(1, 65536 / max(1, W * spb * bps))))
        }
        let across = (W + bw - 1) / bw, down = (H + bh - 1) / bh
        let planes = planar == 1 ? 1 : spp
        let rowSamples = bw * spb

        // Block data, written right after the header.
        var out = [UInt8](repeating: 0, count: o.bigTIFF ? 16 : 8)
        var offsets: [UInt64] = [], counts: [UInt64] = []
        var block = [UInt8](repeating: 0, count: bw * bh * spb * bps)
        try raster.data.withUnsafeBytes { src in
            for p in 0..<planes {
                for by in 0..<down {
                    for bx in 0..<across {
                        let y0 = by * bh, x0 = bx * bw
                        let storedRows = tiled ? bh : min(bh, H - y0)
                        let validRows = min(bh, H - y0), validCols = min(bw, W - x0)
                        let n = storedRows * rowSamples * bps
                        let compressed: [UInt8] = try block.withUnsafeMutableBytes { blkAll in
                            let blk = UnsafeMutableRawBufferPointer(rebasing: blkAll[0..<n])
                            blk.initializeMemory(as: UInt8.self, repeating: 0)
                            gather(src, into: blk, W: W, H: H, bps: bps, spp: spp, planar: planar, plane: p,
                                   x0: x0, y0: y0, rows: validRows, cols: validCols, blockWidth: bw)
                            switch o.predictor {
                            case 2:
                                Predictor.applyHorizontal(blk, rows: storedRows, rowSamples: rowSamples, stride: spb, bytesPerSample: bps)
                                if o.bigEndian && bps > 1 { Predictor.byteSwap(blk, count: n / bps, bytesPerSample: bps) }
                            case 3:
                                Predictor.applyFloatingPoint(blk, rows: storedRows, rowSamples: rowSamples, stride: spb, bytesPerSample: bps)
                            default:
                                if o.bigEndian && bps > 1 { Predictor.byteSwap(blk, count: n / bps, bytesPerSample: bps) }
                            }
                            let ro = UnsafeRawBufferPointer(blk)
                            switch o.compression {
                            case .none: return [UInt8](ro)
                            case .lzw: return LZW.encode(ro)
                            case .deflate, .adobeDeflate: return try Deflate.deflate(ro, level: o.deflateLevel)
                            case .packBits: return PackBits.encode(ro, rowBytes: rowSamples * bps)
                            }
                        }
                        if out.count % 2 == 1 { out.append(0) }
                        offsets.append(UInt64(out.count)); counts.append(UInt64(compressed.count))
                        out += compressed
                    }
                }
            }
        }

        // Directory.
        var ifd = IFDBuilder(bigEndian: o.bigEndian, bigTIFF: o.bigTIFF)
        ifd.shorts(TIFFTag.imageWidth, [W]) // SHORT or LONG chosen by value
        ifd.shorts(TIFFTag.imageLength, [H])
        ifd.shorts(TIFFTag.bitsPerSample, [Int](repeating: st.bits, count: spp), forceShort: true)
        ifd.shorts(TIFFTag.compression, [Int(o.compression.rawValue)], forceShort: true)
        ifd.shorts(TIFFTag.photometric, [o.photometric], forceShort: true)
        ifd.offsets(tiled ? TIFFTag.tileOffsets : TIFFTag.stripOffsets, offsets)
        ifd.shorts(TIFFTag.samplesPerPixel, [spp], forceShort: true)
        if !tiled { ifd.shorts(TIFFTag.rowsPerStrip, [bh]) }
        ifd.offsets(tiled ? TIFFTag.tileByteCounts : TIFFTag.stripByteCounts, counts)
        ifd.shorts(TIFFTag.planarConfiguration, [planar], forceShort: true)
        if o.predictor != 1 { ifd.shorts(TIFFTag.predictor, [o.predictor], forceShort: true) }
        if tiled {
            ifd.shorts(TIFFTag.tileWidth, [bw])
            ifd.shorts(TIFFTag.tileLength, [bh])
        }
        let extra = o.photometric == 2 ? spp - 3 : spp - 1
        if extra > 0 { ifd.shorts(TIFFTag.extraSamples, [Int](repeating: 0, count: extra), forceShort: true) }
        ifd.shorts(TIFFTag.sampleFormat, [Int](repeating: Int(st.format.rawValue), count: spp), forceShort: true)
        let g = raster.geo
        ifd.georeference(g)
        if o.includeGDALMetadata, let v = g.gdalMetadata { ifd.ascii(TIFFTag.gdalMetadata, v) }
        if let v = g.nodata { ifd.ascii(TIFFTag.gdalNodata, v) }
        let ifdOffset = try ifd.append(to: &out)

        // Header.
        var h = ByteWriter(bigEndian: o.bigEndian)
        h.bytes += o.bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        if o.bigTIFF {
            h.u16(43); h.u16(8); h.u16(0); h.u64(ifdOffset)
        } else {
            h.u16(42); h.u32(UInt32(ifdOffset))
        }
        out.replaceSubrange(0..<h.bytes.count, with: h.bytes)
        return out
    }

    /// Copies the valid part of one block from band-sequential samples (zero padding elsewhere).
    private static func gather(_ src: UnsafeRawBufferPointer, into blk: UnsafeMutableRawBufferPointer, W: Int, H: Int, bps: Int,
                               spp: Int, planar: Int, plane: Int, x0: Int, y0: Int, rows: Int, cols: Int, blockWidth: Int) {
        if planar == 2 || spp == 1 {
            for r in 0..<rows {
                let s = src.baseAddress! + ((plane * H + y0 + r) * W + x0) * bps
                (blk.baseAddress! + r * blockWidth * bps).copyMemory(from: s, byteCount: cols * bps)
            }
            return
        }
        for b in 0..<spp {
            for r in 0..<rows {
                let s = src.baseAddress! + ((b * H + y0 + r) * W + x0) * bps
                let d = blk.baseAddress! + (r * blockWidth * spp + b) * bps
                for c in 0..<cols { (d + c * spp * bps).copyMemory(from: s + c * bps, byteCount: bps) }
            }
        }
    }
}

/// Byte-order-aware output buffer.
struct ByteWriter {
    let bigEndian: Bool
    var bytes: [UInt8] = []
    mutating func u16(_ v: UInt16) { let x = bigEndian ? v.bigEndian : v.littleEndian; withUnsafeBytes(of: x) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { let x = bigEndian ? v.bigEndian : v.littleEndian; withUnsafeBytes(of: x) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { let x = bigEndian ? v.bigEndian : v.littleEndian; withUnsafeBytes(of: x) { bytes += $0 } }
}

/// Collects IFD entries and lays them out (sorted by tag, values inline when they fit).
struct IFDBuilder {
    let bigEndian: Bool
    let bigTIFF: Bool
    var entries: [(tag: UInt16, type: TIFFFieldType, count: Int, value: [UInt8])] = []

    mutating func shorts(_ tag: UInt16, _ v: [Int], forceShort: Bool = false) {
        var w = ByteWriter(bigEndian: bigEndian)
        if forceShort || v.allSatisfy({ $0 <= 0xFFFF }) {
            for x in v { w.u16(UInt16(truncatingIfNeeded: x)) }
            entries.append((tag, .short, v.count, w.bytes))
        } else {
            for x in v { w.u32(UInt32(truncatingIfNeeded: x)) }
            entries.append((tag, .long, v.count, w.bytes))
        }
    }
    mutating func offsets(_ tag: UInt16, _ v: [UInt64]) {
        var w = ByteWriter(bigEndian: bigEndian)
        if bigTIFF {
            for x in v { w.u64(x) }
            entries.append((tag, .long8, v.count, w.bytes))
        } else {
            for x in v { w.u32(UInt32(truncatingIfNeeded: x)) }
            entries.append((tag, .long, v.count, w.bytes))
        }
    }
    /// The GeoTIFF tags of `g` that are present (pixel scale, tiepoints, transformation, geokeys).
    mutating func georeference(_ g: GeoReference) {
        if let v = g.pixelScale { doubles(TIFFTag.modelPixelScale, v) }
        if let v = g.tiepoints { doubles(TIFFTag.modelTiepoint, v) }
        if let v = g.transformation { doubles(TIFFTag.modelTransformation, v) }
        if let v = g.geoKeyDirectory { shorts(TIFFTag.geoKeyDirectory, v.map(Int.init), forceShort: true) }
        if let v = g.geoDoubleParams { doubles(TIFFTag.geoDoubleParams, v) }
        if let v = g.geoAsciiParams { ascii(TIFFTag.geoAsciiParams, v) }
    }

    mutating func doubles(_ tag: UInt16, _ v: [Double]) {
        var w = ByteWriter(bigEndian: bigEndian)
        for x in v { w.u64(x.bitPattern) }
        entries.append((tag, .double, v.count, w.bytes))
    }
    mutating func ascii(_ tag: UInt16, _ s: String) {
        let b = Array(s.utf8) + [0]
        entries.append((tag, .ascii, b.count, b))
    }

    /// Appends the IFD and its out-of-line values to `out`; returns the IFD offset.
    func append(to out: inout [UInt8]) throws -> UInt64 {
        let sorted = entries.sorted { $0.tag < $1.tag }
        let inline = bigTIFF ? 8 : 4
        if out.count % 2 == 1 { out.append(0) }
        if bigTIFF { while out.count % 8 != 0 { out.append(0) } }
        let ifdOffset = out.count
        let ifdSize = (bigTIFF ? 8 : 2) + sorted.count * (bigTIFF ? 20 : 12) + (bigTIFF ? 8 : 4)
        var valuePos = ifdOffset + ifdSize
        var w = ByteWriter(bigEndian: bigEndian)
        if bigTIFF { w.u64(UInt64(sorted.count)) } else { w.u16(UInt16(sorted.count)) }
        var values: [UInt8] = []
        for e in sorted {
            w.u16(e.tag); w.u16(e.type.rawValue)
            if bigTIFF { w.u64(UInt64(e.count)) } else { w.u32(UInt32(e.count)) }
            if e.value.count <= inline {
                w.bytes += e.value + [UInt8](repeating: 0, count: inline - e.value.count)
            } else {
                if valuePos % 2 == 1 { values.append(0); valuePos += 1 }
                guard bigTIFF || valuePos <= Int(UInt32.max) else { throw RasterError.invalidArgument("file exceeds 4 GiB: use bigTIFF") }
                if bigTIFF { w.u64(UInt64(valuePos)) } else { w.u32(UInt32(valuePos)) }
                values += e.value
                valuePos += e.value.count
            }
        }
        if bigTIFF { w.u64(0) } else { w.u32(0) }
        guard bigTIFF || out.count + w.bytes.count + values.count <= Int(UInt32.max) else {
            throw RasterError.invalidArgument("file exceeds 4 GiB: use bigTIFF")
        }
        out += w.bytes
        out += values
        return UInt64(ifdOffset)
    }
}
