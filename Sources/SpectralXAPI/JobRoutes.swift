import Foundation
import Logging
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXHTTP
import SpectralXSupport

/// The job routes of service.md §2.1 (OGC API – Processes – Part 1 naming).
enum JobRoute: Equatable {
    /// `POST /v1/domains/{name}/jobs`
    case submit(domain: String)
    /// `GET /v1/jobs`
    case collection
    /// `GET` / `DELETE /v1/jobs/{id}`
    case job(String)
    /// `GET /v1/jobs/{id}/results`
    case results(String)

    /// Path segments after the leading "/" (e.g. ["v1", "jobs", id]).
    init?(segments p: [String]) {
        switch p.count {
        case 2 where p == ["v1", "jobs"]: self = .collection
        case 3 where p[0] == "v1" && p[1] == "jobs" && !p[2].isEmpty: self = .job(p[2])
        case 4 where p[0] == "v1" && p[1] == "jobs" && !p[2].isEmpty && p[3] == "results": self = .results(p[2])
        case 4 where p[0] == "v1" && p[1] == "domains" && !p[2].isEmpty && p[3] == "jobs": self = .submit(domain: p[2])
        default: return nil
        }
    }

    var allowedMethods: [String] {
        switch self {
        case .submit: return ["POST"]
        case .collection, .results: return ["GET", "HEAD"]
        case .job: return ["GET", "HEAD", "DELETE"]
        }
    }

    var label: String {
        switch self {
        case .submit: return "/v1/domains/{name}/jobs"
        case .collection: return "/v1/jobs"
        case .job: return "/v1/jobs/{id}"
        case .results: return "/v1/jobs/{id}/results"
        }
    }

    var jobID: String? {
        switch self {
        case .job(let id), .results(let id): return id
        case .submit, .collection: return nil
        }
    }
}

/// Who calls a job route. With API keys configured a job belongs to the key that created it
/// (stored as its SHA-256) and only that key, or the admin token, sees or dismisses it.
enum JobCaller: Equatable, Sendable {
    /// No API keys configured: every job is visible to every client.
    case open
    case admin
    case key(hash: String)

    var ownerKeyHash: String? {
        if case .key(let h) = self { return h }
        return nil
    }

    func canAccess(_ r: JobRecord) -> Bool {
        switch self {
        case .open, .admin: return true
        case .key(let h): return r.ownerKeyHash == nil || r.ownerKeyHash == h
        }
    }

    static func hash(_ key: String) -> String { SHA256.hash(Array(key.utf8)).hex }
}

extension SpectralXService {
    /// The caller of a job route, or the 401 error.
    func jobCaller(_ headers: HTTPHeaders) -> Result<JobCaller, APIError> {
        guard !configuration.apiKeys.isEmpty else { return .success(.open) }
        let presented = headers["X-API-Key"] ?? bearer(headers)
        if let presented {
            if let admin = configuration.adminToken, ConstantTime.equals(presented, admin) { return .success(.admin) }
            var ok = false
            for key in configuration.apiKeys where ConstantTime.equals(presented, key) { ok = true }
            if ok { return .success(.key(hash: JobCaller.hash(presented))) }
        }
        var e = APIError(.unauthorized, "unauthorized",
                         "an API key is required ('X-API-Key: KEY' or 'Authorization: Bearer KEY'; the admin token also works)")
        e.headers = [("WWW-Authenticate", "Bearer realm=\"spectralx\"")]
        return .failure(e)
    }

    /// Runs a job route (its head passed `checkJobHead`, which found `caller`).
    func respondToJobRoute(_ route: JobRoute, _ request: HTTPRequest, caller: JobCaller, logger: Logger) throws -> HTTPResponse {
        guard let jobs else { throw APIError(.notFound, "jobs_disabled", "this server runs without a jobs directory") }
        return try JobRoutes(service: self, jobs: jobs, request: request, caller: caller, logger: logger).respond(route)
    }

