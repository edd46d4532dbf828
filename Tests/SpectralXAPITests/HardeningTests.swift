import Foundation
import SpectralXAPI
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXTestSupport
import Testing

/// Issue 10: credentials that mean something, and no file in the store that can stop the process.
@Suite("Hardening: credentials and defective domains", .serialized)
struct HardeningTests {
    @Test func apiKeysWithoutAnAdminTokenDisableTheAdminRoutes() throws {
        let dir = try FakeStore.make()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try TestServer(root: dir, domains: ["syn"], api: APIConfiguration(apiKeys: ["k1"]), fake: .zero)
        defer { s.stop() }
        for method in ["PUT", "DELETE"] {
            for headers in [[], [("X-API-Key", "k1")], [("Authorization", "Bearer k1")]] {
                let r = try s.request(method, "/v1/domains/syn", headers: headers)
                #expect(r.errorCode! == (403, "admin_disabled"), "\(method) \(headers)")
                #expect(r.text.contains("--admin-token"))
            }
        }
        // The domain is still served.
        #expect(try s.request("GET", "/readyz").status == 200)
        #expect(try s.request("GET", "/v1/domains/syn", headers: [("X-API-Key", "k1")]).status == 200)
    }

    @Test func anAdminTokenWithAPIKeysStillOpensTheAdminRoutesToItsHolder() throws {
        let dir = try FakeStore.make()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try TestServer(root: dir, domains: ["syn"], api: APIConfiguration(adminToken: "adm", apiKeys: ["k1"]), fake: .zero)
        defer { s.stop() }
        #expect(try s.request("DELETE", "/v1/domains/syn", headers: [("Authorization", "Bearer k1")]).errorCode! == (401, "unauthorized"))
        #expect(try s.request("PUT", "/v1/domains/syn", headers: [("Authorization", "Bearer adm")]).status == 200)
    }

    /// One domain of each kind of defect next to a good one: start-up survives, the good one serves,
    /// `PUT` of each bad one is a 422 naming the problem, and the good one keeps serving.
    @Test func aStoreWithDefectiveDomainsServesTheGoodOne() throws {
        let dir = try SharedTestStore.scratchStore(domains: ["syn"])
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = ModelStoreLayout(root: dir)
        let fm = FileManager.default
        let good = try String(contentsOf: layout.domainConfigURL("syn"), encoding: .utf8)
        /// A domain directory with the good adapter (hard link) and domain.json edited by `edit`.
        func domain(_ name: String, adapter: Data? = nil, _ edit: (inout [String: Any]) -> Void) throws {
            try fm.createDirectory(at: layout.domainDirectory(name), withIntermediateDirectories: true)
            if let adapter { try adapter.write(to: layout.adapterURL(name)) } else {
                try fm.linkItem(at: layout.adapterURL("syn"), to: layout.adapterURL(name))
            }
            var json = try JSONSerialization.jsonObject(with: Data(good.utf8)) as! [String: Any]
            json["name"] = name
            json["adapter_sha256"] = nil
            edit(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: layout.domainConfigURL(name))
        }
        // The defect each domain carries and a word its refusal must contain.
        try domain("onewavelength") { $0["bands"] = 1; $0["wavelengths_um"] = [0.5] }      // synth --bands 1 (the crash)
        try domain("onelisted") { $0["wavelengths_um"] = [0.5] }                               // 4 bands, one wavelength
        try domain("farinfrared") { $0["wavelengths_um"] = [0.5, 0.6, 0.7, 1e30] }            // implausible wavelength
        try domain("nanometres") { $0["wavelengths_um"] = [490, 560, 665, 842] }              // unit mistake
        try domain("noclasses") { $0["classes"] = 0; $0["class_names"] = [String]() }
        try domain("manyclasses") { $0["classes"] = 300; $0["class_names"] = (0..<300).map { "c\($0)" } }
        try domain("bandcount") { $0["bands"] = 5; $0["wavelengths_um"] = [0.5, 0.6, 0.7, 0.8, 0.9] }
        try domain("classcount") { $0["classes"] = 4; $0["class_names"] = ["a", "b", "c", "d"] }
        try domain("notjson") { _ in }
        try Data("{ not json".utf8).write(to: layout.domainConfigURL("notjson"))
        try domain("garbage", adapter: Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })) { _ in }
        // A well-framed adapter that holds only the two tensors giving C and K: refused from its header.
        let w = try SafeTensorsWriter(tensors: [
            .init(name: StateDictLayout.bandsKey, dtype: .f32, shape: [64, 4, 1, 1]),
            .init(name: StateDictLayout.classesKey, dtype: .f32, shape: [3, 512, 1, 1]),
        ])
        try fm.createDirectory(at: layout.domainDirectory("headeronly"), withIntermediateDirectories: true)
        _ = try w.write(to: layout.adapterURL("headeronly"), hashTensors: false) { _, _, b in b.initializeMemory(as: UInt8.self, repeating: 0) }
        var cfg = try layout.loadDomainConfig("syn")
        cfg.name = "headeronly"; cfg.adapterSHA256 = nil
        try cfg.write(to: layout.domainConfigURL("headeronly"))
        let expected: [String: String] = [
            "onewavelength": "bands must be between 2", "onelisted": "at least two wavelengths",
            "farinfrared": "plausible range", "nanometres": "plausible range", "noclasses": "classes must be between",
            "manyclasses": "classes must be between", "bandcount": "band count mismatch", "classcount": "class count mismatch",
            "notjson": "domain config", "garbage": "adapter.safetensors", "headeronly": "missing",
        ]

        // Start-up: loadAll over the whole store (what `serve` does) survives and serves the good one.
        let s = try TestServer(root: dir, domains: [], api: APIConfiguration(adminToken: "adm"))
        defer { s.stop() }
        let results = Dictionary(uniqueKeysWithValues: s.engine.store.loadAll().map { ($0.name, $0.error) })
        #expect(results["syn"]! == nil)
        #expect(s.engine.store.domains.map(\.name) == ["syn"])
        #expect(Set(s.engine.store.failures.map(\.name)) == Set(expected.keys))
        for (name, word) in expected {
            let r = try s.request("PUT", "/v1/domains/\(name)", headers: [("Authorization", "Bearer adm")])
            #expect(r.errorCode! == (422, "invalid_domain"), "\(name): \(r.text)")
            #expect(r.text.contains(word), "\(name): \(r.text)")
        }
        let list = try s.request("GET", "/v1/domains").json
        #expect((list["failed"] as? [[String: Any]])?.count == expected.count)
        let seg = try s.request("POST", "/v1/domains/syn/segment?output=json", headers: [("Content-Type", "application/x-npy")],
                                body: try npyTile(bands: 4))
        #expect(seg.status == 200)
    }
}
