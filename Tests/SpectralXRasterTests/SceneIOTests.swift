import Foundation
import Testing
import SpectralXRaster

/// Windowed reading (TIFFScene, NpyScene, StackedRasterSource) and the streaming COG writer.
@Suite struct SceneIOTests {
    static func pattern(width w: Int, height h: Int, bands c: Int) throws -> Raster {
        var v = [UInt16](repeating: 0, count: c * w * h)
        var rng = SplitMix(state: 7)
        for i in 0..<v.count { v[i] = UInt16(truncatingIfNeeded: rng.next() % 5000 + 1) }
        return try Raster(width: w, height: h, bands: c, values: v)
    }

    /// Every layout the reader supports: a window read equals the same crop of the whole decode.
    @Test(arguments: [
        TIFFWriteOptions(compression: .deflate, predictor: 2, planarConfiguration: 1, tileWidth: 32, tileLength: 48),
        TIFFWriteOptions(compression: .lzw, predictor: 1, planarConfiguration: 2, tileWidth: 16, tileLength: 16),
        TIFFWriteOptions(compression: .packBits, planarConfiguration: 1, rowsPerStrip: 7),
        TIFFWriteOptions(compression: .none, planarConfiguration: 2, rowsPerStrip: 5, bigEndian: true, bigTIFF: true),
    ])
    func windowsEqualTheWholeDecode(options: TIFFWriteOptions) throws {
        let r = try Self.pattern(width: 75, height: 61, bands: 3)
        let bytes = try GeoTIFFWriter.encode(r, options: options)
        let scene = try TIFFScene(data: Data(bytes), cacheBytes: 4096)
        let whole = try TIFFReader(data: Data(bytes)).read()
        for w in [PixelWindow(x: 0, y: 0, width: 75, height: 61), PixelWindow(x: 13, y: 9, width: 40, height: 33),
                  PixelWindow(x: 74, y: 60, width: 1, height: 1), PixelWindow(x: 31, y: 0, width: 2, height: 61)] {
            #expect(try scene.read(w).data == whole.read(w).data, "window \(w)")
            // Decoding into a reused (dirty) buffer of the window's size gives the same samples,
            // in that buffer; a buffer of another size is replaced.
            var reused = [UInt8](repeating: 0xAB, count: w.pixels * 3 * 2)
            #expect(try scene.read(w, reusing: &reused).data == whole.read(w).data, "window \(w), reused buffer")
            #expect(reused == (try whole.read(w).data))
            var wrong = [UInt8](repeating: 0xAB, count: 3)
            #expect(try scene.read(w, reusing: &wrong).data == whole.read(w).data, "window \(w), buffer of another size")
        }
        #expect(throws: RasterError.self) { try scene.read(PixelWindow(x: 70, y: 0, width: 10, height: 1)) }
    }

    /// The allocation-free band conversion equals the allocating one for every sample type.
    @Test func bandFloat64IntoEqualsBandFloat64() throws {
        for t in SampleType.all {
            var bytes = [UInt8](repeating: 0, count: 5 * 4 * 2 * t.bytes)
            var rng = SplitMix(state: UInt64(t.bits * 10 + Int(t.format.rawValue)))
            for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            if t.format == .float {   // finite values only, so == compares them
                if t.bits == 32 { bytes = (0..<40).flatMap { i in withUnsafeBytes(of: Float(i) * 1.5 - 7) { Array($0) } } }
                else { bytes = (0..<40).flatMap { i in withUnsafeBytes(of: Double(i) * 1.25 - 9) { Array($0) } } }
            }
            let r = try Raster(width: 5, height: 4, bands: 2, sampleType: t, data: bytes)
            var out = [Double](repeating: .nan, count: 25)
            for b in 0..<2 {
                out.withUnsafeMutableBufferPointer { r.bandFloat64(b, into: $0) }
                #expect(Array(out.prefix(20)) == r.bandFloat64(b), "\(t) band \(b)")
                #expect(out[20...].allSatisfy { $0.isNaN })
            }
        }
    }

