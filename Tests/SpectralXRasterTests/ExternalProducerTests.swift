import Foundation
import Testing
import SpectralXRaster

/// Cross-checks against an independent implementation: files made by tifffile + imagecodecs are
/// read by our reader, and our writer's GeoTIFFs are read by rasterio (GDAL) and tifffile.
/// Skips (with a printed reason) when python3 or the modules are missing.
@Suite struct ExternalProducerTests {
    @Test func readsTifffileMatrix() throws {
        guard pythonHas(["numpy", "tifffile", "imagecodecs"]) else {
            print("skipping: python3 with numpy, tifffile and imagecodecs not available (pip install tifffile imagecodecs)")
            return
        }
        let dir = try makeTempDir("matrix")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, log) = try run("python3", [scriptsDir + "/gen_tiff_matrix.py", dir])
        #expect(status == 0, "generator failed: \(log)")
        guard status == 0 else { return }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json"))) as? [String: Any]
        let cases = (manifest?["cases"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        let extra = manifest?["extra"] as? [String] ?? []
        #expect(cases.count >= 1000)
        var failures: [String] = []
        for name in cases + extra {
            do {
                let r = try TIFFReader.read(path: "\(dir)/\(name).tif")
                let want = try NpyArray.read(path: "\(dir)/\(name).npy")
                let st = r.sampleType
                let kind: NpyDType.Kind = st.format == .float ? .float : (st.format == .int ? .int : .uint)
                if want.dtype.kind != kind || want.dtype.size != st.bytes || want.shape != [r.bands, r.height, r.width] || want.data != r.data {
                    failures.append(name)
                }
                if name.hasPrefix("case") && (r.geo.epsg != 32650 || r.geo.nodata != "-9999") { failures.append(name + " geo") }
            } catch {
                failures.append("\(name): \(error)")
            }
        }
        print("read \(cases.count + extra.count) tifffile-produced files, \(failures.count) failures")
        #expect(failures.isEmpty, "\(failures.prefix(20))")
    }

    @Test func gdalReadsOurLabelRaster() throws {
        guard pythonHas(["numpy", "tifffile", "rasterio"]) else {
            print("skipping: python3 with numpy, tifffile and rasterio not available (pip install tifffile imagecodecs rasterio)")
            return
        }
        let dir = try makeTempDir("gdal")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Georeferencing from the real fixture when present, else the synthetic UTM 50N one.
        var geo = sampleGeo
        let epsg = 32650
        var transform: [Double] = [500000, 10, 0, 3400000, 0, -10]
        if let tile = Shared.fixture("tileA-1.tif") {
            geo = try TIFFReader(path: tile).info.geo
            transform = [505120, 10, 0, 3400000, 0, -10]
        }
        geo.nodata = "255"
        let w = 300, h = 270
        let labels = (0..<(w * h)).map { UInt8(($0 / 7 + $0 % w) % 23) }
        try GeoTIFFWriter.writeLabels(labels, width: w, height: h, geo: geo, to: dir + "/labels.tif")
        let scores = (0..<(2 * 50 * 40)).map { Float($0) / 3 }
        try GeoTIFFWriter.writeScores(scores, bands: 2, width: 40, height: 50, geo: geo, to: dir + "/scores.tif")
        for (file, count, sum, dtype) in [("labels.tif", 1, labels.reduce(0.0) { $0 + Double($1) }, "uint8"),
                                          ("scores.tif", 2, scores.reduce(0.0) { $0 + Double($1) }, "float32")] {
            let (status, out) = try run("python3", [scriptsDir + "/check_geotiff.py", dir + "/" + file])
            #expect(status == 0, "check_geotiff failed: \(out)")
            guard status == 0, let line = out.split(separator: "\n").last,
                  let j = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            print("\(file) as seen by rasterio/tifffile: \(line)")
            #expect(j["epsg"] as? Int == epsg)
            #expect((j["transform"] as? [Double]) == transform)
            #expect(j["nodata"] as? Double == 255)
            #expect(j["dtype"] as? String == dtype && j["count"] as? Int == count)
            #expect(abs((j["sum"] as? Double ?? -1) - sum) <= 1e-6 * max(1, sum))
            #expect(j["tifffile_equal"] as? Bool == true)
        }
    }

    /// Our writer's output for every combination, decoded by tifffile + imagecodecs.
    @Test func tifffileReadsOurWriterMatrix() throws {
        guard pythonHas(["numpy", "tifffile", "imagecodecs"]) else {
            print("skipping: python3 with numpy, tifffile and imagecodecs not available (pip install tifffile imagecodecs)")
            return
        }
        let dir = try makeTempDir("ours")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var n = 0
        for (k, c) in allCombos.enumerated() where c.options.compression != .adobeDeflate {
            let r = try makeRaster(c.type, width: 37, height: 45, bands: 3, seed: UInt64(k + 1))
            try GeoTIFFWriter.write(r, to: "\(dir)/w\(k).tif", options: c.options)
            let dtype = NpyDType(kind: c.type.format == .float ? .float : (c.type.format == .int ? .int : .uint), size: c.type.bytes)
            try writeFileBytes(try NpyWriter.encodeRaw(r.data, dtype: dtype, shape: [3, 45, 37]), "\(dir)/w\(k).npy")
            n += 1
        }
        let (status, out) = try run("python3", [scriptsDir + "/verify_matrix.py", dir])
        print("tifffile on \(n) files written by GeoTIFFWriter: \(out.split(separator: "\n").last ?? "")")
        #expect(status == 0, "\(out)")
    }
}

func writeFileBytes(_ b: [UInt8], _ path: String) throws {
    try Data(b).write(to: URL(fileURLWithPath: path))
}
