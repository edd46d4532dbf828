import Foundation
import SpectralXAPI
import SpectralXEngineTestSupport
import SpectralXFetch
import SpectralXRaster
import SpectralXRemote
import SpectralXTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Python's http.server on a free loopback port serving a directory (no Range support: the
/// by-reference reader takes a small file's whole 200 answer). Stopped by `stop()` (its own pid).
final class PythonFileServer: Sendable {
    let port: Int
    private let process: Process

    private init(port: Int, process: Process) { self.port = port; self.process = process }

    static func start(directory: URL) throws -> PythonFileServer {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", directory.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        // "Serving HTTP on 127.0.0.1 port N (…)": read until that line (at most 100 reads).
        var text = ""
        for _ in 0..<100 where !text.contains(") ...") {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        guard let r = text.range(of: "port "), let port = Int(text[r.upperBound...].prefix { $0.isNumber }) else {
            p.terminate()
            throw POSIXError(.ECONNREFUSED)
        }
        return PythonFileServer(port: port, process: p)
    }

    /// SIGKILL to the server this test started: a child spawned from a test thread inherits its blocked
    /// signals, so SIGTERM would stay pending (Foundation reaps it; no wait, which can hang off the main thread).
    func stop() { kill(process.processIdentifier, SIGKILL) }
}

/// Jobs whose scene is a URL: JSON bodies, the allow-list, errors at submission.
@Suite(.serialized) struct ReferenceJobTests {
    /// An engine of its own: JobTests' dismissal checks count the shared engine's windows.
    static let engine = JobScenes.fakeEngine(root: FakeStore.shared)

    @Test func jobsByReference() throws {
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-ref-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: files) }
        try JobScenes.twoWindows.write(to: files.appendingPathComponent("scene.tif"))
        let http = try PythonFileServer.start(directory: files)
        defer { http.stop() }
        let base = "http://127.0.0.1:\(http.port)"
        func body(_ inputs: String) -> Data { Data("{\"inputs\": \(inputs)}".utf8) }
        let json = [("Content-Type", "application/json")]
        func code(_ r: WireResponse) -> String? { (r.json["error"] as? [String: Any])?["code"] as? String }

