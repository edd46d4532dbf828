import Foundation
import Testing
import SpectralXRaster

/// Hand-built little-endian classic TIFF: 8-byte header, `data` at offset 8, then IFDs.
/// Entries are (tag, type, values); SHORT (3) and LONG (4) values are written inline or after the IFD.
struct TIFFCraft {
    var entries: [(UInt16, UInt16, [UInt64])]
    var data: [UInt8] = []
    /// Extra IFDs chained after the first (each with its own entries); `nextOverride` forces the first IFD's next pointer.
    var nextOverride: UInt32? = nil
    var entryCountOverride: UInt16? = nil

    static func le16(_ v: UInt64) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    static func le32(_ v: UInt64) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8((v >> 24) & 0xFF)] }

    var ifdOffset: Int { 8 + data.count + (data.count % 2) }

    func bytes() -> [UInt8] {
        var out: [UInt8] = [0x49, 0x49, 42, 0] + TIFFCraft.le32(UInt64(ifdOffset)) + data
        if out.count % 2 == 1 { out.append(0) }
        let sorted = entries.sorted { $0.0 < $1.0 }
        var valuePos = ifdOffset + 2 + sorted.count * 12 + 4
        var ifd = TIFFCraft.le16(UInt64(entryCountOverride ?? UInt16(sorted.count)))
        var extra: [UInt8] = []
        for (tag, type, vals) in sorted {
            let size = type == 3 ? 2 : 4
            let enc = vals.flatMap { size == 2 ? TIFFCraft.le16($0) : TIFFCraft.le32($0) }
            ifd += TIFFCraft.le16(UInt64(tag)) + TIFFCraft.le16(UInt64(type)) + TIFFCraft.le32(UInt64(vals.count))
            if enc.count <= 4 {
                ifd += enc + [UInt8](repeating: 0, count: 4 - enc.count)
            } else {
                ifd += TIFFCraft.le32(UInt64(valuePos)); extra += enc; valuePos += enc.count
            }
        }
        ifd += TIFFCraft.le32(UInt64(nextOverride ?? 0))
        return out + ifd + extra
    }

    /// A valid 4×2 uint8 single-strip uncompressed image.
    static func valid() -> TIFFCraft {
        TIFFCraft(entries: [(256, 3, [4]), (257, 3, [2]), (258, 3, [8]), (259, 3, [1]), (262, 3, [1]),
                            (273, 4, [8]), (277, 3, [1]), (278, 3, [2]), (279, 4, [8])],
                  data: [1, 2, 3, 4, 5, 6, 7, 8])
    }

    func with(_ tag: UInt16, _ type: UInt16, _ vals: [UInt64]) -> TIFFCraft {
        var c = self
        c.entries.removeAll { $0.0 == tag }
        c.entries.append((tag, type, vals))
        return c
    }
}

func readError(_ bytes: [UInt8], limits: RasterLimits = .default) -> RasterError? {
    do { _ = try TIFFReader(data: Data(bytes), limits: limits).read(); return nil }
    catch let e as RasterError { return e }
    catch { Issue.record("untyped error \(error)"); return nil }
}

@Suite struct MalformedTIFFTests {
    @Test func craftedValidFileReads() throws {
        let r = try TIFFReader(data: Data(TIFFCraft.valid().bytes())).read()
        #expect(r.data == [1, 2, 3, 4, 5, 6, 7, 8] && r.width == 4 && r.height == 2)
    }

    @Test func truncatedFilesFailCleanly() throws {
        let r = try makeRaster(.uint16, width: 20, height: 11, bands: 2)
        for opts in [TIFFWriteOptions(compression: .deflate, predictor: 2), TIFFWriteOptions(compression: .lzw, tileWidth: 16, tileLength: 16),
                     TIFFWriteOptions(compression: .packBits, bigEndian: true, bigTIFF: true)] {
            let full = try GeoTIFFWriter.encode(r, options: opts)
            for n in 0..<full.count {
                #expect(readError(Array(full[0..<n])) != nil, "prefix \(n) of \(full.count) accepted")
            }
        }
        #expect(readError([0x49, 0x49, 42]) == .truncated("TIFF header needs 8 bytes, file has 3"))
    }