    /// Head checks of the job routes: enabled, authorised, well-formed id, and for a submission the
    /// domain, media type and room in the jobs directory, all before the upload is read.
    /// Returns the caller when the head passes.
    func checkJobHead(_ head: HTTPRequestHead, route: JobRoute) -> Result<JobCaller, APIError> {
        guard let jobs else {
            return .failure(APIError(.notFound, "jobs_disabled", "this server runs without a jobs directory"))
        }
        let caller: JobCaller
        switch jobCaller(head.headers) {
        case .success(let c): caller = c
        case .failure(let e): return .failure(e)
        }
        if let id = route.jobID, !JobRecord.isValidID(id) { return .failure(ErrorMapping.map(JobError.invalidID(id))) }
        guard case .submit(let name) = route else { return .success(caller) }
        if engine.store.domain(name) == nil {
            if !engine.store.isReady {
                return .failure(APIError(.serviceUnavailable, "not_ready", "no domain is loaded yet",
                                         retryAfter: configuration.notReadyRetryAfter))
            }
            return .failure(APIError(.notFound, "unknown_domain", "no domain named '\(name)' is loaded"))
        }
        if let e = uploadKindError(head) { return .failure(e) }
        let length = head.headers["Content-Length"].flatMap { Int64($0) }
        if let e = jobs.admissionError(bytes: length) { return .failure(ErrorMapping.map(e)) }
        return .success(caller)
    }
}

/// One request to a job route.
struct JobRoutes {
    let service: SpectralXService
    let jobs: any JobService
    let request: HTTPRequest
    let caller: JobCaller
    let logger: Logger
    /// Answering the OGC `/jobs` routes: documents link to `/jobs/…` and name the domain as the process.
    var ogc = false

    func respond(_ route: JobRoute) throws -> HTTPResponse {
        switch route {
        case .submit(let domain): return try submit(domain)
        case .collection: return try list()
        case .job(let id):
            if request.method == "DELETE" {
                _ = try visible(id)
                let r = try jobs.dismiss(id)
                return .json(JSON.encode(JobStatusDocument(r, ogc: ogc)))
            }
            return .json(JSON.encode(JobStatusDocument(try visible(id), ogc: ogc)))
        case .results(let id): return try results(id)
        }
    }

    /// A job the caller may see (others' jobs are reported as missing, not as forbidden).
    private func visible(_ id: String) throws -> JobRecord {
        let r = try jobs.record(id)
        guard caller.canAccess(r) else { throw JobError.noSuchJob(id) }
        return r
    }

    // MARK: - POST /v1/domains/{name}/jobs

