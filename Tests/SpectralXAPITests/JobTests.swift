import Foundation
import SpectralXAPI
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXHTTP
import SpectralXRaster
import SpectralXTestSupport
import Synchronization
import Testing

/// A server with a jobs directory over the shared store's `syn` domain (4 bands, 3 classes), on
/// one engine shared by the job tests (loading the store once). Batches of one window so a
/// few-window scene reports progress several times.
final class JobTestServer: Sendable {
    let server: HTTPServer
    let engine: InferenceEngine
    let jobs: JobManager
    let service: SpectralXService
    let directory: URL
    var port: Int { server.port }

    init(directory: URL, api: APIConfiguration = APIConfiguration(), maxJobs: Int = 100, maxBytes: Int64 = 1 << 30,
         ttl: Duration = .seconds(3600), engine: InferenceEngine = JobScenes.engine, opener: (any SceneOpening)? = nil,
         http configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws {
        ServiceMetrics.bootstrap()
        self.directory = directory
        self.engine = engine
        let opener = opener ?? api.sceneOpener
        jobs = try JobManager(engine: engine, executor: PipelineSceneJobExecutor(engine: engine, limits: api.rasterLimits, opener: opener),
                              configuration: JobConfiguration(directory: directory, ttl: ttl, maxJobs: maxJobs, maxBytes: maxBytes))
        var http = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configure(&http)
        service = SpectralXService(engine: engine, configuration: api, jobs: jobs, opener: opener)
        server = try HTTPServer(configuration: http, handler: service)
        try server.start()
    }

    func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: Data = Data()) throws -> WireResponse {
        try LoopbackClient.send(port: port, method: method, path: path, headers: headers, body: body)
    }

    /// What `serve` does on SIGTERM: drain HTTP, let the running job finish its batch (its queued
    /// windows leave the queue) and record its progress. (`serve` then stops the scheduler; the
    /// tests keep the shared engine.)
    func stop() {
        server.shutdown()
        server.waitUntilStopped()
        jobs.shutdown()
    }

    func status(_ id: String, headers: [(String, String)] = []) throws -> [String: Any] {
        try request("GET", "/v1/jobs/\(id)", headers: headers).json
    }

