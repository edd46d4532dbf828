import Foundation
import SpectralXEngine
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// The fixture tile through the whole service: domain A synthesized from the fixture manifest,
/// tileA-0.tif posted raw and as multipart, the label GeoTIFF compared with the upstream logits.
@Suite("End to end on the upstream fixtures", .serialized)
struct FixtureEndToEndTests {
    @Test func tileA0LabelsMatchUpstreamArgmax() throws {
        guard let fixtures = SharedTestStore.fixturesDirectory else {
            print("skipping end-to-end fixture test: no shared/fixtures (set SPECTRALX_SHARED)")
            return
        }
        let s = SharedServer.instance
        let tileURL = fixtures.appendingPathComponent("tileA-0.tif")
        let tile = try Data(contentsOf: tileURL)
        let input = try TIFFReader(path: tileURL.path).read()

        let raw = try s.request("POST", "/v1/domains/A/segment", headers: [("Content-Type", "image/tiff")], body: tile)
        #expect(raw.status == 200, "\(raw.text)")
        #expect(raw.header("Content-Type")?.hasPrefix("image/tiff") == true)
        let out = try TIFFReader(data: raw.body).read()
        #expect(out.width == 512 && out.height == 512 && out.bands == 1 && out.sampleType == .uint8)
        #expect(out.width == input.width && out.height == input.height)
        #expect(out.geo.crsAndTransform == input.geo.crsAndTransform, "georeferencing not carried over: \(out.geo) vs \(input.geo)")
        #expect(out.geo.nodata == "255")
        #expect(!input.geo.isEmpty)

        let (type, body) = LoopbackClient.multipart(name: "tile", filename: "tileA-0.tif", contentType: "image/tiff", data: tile)
        let multi = try s.request("POST", "/v1/domains/A/segment", headers: [("Content-Type", type)], body: body)
        #expect(multi.status == 200)
        #expect(multi.body == raw.body, "multipart and raw uploads gave different answers")

        // Reference: argmax of logitsA[0] resized bilinearly (align_corners=False) to 512×512.
        let logits = try NpyArray.read(path: fixtures.appendingPathComponent("logitsA.npy").path)
        let k = logits.shape[1], s224 = logits.shape[2]
        let first = Array(logits.toFloat32().prefix(k * s224 * s224))
        let resized = try Preprocessing.resizeBilinear(first, channels: k, inHeight: s224, inWidth: s224, outHeight: 512, outWidth: 512)
        let reference = try Preprocessing.argmax(resized, classes: k, pixels: 512 * 512)
        let labels = out.values(as: UInt8.self)!
        var agree = 0, tiesOnly = 0, realMismatch = 0
        for p in 0..<(512 * 512) {
            if labels[p] == reference[p] { agree += 1; continue }
            // A mismatch is a tie when the two classes' reference logits are within the fp32 parity noise.
            let a = resized[Int(labels[p]) * 512 * 512 + p], b = resized[Int(reference[p]) * 512 * 512 + p]
            if abs(a - b) <= 1e-3 { tiesOnly += 1 } else { realMismatch += 1 }
        }
        let pct = 100 * Double(agree) / Double(512 * 512)
        print(String(format: "fixture tileA-0: %.4f%% of labels equal the upstream argmax (%d near-ties differ, %d real mismatches)",
                     pct, tiesOnly, realMismatch))
        #expect(realMismatch == 0)

        // `spectralx predict` on the same file, through the same engine offline: the same labels.
        guard let exe = BuiltExecutable.spectralx else {
            Issue.record(Comment(rawValue: BuiltExecutable.missingMessage))
            return
        }
        let outFile = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-predict-\(getpid()).tif")
        defer { try? FileManager.default.removeItem(at: outFile) }
        let p = Process()
        p.executableURL = exe
        p.arguments = ["predict", "--models", SharedTestStore.root.path, "--domain", "A", tileURL.path, "-o", outFile.path, "--overwrite"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let predicted = try TIFFReader(path: outFile.path).read()
        #expect(predicted.values(as: UInt8.self)! == labels, "spectralx predict and the server disagree")
        #expect(predicted.geo.crsAndTransform == input.geo.crsAndTransform)
    }
}

extension GeoReference {
    /// The georeferencing proper: CRS keys and transform (outputs set their own nodata and metadata).
    var crsAndTransform: GeoReference {
        var g = self
        g.nodata = nil
        g.gdalMetadata = nil
        return g
    }
}