        // Off unless allowed.
        let dirOff = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dirOff) }
        let off = try JobTestServer(directory: dirOff, engine: Self.engine)
        let refused = try off.request("POST", "/v1/domains/syn/jobs", headers: json, body: body("{\"href\": \"\(base)/scene.tif\"}"))
        off.stop()
        #expect(refused.status == 403 && code(refused) == "fetch_not_allowed", "\(refused.text)")

        var api = APIConfiguration()
        api.fetchPolicy = try FetchPolicy(allow: ["\(base)/"])
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try JobTestServer(directory: dir, api: api, engine: Self.engine)
        defer { s.stop() }

        // Refused before connecting: an unlisted port, file: (the metadata and private addresses are
        // tested on the address check itself, FetchPolicyTests: no test names an address off loopback).
        for href in ["http://127.0.0.1:\(http.port + 1)/scene.tif", "file://\(files.path)/scene.tif"] {
            let r = try s.request("POST", "/v1/domains/syn/jobs", headers: json, body: body("{\"href\": \"\(href)\"}"))
            #expect(r.status == 403 && code(r) == "fetch_not_allowed", "\(href): \(r.text)")
        }
        // A 404: 422 naming the URL.
        let missing = try s.request("POST", "/v1/domains/syn/jobs", headers: json, body: body("{\"href\": \"\(base)/missing.tif\"}"))
        #expect(missing.status == 422 && code(missing) == "reference_not_found" && missing.text.contains("\(base)/missing.tif"), "\(missing.text)")
        // Malformed bodies.
        for bad in ["{}", "{\"href\": 3}", "{\"hrefs\": []}"] {
            let r = try s.request("POST", "/v1/domains/syn/jobs", headers: json, body: body(bad))
            #expect(r.status == 400, "\(bad): \(r.text)")
        }
        let notJSON = try s.request("POST", "/v1/domains/syn/jobs", headers: json, body: Data("nope".utf8))
        #expect(notJSON.status == 400)

        // A scene by reference runs like the upload and gives its labels.
        let created = try s.request("POST", "/v1/domains/syn/jobs", headers: json, body: body("{\"href\": \"\(base)/scene.tif\"}"))
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["jobID"] as? String)
        #expect(created.json["windows_total"] as? Int == 2)
        let last = try #require(try s.waitFinal(id).last)
        #expect(last["status"] as? String == "successful", "\(last)")
        #expect((last["bytes_fetched"] as? Int ?? 0) > 0, "\(last)")
        let result = try s.request("GET", "/v1/jobs/\(id)/results")
        #expect(try JobScenes.labels(result.body) == JobScenes.reference)
        // /segment takes the same JSON: the labels equal the uploaded scene's.
        let byRef = try s.request("POST", "/v1/domains/syn/segment?output=npy", headers: json, body: body("{\"href\": \"\(base)/scene.tif\"}"))
        let uploaded = try s.request("POST", "/v1/domains/syn/segment?output=npy", headers: [("Content-Type", "image/tiff")], body: JobScenes.twoWindows)
        #expect(byRef.status == 200 && uploaded.status == 200, "\(byRef.text.prefix(300))")
        #expect(byRef.body == uploaded.body)
        let segMissing = try s.request("POST", "/v1/domains/syn/segment", headers: json, body: body("{\"href\": \"\(base)/missing.tif\"}"))
        #expect(segMissing.status == 422 && segMissing.text.contains("missing.tif"))
        // The fetch counters are in /metrics.
        let metrics = try s.request("GET", "/metrics").text
        #expect(metrics.contains("spectralx_fetch_bytes_total") && metrics.contains("# HELP spectralx_fetch_requests_total"))
        #expect(FetchCounters.process.bytes > 0)
    }

    /// The issue's check: the same COG uploaded, served by nginx (Range, ETag, If-Match) and stored
    /// in an S3-compatible server (moto), each as a job: the three results' labels are identical.
    @Test func uploadNginxAndS3GiveTheSameLabels() throws {
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-ref3-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: files) }
        let path = files.appendingPathComponent("scene.tif").path
        try JobScenes.threeWindows.write(to: URL(fileURLWithPath: path))
        let nginx: NginxServer, moto: MotoServer
        switch (NginxServer.start(serving: path), MotoServer.plain) {
        case (.success(let n), .success(let m)): (nginx, moto) = (n, m)
        case (.failure(let why), _), (_, .failure(let why)):
            print("skip: uploadNginxAndS3GiveTheSameLabels: \(why)")
            return
        }
        defer { nginx.stop() }
        try moto.store(prefix: "").put("ref/scene.tif", data: JobScenes.threeWindows)
        var fetch = Fetcher.Configuration(policy: try FetchPolicy(allow: ["http://127.0.0.1:\(nginx.port)/", "s3://\(MotoServer.bucket)/ref/"]))
        fetch.environment = ["AWS_ACCESS_KEY_ID": MotoServer.credentials.accessKeyID,
                             "AWS_SECRET_ACCESS_KEY": MotoServer.credentials.secretAccessKey,
                             "AWS_ENDPOINT_URL_S3": moto.endpoint.absoluteString, "AWS_REGION": "us-east-1"]
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try JobTestServer(directory: dir, engine: Self.engine, opener: RemoteSceneOpener(configuration: fetch))
        defer { s.stop() }
        let json = [("Content-Type", "application/json")]
        var ids: [String] = []
        for (headers, body) in [([("Content-Type", "image/tiff")], JobScenes.threeWindows),
                                (json, Data(#"{"inputs": {"href": "http://127.0.0.1:\#(nginx.port)/scene.tif"}}"#.utf8)),
                                (json, Data(#"{"inputs": {"href": "s3://\#(MotoServer.bucket)/ref/scene.tif"}}"#.utf8))] {
            let r = try s.request("POST", "/v1/domains/syn/jobs", headers: headers, body: body)
            #expect(r.status == 201, "\(r.text)")
            ids.append(try #require(r.json["jobID"] as? String))
        }
        var labels: [[UInt8]] = []
        for id in ids {
            let last = try #require(try s.waitFinal(id).last)
            #expect(last["status"] as? String == "successful", "\(last)")
            labels.append(try JobScenes.labels(try s.request("GET", "/v1/jobs/\(id)/results").body))
        }
        #expect(labels[0] == labels[1] && labels[0] == labels[2] && !labels[0].isEmpty)
    }
}