    /// Polls until the job is final; returns every status document seen.
    func waitFinal(_ id: String, timeout: Double = 300) throws -> [[String: Any]] {
        var seen: [[String: Any]] = []
        let end = Date(timeIntervalSinceNow: timeout)
        while Date() < end {
            let s = try status(id)
            seen.append(s)
            if let st = s["status"] as? String, ["successful", "failed", "dismissed"].contains(st) { return seen }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("job \(id) did not finish in \(timeout) s: \(seen.last ?? [:])")
        return seen
    }

    func waitWindows(_ id: String, atLeast n: Int) throws {
        let end = Date(timeIntervalSinceNow: 300)
        while Date() < end {
            let s = try status(id)
            if (s["windows_done"] as? Int ?? 0) >= n { return }
            if let st = s["status"] as? String, ["successful", "failed", "dismissed"].contains(st) {
                Issue.record("job \(id) ended (\(st)) before \(n) windows")
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Issue.record("job \(id) never reached \(n) windows")
    }
}

/// Scenes for the job tests: georeferenced 4-band uint16 GeoTIFFs, `windows` 224-px windows tall.
enum JobScenes {
    static func tiff(width: Int = 224, height: Int) throws -> Data {
        var v = [UInt16](repeating: 0, count: 4 * width * height)
        for b in 0..<4 { for y in 0..<height { for x in 0..<width {
            v[(b * height + y) * width + x] = UInt16(1000 + 300 * sin(Double(x + 7 * b) * 0.05) + 200 * cos(Double(y) * 0.03 + Double(b)))
        } } }
        let geo = GeoReference(pixelScale: [10, 10, 0], tiepoints: [0, 0, 0, 500000, 4_000_000, 0],
                               geoKeyDirectory: [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32650])
        return Data(try GeoTIFFWriter.encode(try Raster(width: width, height: height, bands: 4, values: v, geo: geo)))
    }

    /// 224×416: two windows with the default overlap (origins 0 and 192).
    static let twoWindows = try! tiff(height: 416)
    /// 224×608: three windows.
    static let threeWindows = try! tiff(height: 608)
    /// 224×1024: six windows in one column (origins 0, 192, 384, 576, 768, 800) and two 512-row tile
    /// rows of the COG. Once four windows are reported, rows 0..<576 are in the sink, so tile row 0 is
    /// durable and a restart resumes at row 512: only the windows reaching row 512 and below (the
    /// last four) are computed again.
    static let tall = try! tiff(height: 1024)
    /// The windows a resumed run of `tall` computes when it resumes at row 512.
    static let tallResumedWindows: Int = {
        let plan = WindowPlan(width: 224, height: 1024, overlap: 32)
        return plan.total - plan.firstWindowRow(producing: 512) * plan.xs.count
    }()

    /// The engine every job test server uses: `syn` on the fake runner, half a second a window so
    /// that a job can be stopped or dismissed mid-way.
    static let engine: InferenceEngine = fakeEngine(root: FakeStore.shared)

    static func fakeEngine(root: URL) -> InferenceEngine {
        ServiceMetrics.bootstrap()
        let e = FakeStore.engine(root: root, delay: .milliseconds(500),
                                 scheduler: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .milliseconds(5)))
        try! e.store.load("syn")
        return e
    }

    /// Labels of `twoWindows` through the synchronous engine path (what `/segment` and `predict` compute).
    static let reference: [UInt8] = {
        let raster = try! TIFFReader(data: twoWindows).read()
        return try! engine.segment(domain: "syn", raster: raster, options: SegmentationOptions(mode: .tile)).labels!
    }()

    /// Labels of `tall` through the synchronous engine path.
    static let tallReference: [UInt8] = {
        let raster = try! TIFFReader(data: tall).read()
        return try! engine.segment(domain: "syn", raster: raster, options: SegmentationOptions(mode: .tile)).labels!
    }()

    /// Labels of `tall` on the real network (the shared store's `syn`): what a real `spectralx serve` computes.
    static let realTallReference: [UInt8] = {
        let e = InferenceEngine(store: ModelStore(root: SharedTestStore.root), scheduler: SchedulerConfiguration(maxBatchSize: 1))
        defer { e.scheduler.shutdown() }
        try! e.store.load("syn")
        return try! e.segment(domain: "syn", raster: try! TIFFReader(data: tall).read(), options: SegmentationOptions(mode: .tile)).labels!
    }()

    static func labels(_ tiff: Data) throws -> [UInt8] {
        try #require(try TIFFReader(data: tiff).read().values(as: UInt8.self))
    }

    static func jobsDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-jobs-test-\(UUID().uuidString)")
    }
}

/// Every family in a /metrics text has `# HELP` and `# TYPE`, and `promtool check metrics` (when
/// installed: `apt-get install prometheus`) reports nothing; skipped with a message otherwise.
func checkPrometheusText(_ text: String) {
    let lines = text.split(separator: "\n")
    let typed = Set(lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
    let helped = Set(lines.filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
    #expect(!typed.isEmpty && typed == helped, "families without # HELP: \(typed.subtracting(helped).sorted())")
    guard let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        print("skipping promtool check metrics: promtool not installed (apt-get install prometheus)")
        return
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: promtool)
    p.arguments = ["check", "metrics"]
    let input = Pipe(), output = Pipe()
    p.standardInput = input
    p.standardOutput = output
    p.standardError = output
    do { try p.run() } catch { Issue.record("promtool: \(error)"); return }
    input.fileHandleForWriting.write(Data(text.utf8))
    try? input.fileHandleForWriting.close()
    let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(p.terminationStatus == 0 && said.isEmpty, "promtool check metrics (exit \(p.terminationStatus)): \(said)")
}

/// `spectralx_job_windows_total` from /metrics.
/// `spectralx_job_windows_total` (windows computed by jobs) in a /metrics text.
func jobWindowsMetric(text: String) -> Double {
    let line = text.split(separator: "\n").first { $0.hasPrefix("spectralx_job_windows_total ") }
    return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
}

/// Windows one engine's scheduler starts (its batch observer, installed until `stop`): that engine's
/// work alone, where `spectralx_job_windows_total` counts every engine of the test process (suites
/// run in parallel).
final class StartedWindows: Sendable {
    private let count = Atomic<Int>(0)
    private let engine: InferenceEngine

    init(_ engine: InferenceEngine) {
        self.engine = engine
        engine.scheduler.setBatchObserver { [self] n in count.add(n, ordering: .relaxed) }
    }

    var value: Int { count.load(ordering: .relaxed) }
    func stop() { engine.scheduler.setBatchObserver(nil) }
}

@Suite("Scene jobs over loopback", .serialized)
struct JobTests {
    @Test func submitPollDownloadRangeAndCancel() throws {
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try JobTestServer(directory: dir)
        defer { s.stop() }

        let created = try s.request("POST", "/v1/domains/syn/jobs", headers: [("Content-Type", "image/tiff")], body: JobScenes.twoWindows)
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["jobID"] as? String)
        #expect(created.header("Location") == "/v1/jobs/\(id)")
        #expect(created.json["status"] as? String == "accepted" || created.json["status"] as? String == "running")
        #expect(created.json["windows_total"] as? Int == 2)
        #expect((created.json["options"] as? [String: Any])?["mode"] as? String == "tile")
        let links = try #require(created.json["links"] as? [[String: Any]])
        #expect(links.map { $0["rel"] as? String } == ["self", "http://www.opengis.net/def/rel/ogc/1.0/results"])

        let seen = try s.waitFinal(id)
        let progress = seen.compactMap { $0["progress"] as? Int }
        #expect(progress == progress.sorted(), "progress must not go back: \(progress)")
        #expect(Set(seen.compactMap { $0["status"] as? String }).isSubset(of: ["accepted", "running", "successful"]))
        let last = try #require(seen.last)
        #expect(last["status"] as? String == "successful", "\(last)")
        #expect(last["progress"] as? Int == 100 && last["windows_done"] as? Int == 2)
        #expect(last["started"] is String && last["finished"] is String && last["created"] is String)

        let listed = try s.request("GET", "/v1/jobs?status=successful").json["jobs"] as? [[String: Any]]
        #expect(listed?.compactMap { $0["jobID"] as? String } == [id])
        #expect((try s.request("GET", "/v1/jobs?status=running").json["jobs"] as? [Any])?.isEmpty == true)

        // The result: a valid GeoTIFF with the input's georeferencing and the synchronous path's labels.
        let r = try s.request("GET", "/v1/jobs/\(id)/results")
        #expect(r.status == 200)
        #expect(r.header("Content-Length") == String(r.body.count))
        #expect(r.header("Accept-Ranges") == "bytes")
        let etag = try #require(r.header("ETag"))
        let out = try TIFFReader(data: r.body).read()
        #expect(out.width == 224 && out.height == 416 && out.bands == 1)
        let inGeo = try TIFFReader(data: JobScenes.twoWindows).read().geo
        #expect(out.geo.geoKeyDirectory == inGeo.geoKeyDirectory && out.geo.tiepoints == inGeo.tiepoints
            && out.geo.pixelScale == inGeo.pixelScale && out.geo.nodata == "255")
        #expect(try JobScenes.labels(r.body) == JobScenes.reference)

        // Byte ranges (what GDAL's /vsicurl/ asks for), validators, HEAD.
        let part = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=0-99")])
        #expect(part.status == 206 && part.body == r.body.prefix(100))
        #expect(part.header("Content-Range") == "bytes 0-99/\(r.body.count)" && part.header("Content-Length") == "100")
        let tail = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=-10")])
        #expect(tail.status == 206 && tail.body == r.body.suffix(10))
        let open = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=\(r.body.count - 5)-")])
        #expect(open.status == 206 && open.body == r.body.suffix(5))
        let beyond = try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=\(r.body.count)-")])
        #expect(beyond.status == 416 && beyond.errorCode?.1 == "range_not_satisfiable")
        #expect(beyond.header("Content-Range") == "bytes */\(r.body.count)")
        #expect(try s.request("GET", "/v1/jobs/\(id)/results", headers: [("Range", "bytes=0-1,5-6")]).status == 200)
        #expect(try s.request("GET", "/v1/jobs/\(id)/results", headers: [("If-None-Match", etag)]).status == 304)
        let head = try s.request("HEAD", "/v1/jobs/\(id)/results")
        #expect(head.status == 200 && head.header("Content-Length") == String(r.body.count) && head.body.isEmpty)

        // Cancel a second job mid-way: dismissed, files gone, no further windows.
        let second = try s.request("POST", "/v1/domains/syn/jobs?overlap=32", headers: [("Content-Type", "image/tiff")],
                                   body: JobScenes.threeWindows)
        let id2 = try #require(second.json["jobID"] as? String)
        let started = StartedWindows(s.engine)
        defer { started.stop() }
        try s.waitWindows(id2, atLeast: 1)
        let windowsBefore = started.value
        let doneAtDelete = try s.status(id2)["windows_done"] as? Int ?? 0
        let deleted = try s.request("DELETE", "/v1/jobs/\(id2)")
        #expect(deleted.status == 200 && deleted.json["status"] as? String == "dismissed", "\(deleted.text)")
        let end = Date(timeIntervalSinceNow: 60)
        while FileManager.default.fileExists(atPath: dir.appendingPathComponent(id2).path) && Date() < end {
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(id2).path), "job files removed")
        while s.engine.scheduler.inFlight > 0 && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        let windowsAfter = started.value
        Thread.sleep(forTimeInterval: 1)
        #expect(started.value == windowsAfter, "no windows after the dismissal settled")
        #expect(windowsAfter - windowsBefore <= 1, "at most the group in flight finishes (\(doneAtDelete) done at DELETE)")
        #expect(s.engine.scheduler.queueDepth == 0)
        #expect(try s.status(id2)["status"] as? String == "dismissed")
        let again = try s.request("DELETE", "/v1/jobs/\(id2)")
        #expect(again.errorCode! == (410, "job_dismissed"))