    private func submit(_ domain: String) throws -> HTTPResponse {
        let lease = try service.engine.store.lease(domain)
        defer { lease.release() }
        let q = request.target
        let segment = SegmentRoute(service: service, domain: domain, request: request, logger: logger)
        var o = try segment.parseOptions()
        if q.queryValue("mode") == nil { o.mode = .tile }
        let scoresEncoding = try segment.parseScoresEncoding(q.queryValue("scores_dtype"))
        if let out = q.queryValue("output"), out.lowercased() != "geotiff" {
            throw APIError(.badRequest, "invalid_parameter", "jobs write GeoTIFF results; output must be geotiff, got '\(out)'")
        }
        let type = request.headers["Content-Type"] ?? ""
        guard !request.body.isEmpty else { throw APIError(.badRequest, "empty_body", "the request has no body; send the scene") }
        let format: JobInputFormat, upload: JobUpload
        switch UploadKind(contentType: type) {
        case .tiff?, .npy?:
            format = UploadKind(contentType: type) == .tiff ? .tiff : .npy
            switch request.body {
            case .file(let url, _): upload = .file(url)
            case .data(let d): upload = .data(d)
            }
        case .multipart?:
            let parts = try MultipartFormData.parse(request.body, contentType: type)
            let tiles = parts.filter { $0.name == "tile" }
            guard let part = tiles.first else {
                throw APIError(.badRequest, "missing_tile_part", "multipart body has no part named 'tile' (parts: \(parts.compactMap(\.name)))")
            }
            guard tiles.count == 1 else {
                throw APIError(.badRequest, "invalid_parameter", "a job takes one 'tile' part (stack the bands into one file); got \(tiles.count)")
            }
            guard let kind = UploadKind.sniff(contentType: part.contentType, filename: part.filename, bytes: part.body) else {
                throw APIError(.unsupportedMediaType, "unsupported_media_type", "the 'tile' part is neither a TIFF nor a NumPy file")
            }
            format = kind == .tiff ? .tiff : .npy
            upload = .data(part.body)
        case .reference?:
            // Opened (and each object's ETag pinned) now, so a missing file or a refused URL is answered
            // at submission; the job stores the pinned reference, never the scene.
            let opened = try ReferenceBody.open(try ReferenceBody.read(request.body), domain: lease.domain, opener: service.opener,
                                                limits: service.configuration.rasterLimits)
            format = .reference
            upload = .data(opened.pinned.encoded())
        case nil:
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "Content-Type '\(type)' is not accepted")
        }
        let r = try jobs.submit(domain: lease.domain, options: JobOptions(o, scoresEncoding: scoresEncoding),
                                format: format, upload: upload, ownerKeyHash: caller.ownerKeyHash)
        var response = HTTPResponse.json(JSON.encode(JobStatusDocument(r)), status: .created)
        response.headers.replaceOrAdd(name: "Location", value: JobStatusDocument.path(r.jobID))
        return response
    }

    // MARK: - GET /v1/jobs

    private func list() throws -> HTTPResponse {
        var statuses: Set<JobStatus>? = nil
        let values = request.target.queryValues("status").flatMap { $0.split(separator: ",").map(String.init) }
        if !values.isEmpty {
            statuses = []
            for v in values {
                guard let s = JobStatus(rawValue: v.lowercased()) else {
                    throw APIError(.badRequest, "invalid_parameter",
                                   "status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")); got '\(v)'")
                }
                statuses!.insert(s)
            }
        }
        let docs = try jobs.jobs(statuses: statuses).filter(caller.canAccess).map { JobStatusDocument($0, ogc: ogc) }
        let path = ogc ? "/jobs" : "/v1/jobs"
        return .json(JSON.encode(JobList(jobs: docs, links: [JobLink(href: path, rel: "self", type: "application/json", title: "this list")])))
    }

    // MARK: - GET /jobs/{id}/results (OGC results document)

    /// The OGC results document of a successful job: its one output, `labels`, by reference to the
    /// COG (served with range requests at `/jobs/{id}/results?f=tiff` and `/v1/jobs/{id}/results`).
    func resultsDocument(_ id: String) throws -> HTTPResponse {
        let r = try visible(id)
        guard r.status == .successful else { throw JobError.notFinished(id: id, status: r.status) }
        let doc = ["labels": ["href": JobStatusDocument.path(id, ogc: true) + "/results?f=tiff", "type": OGC.cogType,
                              "rel": "http://www.opengis.net/def/rel/iana/1.0/enclosure", "title": "label raster (Cloud-Optimized GeoTIFF)"]]
        return .json(OGCJSON.encode(doc))
    }

    // MARK: - GET /v1/jobs/{id}/results

    func results(_ id: String) throws -> HTTPResponse {
        let r = try visible(id)
        guard r.status == .successful, let etag = r.resultETag else { throw JobError.notFinished(id: id, status: r.status) }
        let size: Int64
        let source = try jobs.result(r)
        switch source {
        case .file(let url):
            guard let n = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value else {
                throw JobError.noSuchJob(id)  // removed (expired or dismissed) since the record was read
            }
            size = n
        case .stored(let stored):
            size = stored.size
        case .redirect(let url):
            // The store serves the bytes (ranges and all); the client follows with its own headers.
            var headers: HTTPHeaders = ["Location": url.absoluteString]
            headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
            return HTTPResponse(status: HTTPStatus(code: 303), headers: headers)
        }
        var headers: HTTPHeaders = ["Content-Type": "image/tiff; application=geotiff; profile=cloud-optimized"]
        headers.replaceOrAdd(name: "ETag", value: etag)
        headers.replaceOrAdd(name: "Accept-Ranges", value: "bytes")
        headers.replaceOrAdd(name: "Content-Disposition", value: "inline; filename=\"\(id).tif\"")
        if let f = r.finished { headers.replaceOrAdd(name: "Last-Modified", value: HTTPResponseSerializer.imfFixdate(f)) }
        if let inm = request.headers["If-None-Match"],
           inm.split(separator: ",").contains(where: { let t = $0.trimmingCharacters(in: .whitespaces); return t == etag || t == "*" }) {
            return HTTPResponse(status: .notModified, headers: headers)
        }
        var status = HTTPStatus.ok, region = (offset: Int64(0), length: size)
        // If-Range with another validator: the representation changed, send it whole.
        let ifRange = request.headers["If-Range"]
        if let range = request.headers["Range"], ifRange == nil || ifRange == etag {
            switch ByteRange.parse(range, size: size) {
            case .ignore: break
            case .unsatisfiable:
                var e = APIError(HTTPStatus(code: 416), "range_not_satisfiable",
                                 "Range '\(range)' is outside the \(size)-byte result")
                e.headers = [("Content-Range", "bytes */\(size)")]
                return e.response
            case let .satisfiable(offset, length):
                headers.replaceOrAdd(name: "Content-Range", value: "bytes \(offset)-\(offset + length - 1)/\(size)")
                status = HTTPStatus(code: 206)
                region = (offset, length)
            }
        }
        switch source {
        case .file(let url):
            return HTTPResponse(status: status, headers: headers,
                                body: status == .ok ? .file(url) : .fileRegion(url, offset: region.offset, length: region.length))
        case .stored(let stored):
            return HTTPResponse(status: status, headers: headers, body: try Self.stream(stored, region.offset, region.length, method: request.head.method))
        case .redirect:
            preconditionFailure("answered above")
        }
    }

    /// The body of a result in the blob store, read in 4 MiB ranges. The first range is read before the
    /// answer, so a store that is unreachable gets a 503 instead of a truncated 200.
    static func stream(_ stored: StoredResult, _ offset: Int64, _ length: Int64, method: String) throws -> HTTPResponse.Body {
        guard length > 0, method != "HEAD" else { return .stream(length: length) { _ in } }
        let piece: Int64 = 4 << 20
        let first: Data
        do { first = try stored.read(offset, min(piece, length)) } catch {
            throw JobError.blobStoreUnavailable("read the result: \(error)", retryAfterSeconds: 5)
        }
        return .stream(length: length) { write in
            try write(first)
            var at = offset + Int64(first.count), left = length - Int64(first.count)
            while left > 0 {
                let data = try stored.read(at, min(piece, left))
                guard !data.isEmpty else { return }  // the writer sees the short count and closes
                try write(data)
                at += Int64(data.count)
                left -= Int64(data.count)
            }
        }
    }

    static func mapError(_ e: JobError) -> APIError {
        switch e {
        case .invalidID: return APIError(.badRequest, "invalid_job_id", e.description)
        case .noSuchJob: return APIError(.notFound, "no_such_job", e.description)
        case .alreadyDismissed: return APIError(HTTPStatus(code: 410), "job_dismissed", e.description)
        case .notFinished: return APIError(.conflict, "result_not_ready", e.description)
        case .tooManyJobs(_, let s): return APIError(.serviceUnavailable, "too_many_jobs", e.description, retryAfter: s)
        case .storageFull: return APIError(HTTPStatus(code: 507), "insufficient_storage", e.description)
        case .shuttingDown: return APIError(.serviceUnavailable, "shutting_down", e.description, retryAfter: 1)
        case .storage: return APIError(.internalServerError, "storage_error", e.description)
        // Never answered to a request: a job whose model changed fails with it (its status says why).
        case .modelChanged: return APIError(.internalServerError, .internalError, e.description)
        case .databaseUnavailable(_, let s): return APIError(.serviceUnavailable, "job_database_unavailable", e.description, retryAfter: s)
        case .blobStoreUnavailable(_, let s): return APIError(.serviceUnavailable, "blob_store_unavailable", e.description, retryAfter: s)
        }
    }
}

