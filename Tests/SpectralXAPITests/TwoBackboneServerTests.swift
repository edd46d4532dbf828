import Foundation
import SpectralXEngine
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// One server process serving a ViT-L domain (B) and a DINOv3 domain (D) at once, both fixture weights
/// regenerated from their manifests: `GET /v1/domains` shows each kind and `tileB-0.tif` posted to each
/// gives the labels of that variant's upstream logits (argmax of logitsB / logitsD image 0 resized to 256²).
@Suite("ViT-L and DINOv3 domains in one server", .serialized)
struct TwoBackboneServerTests {
    @Test func bothKindsServeTheirFixtureResult() throws {
        guard let fixtures = SharedTestStore.fixturesDirectory, SharedTestStore.dinov3Synthesis != nil,
              let dinov3 = SharedTestStore.dinov3FixturesDirectory else {
            print("SKIP: \(SharedTestStore.skipReason) (needs fixtures/dinov3)")
            return
        }
        let server = try TestServer(root: SharedTestStore.root, domains: ["B", "D"])
        defer { server.stop() }

        let list = try server.request("GET", "/v1/domains")
        #expect(list.status == 200)
        let domains = (list.json["domains"] as? [[String: Any]]) ?? []
        let kinds = Dictionary(uniqueKeysWithValues: domains.compactMap { d in
            (d["name"] as? String).map { ($0, d["backbone_kind"] as? String ?? "?") }
        })
        #expect(kinds == ["B": "vit-l", "D": "dinov3"], "\(kinds)")

        let tile = try Data(contentsOf: fixtures.appendingPathComponent("tileB-0.tif"))
        for (domain, logitsURL) in [("B", fixtures.appendingPathComponent("logitsB.npy")),
                                    ("D", dinov3.appendingPathComponent("logitsD.npy"))] {
            let r = try server.request("POST", "/v1/domains/\(domain)/segment", headers: [("Content-Type", "image/tiff")], body: tile)
            #expect(r.status == 200, "\(domain): \(r.text)")
            let out = try TIFFReader(data: r.body).read()
            #expect(out.width == 256 && out.height == 256 && out.bands == 1)
            let logits = try NpyArray.read(path: logitsURL.path)
            let k = logits.shape[1], s = logits.shape[2]
            let first = Array(logits.toFloat32().prefix(k * s * s))
            let resized = try Preprocessing.resizeBilinear(first, channels: k, inHeight: s, inWidth: s, outHeight: 256, outWidth: 256)
            let reference = try Preprocessing.argmax(resized, classes: k, pixels: 256 * 256)
            let labels = out.values(as: UInt8.self) ?? []
            var agree = 0, ties = 0, mismatches = 0
            for p in 0..<(256 * 256) {
                if labels[p] == reference[p] { agree += 1; continue }
                let a = resized[Int(labels[p]) * 256 * 256 + p], b = resized[Int(reference[p]) * 256 * 256 + p]
                if abs(a - b) <= 1e-3 { ties += 1 } else { mismatches += 1 }
            }
            print("domain \(domain) (\(kinds[domain] ?? "?")): \(agree) of \(256 * 256) labels equal the upstream argmax, "
                  + "\(ties) near-ties differ, \(mismatches) real mismatches")
            #expect(mismatches == 0, "\(domain)")
        }
    }
}
