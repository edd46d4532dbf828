import Foundation
import Logging
import SpectralXEngine
import SpectralXHTTP
import SpectralXRaster
import SpectralXSupport
import SpectralXTensor

/// The routes of OGC API – Processes – Part 1: Core 1.0, beside `/v1`. One process per loaded
/// domain (process id = domain name): each domain has its own band count, classes and model card,
/// which a process description can then state exactly (a single `segmentation` process with a
/// `domain` input could not give the scene's band count or the output classes).
enum OGCRoute: Equatable {
    /// `GET /`: landing page (JSON, or the viewer for browsers).
    case landing
    /// `GET /conformance`
    case conformance
    /// `GET /processes`
    case processes
    /// `GET /processes/{id}`
    case process(String)
    /// `POST /processes/{id}/execution`
    case execute(String)
    /// `GET /jobs`
    case jobs
    /// `GET` / `DELETE /jobs/{id}`
    case job(String)
    /// `GET /jobs/{id}/results`
    case results(String)

    /// Path segments after the leading "/".
    init?(segments p: [String]) {
        switch p.count {
        case 1 where p[0] == "": self = .landing
        case 1 where p[0] == "conformance": self = .conformance
        case 1 where p[0] == "processes": self = .processes
        case 1 where p[0] == "jobs": self = .jobs
        case 2 where p[0] == "processes" && !p[1].isEmpty: self = .process(p[1])
        case 2 where p[0] == "jobs" && !p[1].isEmpty: self = .job(p[1])
        case 3 where p[0] == "processes" && !p[1].isEmpty && p[2] == "execution": self = .execute(p[1])
        case 3 where p[0] == "jobs" && !p[1].isEmpty && p[2] == "results": self = .results(p[1])
        default: return nil
        }
    }

    var allowedMethods: [String] {
        switch self {
        case .execute: return ["POST"]
        case .job: return ["GET", "HEAD", "DELETE"]
        default: return ["GET", "HEAD"]
        }
    }

    var label: String {
        switch self {
        case .landing: return "/"
        case .conformance: return "/conformance"
        case .processes: return "/processes"
        case .process: return "/processes/{processID}"
        case .execute: return "/processes/{processID}/execution"
        case .jobs: return "/jobs"
        case .job: return "/jobs/{jobID}"
        case .results: return "/jobs/{jobID}/results"
        }
    }

    /// The `/v1` job route with the same meaning (they share the job checks and the job store).
    var jobRoute: JobRoute? {
        switch self {
        case .jobs: return .collection
        case .job(let id): return .job(id)
        case .results(let id): return .results(id)
        default: return nil
        }
    }
}

/// OGC API vocabulary: conformance classes, link relations and exception types.
enum OGC {
    static let conformance = [
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/job-list",
        "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/dismiss",
    ]
    static let rel = "http://www.opengis.net/def/rel/ogc/1.0/"
    static let exceptions = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
    static let cogType = "image/tiff; application=geotiff; profile=cloud-optimized"

    /// The exception type URI of an API error code on the OGC routes: the standard's own types where
    /// it defines one, else a URN naming the service's stable code.
    static func exceptionType(_ code: String, route: OGCRoute?) -> String {
        switch code {
        case APIErrorCode.unknownDomain.rawValue: return exceptions + "no-such-process"
        case APIErrorCode.noSuchJob.rawValue, APIErrorCode.invalidJobID.rawValue, APIErrorCode.jobDismissed.rawValue:
            return exceptions + "no-such-job"
        case APIErrorCode.resultNotReady.rawValue: return exceptions + "result-not-ready"
        default: return "urn:spectralx:error:\(code)"
        }
    }
}

extension APIError {
    /// The error as an OGC exception document (`type`, `title`, `status`, `detail`, plus the stable
    /// `code`). The standard answers "result not ready" with 404, and an unknown job id with 404.
    func ogcResponse(route: OGCRoute?) -> HTTPResponse {
        var status = self.status
        if code == APIErrorCode.resultNotReady.rawValue || code == APIErrorCode.invalidJobID.rawValue { status = .notFound }
        let doc: [String: Any] = [
            "type": OGC.exceptionType(code, route: route), "title": status.reasonPhrase, "status": status.code,
            "detail": message, "code": code,
        ]
        var r = HTTPResponse.json(OGCJSON.encode(doc), status: status)
        if let retryAfter { r.headers.replaceOrAdd(name: "Retry-After", value: String(retryAfter)) }
        for (n, v) in headers { r.headers.replaceOrAdd(name: n, value: v) }
        return r
    }
}

