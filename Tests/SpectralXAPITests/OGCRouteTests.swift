import Foundation
import SpectralXAPI
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXHTTP
import SpectralXRaster
import Testing

/// OGC API – Processes – Part 1 on the fake runner, organised as the abstract test suite of each
/// requirement class `/conformance` declares (core, ogc-process-description, json, oas30, job-list,
/// dismiss): what the standard's assertions check that can be checked without its test engine.
@Suite("OGC API – Processes", .serialized)
struct OGCRouteTests {
    /// A server with a jobs directory; 20 ms a window so a job lasts long enough to be seen running.
    static let server: JobTestServer = {
        let engine = FakeStore.engine(root: FakeStore.shared, delay: .milliseconds(20),
                                      scheduler: SchedulerConfiguration(maxBatchSize: 2, maxQueueDelay: .milliseconds(2)))
        try! engine.store.load("syn")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-ogc-jobs-\(UUID().uuidString)")
        return try! JobTestServer(directory: dir, engine: engine)
    }()
    var s: JobTestServer { Self.server }

    static let declared = [
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    ]

    /// An execute request with the scene inline.
    static func execute(_ scene: Data, extra: [String: Any] = [:], response: String? = nil) -> Data {
        var inputs: [String: Any] = ["scene": ["value": scene.base64EncodedString(), "mediaType": "image/tiff", "encoding": "base64"]]
        for (k, v) in extra { inputs[k] = v }
        var root: [String: Any] = ["inputs": inputs]
        if let response { root["response"] = response }
        return try! JSONSerialization.data(withJSONObject: root)
    }

    static let json = [("Content-Type", "application/json")]

    /// An OGC exception document: type (URI), title, status equal to the HTTP status, detail.
    func expectException(_ r: WireResponse, _ status: Int, type: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "\(r.status) \(r.text)", sourceLocation: sourceLocation)
        #expect(r.header("Content-Type") == "application/json", sourceLocation: sourceLocation)
        let j = r.json
        #expect((j["type"] as? String)?.contains(":") == true, "\(r.text)", sourceLocation: sourceLocation)
        #expect(j["title"] is String && j["detail"] is String && j["status"] as? Int == status, "\(r.text)", sourceLocation: sourceLocation)
        if let type { #expect(j["type"] as? String == type, sourceLocation: sourceLocation) }
    }

    // MARK: - core

