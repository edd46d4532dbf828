import SpectralXCheckpoint
import SpectralXEngine
import SpectralXHTTP
import SpectralXRaster
import SpectralXRemote

/// An error answer of the API: status, stable code, message, optional Retry-After. The JSON body is
/// the server's standard `{"error":{"status":…,"code":"…","message":"…"}}`.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPStatus
    public var code: String
    public var message: String
    public var retryAfter: Int?
    public var headers: [(String, String)] = []

    public init(_ status: HTTPStatus, _ code: APIErrorCode, _ message: String, retryAfter: Int? = nil) {
        self.init(status, code.rawValue, message, retryAfter: retryAfter)
    }

    /// With a code as text: for codes passed through from the HTTP layer. New API codes belong in
    /// `APIErrorCode` (a test checks that every code the sources use is listed in openapi.yaml).
    public init(_ status: HTTPStatus, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = APIError.bounded(message)
        self.retryAfter = retryAfter
    }

    /// Longest message an error body carries: messages name the problem, they do not echo input.
    public static let maxMessageLength = 1024

    /// `message` cut to `maxMessageLength` Unicode scalars (JSON Schema's `maxLength` unit), with a marker.
    static func bounded(_ message: String) -> String {
        let scalars = message.unicodeScalars
        guard scalars.count > maxMessageLength else { return message }
        var out = String.UnicodeScalarView(scalars.prefix(maxMessageLength - 21))
        out.append(contentsOf: "… (message truncated)".unicodeScalars)
        return String(out)
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public var response: HTTPResponse {
        var r = HTTPResponse.error(status, code: code, message: message)
        if let retryAfter { r.headers.replaceOrAdd(name: "Retry-After", value: String(retryAfter)) }
        for (n, v) in headers { r.headers.replaceOrAdd(name: n, value: v) }
        return r
    }
}

/// The stable `code` strings of the API's own error answers (the HTTP layer's are in `HTTPServerError`).
/// openapi.yaml lists the union of both as the `Error.error.code` enum; `ErrorCodeTests` keeps them equal.
public enum APIErrorCode: String, CaseIterable, Sendable {
    case notFound = "not_found"
    case methodNotAllowed = "method_not_allowed"
    case unknownDomain = "unknown_domain"
    case unauthorized
    case adminDisabled = "admin_disabled"
    case unsupportedMediaType = "unsupported_media_type"
    case unsupportedCompression = "unsupported_compression"
    case unsupportedTiffFeature = "unsupported_tiff_feature"
    case unsupportedNpyDtype = "unsupported_npy_dtype"
    case unsupportedNpyFeature = "unsupported_npy_feature"
    case unrecognizedFile = "unrecognized_file"
    case malformedFile = "malformed_file"
    case emptyBody = "empty_body"
    case missingTilePart = "missing_tile_part"
    case invalidParameter = "invalid_parameter"
    case invalidDomainName = "invalid_domain_name"
    case incompatibleTile = "incompatible_tile"
    case rasterLimitExceeded = "raster_limit_exceeded"
    case invalidDomain = "invalid_domain"
    case invalidBackbone = "invalid_backbone"
    case invalidModel = "invalid_model"
    case queueFull = "queue_full"
    case notReady = "not_ready"
    case deadlineExceeded = "deadline_exceeded"
    case shuttingDown = "shutting_down"
    case cancelled
    case incompatibleStack = "incompatible_stack"
    // Jobs (`/v1/jobs`).
    case jobsDisabled = "jobs_disabled"
    case invalidJobID = "invalid_job_id"
    case noSuchJob = "no_such_job"
    case jobDismissed = "job_dismissed"
    case resultNotReady = "result_not_ready"
    case rangeNotSatisfiable = "range_not_satisfiable"
    case tooManyJobs = "too_many_jobs"
    case insufficientStorage = "insufficient_storage"
    case storageError = "storage_error"
    case jobDatabaseUnavailable = "job_database_unavailable"
    case fetchNotAllowed = "fetch_not_allowed"
    case referenceNotFound = "reference_not_found"
    case referenceChanged = "reference_changed"
    case referenceUnreachable = "reference_unreachable"
    case referenceLimitExceeded = "reference_limit_exceeded"
    case invalidSTACItem = "invalid_stac_item"
    case unknownAsset = "unknown_asset"
    case unmatchedBand = "unmatched_band"
    case blobStoreUnavailable = "blob_store_unavailable"
    case internalError = "internal_error"
}

