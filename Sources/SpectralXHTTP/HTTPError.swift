import Foundation

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
/// | 411    | `length_required`             | a method configured to need a body arrived without `Content-Length`/chunked |
/// | 413    | `payload_too_large`           | declared or received body larger than `maxBodySize` |
/// | 414    | `uri_too_long`                | request line longer than `maxRequestLineLength` |
/// | 415    | `unsupported_media_type`      | `MultipartFormData.parse`: not multipart/form-data or no boundary |
/// | 417    | `expectation_failed`          | `Expect` with anything but `100-continue` |
/// | 431    | `header_fields_too_large`     | header (or trailer) section over `maxHeaderBytes` or `maxHeaderCount` |
/// | 500    | `internal_error`              | the handler threw |
/// | 501    | `unsupported_transfer_coding` | a transfer coding other than `chunked` (e.g. `gzip, chunked`) |
/// | 503    | `too_many_connections`        | connection limit reached (answered on accept, then closed) |
/// | 505    | `http_version_not_supported`  | request version other than HTTP/1.x |
public struct HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let code: String
    public let message: String

    public init(status: HTTPStatus, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// The JSON error body, with fields in a fixed order so the bytes are deterministic.
    public var jsonBody: Data {
        Data("{\"error\":{\"status\":\(status.code),\"code\":\(JSON.quote(code)),\"message\":\(JSON.quote(message))}}".utf8)
    }

    /// A complete response carrying this error.
    public var response: HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: .data(jsonBody))
    }

    static func badRequest(_ message: String) -> HTTPServerError {
        HTTPServerError(status: .badRequest, code: "bad_request", message: message)
    }
    static func invalidContentLength(_ message: String) -> HTTPServerError {
        HTTPServerError(status: .badRequest, code: "invalid_content_length", message: message)
    }
    static func conflictingFraming(_ message: String) -> HTTPServerError {
        HTTPServerError(status: .badRequest, code: "conflicting_framing", message: message)
    }
    static func invalidTransferEncoding(_ message: String) -> HTTPServerError {
        HTTPServerError(status: .badRequest, code: "invalid_transfer_encoding", message: message)
    }
    static let requestTimeout = HTTPServerError(
        status: .requestTimeout, code: "request_timeout", message: "the request was not received in time")
    static let lengthRequired = HTTPServerError(
        status: .lengthRequired, code: "length_required", message: "a Content-Length or chunked body is required")
    static func payloadTooLarge(limit: Int64) -> HTTPServerError {
        HTTPServerError(status: .payloadTooLarge, code: "payload_too_large",
                        message: "the request body exceeds the limit of \(limit) bytes")
    }
    static func uriTooLong(limit: Int) -> HTTPServerError {
        HTTPServerError(status: .uriTooLong, code: "uri_too_long",
                        message: "the request line exceeds the limit of \(limit) bytes")
    }
    static let expectationFailed = HTTPServerError(
        status: .expectationFailed, code: "expectation_failed", message: "only 'Expect: 100-continue' is supported")
    static func headerFieldsTooLarge(_ message: String) -> HTTPServerError {
        HTTPServerError(status: .requestHeaderFieldsTooLarge, code: "header_fields_too_large", message: message)
    }
    static let internalError = HTTPServerError(
        status: .internalServerError, code: "internal_error", message: "internal server error")
    static func unsupportedTransferCoding(_ coding: String) -> HTTPServerError {
        HTTPServerError(status: .notImplemented, code: "unsupported_transfer_coding",
                        message: "transfer coding '\(coding)' is not supported")
    }
    static let tooManyConnections = HTTPServerError(
        status: .serviceUnavailable, code: "too_many_connections", message: "the server is at its connection limit")
    static let versionNotSupported = HTTPServerError(
        status: .httpVersionNotSupported, code: "http_version_not_supported", message: "only HTTP/1.0 and HTTP/1.1 are supported")
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