        // Metrics: jobs by status, queue length, windows.
        let metrics = try s.request("GET", "/metrics").text
        #expect(metrics.contains(#"spectralx_jobs{status="successful"} 1"#), "\(metrics)")
        #expect(metrics.contains("spectralx_job_queue_length 0"))
        checkPrometheusText(metrics)
    }

    /// A job interrupted by a graceful stop after its first tile row was durable resumes at row 512
    /// (computing only the windows that reach it: `spectralx_job_windows_total` grows by exactly
    /// those), and one left `running` with a garbage partial result as after `kill -9` restarts from
    /// row 0; both complete after a restart on the same directory with the uninterrupted labels.
    /// On the fake runner (0.5 s a window): 6 windows for the reference, ~5 before the stop, 4
    /// resumed, 2 + 2 for the crashed job and its reference.
    @Test func theHeadChecksRunOncePerRequest() throws {
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try JobTestServer(directory: dir, api: APIConfiguration(adminToken: "adm1n", apiKeys: ["k1"]))
        defer { s.stop() }
        let key = [("X-API-Key", "k1")]
        let unknownJob = "/v1/jobs/\(JobRecord.newID())"
        // (request, expected status): handled ones pass the head check in validateHead and reuse it in handle.
        let cases: [(String, String, [(String, String)], Int)] = [
            ("GET", "/v1/jobs", key, 200),                  // job route, handled (the caller comes from the head check)
            ("GET", unknownJob, key, 404),                  // handled, refused by the handler
            ("GET", "/v1/jobs", [], 401),                   // refused in validateHead
            ("GET", "/v1/jobs/not-an-id", key, 400),        // refused in validateHead
            ("PUT", "/v1/jobs", key, 405),                  // refused in validateHead (method, before the job checks)
            ("GET", "/v1/domains", key, 200),               // segmentation-family route, handled
            ("GET", "/v1/domains", [], 401),
            ("GET", "/healthz", [], 200),
        ]
        for (method, path, headers, status) in cases {
            let before = s.service.headCheckCount
            #expect(try s.request(method, path, headers: headers).status == status, "\(method) \(path)")
            #expect(s.service.headCheckCount - before == 1, "\(method) \(path)")
        }
    }

    @Test func jobsSurviveRestarts() throws {
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let references = [JobScenes.tallReference, JobScenes.reference]
        let a = try JobTestServer(directory: dir)
        let created = try a.request("POST", "/v1/domains/syn/jobs", headers: [("Content-Type", "image/tiff")], body: JobScenes.tall)
        let id = try #require(created.json["jobID"] as? String)
        try a.waitWindows(id, atLeast: 4)
        a.stop()
        let onDisk = try JobRecord.decoder.decode(JobRecord.self, from: Data(contentsOf: dir.appendingPathComponent("\(id)/job.json")))
        #expect(onDisk.status == .accepted, "stopped with windows left: \(onDisk)")
        #expect((onDisk.rowsDone ?? 0) >= 512 && onDisk.windowsDone < onDisk.windowsTotal, "\(onDisk)")
        #expect(onDisk.statistics != nil, "the statistics are recorded for the resume")

        // kill -9 leftovers: a second job whose metadata says running, with a partial result.
        let id2 = JobRecord.newID()
        let d2 = dir.appendingPathComponent(id2)
        try FileManager.default.createDirectory(at: d2, withIntermediateDirectories: true)
        try JobScenes.twoWindows.write(to: d2.appendingPathComponent("input.tif"))
        try Data([0x49, 0x49, 0x2A, 0x00, 1, 2, 3]).write(to: d2.appendingPathComponent("result.partial.tif"))
        var crashed = JobRecord(jobID: id2, domain: "syn", options: JobOptions(), inputFormat: .tiff,
                                inputBytes: Int64(JobScenes.twoWindows.count), width: 224, height: 416, bands: 4,
                                windowsTotal: 2, ownerKeyHash: nil)
        crashed.status = .running
        crashed.windowsDone = 1
        crashed.attempts = 1
        crashed.started = Date()
        try JobStore.durableWrite(try JobRecord.encoder.encode(crashed), to: d2.appendingPathComponent("job.json"))
        // And a submission interrupted before its final rename: must vanish, not become a job.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(".incoming-\(JobRecord.newID())"), withIntermediateDirectories: true)

        // Windows this engine runs from here (a is stopped; the process-wide metric counts other suites' jobs too).
        let started = StartedWindows(JobScenes.engine)
        defer { started.stop() }
        let b = try JobTestServer(directory: dir)
        defer { b.stop() }
        for (job, reference) in zip([id, id2], references) {
            let last = try #require(try b.waitFinal(job).last)
            #expect(last["status"] as? String == "successful", "\(last)")
            let r = try b.request("GET", "/v1/jobs/\(job)/results")
            #expect(r.status == 200)
            #expect(try JobScenes.labels(r.body) == reference, "job \(job) differs from the uninterrupted run")
        }
        // Resumed at row 512: only the windows reaching it were computed (4 of 6); the crashed job's
        // garbage partial result gave no durable rows, so its 2 windows ran again.
        let computed = started.value
        #expect(computed == JobScenes.tallResumedWindows + 2, "windows computed after the restart: \(computed)")
        #expect(JobScenes.tallResumedWindows == 4)
        let resumed = try JobRecord.decoder.decode(JobRecord.self, from: Data(contentsOf: dir.appendingPathComponent("\(id)/job.json")))
        #expect(resumed.attempts == 2 && resumed.windowsDone == 6, "\(resumed)")
        #expect(try b.status(id2)["message"] as? String != nil)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func badInputGetsDocumentedErrors() throws {
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try JobTestServer(directory: dir, api: APIConfiguration(adminToken: "adm1n", apiKeys: ["k1", "k2"]), maxJobs: 2,
                                  maxBytes: Int64(JobScenes.threeWindows.count) * 3 / 2)
        defer { s.stop() }
        let k1 = [("X-API-Key", "k1")], k2 = [("X-API-Key", "k2")], admin = [("Authorization", "Bearer adm1n")]
        let tiff = [("Content-Type", "image/tiff")]
        #expect(try s.request("GET", "/v1/jobs").errorCode! == (401, "unauthorized"))
        #expect(try s.request("GET", "/v1/jobs/\(JobRecord.newID())", headers: k1).errorCode! == (404, "no_such_job"))
        #expect(try s.request("GET", "/v1/jobs/not-a-job", headers: k1).errorCode! == (400, "invalid_job_id"))
        #expect(try s.request("GET", "/v1/jobs/../etc/results", headers: k1).errorCode?.0 ?? 0 >= 400)
        #expect(try s.request("DELETE", "/v1/jobs/NOT-A-UUID", headers: k1).errorCode! == (400, "invalid_job_id"))
        #expect(try s.request("GET", "/v1/jobs?status=bogus", headers: k1).errorCode! == (400, "invalid_parameter"))
        #expect(try s.request("PUT", "/v1/jobs", headers: k1).errorCode! == (405, "method_not_allowed"))
        #expect(try s.request("POST", "/v1/domains/nope/jobs", headers: k1 + tiff, body: JobScenes.twoWindows).errorCode!
            == (404, "unknown_domain"))
        #expect(try s.request("POST", "/v1/domains/syn/jobs", headers: k1 + [("Content-Type", "text/plain")], body: Data("x".utf8))
            .errorCode! == (415, "unsupported_media_type"))
        #expect(try s.request("POST", "/v1/domains/syn/jobs?output=png", headers: k1 + tiff, body: JobScenes.twoWindows)
            .errorCode! == (400, "invalid_parameter"))
        // Not a raster, and a raster with the wrong band count: refused before acceptance, nothing left behind.
        let garbage = try s.request("POST", "/v1/domains/syn/jobs", headers: k1 + tiff, body: Data("this is not a TIFF".utf8))
        #expect(garbage.status == 400, "\(garbage.text)")
        let wrongBands = try s.request("POST", "/v1/domains/syn/jobs", headers: k1 + [("Content-Type", "application/x-npy")],
                                       body: try npyTile(bands: 5))
        #expect(wrongBands.errorCode! == (422, "incompatible_tile"), "\(wrongBands.text)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)

        // A job of k1: results before completion → 409; invisible to k2; visible to the admin token.
        let created = try s.request("POST", "/v1/domains/syn/jobs", headers: k1 + tiff, body: JobScenes.threeWindows)
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.json["jobID"] as? String)
        #expect(try s.request("GET", "/v1/jobs/\(id)/results", headers: k1).errorCode! == (409, "result_not_ready"))
        #expect(try s.request("GET", "/v1/jobs/\(id)", headers: k2).errorCode! == (404, "no_such_job"))
        #expect(try s.request("DELETE", "/v1/jobs/\(id)", headers: k2).errorCode! == (404, "no_such_job"))
        #expect((try s.request("GET", "/v1/jobs", headers: k2).json["jobs"] as? [Any])?.isEmpty == true)
        #expect(try s.request("GET", "/v1/jobs/\(id)", headers: admin).status == 200)
        #expect(try s.request("GET", "/v1/jobs/\(id)", headers: k1).status == 200)

        // Full jobs directory: bytes (507) and count (503 with Retry-After).
        let bytesFull = try s.request("POST", "/v1/domains/syn/jobs", headers: k1 + tiff, body: JobScenes.threeWindows)
        #expect(bytesFull.errorCode! == (507, "insufficient_storage"), "\(bytesFull.text)")
        let small = try s.request("POST", "/v1/domains/syn/jobs", headers: k2 + [("Content-Type", "application/x-npy")],
                                  body: try npyTile(bands: 4))
        #expect(small.status == 201, "\(small.text)")
        let countFull = try s.request("POST", "/v1/domains/syn/jobs", headers: k2 + [("Content-Type", "application/x-npy")],
                                      body: try npyTile(bands: 4))
        #expect(countFull.errorCode! == (503, "too_many_jobs") && countFull.header("Retry-After") != nil, "\(countFull.text)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }.isEmpty)

        // Dismiss both; a second DELETE is 410.
        #expect(try s.request("DELETE", "/v1/jobs/\(id)", headers: k1).json["status"] as? String == "dismissed")
        #expect(try s.request("DELETE", "/v1/jobs/\(id)", headers: k1).errorCode! == (410, "job_dismissed"))
        let smallID = try #require(small.json["jobID"] as? String)
        #expect(try s.request("DELETE", "/v1/jobs/\(smallID)", headers: admin).status == 200)
    }
}