/// JSON for the OGC documents, which are nested free-form objects (process descriptions hold JSON Schemas).
enum OGCJSON {
    static func encode(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func link(_ href: String, _ rel: String, _ type: String, _ title: String) -> [String: Any] {
        ["href": href, "rel": rel, "type": type, "title": title]
    }
}

extension SpectralXService {
    /// Head checks of the OGC routes, sharing the `/v1` credentials rules: the landing page and
    /// conformance are open like `/openapi.yaml`; process routes need an API key like `/v1/domains`;
    /// job routes are the `/v1` job routes.
    func checkOGCHead(_ head: HTTPRequestHead, route: OGCRoute) -> APIError? {
        switch route {
        case .landing, .conformance: return nil
        case .processes: return checkAPIKey(head.headers)
        case .process(let id):
            if let e = checkAPIKey(head.headers) { return e }
            return checkDomainLoaded(id)
        case .execute(let id):
            if case .failure(let e) = jobCaller(head.headers) { return e }
            if let e = checkDomainLoaded(id) { return e }
            let type = head.headers["Content-Type"] ?? ""
            let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard media == "application/json" else {
                return APIError(.unsupportedMediaType, .unsupportedMediaType,
                                "Content-Type '\(type)' is not accepted; send an OGC execute request as application/json")
            }
            if OGCExecution.prefersAsync(head.headers), let jobs {
                let length = head.headers["Content-Length"].flatMap { Int64($0) }
                if let e = jobs.admissionError(bytes: length) { return ErrorMapping.map(e) }
            } else if let full = engine.scheduler.admissionError() {
                return ErrorMapping.map(full)
            }
            return nil
        case .jobs, .job, .results:
            if case .failure(let e) = checkJobHead(head, route: route.jobRoute!) { return e }
            return nil
        }
    }

    func checkDomainLoaded(_ name: String) -> APIError? {
        guard engine.store.domain(name) == nil else { return nil }
        if !engine.store.isReady {
            return APIError(.serviceUnavailable, .notReady, "no domain is loaded yet", retryAfter: configuration.notReadyRetryAfter)
        }
        return APIError(.notFound, .unknownDomain, "no process named '\(name)': processes are the loaded domains")
    }

    func respondToOGCRoute(_ route: OGCRoute, _ request: HTTPRequest, logger: Logger) throws -> HTTPResponse {
        switch route {
        case .landing: return try landing(request)
        case .conformance: return .json(OGCJSON.encode(["conformsTo": OGC.conformance]))
        case .processes:
            let list = engine.store.domains.map { OGCProcess.summary($0) }
            return .json(OGCJSON.encode([
                "processes": list,
                "links": [OGCJSON.link("/processes", "self", "application/json", "the processes (one per loaded domain)")],
            ]))
        case .process(let id):
            guard let d = engine.store.domain(id) else { throw EngineError.unknownDomain(id) }
            return .json(OGCJSON.encode(OGCProcess.description(d)))
        case .execute(let id):
            let caller = try jobCaller(request.headers).get()
            return try OGCExecution(service: self, domain: id, request: request, caller: caller, logger: logger).respond()
        case .jobs, .job, .results:
            guard let jobs else { throw APIError(.notFound, .jobsDisabled, "this server runs without a jobs directory") }
            let caller = try jobCaller(request.headers).get()
            let routes = JobRoutes(service: self, jobs: jobs, request: request, caller: caller, logger: logger, ogc: true)
            if case .results(let id) = route, !OGCExecution.wantsRaw(request) {
                return try routes.resultsDocument(id)
            }
            return try routes.respond(route.jobRoute!)
        }
    }