    /// /req/core/landing-page-success: links to the API definition, conformance, processes and jobs.
    @Test func landingPage() throws {
        let r = try s.request("GET", "/")
        #expect(r.status == 200 && r.header("Content-Type") == "application/json")
        let links = try #require(r.json["links"] as? [[String: Any]])
        let rels = Set(links.compactMap { $0["rel"] as? String })
        for rel in ["self", "service-desc", "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                    "http://www.opengis.net/def/rel/ogc/1.0/processes", "http://www.opengis.net/def/rel/ogc/1.0/job-list"] {
            #expect(rels.contains(rel), "landing page lacks rel \(rel)")
        }
        for l in links where l["type"] as? String != "text/html" {
            let href = try #require(l["href"] as? String)
            #expect(try s.request("GET", href).status == 200, "link \(href)")
        }
        // Browsers get the viewer; ?f= overrides Accept; anything else is a 400 exception.
        let html = try s.request("GET", "/", headers: [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")])
        #expect(html.status == 200 && html.header("Content-Type")?.hasPrefix("text/html") == true && html.text.contains("<html"))
        #expect(try s.request("GET", "/?f=json", headers: [("Accept", "text/html")]).header("Content-Type") == "application/json")
        expectException(try s.request("GET", "/?f=xml"), 400)
    }

    /// /req/core/conformance-success: exactly the classes implemented.
    @Test func conformanceListsTheImplementedClasses() throws {
        let r = try s.request("GET", "/conformance")
        #expect(r.status == 200)
        #expect(Set(r.json["conformsTo"] as? [String] ?? []) == Set(Self.declared))
    }

    /// /req/core/process-list, /req/core/process-success, /req/core/process-exception/no-such-process.
    @Test func processesAndDescriptions() throws {
        let list = try s.request("GET", "/processes")
        #expect(list.status == 200)
        let processes = try #require(list.json["processes"] as? [[String: Any]])
        let syn = try #require(processes.first { $0["id"] as? String == "syn" })
        #expect(syn["version"] is String)
        #expect(Set(syn["jobControlOptions"] as? [String] ?? []) == ["sync-execute", "async-execute", "dismiss"])
        #expect((list.json["links"] as? [[String: Any]])?.contains { $0["rel"] as? String == "self" } == true)
        let d = try s.request("GET", "/processes/syn")
        #expect(d.status == 200)
        let links = try #require(d.json["links"] as? [[String: Any]])
        #expect(links.contains { $0["rel"] as? String == "http://www.opengis.net/def/rel/ogc/1.0/execute" })
        let stac = try #require(links.first { $0["rel"] as? String == "describedby" }?["href"] as? String)
        let card = try s.request("GET", stac)
        #expect(card.status == 200 && card.header("Content-Type") == "application/geo+json")
        #expect((card.json["properties"] as? [String: Any])?["mlm:name"] as? String == "spectralx-syn")
        expectException(try s.request("GET", "/processes/nope"), 404,
                        type: "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process")
        expectException(try s.request("POST", "/processes/nope/execution", headers: Self.json, body: Data("{}".utf8)), 404,
                        type: "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-process")
        let m = try s.request("POST", "/processes", body: Data("x".utf8))
        expectException(m, 405)
        #expect(m.header("Allow") == "GET, HEAD")
    }

    // MARK: - ogc-process-description

    /// /req/ogc-process-description/inputs-def, outputs-def: every input and output has a JSON Schema.
    @Test func processDescriptionSchema() throws {
        let d = try s.request("GET", "/processes/syn").json
        #expect(d["id"] as? String == "syn")
        let inputs = try #require(d["inputs"] as? [String: [String: Any]])
        #expect(Set(inputs.keys) == ["scene", "mode", "overlap", "scores", "nodata_mask", "nodata_rule", "output_nodata", "precision"])
        for (name, i) in inputs {
            #expect(i["schema"] is [String: Any], "input \(name) has no schema")
            #expect(i["minOccurs"] is Int && i["maxOccurs"] is Int && i["title"] is String, "input \(name)")
        }
        #expect(inputs["scene"]?["minOccurs"] as? Int == 1)
        #expect((inputs["overlap"]?["schema"] as? [String: Any])?["maximum"] as? Int == 223)
        let outputs = try #require(d["outputs"] as? [String: [String: Any]])
        #expect(outputs["labels"]?["schema"] is [String: Any])
        #expect((outputs["labels"]?["description"] as? String)?.contains("0=class_0") == true)
    }

    // MARK: - core: execution

    /// /req/core/process-execute-sync-one (raw) and the document response; bad requests are 4xx exceptions.
    @Test func synchronousExecution() throws {
        let tile = try JobScenes.tiff(height: 224)
        let raw = try s.request("POST", "/processes/syn/execution", headers: Self.json, body: Self.execute(tile))
        #expect(raw.status == 200, "\(raw.text)")
        #expect(raw.header("Content-Type") == "image/tiff; application=geotiff; profile=cloud-optimized")
        #expect(raw.body.prefix(2) == Data("II".utf8) && raw.header("Preference-Applied") == nil)
        #expect(raw.header("Server-Timing")?.contains("total") == true && raw.header("X-SpectralX-Batch-Size") != nil)
        // The same labels as /v1's segment route: one Segmenter behind both.
        let v1 = try s.request("POST", "/v1/domains/syn/segment?mode=tile&output=geotiff", headers: [("Content-Type", "image/tiff")], body: tile)
        let a = try TIFFReader(data: raw.body).read(), b = try TIFFReader(data: v1.body).read()
        #expect(a.values(as: UInt8.self) == b.values(as: UInt8.self) && a.values(as: UInt8.self) != nil)
        let doc = try s.request("POST", "/processes/syn/execution", headers: Self.json, body: Self.execute(tile, response: "document"))
        #expect(doc.status == 200 && doc.header("Content-Type") == "application/json")
        let labels = try #require(doc.json["labels"] as? [String: Any])
        let bytes = try #require(Data(base64Encoded: labels["value"] as? String ?? ""))
        #expect(bytes == raw.body)

        func refused(_ body: Data, _ status: Int = 400, headers: [(String, String)] = Self.json) throws {
            expectException(try s.request("POST", "/processes/syn/execution", headers: headers, body: body), status)
        }
        try refused(Data("not json".utf8))
        try refused(Data(#"{"inputs": {}}"#.utf8))
        try refused(Self.execute(tile, extra: ["colour": "red"]))
        try refused(Self.execute(tile, extra: ["overlap": 300]))
        try refused(Self.execute(tile, extra: ["mode": 3]))
        try refused(Data(#"{"inputs": {"scene": {"href": "http://127.0.0.1:9/x.tif"}}}"#.utf8), 403)  // no --fetch-allow
        try refused(Data(#"{"inputs": {"scene": "aGVsbG8gd29ybGQ="}}"#.utf8))  // "hello world": not a raster
        try refused(Self.execute(tile), 415, headers: [("Content-Type", "image/tiff")])
        try refused(Self.execute(try npyTile(bands: 3)))  // declared image/tiff, the bytes are NPY
    }

    /// /req/core/process-execute-auto-execution-mode and job-creation: `Prefer: respond-async` → 201,
    /// Location, Preference-Applied and a statusInfo; then status, job list, results, dismiss.
    @Test func asynchronousExecutionAndJobs() throws {
        let scene = try JobScenes.tiff(height: 608)
        let r = try s.request("POST", "/processes/syn/execution", headers: Self.json + [("Prefer", "respond-async")], body: Self.execute(scene))
        #expect(r.status == 201, "\(r.text)")
        let id = try #require(r.json["jobID"] as? String)
        #expect(r.header("Location") == "/jobs/\(id)" && r.header("Preference-Applied") == "respond-async")
        #expect(["accepted", "running"].contains(r.json["status"] as? String ?? "") && r.json["processID"] as? String == "syn")
        // Not finished yet, or just finished: the results answer 404 result-not-ready or the document.
        let early = try s.request("GET", "/jobs/\(id)/results")
        if early.status != 200 {
            expectException(early, 404, type: "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready")
        }
        var status = ""
        let end = Date(timeIntervalSinceNow: 60)
        while Date() < end {
            let st = try s.request("GET", "/jobs/\(id)")
            #expect(st.status == 200)
            status = st.json["status"] as? String ?? ""
            if status == "successful" { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(status == "successful")
        let st = try s.request("GET", "/jobs/\(id)").json
        let links = try #require(st["links"] as? [[String: Any]])
        #expect(links.contains { $0["rel"] as? String == "self" && $0["href"] as? String == "/jobs/\(id)" })
        #expect(links.contains { $0["rel"] as? String == "http://www.opengis.net/def/rel/ogc/1.0/results" })
        // job-list
        let list = try s.request("GET", "/jobs")
        #expect(list.status == 200)
        #expect((list.json["jobs"] as? [[String: Any]])?.contains { $0["jobID"] as? String == id } == true)
        // results: the document references the COG, which answers ranges.
        let res = try s.request("GET", "/jobs/\(id)/results")
        #expect(res.status == 200)
        let href = try #require((res.json["labels"] as? [String: Any])?["href"] as? String)
        let cog = try s.request("GET", href)
        #expect(cog.status == 200 && cog.header("Content-Type") == "image/tiff; application=geotiff; profile=cloud-optimized")
        #expect(try TIFFReader(data: cog.body).read().height == 608)
        let part = try s.request("GET", href, headers: [("Range", "bytes=0-7")])
        #expect(part.status == 206 && part.body.count == 8)
        #expect(try s.request("GET", "/jobs/\(id)/results", headers: [("Accept", "image/tiff")]).body == cog.body)
        // The /v1 view of the same job is unchanged.
        #expect(try s.request("GET", "/v1/jobs/\(id)").json["processID"] as? String == "segment")
        // dismiss
        let del = try s.request("DELETE", "/jobs/\(id)")
        #expect(del.status == 200 && del.json["status"] as? String == "dismissed")
        expectException(try s.request("GET", "/jobs/\(id)/results"), 404)
        expectException(try s.request("DELETE", "/jobs/\(id)"), 410,
                        type: "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job")
        expectException(try s.request("GET", "/jobs/\(UUID().uuidString.lowercased())"), 404,
                        type: "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/no-such-job")
        expectException(try s.request("GET", "/jobs/not-a-job"), 404)
    }

    /// Without a jobs directory `Prefer: respond-async` is a preference the server does not apply (RFC 7240).
    @Test func preferAsyncWithoutJobsRunsSynchronously() throws {
        let r = try SharedServer.fake.request("POST", "/processes/syn/execution", headers: Self.json + [("Prefer", "respond-async")],
                                              body: Self.execute(try JobScenes.tiff(height: 224)))
        #expect(r.status == 200 && r.header("Preference-Applied") == nil)
        expectException(try SharedServer.fake.request("GET", "/jobs"), 404)
    }

    // MARK: - oas30

    /// /req/oas30/oas-definition-1: the API definition describes every OGC path.
    @Test func openAPIDescribesTheOGCRoutes() throws {
        let yaml = try s.request("GET", "/openapi.yaml").text
        for path in ["/:", "/conformance:", "/processes:", "/processes/{processID}:", "/processes/{processID}/execution:",
                     "/jobs:", "/jobs/{jobID}:", "/jobs/{jobID}/results:", "/v1/domains/{name}/stac:"] {
            #expect(yaml.contains("\n  \(path)\n"), "openapi.yaml lacks \(path)")
        }
    }

    /// Errors of the HTTP layer itself (here a body over the limit, refused from the declared length,
    /// and an unsupported transfer coding) are OGC exception documents on the OGC routes too, and
    /// keep the `/v1` error body on the `/v1` routes.
    @Test func httpLayerErrorsAreExceptionsOnOGCRoutes() throws {
        let big = try LoopbackClient.send(port: s.port, method: "POST", path: "/processes/syn/execution", headers: Self.json,
                                          body: Data([1]), declaredLength: 8 << 30)
        expectException(big, 413, type: "urn:spectralx:error:payload_too_large")
        #expect(big.json["code"] as? String == "payload_too_large")
        let coding = try s.request("POST", "/processes/syn/execution", headers: Self.json + [("Transfer-Encoding", "gzip, chunked")],
                                   body: Data("0\r\n\r\n".utf8))
        expectException(coding, 501)
        let v1 = try LoopbackClient.send(port: s.port, method: "POST", path: "/v1/domains/syn/segment",
                                         headers: [("Content-Type", "image/tiff")], body: Data([1]), declaredLength: 8 << 30)
        #expect(v1.errorCode! == (413, "payload_too_large"))
    }

    @Test func viewerPageIsTheRepositoryFile() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("viewer/index.html")
        #expect(try s.request("GET", "/?f=html").text == (try String(contentsOf: file, encoding: .utf8)),
                "viewer/index.html and the embedded copy differ: run scripts/service/embed.sh")
    }
}