extension JobTests {
    /// `serve --max-job-body`: job uploads have their own limit, independent of `--max-body`. A job
    /// over `--max-body` but within its own limit is accepted; one byte more is refused with 413
    /// naming `--max-job-body` from the headers alone (nothing spooled, nothing in the jobs
    /// directory), also when chunked; `/segment` keeps `--max-body`.
    @Test func jobUploadsHaveTheirOwnBodyLimit() throws {
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let jobLimit = Int64(JobScenes.twoWindows.count)
        let s = try JobTestServer(directory: dir) {
            $0.limits.maxBodySize = 64 << 10
            $0.limits.maxBodySizeName = "--max-body"
            $0.limits.routeBodyLimits = [HTTPRouteBodyLimit(method: "POST", path: "/v1/domains/*/jobs", maxBodySize: jobLimit,
                                                            name: "--max-job-body")]
        }
        defer { s.stop() }
        let tiff = [("Content-Type", "image/tiff")]
        #expect(JobScenes.twoWindows.count > 64 << 10)

        let segment = try s.request("POST", "/v1/domains/syn/segment", headers: tiff, body: JobScenes.twoWindows)
        #expect(segment.errorCode! == (413, "payload_too_large"))
        #expect(segment.errorMessage == "the request body exceeds the limit of 65536 bytes (--max-body)", "\(segment.text)")

        let tooBig = try s.request("POST", "/v1/domains/syn/jobs", headers: tiff, body: JobScenes.twoWindows + Data([0]))
        #expect(tooBig.errorCode! == (413, "payload_too_large"))
        #expect(tooBig.errorMessage == "the request body exceeds the limit of \(jobLimit) bytes (--max-job-body)", "\(tooBig.text)")
        // Declared only (no body sent): refused from the head.
        let declared = try LoopbackClient.send(port: s.port, method: "POST", path: "/v1/domains/syn/jobs", headers: tiff,
                                               body: Data([1]), declaredLength: 8 << 30)
        #expect(declared.errorCode! == (413, "payload_too_large"))
        let chunked = try s.request("POST", "/v1/domains/syn/jobs", headers: tiff + [("Transfer-Encoding", "chunked")],
                                    body: Data("\(String(jobLimit + 1, radix: 16))\r\n".utf8) + JobScenes.twoWindows + Data([0]) + Data("\r\n0\r\n\r\n".utf8))
        #expect(chunked.errorCode! == (413, "payload_too_large"), "\(chunked.text)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty, "nothing written for refused uploads")

        let accepted = try s.request("POST", "/v1/domains/syn/jobs", headers: tiff, body: JobScenes.twoWindows)
        #expect(accepted.status == 201, "\(accepted.text)")
        let id = try #require(accepted.json["jobID"] as? String)
        #expect(try s.request("DELETE", "/v1/jobs/\(id)").status == 200)
    }
}