    /// `GET /`: JSON by default; the viewer page for `?f=html` or a browser's `Accept: text/html`.
    private func landing(_ request: HTTPRequest) throws -> HTTPResponse {
        let f = request.target.queryValue("f")?.lowercased()
        let html: Bool
        switch f {
        case "html"?: html = true
        case "json"?: html = false
        case nil: html = Self.prefersHTML(request.headers["Accept"])
        case let other?: throw APIError(.badRequest, .invalidParameter, "f must be json or html; got '\(other)'")
        }
        var response: HTTPResponse
        if html {
            response = HTTPResponse(status: .ok, contentType: "text/html; charset=utf-8", body: Data(ViewerPage.html.utf8))
        } else {
            response = .json(OGCJSON.encode([
                "title": "spectralx",
                "description": "SpectralX remote-sensing segmentation: OGC API – Processes (one process per domain) and the /v1 API",
                "links": [
                    OGCJSON.link("/", "self", "application/json", "this document"),
                    OGCJSON.link("/?f=html", "alternate", "text/html", "the viewer"),
                    OGCJSON.link("/openapi.yaml", "service-desc", "application/vnd.oai.openapi;version=3.0", "the API definition (OpenAPI 3.0, YAML)"),
                    OGCJSON.link("/conformance", OGC.rel + "conformance", "application/json", "conformance classes implemented"),
                    OGCJSON.link("/processes", OGC.rel + "processes", "application/json", "the processes (one per domain)"),
                    OGCJSON.link("/jobs", OGC.rel + "job-list", "application/json", "the jobs"),
                ],
            ]))
        }
        response.headers.replaceOrAdd(name: "Vary", value: "Accept")
        return response
    }

    /// Whether an Accept header ranks text/html above JSON (browsers send `text/html,…,*/*;q=0.8`).
    static func prefersHTML(_ accept: String?) -> Bool {
        guard let accept else { return false }
        var best: (html: Double, json: Double) = (0, 0)
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let media = parts.first else { continue }
            var q = 1.0
            for p in parts.dropFirst() where p.hasPrefix("q=") { q = Double(p.dropFirst(2)) ?? 1 }
            if media == "text/html" || media == "application/xhtml+xml" { best.html = max(best.html, q) }
            if media == "application/json" { best.json = max(best.json, q) }
        }
        return best.html > best.json
    }
}

/// Process summaries and descriptions built from a loaded domain.
enum OGCProcess {
    static func summary(_ d: LoadedDomain) -> [String: Any] {
        [
            "id": d.name, "version": "1.0.0",
            "title": "SpectralX segmentation, domain \(d.name)",
            "description": d.config.description ?? "Semantic segmentation of a \(d.bands)-band scene into \(d.classes) classes",
            "keywords": ["segmentation", "remote sensing", d.name],
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "outputTransmission": ["value", "reference"],
            "links": [
                OGCJSON.link("/processes/\(d.name)", "self", "application/json", "process description"),
                OGCJSON.link("/processes/\(d.name)/execution", OGC.rel + "execute", "application/json", "execute"),
                OGCJSON.link("/v1/domains/\(d.name)/stac", "describedby", "application/geo+json", "STAC MLM model card"),
            ],
        ]
    }

    /// `ogc-process-description`: inputs and outputs as JSON Schemas.
    static func description(_ d: LoadedDomain) -> [String: Any] {
        var p = summary(d)
        func input(_ title: String, _ description: String, _ schema: [String: Any], min: Int = 0) -> [String: Any] {
            ["title": title, "description": description, "schema": schema, "minOccurs": min, "maxOccurs": 1]
        }
        let classNames = d.config.classNames.enumerated().map { "\($0.offset)=\($0.element)" }.joined(separator: ", ")
        p["inputs"] = [
            "scene": input("Scene", "The \(d.bands)-band scene: a GeoTIFF or a NumPy (C,H,W) array, inline as base64 "
                           + "(qualified value {\"value\", \"mediaType\", \"encoding\": \"base64\"}). href inputs are refused: "
                           + "the server makes no outbound requests.", [
                "oneOf": [
                    ["type": "string", "contentEncoding": "base64", "contentMediaType": "image/tiff; application=geotiff"],
                    ["type": "string", "contentEncoding": "base64", "contentMediaType": "application/x-npy"],
                ],
            ], min: 1),
            "mode": input("Inference mode", "tile: 224² windows with overlap (default); resize: the whole scene resized to 224².",
                          ["type": "string", "enum": ["tile", "resize"], "default": "tile"]),
            "overlap": input("Window overlap", "Pixels shared by neighbouring windows in tile mode.",
                             ["type": "integer", "minimum": 0, "maximum": 223, "default": 32]),
            "scores": input("Class scores", "Return the per-class probabilities (K bands) instead of the labels.",
                            ["type": "boolean", "default": false]),
            "nodata_mask": input("Mask nodata", "Label pixels that are nodata (per the input's GDAL_NODATA) with output_nodata.",
                                 ["type": "boolean", "default": true]),
            "nodata_rule": input("Nodata rule", "A pixel is nodata when all (or any) of its bands are.",
                                 ["type": "string", "enum": ["all", "any"], "default": "all"]),
            "output_nodata": input("Output nodata label", "Label of nodata pixels.",
                                   ["type": "integer", "minimum": 0, "maximum": 255, "default": 255]),
            "precision": input("Precision", "Arithmetic of the frozen ViT linears: fp32 or bf16 (needs AVX512_BF16 on the server); default: the server's.",
                               ["type": "string", "enum": ["fp32", "bf16"]]),
        ]
        p["outputs"] = [
            "labels": [
                "title": "Labels",
                "description": "uint8 class per pixel (\(classNames)); a Cloud-Optimized GeoTIFF with the domain's colour map "
                    + "(or NumPy / PNG for synchronous execution), georeferenced as the input.",
                "schema": [
                    "oneOf": [
                        ["type": "string", "contentEncoding": "binary", "contentMediaType": OGC.cogType],
                        ["type": "string", "contentEncoding": "binary", "contentMediaType": "application/x-npy"],
                        ["type": "string", "contentEncoding": "binary", "contentMediaType": "image/png"],
                    ],
                ],
            ],
        ]
        return p
    }
}

