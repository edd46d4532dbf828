import Foundation
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// A small georeferenced scene with a nodata block through `spectralx predict --mode tile` and through
/// `POST …/segment?mode=tile`: the same labels pixel for pixel, a valid COG (rio-cogeo, when installed),
/// the block exactly 255. 300×260 with 4 bands: four windows.
@Suite("Scenes end to end", .serialized)
struct SceneEndToEndTests {
    @Test func cliAndServerGiveTheSameCOG() throws {
        let (w, h) = (300, 260)
        var v = [UInt16](repeating: 0, count: 4 * w * h)
        for b in 0..<4 { for y in 0..<h { for x in 0..<w {
            let nodata = (100..<150).contains(x) && (20..<60).contains(y)
            let wave: Double = 400 * sin(Double(x * (b + 1)) * 0.02) + 250 * cos(Double(y) * 0.04)
            v[(b * h + y) * w + x] = nodata ? 0 : UInt16(900 + wave + Double(b * 50))
        } } }
        let geo = GeoReference(pixelScale: [10, 10, 0], tiepoints: [0, 0, 0, 300000, 2500000, 0],
                               geoKeyDirectory: [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32650], nodata: "0")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-scene-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("scene.tif")
        try GeoTIFFWriter.write(try Raster(width: w, height: h, bands: 4, values: v, geo: geo), to: input.path,
                                options: TIFFWriteOptions(compression: .deflate, predictor: 2, planarConfiguration: 1, tileWidth: 64, tileLength: 64))

        let r = try SharedServer.instance.request("POST", "/v1/domains/syn/segment?mode=tile&timeout=3600", headers: [("Content-Type", "image/tiff")],
                                                  body: try Data(contentsOf: input))
        #expect(r.status == 200, "\(r.text)")
        let served = try TIFFReader(data: r.body).read()
        let labels = try #require(served.values(as: UInt8.self))
        for y in 0..<h { for x in 0..<w {
            let nodata = (100..<150).contains(x) && (20..<60).contains(y)
            #expect((labels[y * w + x] == 255) == nodata)
        } }

        guard let exe = BuiltExecutable.spectralx else {
            Issue.record(Comment(rawValue: BuiltExecutable.missingMessage))
            return
        }
        let out = dir.appendingPathComponent("labels.tif")
        let p = Process()
        p.executableURL = exe
        p.arguments = ["predict", "--models", SharedTestStore.root.path, "--domain", "syn", "--mode", "tile", input.path, "-o", out.path]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let predicted = try TIFFReader(path: out.path).read()
        #expect(predicted.values(as: UInt8.self)! == labels, "spectralx predict and the server disagree")
        #expect(try Data(contentsOf: out) == r.body, "the CLI's COG and the server's differ")
        #expect(FileManager.default.fileExists(atPath: out.path + ".aux.xml"))

        // A rerun skips the complete output (exit 0); a bad mode is a usage error (exit 2).
        for (args, status) in [(["predict", "--models", SharedTestStore.root.path, "--domain", "syn", "--mode", "tile", input.path, "-o", out.path], Int32(0)),
                               (["predict", "--domain", "syn", "--mode", "bogus", input.path, "-o", out.path], Int32(2))] {
            let q = Process()
            q.executableURL = exe
            q.arguments = args
            q.standardError = FileHandle.nullDevice
            try q.run()
            q.waitUntilExit()
            #expect(q.terminationStatus == status, "\(args)")
        }

        try validateCOG(at: out)
    }

    /// The same 4-band tile as a C-order .npy, a Fortran-order .npy and a multipart body with two
    /// 2-band GeoTIFF `tile` parts (stacked as bands): the same labels.
    @Test func fortranNpyAndStackedPartsAreTheSameTile() throws {
        let (w, h) = (40, 30)
        var v = [UInt16](repeating: 0, count: 4 * w * h)
        for b in 0..<4 { for y in 0..<h { for x in 0..<w { v[(b * h + y) * w + x] = UInt16(500 + 37 * ((x * (b + 2) + y * 3) % 50)) } } }
        let c = try NpyWriter.encode(v, shape: [4, h, w])
        var f = [UInt16](repeating: 0, count: v.count)
        for b in 0..<4 { for y in 0..<h { for x in 0..<w { f[b + 4 * (y + h * x)] = v[(b * h + y) * w + x] } } }
        let fortran = try NpyWriter.encodeRaw(f.withUnsafeBytes { [UInt8]($0) }, dtype: .uint16, shape: [4, h, w], fortranOrder: true)
        let s = SharedServer.instance
        let a = try s.request("POST", "/v1/domains/syn/segment?timeout=3600", headers: [("Content-Type", "application/x-npy")], body: Data(c))
        let b = try s.request("POST", "/v1/domains/syn/segment?timeout=3600", headers: [("Content-Type", "application/x-npy")], body: Data(fortran))
        #expect(a.status == 200 && b.status == 200, "\(b.text)")
        #expect(a.body == b.body, "Fortran-ordered upload answered differently")

        let geo = GeoReference(pixelScale: [10, 10, 0], tiepoints: [0, 0, 0, 300000, 2500000, 0],
                               geoKeyDirectory: [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32650])
        let first = try GeoTIFFWriter.encode(try Raster(width: w, height: h, bands: 2, values: Array(v[0..<(2 * w * h)]), geo: geo))
        let second = try GeoTIFFWriter.encode(try Raster(width: w, height: h, bands: 2, values: Array(v[(2 * w * h)...]), geo: geo))
        let boundary = "stack-\(UUID().uuidString)"
        var body = Data()
        for (name, part) in [("b0-1.tif", first), ("b2-3.tif", second)] {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"tile\"; filename=\"\(name)\"\r\nContent-Type: image/tiff\r\n\r\n".utf8))
            body.append(Data(part))
            body.append(Data("\r\n".utf8))
        }
        body.append(Data("--\(boundary)--\r\n".utf8))
        let m = try s.request("POST", "/v1/domains/syn/segment?output=npy&timeout=3600", headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")],
                              body: body)
        #expect(m.status == 200, "\(m.text)")
        #expect(m.body == a.body, "stacked parts answered differently from the 4-band tile")
    }
}