    /// Only the blocks a window touches are decoded; the cache keeps memory bounded.
    @Test func decodesOnlyTouchedBlocks() throws {
        let r = try Self.pattern(width: 128, height: 128, bands: 2)
        let bytes = try GeoTIFFWriter.encode(r, options: TIFFWriteOptions(compression: .deflate, planarConfiguration: 1,
                                                                          tileWidth: 32, tileLength: 32))
        let scene = try TIFFScene(data: Data(bytes), cacheBytes: 1 << 20)
        _ = try scene.read(PixelWindow(x: 40, y: 40, width: 20, height: 20))   // inside tile (1,1)
        #expect(scene.blocksDecoded == 1)
        _ = try scene.read(PixelWindow(x: 30, y: 30, width: 4, height: 4))     // tiles (0,0) (1,0) (0,1) + cached (1,1)
        #expect(scene.blocksDecoded == 4)
    }

    @Test func npyWindowsInCAndFortranOrder() throws {
        let r = try Self.pattern(width: 9, height: 7, bands: 3)
        let c = try NpyWriter.encodeRaw(r.data, dtype: .uint16, shape: [3, 7, 9])
        let values = r.values(as: UInt16.self)!
        // Fortran order: element (b, y, x) stored at b + 3·(y + 7·x).
        var f = [UInt16](repeating: 0, count: values.count)
        for b in 0..<3 { for y in 0..<7 { for x in 0..<9 { f[b + 3 * (y + 7 * x)] = values[(b * 7 + y) * 9 + x] } } }
        let fb = try NpyWriter.encodeRaw(f.withUnsafeBytes { [UInt8]($0) }, dtype: .uint16, shape: [3, 7, 9], fortranOrder: true)
        let big = try NpyWriter.encodeRaw(values.map { $0.bigEndian }.withUnsafeBytes { [UInt8]($0) },
                                          dtype: NpyDType(kind: .uint, size: 2, littleEndian: false), shape: [3, 7, 9])
        let w = PixelWindow(x: 2, y: 1, width: 5, height: 4)
        let want = try r.read(w).data
        #expect(try NpyScene(data: Data(c)).read(w).data == want)
        #expect(try NpyScene(data: Data(fb)).read(w).data == want)
        #expect(try NpyScene(data: Data(big)).read(w).data == want)
    }

    static let utm50 = GeoReference(pixelScale: [10, 10, 0], tiepoints: [0, 0, 0, 300000, 2500000, 0],
                                    geoKeyDirectory: [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32650])

    /// A 20 m band next to a 10 m band: bilinear to the finest grid; CRS and extent mismatches are errors.
    @Test func stackResamplesCoarseBandsAndRefusesMismatches() throws {
        let fine = try Raster(width: 8, height: 6, bands: 1, values: (0..<48).map { UInt16($0) }, geo: Self.utm50)
        var coarseGeo = Self.utm50
        coarseGeo.pixelScale = [20, 20, 0]
        let coarse = try Raster(width: 4, height: 3, bands: 1, values: (0..<12).map { UInt16($0 * 10) }, geo: coarseGeo)
        let s = try StackedRasterSource([fine, coarse], names: ["B02.tif", "B05.tif"])
        #expect(s.bands == 2 && s.width == 8 && s.height == 6 && s.sampleType == .float64)
        let all = try s.read(PixelWindow(x: 0, y: 0, width: 8, height: 6)).toFloat64()
        #expect(Array(all[0..<48]) == (0..<48).map(Double.init))
        // Output pixel (x=3, y=2) → source coordinate (1.25, 0.75): bilinear between 10·(0..5) values.
        let c = (0..<12).map { Double($0 * 10) }
        let v = (c[0 * 4 + 1] * 0.75 + c[0 * 4 + 2] * 0.25) * 0.25 + (c[1 * 4 + 1] * 0.75 + c[1 * 4 + 2] * 0.25) * 0.75
        #expect(abs(all[48 + 2 * 8 + 3] - v) < 1e-9)
        // Windowed reads agree with the whole read.
        let w = try s.read(PixelWindow(x: 3, y: 1, width: 4, height: 4)).toFloat64()
        #expect(w[16 + 1 * 4 + 0] == all[48 + 2 * 8 + 3])

        var otherCRS = Self.utm50
        otherCRS.geoKeyDirectory![15] = 32651
        let wrongCRS = try Raster(width: 8, height: 6, bands: 1, values: [UInt16](repeating: 1, count: 48), geo: otherCRS)
        #expect(throws: RasterError.self) { try StackedRasterSource([fine, wrongCRS], names: ["a", "b"]) }
        var shifted = Self.utm50
        shifted.tiepoints![3] += 10
        let wrongExtent = try Raster(width: 8, height: 6, bands: 1, values: [UInt16](repeating: 1, count: 48), geo: shifted)
        #expect(throws: RasterError.self) { try StackedRasterSource([fine, wrongExtent], names: ["a", "b"]) }
        let odd = try Raster(width: 3, height: 2, bands: 1, values: [UInt16](repeating: 1, count: 6), geo: coarseGeo)
        #expect(throws: RasterError.self) { try StackedRasterSource([fine, odd], names: ["a", "b"]) }
    }