/// One `POST /processes/{id}/execution`: the OGC execute request mapped onto the same options,
/// `Segmenter` (synchronous) and `JobManager` (asynchronous) as `/v1`.
struct OGCExecution {
    let service: SpectralXService
    let domain: String
    let request: HTTPRequest
    let caller: JobCaller
    let logger: Logger

    /// Synchronous execution holds the scene and its answer in memory: larger scenes go through a job.
    static let maxSyncPixels = 4096 * 4096

    /// `Prefer: respond-async` (RFC 7240), in any of several Prefer fields.
    static func prefersAsync(_ headers: HTTPHeaders) -> Bool {
        headers.values(for: "Prefer").contains { v in
            v.split(separator: ",").contains { $0.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased() == "respond-async" }
        }
    }

    /// `GET /jobs/{id}/results` answers the COG itself when the client asks for it (`Accept: image/tiff`
    /// or `?f=tiff`), else the OGC results document that references it.
    static func wantsRaw(_ request: HTTPRequest) -> Bool {
        if let f = request.target.queryValue("f")?.lowercased() { return f == "tiff" || f == "geotiff" }
        let accept = (request.headers["Accept"] ?? "").lowercased()
        return accept.contains("image/tiff") && !accept.contains("application/json")
    }

    struct Parsed {
        var sceneBytes: Data
        var format: JobInputFormat
        var options: SegmentationOptions
        var scoresEncoding: ScoresEncoding
        var output: OutputFormat
        var document: Bool
    }

    func respond() throws -> HTTPResponse {
        let lease = try service.engine.store.lease(domain)
        defer { lease.release() }
        var parsed = try parse()
        var opened: OpenedScene? = nil
        if parsed.format == .reference {
            let o = try ReferenceBody.open(parsed.sceneBytes, domain: lease.domain, opener: service.opener,
                                           limits: service.configuration.rasterLimits)
            parsed.sceneBytes = o.pinned.encoded()
            opened = o
        }
        if Self.prefersAsync(request.headers), let jobs = service.jobs {
            guard parsed.output == .geotiff else {
                throw APIError(.badRequest, .invalidParameter, "asynchronous execution writes a Cloud-Optimized GeoTIFF; "
                               + "outputs.labels.format.mediaType must be image/tiff")
            }
            let r = try jobs.submit(domain: lease.domain, options: JobOptions(parsed.options, scoresEncoding: parsed.scoresEncoding),
                                    format: parsed.format, upload: .data(parsed.sceneBytes), ownerKeyHash: caller.ownerKeyHash)
            var response = HTTPResponse.json(JSON.encode(JobStatusDocument(r, ogc: true)), status: .created)
            response.headers.replaceOrAdd(name: "Location", value: JobStatusDocument.path(r.jobID, ogc: true))
            response.headers.replaceOrAdd(name: "Preference-Applied", value: "respond-async")
            return response
        }
        return try executeSync(parsed, lease.domain, opened: opened)
    }

