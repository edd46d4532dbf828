import Foundation
import Logging
import Metrics
import SpectralXEngine
import SpectralXHTTP
import SpectralXSupport
import Synchronization

/// The routes of service.md §2, matched once for both the head check and the full request.
enum Route: Equatable {
    case healthz, readyz, metrics, openapi, domains
    case domain(String)
    case segment(String)
    case job(JobRoute)
    /// `GET /v1/domains/{name}/stac`: the domain's STAC MLM model card.
    case stac(String)
    /// OGC API – Processes (`/`, `/conformance`, `/processes…`, `/jobs…`).
    case ogc(OGCRoute)

    /// The route a path names, or nil (→ 404).
    init?(path: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // parts[0] is "" for an absolute path.
        guard parts.first == "" else { return nil }
        let p = Array(parts.dropFirst())
        switch p {
        case ["healthz"]: self = .healthz
        case ["readyz"]: self = .readyz
        case ["metrics"]: self = .metrics
        case ["openapi.yaml"]: self = .openapi
        case ["v1", "domains"]: self = .domains
        default:
            if let j = JobRoute(segments: p) { self = .job(j); return }
            if let o = OGCRoute(segments: p) { self = .ogc(o); return }
            if p.count == 4, p[0] == "v1", p[1] == "domains", !p[2].isEmpty, p[3] == "stac" { self = .stac(p[2]); return }
            if p.count == 3, p[0] == "v1", p[1] == "domains", !p[2].isEmpty { self = .domain(p[2]); return }
            if p.count == 4, p[0] == "v1", p[1] == "domains", !p[2].isEmpty, p[3] == "segment" { self = .segment(p[2]); return }
            return nil
        }
    }

    var allowedMethods: [String] {
        switch self {
        case .healthz, .readyz, .metrics, .openapi, .domains, .stac: return ["GET", "HEAD"]
        case .domain: return ["GET", "HEAD", "PUT", "DELETE"]
        case .segment: return ["POST"]
        case .job(let j): return j.allowedMethods
        case .ogc(let o): return o.allowedMethods
        }
    }

    /// Label for metrics (bounded cardinality: domain names are not part of it).
    var label: String {
        switch self {
        case .healthz: return "/healthz"
        case .readyz: return "/readyz"
        case .metrics: return "/metrics"
        case .openapi: return "/openapi.yaml"
        case .domains: return "/v1/domains"
        case .domain: return "/v1/domains/{name}"
        case .segment: return "/v1/domains/{name}/segment"
        case .job(let j): return j.label
        case .stac: return "/v1/domains/{name}/stac"
        case .ogc(let o): return o.label
        }
    }
}

/// What `validateHead` found for a request it let through, carried to `handle` in the request
/// context: the head it judged (so a stale outcome is never applied to another request) and, on a
/// job route, who the caller is.
struct HeadAdmission: Sendable {
    let head: HTTPRequestHead
    let jobCaller: JobCaller?
}

/// The HTTP face of the engine. Requests that are bound to fail (unknown route or domain, wrong
/// method, missing credentials, unsupported media type) are refused in `validateHead`, before
/// `100 Continue` and before any body byte is read.
public final class SpectralXService: HTTPHandler {
    public let engine: InferenceEngine
    public let configuration: APIConfiguration
    /// Scene jobs (`…/jobs`, `/v1/jobs`); nil answers those routes 404 `jobs_disabled`.
    public let jobs: (any JobService)?
    let logger: Logger
    private let headChecks = Atomic<Int>(0)