/// A single-range `Range: bytes=…` header (RFC 9110 §14.1.2). Several ranges, other units and
/// malformed values are ignored (the whole file is sent with 200), as the RFC allows.
enum ByteRange: Equatable {
    case ignore
    case unsatisfiable
    case satisfiable(offset: Int64, length: Int64)

    static func parse(_ header: String, size: Int64) -> ByteRange {
        let h = header.trimmingCharacters(in: .whitespaces)
        guard h.lowercased().hasPrefix("bytes="), !h.contains(",") else { return .ignore }
        let spec = h.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return .ignore }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        let digits: (Substring) -> Bool = { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
        if first.isEmpty {
            // Suffix range: the last N bytes.
            guard digits(last), let n = Int64(last) else { return .ignore }
            guard n > 0, size > 0 else { return .unsatisfiable }
            let len = min(n, size)
            return .satisfiable(offset: size - len, length: len)
        }
        guard digits(first), let a = Int64(first) else { return .ignore }
        var b = Int64.max
        if !last.isEmpty {
            guard digits(last), let v = Int64(last) else { return .ignore }
            b = v
        }
        guard a <= b else { return .ignore }
        guard a < size else { return .unsatisfiable }
        return .satisfiable(offset: a, length: min(b, size - 1) - a + 1)
    }
}

