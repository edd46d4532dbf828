import Foundation
import Testing
import SpectralXRaster

/// Deterministic test raster: smooth ramps plus noise, spanning the type's range.
func makeRaster(_ st: SampleType, width: Int, height: Int, bands: Int, seed: UInt64 = 1) throws -> Raster {
    var rng = SplitMix(state: seed)
    let n = width * height * bands
    var bytes = [UInt8](repeating: 0, count: n * st.bytes)
    bytes.withUnsafeMutableBytes { p in
        for i in 0..<n {
            let r = rng.next()
            let smooth = UInt64(i % width) &* 3 &+ UInt64(i / width)
            let v = (r & 3 == 0) ? r : smooth &+ (r & 0xF)
            switch (st.format, st.bits) {
            case (.float, 32): p.storeBytes(of: Float(Int64(bitPattern: v) % 100_000) / 7, toByteOffset: i * 4, as: Float.self)
            case (.float, 64): p.storeBytes(of: Double(Int64(bitPattern: v) % 100_000_000) / 7, toByteOffset: i * 8, as: Double.self)
            case (_, 8): p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
            case (_, 16): p.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: i * 2, as: UInt16.self)
            case (_, 32): p.storeBytes(of: UInt32(truncatingIfNeeded: v), toByteOffset: i * 4, as: UInt32.self)
            default: p.storeBytes(of: v, toByteOffset: i * 8, as: UInt64.self)
            }
        }
    }
    return try Raster(width: width, height: height, bands: bands, sampleType: st, data: bytes, geo: sampleGeo)
}

let sampleGeo = GeoReference(
    pixelScale: [10, 10, 0], tiepoints: [0, 0, 0, 500000, 3400000, 0],
    geoKeyDirectory: [1, 1, 0, 7, 1024, 0, 1, 1, 1025, 0, 1, 1, 1026, 34737, 22, 0, 2049, 34737, 7, 22, 2054, 0, 1, 9102, 3072, 0, 1, 32650, 3076, 0, 1, 9001],
    geoDoubleParams: nil, geoAsciiParams: "WGS 84 / UTM zone 50N|WGS 84|", nodata: "0",
    gdalMetadata: "<GDALMetadata>\n  <Item name=\"TEST\">1</Item>\n</GDALMetadata>")

struct Combo: CustomStringConvertible, Sendable {
    var type: SampleType
    var options: TIFFWriteOptions
    var description: String {
        "\(type) c\(options.compression.rawValue) p\(options.predictor) pl\(options.planarConfiguration) \(options.tileWidth == nil ? "strips" : "tiles") \(options.bigEndian ? "BE" : "LE") \(options.bigTIFF ? "BigTIFF" : "classic")"
    }
}