    public init(engine: InferenceEngine, configuration: APIConfiguration = APIConfiguration(),
                jobs: (any JobService)? = nil, logger: Logger = Logger(label: "spectralx.api")) {
        ServiceMetrics.bootstrap()
        self.engine = engine
        self.jobs = jobs
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: - head check

    public func validateHead(_ head: HTTPRequestHead, context: HTTPRequestContext) -> HTTPResponse? {
        let route = Route(path: head.target.path)
        switch admit(head, route: route) {
        case .success(let admission):
            context.headOutcome.store(admission)
            return nil
        case .failure(let error):
            count(route: route, method: head.method, status: error.status.code)
            // No `Connection: close`: the HTTP layer keeps the connection when no body is left unread.
            return Self.errorResponse(error, route: route)
        }
    }

    /// The error in the format of its route: OGC exception documents on the OGC routes, the `/v1`
    /// error body elsewhere.
    static func errorResponse(_ e: APIError, route: Route?) -> HTTPResponse {
        if case .ogc(let o) = route { return e.ogcResponse(route: o) }
        return e.response
    }

    /// How many times the head checks ran (tests: once per request, whether refused or handled).
    public var headCheckCount: Int { headChecks.load(ordering: .relaxed) }

    /// The head checks, run once per request: in `validateHead`, or in `handle` when the request
    /// reached it without one (a handler driven directly, not through the server).
    func admit(_ head: HTTPRequestHead, route: Route?) -> Result<HeadAdmission, APIError> {
        headChecks.add(1, ordering: .relaxed)
        if let e = check(head, route: route) { return .failure(e) }
        if case .job(let j) = route {
            return checkJobHead(head, route: j).map { HeadAdmission(head: head, jobCaller: $0) }
        }
        return .success(HeadAdmission(head: head, jobCaller: nil))
    }

    /// Route, method and what else can be decided from the head alone (job routes: then `checkJobHead`).
    private func check(_ head: HTTPRequestHead, route: Route?) -> APIError? {
        guard let route else { return APIError(.notFound, .notFound, "no route for \(head.target.path)") }
        guard route.allowedMethods.contains(head.method) else {
            var e = APIError(.methodNotAllowed, .methodNotAllowed,
                             "\(head.method) is not allowed on \(route.label); allowed: \(route.allowedMethods.joined(separator: ", "))")
            e.headers = [("Allow", route.allowedMethods.joined(separator: ", "))]
            return e
        }
        switch route {
        case .domain where head.method == "PUT" || head.method == "DELETE":
            if let token = configuration.adminToken {
                guard let presented = bearer(head.headers), ConstantTime.equals(presented, token) else {
                    var e = APIError(.unauthorized, .unauthorized, "the admin routes need 'Authorization: Bearer <admin token>'")
                    e.headers = [("WWW-Authenticate", "Bearer realm=\"spectralx-admin\"")]
                    return e
                }
            } else if !configuration.apiKeys.isEmpty {
                // API keys without an admin token: a key holder must not be able to unload domains, and
                // an anonymous client even less. Open admin routes are only for the credential-less demo.
                return APIError(.forbidden, .adminDisabled,
                                "the admin routes are disabled because API keys are configured without an admin token; "
                                    + "start the server with --admin-token (SPECTRALX_ADMIN_TOKEN) to enable them")
            }
        case .domain(let name), .segment(let name):
            if let e = checkAPIKey(head.headers) { return e }
            if case .segment = route {
                if engine.store.domain(name) == nil {
                    if !engine.store.isReady {
                        return APIError(.serviceUnavailable, .notReady, "no domain is loaded yet", retryAfter: configuration.notReadyRetryAfter)
                    }
                    return APIError(.notFound, .unknownDomain, "no domain named '\(name)' is loaded")
                }
                let type = head.headers["Content-Type"] ?? ""
                if UploadKind(contentType: type) == nil && !ReferenceInputs.isJSON(type) {
                    return APIError(.unsupportedMediaType, .unsupportedMediaType,
                                    "Content-Type '\(type)' is not accepted; send image/tiff, application/x-npy, multipart/form-data with a 'tile' part, or application/json with scene hrefs")
                }
                // A full queue is refused before the upload is transferred (and before 100-continue).
                if let full = engine.scheduler.admissionError() { return ErrorMapping.map(full) }
            }
        case .domains:
            if let e = checkAPIKey(head.headers) { return e }
        case .stac(let name):
            if let e = checkAPIKey(head.headers) { return e }
            if engine.store.domain(name) == nil { return APIError(.notFound, .unknownDomain, "no domain named '\(name)' is loaded") }
        case .ogc(let o):
            return checkOGCHead(head, route: o)
        default: break
        }
        return nil
    }

    func bearer(_ headers: HTTPHeaders) -> String? {
        guard let auth = headers["Authorization"] else { return nil }
        let parts = auth.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    func checkAPIKey(_ headers: HTTPHeaders) -> APIError? {
        guard !configuration.apiKeys.isEmpty else { return nil }
        let presented = headers["X-API-Key"] ?? bearer(headers)
        if let presented {
            var ok = false
            for key in configuration.apiKeys where ConstantTime.equals(presented, key) { ok = true }
            if ok { return nil }
        }
        var e = APIError(.unauthorized, .unauthorized, "an API key is required ('X-API-Key: KEY' or 'Authorization: Bearer KEY')")
        e.headers = [("WWW-Authenticate", "Bearer realm=\"spectralx\"")]
        return e
    }

    // MARK: - requests

    public func handle(_ request: HTTPRequest, context: HTTPRequestContext) throws -> HTTPResponse {
        let start = ContinuousClock.now
        let route = Route(path: request.path)
        let logger = context.logger
        var response: HTTPResponse
        do {
            let admission: HeadAdmission
            if let recorded = context.headOutcome.value as? HeadAdmission, recorded.head == request.head {
                admission = recorded
            } else {
                admission = try admit(request.head, route: route).get()
            }
            response = try dispatch(route!, request, admission: admission, logger: logger, clientGone: context.clientGone)
        } catch {
            let e = ErrorMapping.apiError(for: error)
            if e.status.code >= 500 && e.code == "internal_error" {
                logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.path)"])
            } else {
                logger.info("request refused", metadata: ["status": "\(e.status.code)", "code": "\(e.code)", "message": "\(e.message)"])
            }
            response = Self.errorResponse(e, route: route)
        }
        // The server answers HEAD without the body (same Content-Length) and adds X-Request-Id.
        let elapsed = start.duration(to: .now)
        count(route: route, method: request.method, status: response.status.code)
        Metrics.Timer(label: "spectralx_http_request_duration_seconds", dimensions: [("route", route?.label ?? "unmatched")])
            .recordNanoseconds(elapsed.inNanoseconds)
        return response
    }

    private func count(route: Route?, method: String, status: Int) {
        Counter(label: "spectralx_http_requests_total",
                dimensions: [("route", route?.label ?? "unmatched"), ("method", method), ("status", String(status))]).increment()
    }

    private func dispatch(_ route: Route, _ request: HTTPRequest, admission: HeadAdmission, logger: Logger,
                          clientGone: HTTPClientGoneSignal? = nil) throws -> HTTPResponse {
        switch route {
        case .healthz:
            return .json(Data(#"{"status":"ok"}"#.utf8))
        case .readyz:
            if engine.store.isReady {
                // A fleet replica whose job database is away still serves tiles: ready, with the reason.
                let jobsState = jobs.map { $0.unavailableReason() ?? "ok" }
                return .json(JSON.encode(Readiness(status: "ready", domains: engine.store.domains.map(\.name), jobs: jobsState)))
            }
            throw APIError(.serviceUnavailable, .notReady, "the backbone and at least one domain must be loaded",
                           retryAfter: configuration.notReadyRetryAfter)
        case .metrics:
            return HTTPResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                body: Data(ServiceMetrics.render()))
        case .openapi:
            return HTTPResponse(status: .ok, contentType: "application/yaml", body: Data(OpenAPIDocument.yaml.utf8))
        case .domains:
            let list = DomainList(domains: engine.store.domains.map(DomainDescription.init),
                                  failed: engine.store.failures.map { DomainFailureDescription(name: $0.name, error: $0.reason) })
            return .json(JSON.encode(list))
        case .domain(let name):
            switch request.method {
            case "PUT":
                let reloaded = engine.store.domain(name) != nil
                let d = try engine.store.load(name)
                logger.info("domain \(reloaded ? "reloaded" : "loaded") via API", metadata: ["domain": "\(name)"])
                return .json(JSON.encode(DomainDescription(d)), status: reloaded ? .ok : .created)
            case "DELETE":
                try engine.store.unload(name)
                logger.info("domain unloaded via API", metadata: ["domain": "\(name)"])
                return .json(JSON.encode(["unloaded": name]))
            default:
                guard let d = engine.store.domain(name) else { throw EngineError.unknownDomain(name) }
                return .json(JSON.encode(DomainDescription(d)))
            }
        case .segment(let name):
            return try SegmentRoute(service: self, domain: name, request: request, logger: logger,
                                    clientGone: clientGone).respond()
        case .job(let j):
            guard let caller = admission.jobCaller else { throw APIError(.internalServerError, .internalError, "job route without a caller") }
            return try respondToJobRoute(j, request, caller: caller, logger: logger)
        case .stac(let name):
            guard let d = engine.store.domain(name) else { throw EngineError.unknownDomain(name) }
            let links = [
                STACModelCard.Link(href: "/v1/domains/\(name)/stac", rel: "self", type: "application/geo+json", title: "this model card"),
                STACModelCard.Link(href: "/processes/\(name)", rel: "related", type: "application/json",
                                   title: "OGC API – Processes description of this model"),
            ]
            return HTTPResponse(status: .ok, contentType: "application/geo+json", body: STACModelCard.item(d, links: links))
        case .ogc(let o):
            return try respondToOGCRoute(o, request, logger: logger)
        }
    }
}

/// `GET /readyz` when ready.
struct Readiness: Codable {
    var status: String
    var domains: [String]
    /// "ok", or why the job routes cannot answer (fleet mode); absent without jobs.
    var jobs: String?
}