/// A link of the status document (OGC `link`).
struct JobLink: Codable {
    var href: String
    var rel: String
    var type: String
    var title: String
}

/// `GET /v1/jobs/{id}`: OGC API – Processes – Part 1 `statusInfo` plus the scene fields.
struct JobStatusDocument: Encodable {
    var jobID: String
    var type = "process"
    var processID = "segment"
    var status: String
    var message: String
    var progress: Int
    var created: String
    var started: String?
    var finished: String?
    var updated: String
    var links: [JobLink]
    var windowsDone: Int
    var windowsTotal: Int
    var etaSeconds: Double?
    var domain: String
    var options: JobOptions
    var width: Int
    var height: Int
    var bands: Int
    var resultBytes: Int64?
    /// Fleet mode: the replica running the job, or the one that last ran it (absent on a single replica).
    var replica: String?
    /// A scene by reference: bytes its current run fetched.
    var bytesFetched: Int64?

    enum CodingKeys: String, CodingKey {
        case jobID, type, processID, status, message, progress, created, started, finished, updated, links
        case windowsDone = "windows_done", windowsTotal = "windows_total", etaSeconds = "eta_seconds"
        case domain, options, width, height, bands, resultBytes = "result_bytes", replica, bytesFetched = "bytes_fetched"
    }

    static func path(_ id: String, ogc: Bool = false) -> String { (ogc ? "/jobs/" : "/v1/jobs/") + id }

    /// `ogc`: the document of the OGC `/jobs` routes (links under `/jobs`, the domain as `processID`).
    init(_ r: JobRecord, ogc: Bool = false) {
        jobID = r.jobID
        if ogc { processID = r.domain }
        status = r.status.rawValue
        message = r.message
        progress = r.progress
        created = JobRecord.timestamp(r.created)
        started = r.started.map(JobRecord.timestamp)
        finished = r.finished.map(JobRecord.timestamp)
        updated = JobRecord.timestamp(r.updated)
        links = [
            JobLink(href: Self.path(r.jobID, ogc: ogc), rel: "self", type: "application/json", title: "job status"),
            ogc ? JobLink(href: Self.path(r.jobID, ogc: true) + "/results", rel: "http://www.opengis.net/def/rel/ogc/1.0/results",
                          type: "application/json", title: "results document (once successful)")
                : JobLink(href: Self.path(r.jobID) + "/results", rel: "http://www.opengis.net/def/rel/ogc/1.0/results",
                          type: "image/tiff; application=geotiff; profile=cloud-optimized", title: "label raster (once successful)"),
        ]
        windowsDone = r.windowsDone
        windowsTotal = r.windowsTotal
        etaSeconds = r.etaSeconds
        bytesFetched = r.bytesFetched
        domain = r.domain
        options = r.options
        width = r.width
        height = r.height
        bands = r.bands
        resultBytes = r.resultBytes
        replica = r.replica
    }
}

/// `GET /v1/jobs`: OGC `jobList`.
struct JobList: Encodable {
    var jobs: [JobStatusDocument]
    var links: [JobLink]
}

extension ErrorMapping {
    static func map(_ e: JobError) -> APIError { JobRoutes.mapError(e) }
}
