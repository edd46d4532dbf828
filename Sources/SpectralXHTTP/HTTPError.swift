import Foundation
import SpectralXSupport

/// An error answered by the HTTP layer itself (or by a handler that wants the same shape).
///
/// The body is always `{"error":{"status":N,"code":"…","message":"…"}}` with
/// `Content-Type: application/json`. The `code` strings are stable API:
///
/// | status | code                          | when |
/// | ------ | ----------------------------- | ---- |
/// | 400    | `bad_request`                 | malformed request line, header or chunked framing; bare CR/LF; obs-fold; missing/duplicate Host |
/// | 400    | `invalid_content_length`      | non-numeric, duplicate or conflicting `Content-Length` |
/// | 400    | `conflicting_framing`         | both `Content-Length` and `Transfer-Encoding`, or `Transfer-Encoding` on HTTP/1.0 |
/// | 400    | `invalid_transfer_encoding`   | `chunked` missing, repeated, or not the final transfer coding |
/// | 400    | `invalid_multipart`           | `MultipartFormData.parse`: malformed multipart body |
/// | 408    | `request_timeout`             | headers or body not received within the configured timeouts |
/// | 408    | `body_too_slow`               | the body arrived slower than `minBodyRate` bytes/s over a `bodyRateWindow` |
/// | 411    | `length_required`             | a method configured to need a body arrived without `Content-Length`/chunked |
/// | 413    | `payload_too_large`           | declared or received body larger than `maxBodySize` (or the route's `routeBodyLimits` entry) |
/// | 414    | `uri_too_long`                | request line longer than `maxRequestLineLength` |
/// | 415    | `unsupported_media_type`      | `MultipartFormData.parse`: not multipart/form-data or no boundary |
/// | 417    | `expectation_failed`          | `Expect` with anything but `100-continue` |
/// | 431    | `header_fields_too_large`     | header (or trailer) section over `maxHeaderBytes` or `maxHeaderCount` |
/// | 500    | `internal_error`              | the handler threw |
/// | 501    | `unsupported_transfer_coding` | a transfer coding other than `chunked` (e.g. `gzip, chunked`) |
/// | 503    | `too_many_connections`        | connection limit reached (answered at once, then closed; probes still served) |
/// | 505    | `http_version_not_supported`  | request version other than HTTP/1.x |
///
/// `HTTPErrorCode.allCases` lists these codes (for checking `openapi.yaml` against the code).
public struct HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let code: String
    public let message: String

    /// Longest message kept (UTF-8 bytes); longer ones are cut at a character boundary and end with `…`,
    /// so an error that echoes client input stays small.
    public static let maxMessageBytes = 512

    public init(status: HTTPStatus, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = Self.bounded(message)
    }

    init(_ code: HTTPErrorCode, message: String) {
        self.init(status: code.status, code: code.rawValue, message: message)
    }

    static func bounded(_ message: String) -> String {
        guard message.utf8.count > maxMessageBytes else { return message }
        var out = ""
        var bytes = 0
        for ch in message {
            let n = ch.utf8.count
            if bytes + n > maxMessageBytes - 3 { break }
            out.append(ch)
            bytes += n
        }
        return out + "…"
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// The JSON error body, with fields in a fixed order so the bytes are deterministic.
    public var jsonBody: Data {
        Data("{\"error\":{\"status\":\(status.code),\"code\":\(JSON.quote(code)),\"message\":\(JSON.quote(message))}}".utf8)
    }

    /// A complete response carrying this error.
    public var response: HTTPResponse {
        var r = HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: .data(jsonBody))
        r.serverError = self
        return r
    }

    static func badRequest(_ message: String) -> HTTPServerError {
        HTTPServerError(.badRequest, message: message)
    }
    static func invalidContentLength(_ message: String) -> HTTPServerError {
        HTTPServerError(.invalidContentLength, message: message)
    }
    static func conflictingFraming(_ message: String) -> HTTPServerError {
        HTTPServerError(.conflictingFraming, message: message)
    }
    static func invalidTransferEncoding(_ message: String) -> HTTPServerError {
        HTTPServerError(.invalidTransferEncoding, message: message)
    }
    static let requestTimeout = HTTPServerError(
        .requestTimeout, message: "the request was not received in time")
    static let lengthRequired = HTTPServerError(
        .lengthRequired, message: "a Content-Length or chunked body is required")
    static func payloadTooLarge(limit: Int64, name: String? = nil) -> HTTPServerError {
        HTTPServerError(.payloadTooLarge,
                        message: "the request body exceeds the limit of \(limit) bytes" + (name.map { " (\($0))" } ?? ""))
    }
    static func uriTooLong(limit: Int) -> HTTPServerError {
        HTTPServerError(.uriTooLong,
                        message: "the request line exceeds the limit of \(limit) bytes")
    }
    static let expectationFailed = HTTPServerError(
        .expectationFailed, message: "only 'Expect: 100-continue' is supported")
    static func headerFieldsTooLarge(_ message: String) -> HTTPServerError {
        HTTPServerError(.headerFieldsTooLarge, message: message)
    }
    static let internalError = HTTPServerError(
        .internalError, message: "internal server error")
    static func unsupportedTransferCoding(_ coding: String) -> HTTPServerError {
        HTTPServerError(.unsupportedTransferCoding,
                        message: "transfer coding '\(coding)' is not supported")
    }
    static let tooManyConnections = HTTPServerError(
        .tooManyConnections, message: "the server is at its connection limit")
    static func bodyTooSlow(minRate: Int64, window: Duration) -> HTTPServerError {
        let w = window.inSeconds
        let shown = w == w.rounded() ? "\(Int(w))" : String(format: "%.1f", w)
        return HTTPServerError(.bodyTooSlow, message: "the request body arrived slower than \(minRate) bytes/s over \(shown) s")
    }
    static let versionNotSupported = HTTPServerError(
        .httpVersionNotSupported, message: "only HTTP/1.0 and HTTP/1.1 are supported")
}