    private func executeSync(_ p: Parsed, _ domain: LoadedDomain, opened: OpenedScene?) throws -> HTTPResponse {
        let limits = service.configuration.rasterLimits
        let source: any RasterSource
        if let opened { source = opened.source }
        else if p.format == .tiff { source = try TIFFScene(data: p.sceneBytes, limits: limits) }
        else { source = try NpyScene(data: p.sceneBytes, limits: limits) }
        guard source.width * source.height <= Self.maxSyncPixels else {
            throw APIError(.payloadTooLarge, HTTPErrorCode.payloadTooLarge.rawValue,
                           "a \(source.width)×\(source.height) scene is above the \(Self.maxSyncPixels)-pixel synchronous limit; "
                               + "send 'Prefer: respond-async' to run it as a job")
        }
        let clock = ContinuousClock()
        let t0 = clock.now
        let result = try service.engine.segmenter.segment(domain, source: source, options: p.options,
                                                          output: .memory(format: p.output, scoresEncoding: p.scoresEncoding))
        let body = result.encoded ?? Data()
        let type = switch p.output {
        case .geotiff: OGC.cogType
        case .npy: "application/x-npy"
        default: "image/png"
        }
        var response: HTTPResponse
        if p.document {
            response = .json(OGCJSON.encode(["labels": ["value": body.base64EncodedString(), "mediaType": type, "encoding": "base64"]]))
        } else {
            response = HTTPResponse(status: .ok, contentType: type, body: body)
        }
        let timing = result.timings + [("total", t0.duration(to: clock.now).inSeconds)]
        response.headers.replaceOrAdd(name: "Server-Timing",
                                      value: timing.map { String(format: "%@;dur=%.1f", $0.0, $0.1 * 1000) }.joined(separator: ", "))
        response.headers.replaceOrAdd(name: "X-SpectralX-Batch-Size", value: String(result.batchSizes.max() ?? 1))
        response.headers.replaceOrAdd(name: "X-SpectralX-Windows", value: String(result.windows))
        logger.info("executed", metadata: ["process": "\(domain.name)", "width": "\(source.width)", "height": "\(source.height)"])
        return response
    }

    // MARK: - the execute request

    private func bad(_ message: String) -> APIError { APIError(.badRequest, .invalidParameter, message) }

    func parse() throws -> Parsed {
        let data = try request.body.readData()
        guard !data.isEmpty else { throw APIError(.badRequest, .emptyBody, "the request has no body; send an execute request") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw bad("the body is not a JSON object (an OGC execute request: {\"inputs\": {…}})")
        }
        for key in root.keys where !["inputs", "outputs", "response", "subscriber"].contains(key) {
            throw bad("unknown member '\(key)' in the execute request")
        }
        guard let inputs = root["inputs"] as? [String: Any] else { throw bad("the execute request needs an 'inputs' object") }
        let known = ["scene", "mode", "overlap", "scores", "scores_dtype", "nodata_mask", "nodata_rule", "output_nodata", "precision"]
        for key in inputs.keys where !known.contains(key) {
            throw bad("unknown input '\(key)'; inputs are \(known.joined(separator: ", "))")
        }
        let (bytes, format) = try scene(inputs["scene"])
        var o = SegmentationOptions()
        o.mode = .tile
        if let v = inputs["mode"] {
            guard let s = Self.value(v) as? String, let m = InferenceMode(rawValue: s.lowercased()) else {
                throw bad("input 'mode' must be \"tile\" or \"resize\"")
            }
            o.mode = m
        }
        if let v = inputs["overlap"] {
            guard let n = Self.int(v), (0..<224).contains(n) else { throw bad("input 'overlap' must be an integer between 0 and 223") }
            o.overlap = n
        }
        if let v = inputs["scores"] {
            guard let b = Self.value(v) as? Bool else { throw bad("input 'scores' must be true or false") }
            o.scores = b
        }
        var encoding = ScoresEncoding.float32
        if let v = inputs["scores_dtype"] {
            guard let s = Self.value(v) as? String, let e = ScoresEncoding(rawValue: s.lowercased()) else {
                throw bad("input 'scores_dtype' must be \"float32\" or \"uint8\"")
            }
            encoding = e
        }
        if let v = inputs["nodata_mask"] {
            guard let b = Self.value(v) as? Bool else { throw bad("input 'nodata_mask' must be true or false") }
            o.maskNodata = b
        }
        if let v = inputs["nodata_rule"] {
            guard let s = Self.value(v) as? String, let r = NodataRule(rawValue: s.lowercased()) else {
                throw bad("input 'nodata_rule' must be \"all\" or \"any\"")
            }
            o.nodataRule = r
        }
        if let v = inputs["output_nodata"] {
            guard let n = Self.int(v), let u = UInt8(exactly: n) else { throw bad("input 'output_nodata' must be an integer between 0 and 255") }
            o.outputNodata = u
        }
        o.precision = service.configuration.defaultPrecision
        if let v = inputs["precision"] {
            guard let s = Self.value(v) as? String, let p = Precision(name: s) else { throw bad("input 'precision' must be \"fp32\" or \"bf16\"") }
            o.precision = p
        }
        if let reason = o.precision.unavailableReason { throw bad("precision \(o.precision) is not available on this server: \(reason)") }
        var output = OutputFormat.geotiff
        if let outputs = root["outputs"] {
            guard let outs = outputs as? [String: Any] else { throw bad("'outputs' must be an object") }
            for (name, spec) in outs {
                guard name == "labels" else { throw bad("unknown output '\(name)'; the only output is 'labels'") }
                guard let spec = spec as? [String: Any] else { throw bad("outputs.labels must be an object") }
                if let mode = spec["transmissionMode"] {
                    guard let m = mode as? String, ["value", "reference"].contains(m) else {
                        throw bad("outputs.labels.transmissionMode must be \"value\" or \"reference\"")
                    }
                }
                if let f = spec["format"] {
                    guard let f = f as? [String: Any] else { throw bad("outputs.labels.format must be an object") }
                    if let media = f["mediaType"] {
                        guard let m = media as? String, let of = Self.outputFormat(m) else {
                            throw bad("outputs.labels.format.mediaType must be image/tiff, application/x-npy or image/png")
                        }
                        output = of
                    }
                }
            }
        }
        var document = false
        if let r = root["response"] {
            guard let s = r as? String, ["raw", "document"].contains(s) else { throw bad("'response' must be \"raw\" or \"document\"") }
            document = s == "document"
        }
        return Parsed(sceneBytes: bytes, format: format, options: o, scoresEncoding: encoding, output: output, document: document)
    }

