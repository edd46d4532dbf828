import Foundation
import SpectralXAPI
import SpectralXBlobStore
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXFetch
import SpectralXHTTP
import SpectralXPostgres
import SpectralXTestSupport
import Testing

/// `GET /v1/jobs/{id}/results` (and the OGC route) of a fleet replica, read from the blob store: the
/// same answers as one replica's file (length, ETag, ranges, If-Range, If-None-Match, HEAD) for
/// `file://` and `s3://` (moto on loopback), and the `303` to a presigned URL when configured.
@Suite("Fleet results from the blob store", .serialized)
struct FleetResultRouteTests {
    /// A one-replica fleet behind a loopback server, its job finished.
    static func serve(_ kind: TestBlobStoreKind, presign: Duration? = nil, name: String = #function,
                      _ body: (_ s: JobTestServerClient, _ id: String, _ blobs: any BlobStore) throws -> Void) throws {
        guard let table = try PostgresTestDatabase.freshTable(name + kind.rawValue) else { return }
        guard let blobs = try kind.fresh() else { return }
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = JobScenes.engine
        let jobs = try FleetJobManager(engine: engine, executor: PipelineSceneJobExecutor(engine: engine, limits: .default), table: table,
                                       configuration: FleetConfiguration(jobs: JobConfiguration(directory: dir), replicaID: "r1",
                                                                         lease: .seconds(10), heartbeat: .seconds(1),
                                                                         pollInterval: .milliseconds(100), blobs: blobs, presign: presign))
        defer { _ = jobs.shutdown(until: nil) }
        let server = try HTTPServer(configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0),
                                    handler: SpectralXService(engine: engine, configuration: APIConfiguration(), jobs: jobs))
        try server.start()
        defer { server.shutdown(); server.waitUntilStopped() }
        let s = JobTestServerClient(port: server.port)
        let created = try s.request("POST", "/v1/domains/syn/jobs", headers: [("Content-Type", "image/tiff")], body: JobScenes.twoWindows)
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["jobID"] as? String)
        let end = Date(timeIntervalSinceNow: 120)
        var status = ""
        while Date() < end {
            status = try s.request("GET", "/v1/jobs/\(id)").json["status"] as? String ?? ""
            if ["successful", "failed", "dismissed"].contains(status) { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(status == "successful")
        try body(s, id, blobs)
    }

    @Test("ranges, validators and HEAD on a result in the store", arguments: TestBlobStoreKind.allCases)
    func rangesAndValidators(_ kind: TestBlobStoreKind) throws {
        try Self.serve(kind) { s, id, _ in
            let r = try s.request("GET", "/v1/jobs/\(id)/results")
            #expect(r.status == 200 && r.header("Content-Length") == String(r.body.count))
            #expect(try JobScenes.labels(r.body) == JobScenes.reference, "the labels of the synchronous path")
            let etag = try #require(r.header("ETag"))
            let part = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=0-99")])
            #expect(part.status == 206 && part.body == r.body.prefix(100))
            #expect(part.header("Content-Range") == "bytes 0-99/\(r.body.count)" && part.header("Content-Length") == "100")
            let tail = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=-10")])
            #expect(tail.status == 206 && tail.body == r.body.suffix(10))
            let matching = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=5-9"), ("If-Range", etag)])
            #expect(matching.status == 206 && matching.body == r.body.subdata(in: 5..<10))
            let changed = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=5-9"), ("If-Range", "\"other\"")])
            #expect(changed.status == 200 && changed.body == r.body, "If-Range with another validator: the whole result")
            let beyond = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=\(r.body.count)-")])
            #expect(beyond.status == 416 && beyond.header("Content-Range") == "bytes */\(r.body.count)")
            #expect(try s.request("GET", "/v1/jobs/\(id)/results", headers: [("If-None-Match", etag)]).status == 304)
            let head = try s.request("HEAD", "/v1/jobs/\(id)/results")
            #expect(head.status == 200 && head.header("Content-Length") == String(r.body.count) && head.body.isEmpty)
            let ogc = try s.request("GET", "/jobs/\(id)/results?f=tiff", headers: [("Range", "bytes=0-99")])
            #expect(ogc.status == 206 && ogc.body == r.body.prefix(100))
            let status = try s.request("GET", "/v1/jobs/\(id)").json
            #expect(status["replica"] as? String == "r1", "the status names the replica that ran the job")
        }
    }

    @Test("--blob-presign: 303 to a presigned URL of the object, which serves the same bytes")
    func presignedRedirect() throws {
        try Self.serve(.s3, presign: .seconds(600)) { s, id, _ in
            let r = try s.request("GET", "/v1/jobs/\(id)/results")
            #expect(r.status == 303)
            let location = try #require(r.header("Location").flatMap(URL.init(string:)))
            #expect(location.host == "127.0.0.1" && location.query?.contains("X-Amz-Signature") == true)
            let fetched = try HTTPClient().execute(HTTPClientRequest(url: location))
            #expect(fetched.status == 200)
            #expect(try JobScenes.labels(fetched.body) == JobScenes.reference)
        }
    }
}

/// Requests to a loopback server on `port`.
struct JobTestServerClient {
    let port: Int
    func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: Data = Data()) throws -> WireResponse {
        try LoopbackClient.send(port: port, method: method, path: path, headers: headers, body: body)
    }
}
