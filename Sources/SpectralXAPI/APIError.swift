import SpectralXCheckpoint
import SpectralXEngine
import SpectralXHTTP
import SpectralXRaster

/// An error answer of the API: status, stable code, message, optional Retry-After. The JSON body is
/// the server's standard `{"error":{"status":…,"code":"…","message":"…"}}`.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPStatus
    public var code: String
    public var message: String
    public var retryAfter: Int?
    public var headers: [(String, String)] = []

    public init(_ status: HTTPStatus, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public var response: HTTPResponse {
        var r = HTTPResponse.error(status, code: code, message: message)
        if let retryAfter { r.headers.replaceOrAdd(name: "Retry-After", value: String(retryAfter)) }
        for (n, v) in headers { r.headers.replaceOrAdd(name: n, value: v) }
        return r
    }
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
        case let e as CheckpointError: return APIError(.unprocessableContent, "invalid_model", e.description)
        default: return APIError(.internalServerError, "internal_error", "internal error: \(error)")
        }
    }

    static func map(_ e: EngineError) -> APIError {
        switch e {
        case .unknownDomain(let d): return APIError(.notFound, "unknown_domain", "no domain named '\(d)' is loaded")
        case .notReady(let s): return APIError(.serviceUnavailable, "not_ready", "the service is not ready: \(s)", retryAfter: 5)
        case .queueFull(let s): return APIError(.serviceUnavailable, "queue_full", e.description, retryAfter: s)
        case .deadlineExceeded(let s): return APIError(.serviceUnavailable, "deadline_exceeded", e.description, retryAfter: s)
        case .shuttingDown: return APIError(.serviceUnavailable, "shutting_down", e.description, retryAfter: 1)
        case .incompatibleInput(let s): return APIError(.unprocessableContent, "incompatible_tile", s)
        case .invalidArgument(let s): return APIError(.badRequest, "invalid_parameter", s)
        case .invalidDomainName(let s): return APIError(.badRequest, "invalid_domain_name", s)
        case .domainLoadFailed: return APIError(.unprocessableContent, "invalid_domain", e.description)
        case .backboneLoadFailed: return APIError(.unprocessableContent, "invalid_backbone", e.description)
        case .inferenceFailed: return APIError(.internalServerError, "internal_error", e.description)
        // Nobody reads the answer of a cancelled request; 499-style "client closed" is not a standard status.
        case .cancelled: return APIError(.serviceUnavailable, "cancelled", e.description)
        }
    }

    static func map(_ e: RasterError) -> APIError {
        switch e {
        case .unsupported(let s):
            let code = s.lowercased().contains("compression") ? "unsupported_compression" : "unsupported_tiff_feature"
            return APIError(.unsupportedMediaType, code, e.description)
        case .npyObjectArray: return APIError(.unsupportedMediaType, "unsupported_npy_dtype", e.description)
        case .limitExceeded: return APIError(.unprocessableContent, "raster_limit_exceeded", e.description)
        case .notRecognized: return APIError(.badRequest, "unrecognized_file", e.description)
        case .truncated, .offsetOutOfRange, .ifdLoop, .malformed, .missingTag, .decompressionFailed, .invalidArgument:
            return APIError(.badRequest, "malformed_file", e.description)
        case .io: return APIError(.internalServerError, "internal_error", e.description)
        }
    }
}