/// One place that turns engine, raster and checkpoint failures into statuses and stable codes.
/// Only errors that indicate a bug become 500.
enum ErrorMapping {
    static func apiError(for error: any Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as HTTPServerError: return APIError(e.status, e.code, e.message)
        case let e as EngineError: return map(e)
        case let e as JobError: return map(e)
        case let e as RasterError: return map(e)
        case let e as CheckpointError: return APIError(.unprocessableContent, .invalidModel, e.description)
        case let e as SceneReferenceError: return map(e)
        case let e as STACError: return map(e)
        case let e as RemoteError: return map(SceneReferenceError(e))
        default: return APIError(.internalServerError, .internalError, "internal error: \(error)")
        }
    }

    /// A scene by reference: refused by the policy 403; missing, changed or too large 422; the
    /// remote server failing after the retries 502 (its fault, not the request's).
    static func map(_ e: SceneReferenceError) -> APIError {
        switch e {
        case .notAllowed: return APIError(.forbidden, .fetchNotAllowed, e.description)
        case .notFound: return APIError(.unprocessableContent, .referenceNotFound, e.description)
        case .changed: return APIError(.unprocessableContent, .referenceChanged, e.description)
        case .limitExceeded: return APIError(.unprocessableContent, .referenceLimitExceeded, e.description)
        case .unreachable: return APIError(HTTPStatus(code: 502), .referenceUnreachable, e.description, retryAfter: 10)
        }
    }

    static func map(_ e: STACError) -> APIError {
        switch e {
        case .invalidItem, .noWavelengths: return APIError(.unprocessableContent, .invalidSTACItem, e.description)
        case .unknownAsset: return APIError(.unprocessableContent, .unknownAsset, e.description)
        case .unmatchedBand: return APIError(.unprocessableContent, .unmatchedBand, e.description)
        }
    }

    static func map(_ e: EngineError) -> APIError {
        switch e {
        case .unknownDomain(let d): return APIError(.notFound, .unknownDomain, "no domain named '\(d)' is loaded")
        case .notReady(let s): return APIError(.serviceUnavailable, .notReady, "the service is not ready: \(s)", retryAfter: 5)
        case .queueFull(let s): return APIError(.serviceUnavailable, .queueFull, e.description, retryAfter: s)
        case .deadlineExceeded(let s): return APIError(.serviceUnavailable, .deadlineExceeded, e.description, retryAfter: s)
        case .shuttingDown: return APIError(.serviceUnavailable, .shuttingDown, e.description, retryAfter: 1)
        case .incompatibleInput(let s): return APIError(.unprocessableContent, .incompatibleTile, s)
        case .invalidArgument(let s): return APIError(.badRequest, .invalidParameter, s)
        case .invalidDomainName(let s): return APIError(.badRequest, .invalidDomainName, s)
        case .domainLoadFailed: return APIError(.unprocessableContent, .invalidDomain, e.description)
        case .backboneLoadFailed: return APIError(.unprocessableContent, .invalidBackbone, e.description)
        case .inferenceFailed: return APIError(.internalServerError, .internalError, e.description)
        // Nobody reads the answer of a cancelled request; 499-style "client closed" is not a standard status.
        case .cancelled: return APIError(.serviceUnavailable, .cancelled, e.description)
        }
    }

    static func map(_ e: RasterError) -> APIError {
        switch e {
        case .unsupported(_, let kind):
            let code: APIErrorCode = switch kind {
            case .npyDtype: .unsupportedNpyDtype
            case .npyFeature: .unsupportedNpyFeature
            case .tiffCompression: .unsupportedCompression
            case .tiffFeature: .unsupportedTiffFeature
            }
            return APIError(.unsupportedMediaType, code, e.description)
        case .npyObjectArray: return APIError(.unsupportedMediaType, .unsupportedNpyDtype, e.description)
        case .limitExceeded: return APIError(.unprocessableContent, .rasterLimitExceeded, e.description)
        case .notRecognized: return APIError(.badRequest, .unrecognizedFile, e.description)
        case .truncated, .offsetOutOfRange, .ifdLoop, .malformed, .missingTag, .decompressionFailed, .invalidArgument:
            return APIError(.badRequest, .malformedFile, e.description)
        case .io: return APIError(.internalServerError, .internalError, e.description)
        }
    }
}