    /// A literal input, bare or as a qualified value `{"value": …}`.
    static func value(_ v: Any) -> Any? {
        if let q = v as? [String: Any] { return q["value"] }
        return v
    }

    static func int(_ v: Any) -> Int? {
        let x = value(v)
        if x is Bool { return nil }
        return x as? Int
    }

    static func outputFormat(_ media: String) -> OutputFormat? {
        let m = media.split(separator: ";")[0].trimmingCharacters(in: .whitespaces).lowercased()
        switch m {
        case "image/tiff", "image/geotiff": return .geotiff
        case "application/x-npy", "application/npy": return .npy
        case "image/png": return .png
        default: return nil
        }
    }

    /// The scene: base64 bytes, inline. Its format from `mediaType`, else from its magic bytes.
    private func scene(_ v: Any?) throws -> (Data, JobInputFormat) {
        guard let v else { throw bad("the input 'scene' is required") }
        var text: String?
        var media: String?
        if let s = v as? String {
            text = s
        } else if let q = v as? [String: Any] {
            if let href = q["href"] {
                // By reference: read in place (ReferenceBody), under the server's fetch policy.
                guard service.opener != nil else { throw ReferenceBody.disabled }
                let reference = ["inputs": ["href": try ReferenceBody.checkedURL(href)]]
                return (try JSONSerialization.data(withJSONObject: reference), .reference)
            }
            text = q["value"] as? String
            media = (q["mediaType"] as? String) ?? ((q["format"] as? [String: Any])?["mediaType"] as? String)
            if let enc = q["encoding"] as? String, enc.lowercased() != "base64" {
                throw bad("input 'scene' encoding must be base64; got '\(enc)'")
            }
        }
        guard let text, let bytes = Data(base64Encoded: text, options: .ignoreUnknownCharacters), !bytes.isEmpty else {
            throw bad("input 'scene' must be a base64 string or {\"value\": <base64>, \"mediaType\": …}")
        }
        let kind: UploadKind?
        if let media {
            kind = UploadKind(contentType: media)
            guard kind == .tiff || kind == .npy else {
                throw APIError(.unsupportedMediaType, .unsupportedMediaType,
                               "input 'scene' mediaType '\(media)' is not accepted; use image/tiff or application/x-npy")
            }
        } else {
            kind = UploadKind.sniff(contentType: nil, filename: nil, bytes: bytes)
        }
        switch kind {
        case .tiff?: return (bytes, .tiff)
        case .npy?: return (bytes, .npy)
        default: throw APIError(.badRequest, .unrecognizedFile, "input 'scene' is neither a TIFF nor a NumPy file")
        }
    }
}