extension JobTests {
    /// A reload with other weights between submission and run: the queued job is not run on the new
    /// model but fails, saying why; the job already running finishes on the model it started with.
    @Test func aJobDoesNotRunOnAReloadedModel() throws {
        let root = try FakeStore.make()
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = JobScenes.jobsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = JobScenes.fakeEngine(root: root)
        defer { engine.scheduler.shutdown() }
        let s = try JobTestServer(directory: dir, engine: engine)
        defer { s.stop() }
        let tiff = [("Content-Type", "image/tiff")]
        let running = try s.request("POST", "/v1/domains/syn/jobs", headers: tiff, body: JobScenes.threeWindows)
        let queued = try s.request("POST", "/v1/domains/syn/jobs", headers: tiff, body: JobScenes.twoWindows)
        let first = try #require(running.json["jobID"] as? String), second = try #require(queued.json["jobID"] as? String)
        try s.waitWindows(first, atLeast: 1)

        // Other weights under the same name (for a describe-only store: another domain.json).
        let before = try #require(engine.store.domain("syn")).modelDigest
        var changed = FakeStore.syn
        changed.description = "fake: reloaded with other weights"
        try changed.write(to: ModelStoreLayout(root: root).domainConfigURL("syn"))
        #expect(try engine.store.load("syn").modelDigest != before)

        let done = try #require(try s.waitFinal(first).last)
        #expect(done["status"] as? String == "successful", "\(done)")
        let failed = try #require(try s.waitFinal(second).last)
        #expect(failed["status"] as? String == "failed", "\(failed)")
        let message = failed["message"] as? String ?? ""
        #expect(message.contains("model of domain 'syn' changed since the job was submitted"), "\(message)")
        #expect(try s.request("GET", "/v1/jobs/\(second)/results").errorCode?.0 == 409)
    }
}