    /// The COG tile size is 512 except where rio-cogeo would take a level's tiles for strips; a
    /// 512×2100 label COG with the chosen size passes `rio cogeo validate`.
    @Test func cogTileSizeAvoidsImageWideTiles() throws {
        #expect(COGOptions.tileSize(width: 10980, height: 10980) == 512)
        #expect(COGOptions.tileSize(width: 700, height: 1100) == 512)
        #expect(COGOptions.tileSize(width: 512, height: 512) == 512)
        #expect(COGOptions.tileSize(width: 512, height: 1024) == 256)
        #expect(COGOptions.tileSize(width: 512, height: 4096) == 1024)
        #expect(COGOptions.tileSize(width: 1024, height: 4096) == 128)
        for (w, h) in [(512, 600), (512, 2100), (1024, 1100), (2048, 9000), (300, 5000), (16, 100000)] {
            let t = COGOptions.tileSize(width: w, height: h)
            var (lw, lh) = (w, h)
            while true {   // the levels COGWriter makes; each one over 512 must not be one tile wide
                if lw > 512 || lh > 512 { #expect(lw != t, "\(w)×\(h): level \(lw)×\(lh) with \(t)² tiles") }
                guard lw >= 512 || lh >= 512, !(lw == 1 && lh == 1) else { break }
                (lw, lh) = ((lw + 1) / 2, (lh + 1) / 2)
            }
        }
        guard pythonHas(["rio_cogeo", "rasterio"]) else {
            print("skipping rio-cogeo validation: python3 with rio_cogeo and rasterio not available")
            return
        }
        let dir = try makeTempDir("cog-narrow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (w, h) = (512, 2100)
        var o = COGOptions()
        o.colorMap = ClassPalette.colors(count: 5)
        o.nodata = 255
        o.tileSize = COGOptions.tileSize(width: w, height: h)
        let path = dir + "/labels.tif"
        let writer = try COGWriter(path: path, width: w, height: h, bands: 1, sampleType: .uint8, geo: Self.utm50, options: o)
        try writer.append((0..<(w * h)).map { UInt8(($0 % w / 40 + $0 / w / 60) % 5) }, rows: h)
        try writer.finish()
        let (status, out) = try run("python3", ["-c", """
            import sys
            from rio_cogeo.cogeo import cog_validate
            ok, err, warn = cog_validate(sys.argv[1], quiet=True)
            print(ok, err, warn)
            sys.exit(0 if ok and not warn else 1)
            """, path])
        #expect(status == 0, "\(out)")
    }

    /// Streaming COG: the full-resolution image and the overviews read back; layout per the COG rules.
    @Test func cogWriterStreamsAndReadsBack() throws {
        let dir = try makeTempDir("cog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (w, h) = (700, 1100)
        var labels = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { labels[y * w + x] = UInt8((x / 50 + y / 70) % 5) } }
        for y in 100..<200 { for x in 300..<400 { labels[y * w + x] = 255 } }
        var o = COGOptions()
        o.colorMap = ClassPalette.colors(count: 5)
        o.nodata = 255
        o.tileSize = 256
        let path = dir + "/labels.tif"
        let writer = try COGWriter(path: path, width: w, height: h, bands: 1, sampleType: .uint8, geo: Self.utm50, options: o)
        var y = 0
        for n in [192, 192, 300, 1, 415] {
            try writer.append(Array(labels[(y * w)..<((y + n) * w)]), rows: n)
            y += n
        }
        try writer.finish()
        #expect(!FileManager.default.fileExists(atPath: path + ".cog-spool"))
        let back = try TIFFReader(path: path).read()
        #expect(back.values(as: UInt8.self)! == labels)
        #expect(back.geo.epsg == 32650 && back.geo.nodata == "255")
        // Overviews until both sides are below 512: 350×550, 175×275.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // Walk the classic-TIFF IFD chain: (width, height, first tile offset) of each IFD.
        let b = [UInt8](bytes)
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        var ifds: [(Int, Int, UInt64)] = []
        var off = u32(4)
        #expect(off < 300)
        while off != 0 && ifds.count < 10 {
            var wv = 0, hv = 0, first = 0
            for e in 0..<u16(off) {
                let p = off + 2 + 12 * e
                let tag = u16(p), type = u16(p + 2), count = u32(p + 4)
                let value = type == 3 ? u16(p + 8) : u32(p + 8)
                if tag == 256 { wv = value }
                if tag == 257 { hv = value }
                if tag == 324 { first = count == 1 ? value : u32(value) }
            }
            ifds.append((wv, hv, UInt64(first)))
            off = u32(off + 2 + 12 * u16(off))
        }
        #expect(ifds.map { [$0.0, $0.1] } == [[700, 1100], [350, 550], [175, 275]])
        // Data of the smallest overview first, full resolution last.
        #expect(ifds[2].2 < ifds[1].2 && ifds[1].2 < ifds[0].2)
        // Mode resampling keeps nodata only where all four are nodata: the block halves.
        if pythonHas(["rio_cogeo", "rasterio"]) {
            let (status, out) = try run("python3", ["-c", """
                import sys, rasterio
                from rio_cogeo.cogeo import cog_validate
                ok, err, warn = cog_validate(sys.argv[1], quiet=True)
                d = rasterio.open(sys.argv[1])
                print(ok, err, warn, d.overviews(1), d.nodata, len(d.colormap(1)), d.crs.to_epsg())
                sys.exit(0 if ok and not warn else 1)
                """, path])
            #expect(status == 0, "\(out)")
            #expect(out.contains("[2, 4] 255.0 256 32650"), "\(out)")
        } else {
            print("skipping rio-cogeo validation: python3 with rio_cogeo and rasterio not available")
        }
    }

    /// An interrupted writer resumes from its last complete tile row with the same bytes as one run.
    @Test func cogWriterResumes() throws {
        let dir = try makeTempDir("cog-resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (w, h) = (100, 90)
        let labels = (0..<(w * h)).map { UInt8($0 % 7) }
        var o = COGOptions()
        o.tileSize = 32
        let a = dir + "/a.tif", b = dir + "/b.tif"
        let one = try COGWriter(path: a, width: w, height: h, bands: 1, sampleType: .uint8, geo: GeoReference(), options: o)
        try one.append(labels, rows: h)
        try one.finish()
        let first = try COGWriter(path: b, width: w, height: h, bands: 1, sampleType: .uint8, geo: GeoReference(), options: o)
        try first.append(Array(labels[0..<(50 * w)]), rows: 50)   // one tile row durable (32), 18 rows lost
        let second = try COGWriter(resuming: b, width: w, height: h, bands: 1, sampleType: .uint8, geo: GeoReference(), options: o)
        #expect(second.rowsWritten == 32)
        try second.append(Array(labels[(32 * w)...]), rows: h - 32)
        try second.finish()
        #expect(try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)))
    }
}