/// Every supported combination of the writer's options.
let allCombos: [Combo] = {
    var out: [Combo] = []
    for st in SampleType.all {
        for comp in [TIFFCompression.none, .lzw, .deflate, .packBits, .adobeDeflate] {
            for pred in (comp == .none || comp == .packBits ? [1] : st.format == .float ? [1, 2, 3] : [1, 2]) {
                for planar in [1, 2] {
                    for tiled in [false, true] {
                        for be in [false, true] {
                            for big in [false, true] {
                                out.append(Combo(type: st, options: TIFFWriteOptions(
                                    compression: comp, predictor: pred, planarConfiguration: planar,
                                    tileWidth: tiled ? 16 : nil, tileLength: tiled ? 32 : nil, rowsPerStrip: tiled ? nil : 5,
                                    bigEndian: be, bigTIFF: big)))
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}()

@Suite struct TIFFRoundTripTests {
    @Test func everyCombinationRoundTrips() throws {
        var failures: [String] = []
        for (k, c) in allCombos.enumerated() {
            let r = try makeRaster(c.type, width: 37, height: 45, bands: 3, seed: UInt64(k + 1))
            let bytes = try GeoTIFFWriter.encode(r, options: c.options)
            let reader = try TIFFReader(data: Data(bytes))
            let back = try reader.read()
            if back.data != r.data || back.sampleType != r.sampleType || back.width != 37 || back.height != 45 || back.bands != 3 {
                failures.append(c.description)
            }
            if back.geo != r.geo { failures.append("geo " + c.description) }
            #expect(reader.info.bigEndian == c.options.bigEndian && reader.info.isBigTIFF == c.options.bigTIFF)
            #expect(reader.info.isTiled == (c.options.tileWidth != nil))
        }
        #expect(failures.isEmpty, "round trip failed for: \(failures.prefix(20))")
        print("round-tripped \(allCombos.count) combinations")
    }

    @Test func singleBandAndLargeRuns() throws {
        // Constant data exercises LZW table resets, PackBits runs and long Deflate streams.
        for comp in [TIFFCompression.lzw, .packBits, .deflate] {
            let n = 300 * 257
            var vals = [UInt16](repeating: 7, count: n)
            for i in stride(from: 0, to: n, by: 1013) { vals[i] = UInt16(i & 0xFFFF) }
            let r = try Raster(width: 300, height: 257, bands: 1, values: vals)
            let bytes = try GeoTIFFWriter.encode(r, options: TIFFWriteOptions(compression: comp, rowsPerStrip: 257))
            #expect(try TIFFReader(data: Data(bytes)).read().values(as: UInt16.self) == vals)
            // Random bytes defeat compression: LZW's table fills and resets many times.
            var rng = SplitMix(state: 9)
            let rnd = (0..<(200 * 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let r2 = try Raster(width: 200, height: 200, bands: 1, values: rnd)
            let b2 = try GeoTIFFWriter.encode(r2, options: TIFFWriteOptions(compression: comp, rowsPerStrip: 200))
            #expect(try TIFFReader(data: Data(b2)).read().data == rnd)
        }
    }

    @Test func labelAndScoreWritersKeepGeoreferencing() throws {
        let dir = try makeTempDir("writers")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let labels = (0..<(300 * 270)).map { UInt8($0 % 23) }
        try GeoTIFFWriter.writeLabels(labels, width: 300, height: 270, geo: sampleGeo, to: dir + "/l.tif")
        let rd = try TIFFReader(path: dir + "/l.tif")
        #expect(rd.info.isTiled && rd.info.blockWidth == 256 && rd.info.compression == 8)
        let back = try rd.read()
        #expect(back.values(as: UInt8.self) == labels)
        #expect(back.geo.geoKeyDirectory == sampleGeo.geoKeyDirectory && back.geo.nodata == "0")
        #expect(back.geo.gdalMetadata == nil)   // labels omit per-band input metadata by default
        #expect(back.geo.epsg == 32650)
        #expect(back.geo.geoTransform == [500000, 10, 0, 3400000, 0, -10])
        let scores = (0..<(3 * 40 * 50)).map { Float($0) * 0.25 - 7 }
        try GeoTIFFWriter.writeScores(scores, bands: 3, width: 40, height: 50, geo: sampleGeo, to: dir + "/s.tif")
        let s = try TIFFReader.read(path: dir + "/s.tif")
        #expect(s.values(as: Float.self) == scores && s.geo.tiepoints == sampleGeo.tiepoints)
    }

    @Test func readsBandSubsets() throws {
        let r = try makeRaster(.uint16, width: 33, height: 17, bands: 4)
        for planar in [1, 2] {
            let b = try GeoTIFFWriter.encode(r, options: TIFFWriteOptions(compression: .lzw, predictor: 2, planarConfiguration: planar))
            let sub = try TIFFReader(data: Data(b)).read(bands: 1..<3)
            let per = 33 * 17 * 2
            #expect(sub.bands == 2 && sub.data == Array(r.data[per..<(3 * per)]))
        }
    }

    @Test func concurrentDecodeMatchesSerial() throws {
        let r = try makeRaster(.uint16, width: 100, height: 90, bands: 5)
        for opts in [TIFFWriteOptions(compression: .deflate, predictor: 2, rowsPerStrip: 7),
                     TIFFWriteOptions(compression: .lzw, planarConfiguration: 1, tileWidth: 32, tileLength: 16),
                     TIFFWriteOptions(compression: .none, rowsPerStrip: 3)] {
            let reader = try TIFFReader(data: Data(try GeoTIFFWriter.encode(r, options: opts)))
            #expect(try reader.read(threads: 2).data == r.data)
            #expect(try reader.read(bands: 2..<4, threads: 3).data == Array(r.data[(2 * 9000 * 2)..<(4 * 9000 * 2)]))
        }
        // An error in one worker surfaces as the read's error.
        var bad = try GeoTIFFWriter.encode(r, options: TIFFWriteOptions(compression: .deflate, rowsPerStrip: 7))
        for i in 200..<400 { bad[i] = 0xFF }
        #expect(throws: RasterError.self) { try TIFFReader(data: Data(bad)).read(threads: 2) }
    }

    @Test func floatViewsMatchNativeValues() throws {
        let vals: [Int16] = [-32768, -1, 0, 1, 32767, 12345]
        let r = try Raster(width: 3, height: 1, bands: 2, values: vals)
        #expect(r.toFloat64() == vals.map(Double.init))
        #expect(r.bandFloat32(1) == [32767, 12345, 0].map { _ in 0 }.enumerated().map { Float(vals[3 + $0.offset]) })
    }
}
