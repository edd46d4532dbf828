import Foundation
import SpectralXAPI
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXRaster
import SpectralXTensor
import Testing

/// An NPY (C,H,W) float32 tile.
func npyTile(bands: Int, height: Int = 40, width: Int = 56) throws -> Data {
    var v = [Float](repeating: 0, count: bands * height * width)
    for i in v.indices { v[i] = Float(sin(Double(i) * 0.013)) }
    return Data(try NpyWriter.encode(v, shape: [bands, height, width]))
}

/// On the fake runner: what the routes answer, not what the model computes.
@Suite("API routes over loopback", .serialized)
struct RouteTests {
    var s: TestServer { SharedServer.fake }

    @Test func healthAndReadiness() throws {
        let h = try s.request("GET", "/healthz")
        #expect(h.status == 200 && h.text == #"{"status":"ok"}"#)
        #expect(h.header("Content-Type") == "application/json")
        #expect(try s.request("GET", "/readyz").status == 200)
        // An empty store: alive but not ready.
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let e = try TestServer(root: empty, domains: [], fake: .zero)
        defer { e.stop(); try? FileManager.default.removeItem(at: empty) }
        #expect(try e.request("GET", "/healthz").status == 200)
        let r = try e.request("GET", "/readyz")
        #expect(r.status == 503 && r.errorCode! == (503, "not_ready") && r.header("Retry-After") != nil)
        let seg = try e.request("POST", "/v1/domains/syn/segment", headers: [("Content-Type", "application/x-npy")], body: try npyTile(bands: 4))
        #expect(seg.status == 503 && seg.errorCode!.1 == "not_ready")
    }

    @Test func domainListingAndLookup() throws {
        let list = try s.request("GET", "/v1/domains")
        #expect(list.status == 200)
        let domains = try #require(list.json["domains"] as? [[String: Any]])
        let syn = try #require(domains.first { $0["name"] as? String == "syn" })
        #expect(syn["bands"] as? Int == 4)
        #expect((syn["classes"] as? [[String: Any]])?.count == 3)
        #expect((syn["wavelengths_um"] as? [Double])?.count == 4)
        #expect(syn["state"] as? String == "ready")
        #expect((syn["parameters"] as? [String: Any])?["backbone"] is Int)  // counted from the weights: 0 in a describe-only store
        let one = try s.request("GET", "/v1/domains/syn")
        #expect(one.status == 200 && one.json["name"] as? String == "syn")
        let missing = try s.request("GET", "/v1/domains/nope")
        #expect(missing.status == 404 && missing.errorCode! == (404, "unknown_domain"))
    }

    @Test func unknownRoutesAndWrongMethods() throws {
        let r = try s.request("GET", "/v2/whatever")
        #expect(r.status == 404 && r.errorCode! == (404, "not_found"))
        let m = try s.request("POST", "/healthz", body: Data("x".utf8))
        #expect(m.status == 405 && m.errorCode! == (405, "method_not_allowed"))
        #expect(m.header("Allow") == "GET, HEAD")
        let g = try s.request("GET", "/v1/domains/syn/segment")
        #expect(g.status == 405 && g.header("Allow") == "POST")
    }