    @Test func notATIFF() {
        #expect({ if case .notRecognized? = readError(Array("GIF89a-------".utf8)) { return true }; return false }())
        #expect({ if case .notRecognized? = readError([0x49, 0x49, 41, 0, 8, 0, 0, 0]) { return true }; return false }())
    }

    @Test func offsetsPastTheEnd() {
        let e = readError(TIFFCraft.valid().with(273, 4, [1 << 31]).bytes())
        guard case .offsetOutOfRange(let what, _, _, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(what.contains("strip 0"))
        // IFD offset past the end.
        var b = TIFFCraft.valid().bytes()
        b[4] = 0xF0; b[5] = 0xFF
        guard case .offsetOutOfRange? = readError(b) else { Issue.record("IFD offset"); return }
        // Out-of-line tag value past the end.
        let c = TIFFCraft.valid().with(258, 3, [8, 8, 8]).bytes()
        #expect(readError(Array(c.dropLast(2))) != nil)
    }

    @Test func ifdLoopIsDetected() {
        // First IFD is an overview (so the chain is followed) and points back to itself.
        var c = TIFFCraft.valid().with(254, 4, [1])
        c.nextOverride = UInt32(c.ifdOffset)
        #expect(readError(c.bytes()) == .ifdLoop(offset: UInt64(c.ifdOffset)))
    }

    @Test func ifdAndTagCountLimits() {
        var c = TIFFCraft.valid().with(254, 4, [1])
        c.nextOverride = UInt32(c.ifdOffset)
        var lim = RasterLimits.default
        lim.maxIFDCount = 0
        guard case .limitExceeded(let what, _, _)? = readError(c.bytes(), limits: lim) else { Issue.record("IFD count"); return }
        #expect(what == "IFD count")
        var t = TIFFCraft.valid()
        t.entryCountOverride = 60000
        guard case .limitExceeded(let w2, 60000, _)? = readError(t.bytes()) else { Issue.record("tag count"); return }
        #expect(w2 == "IFD entry count")
    }

    @Test func absurdDimensionsAreRefusedBeforeAllocation() {
        for (w, h) in [(UInt64(1) << 31, UInt64(1)), (100_000, 100_000), (0, 5)] {
            let e = readError(TIFFCraft.valid().with(256, 4, [w]).with(257, 4, [h]).bytes())
            #expect(e != nil)
            if w == 0 { #expect(e == .malformed("image size 0×5")) } else {
                guard case .limitExceeded? = e else { Issue.record("\(w)×\(h): \(String(describing: e))"); continue }
            }
        }
        // Many bands.
        guard case .limitExceeded? = readError(TIFFCraft.valid().with(277, 3, [5000]).bytes()) else { Issue.record("bands"); return }
        // Decoded size over a custom limit.
        var lim = RasterLimits.default
        lim.maxDecodedBytes = 4
        guard case .limitExceeded(let what, 8, 4)? = readError(TIFFCraft.valid().bytes(), limits: lim) else { Issue.record("decoded"); return }
        #expect(what == "decoded image bytes")
    }

    @Test func wrongCountsAndMissingTags() {
        // Two strips needed (RowsPerStrip 1) but only one offset.
        #expect(readError(TIFFCraft.valid().with(278, 3, [1]).bytes()) == .malformed("strip offsets/byte counts have 1/1 values, image needs 2"))
        var c = TIFFCraft.valid()
        c.entries.removeAll { $0.0 == 279 }
        #expect(readError(c.bytes()) == .missingTag("StripByteCounts (279)"))
        c.entries.removeAll { $0.0 == 256 }
        #expect(readError(c.bytes()) == .missingTag("ImageWidth (256)"))
        // Strip byte count smaller than the strip.
        #expect(readError(TIFFCraft.valid().with(279, 4, [5]).bytes()) == .truncated("strip 0: uncompressed data gives 5 of 8 bytes"))
        #expect(readError(TIFFCraft.valid().with(278, 3, [0]).bytes()) == .malformed("RowsPerStrip is 0"))
        #expect(readError(TIFFCraft.valid().with(284, 3, [3]).bytes()) == .malformed("PlanarConfiguration 3"))
    }

    @Test func unknownAndUnsupportedFeaturesAreNamed() {
        let cases: [(TIFFCraft, String)] = [
            (TIFFCraft.valid().with(339, 3, [9]), "malformed input: unknown SampleFormat 9"),
            (TIFFCraft.valid().with(339, 3, [6]), "unsupported feature: complex samples (SampleFormat 6)"),
            (TIFFCraft.valid().with(259, 3, [7]), "unsupported feature: JPEG compression (7)"),
            (TIFFCraft.valid().with(259, 3, [50000]), "unsupported feature: ZSTD compression (50000)"),
            (TIFFCraft.valid().with(259, 3, [34887]), "unsupported feature: LERC compression (34887)"),
            (TIFFCraft.valid().with(259, 3, [50001]), "unsupported feature: WebP compression (50001)"),
            (TIFFCraft.valid().with(258, 3, [1]), "unsupported feature: 1-bit (bilevel) samples"),
            (TIFFCraft.valid().with(258, 3, [12]), "unsupported feature: 12-bit samples"),
            (TIFFCraft.valid().with(258, 3, [16]).with(339, 3, [3]), "unsupported feature: 16-bit floating point samples"),
            (TIFFCraft.valid().with(317, 3, [3]), "malformed input: floating-point predictor on uint samples"),
            (TIFFCraft.valid().with(262, 3, [6]), "unsupported feature: YCbCr images (PhotometricInterpretation 6)"),
        ]
        for (c, msg) in cases {
            #expect(readError(c.bytes())?.description == msg)
        }
    }

    @Test func corruptCompressedData() {
        for comp: UInt64 in [5, 8, 32773, 32946] {
            let e = readError(TIFFCraft.valid().with(259, 3, [comp]).bytes())
            #expect(e != nil, "compression \(comp) accepted garbage")
        }
    }

    @Test func deflateBombIsBoundedByTheBlockSize() throws {
        // 64×64 uint8 strip whose Deflate stream expands to 64 MiB: decoding stops at 4096 bytes.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let bomb = try GeoTIFFWriter.encode(try Raster(width: 4096, height: 16384, bands: 1, values: zeros),
                                            options: TIFFWriteOptions(compression: .deflate, rowsPerStrip: 16384))
        // Rewrite the header dimensions to 64×64 (RowsPerStrip 65536 clamps to 64): the same stream now bombs.
        let c = TIFFCraft(entries: [(256, 3, [64]), (257, 3, [64]), (258, 3, [8]), (259, 3, [8]), (273, 4, [8]),
                                    (278, 4, [64]), (279, 4, [UInt64(compressedStream(bomb).count)])],
                          data: compressedStream(bomb))
        let t0 = Date()
        let r = try TIFFReader(data: Data(c.bytes())).read()
        #expect(r.data.count == 4096 && r.data.allSatisfy { $0 == 0 })
        #expect(Date().timeIntervalSince(t0) < 1)
        // And with strict limits the original header is refused before allocation.
        guard case .limitExceeded? = readError(bomb, limits: .strict) else { Issue.record("strict limits"); return }
    }
}

/// The single strip of a file written by our writer (offset 8 up to the IFD).
func compressedStream(_ tiff: [UInt8]) -> [UInt8] {
    let ifd = Int(tiff[4]) | Int(tiff[5]) << 8 | Int(tiff[6]) << 16 | Int(tiff[7]) << 24
    var end = ifd
    while end > 8 && tiff[end - 1] == 0 { end -= 1 }  // writer pads to even offsets
    return Array(tiff[8..<ifd])
}