/// The stable error codes of the HTTP layer itself, with their statuses (the table on
/// `HTTPServerError`). `invalid_multipart` and `unsupported_media_type` come from `MultipartFormData`.
public enum HTTPErrorCode: String, CaseIterable, Sendable {
    case badRequest = "bad_request"
    case invalidContentLength = "invalid_content_length"
    case conflictingFraming = "conflicting_framing"
    case invalidTransferEncoding = "invalid_transfer_encoding"
    case invalidMultipart = "invalid_multipart"
    case requestTimeout = "request_timeout"
    case bodyTooSlow = "body_too_slow"
    case lengthRequired = "length_required"
    case payloadTooLarge = "payload_too_large"
    case uriTooLong = "uri_too_long"
    case unsupportedMediaType = "unsupported_media_type"
    case expectationFailed = "expectation_failed"
    case headerFieldsTooLarge = "header_fields_too_large"
    case internalError = "internal_error"
    case unsupportedTransferCoding = "unsupported_transfer_coding"
    case tooManyConnections = "too_many_connections"
    case httpVersionNotSupported = "http_version_not_supported"

    public var status: HTTPStatus {
        switch self {
        case .badRequest, .invalidContentLength, .conflictingFraming, .invalidTransferEncoding, .invalidMultipart: .badRequest
        case .requestTimeout, .bodyTooSlow: .requestTimeout
        case .lengthRequired: .lengthRequired
        case .payloadTooLarge: .payloadTooLarge
        case .uriTooLong: .uriTooLong
        case .unsupportedMediaType: .unsupportedMediaType
        case .expectationFailed: .expectationFailed
        case .headerFieldsTooLarge: .requestHeaderFieldsTooLarge
        case .internalError: .internalServerError
        case .unsupportedTransferCoding: .notImplemented
        case .tooManyConnections: .serviceUnavailable
        case .httpVersionNotSupported: .httpVersionNotSupported
        }
    }
}

/// Minimal JSON string quoting, so error bodies need no encoder and stay byte-stable.
enum JSON {
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