    @Test func segmentRefusalsHaveStableCodes() throws {
        func post(_ path: String, _ type: String, _ body: Data) throws -> (Int, String) {
            let r = try s.request("POST", path, headers: [("Content-Type", type)], body: body)
            return r.errorCode ?? (r.status, "no error body: \(r.text)")
        }
        #expect(try post("/v1/domains/syn/segment", "text/plain", Data("hello".utf8)) == (415, "unsupported_media_type"))
        #expect(try post("/v1/domains/nope/segment", "image/tiff", Data("II*\0".utf8)) == (404, "unknown_domain"))
        #expect(try post("/v1/domains/syn/segment", "image/tiff", Data("not a tiff at all".utf8)) == (400, "unrecognized_file"))
        #expect(try post("/v1/domains/syn/segment", "image/tiff", Data([0x49, 0x49, 42, 0, 200, 0, 0, 0])) == (400, "malformed_file"))
        #expect(try post("/v1/domains/syn/segment", "application/x-npy", try npyTile(bands: 3)) == (422, "incompatible_tile"))
        #expect(try post("/v1/domains/syn/segment?output=jpeg", "application/x-npy", try npyTile(bands: 4)) == (400, "invalid_parameter"))
        #expect(try post("/v1/domains/syn/segment?mode=tile&overlap=300", "application/x-npy", try npyTile(bands: 4)) == (400, "invalid_parameter"))
        #expect(try post("/v1/domains/syn/segment?precision=fp16", "application/x-npy", try npyTile(bands: 4)) == (400, "invalid_parameter"))
        if Precision.bf16.unavailableReason != nil {
            // Without AVX512_BF16 bf16 is refused with the reason, never run slowly.
            #expect(try post("/v1/domains/syn/segment?precision=bf16", "application/x-npy", try npyTile(bands: 4)) == (400, "invalid_parameter"))
        } else {
            let r = try s.request("POST", "/v1/domains/syn/segment?precision=bf16", headers: [("Content-Type", "application/x-npy")],
                                  body: try npyTile(bands: 4))
            #expect(r.status == 200 && r.header("X-SpectralX-Precision") == "bf16", "\(r.text)")
        }
        let (type, body) = LoopbackClient.multipart(name: "image", filename: "x.npy", contentType: "application/x-npy", data: try npyTile(bands: 4))
        #expect(try post("/v1/domains/syn/segment", type, body) == (400, "missing_tile_part"))
        // Declared body over the limit: refused from the head, before the body is sent.
        let big = try s.request("POST", "/v1/domains/syn/segment", headers: [("Content-Type", "image/tiff")], declaredLength: 1 << 30)
        #expect(big.status == 413 && big.errorCode?.1 == "payload_too_large")
    }

    @Test func segmentAnswersInEveryOutputFormat() throws {
        let tile = try npyTile(bands: 4)
        let npy = try s.request("POST", "/v1/domains/syn/segment", headers: [("Content-Type", "application/x-npy")], body: tile)
        #expect(npy.status == 200, "\(npy.text)")
        #expect(npy.header("Content-Type") == "application/x-npy")
        let labels = try npy.body.withUnsafeBytes { try NpyArray.decode($0) }
        #expect(labels.shape == [40, 56] && labels.dtype == .uint8)
        #expect(labels.data.allSatisfy { $0 < 3 })
        #expect(npy.header("Server-Timing")?.contains("inference;dur=") == true)
        #expect(Int(npy.header("X-SpectralX-Batch-Size") ?? "") ?? 0 >= 1)
        #expect(npy.header("X-SpectralX-Precision") == "fp32")

        let (type, body) = LoopbackClient.multipart(name: "tile", filename: "t.npy", contentType: "application/octet-stream", data: tile)
        let png = try s.request("POST", "/v1/domains/syn/segment?output=png", headers: [("Content-Type", type)], body: body)
        #expect(png.status == 200 && png.header("Content-Type") == "image/png")
        #expect(png.body.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))

        let json = try s.request("POST", "/v1/domains/syn/segment?output=json&scores=true", headers: [("Content-Type", "application/x-npy")], body: tile)
        #expect(json.status == 200)
        let classes = try #require(json.json["classes"] as? [[String: Any]])
        #expect(classes.compactMap { $0["pixels"] as? Int }.reduce(0, +) == 40 * 56)

        let scores = try s.request("POST", "/v1/domains/syn/segment?output=geotiff&scores=true&mode=tile&overlap=16",
                                   headers: [("Content-Type", "application/x-npy")], body: tile)
        #expect(scores.status == 200)
        let r = try TIFFReader(data: scores.body).read()
        #expect(r.bands == 3 && r.width == 56 && r.height == 40 && r.sampleType == .float32)

        let metrics = try s.request("GET", "/metrics")
        #expect(metrics.status == 200)
        // (spectralx_model_stage_seconds is recorded by the network's runner, not by the fake one.)
        for name in ["spectralx_http_requests_total", "spectralx_batch_size_bucket", "spectralx_queue_depth",
                     "spectralx_http_request_duration_seconds"] {
            #expect(metrics.text.contains(name), "missing \(name)")
        }
    }

    @Test func openAPIDocumentIsTheRepositoryFile() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
        let r = try s.request("GET", "/openapi.yaml")
        #expect(r.status == 200)
        #expect(r.text == (try String(contentsOf: file, encoding: .utf8)),
                "openapi.yaml and the embedded copy differ: run scripts/service/embed.sh")
    }
}
