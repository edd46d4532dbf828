/// Failures of an outgoing request. Messages name the scheme, host, port and path only: never
/// query strings (presigned URLs carry signatures there), user info or header values.
public enum FetchError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The URL cannot be requested (scheme other than http/https, no host, bad port).
    case invalidURL(String)
    /// The request itself cannot be sent (a header with a line break, a body file that cannot be read).
    case invalidRequest(String)
    /// Name resolution or TCP connect failed.
    case connectFailed(target: String, reason: String)
    /// No progress within the configured timeout; `phase` is "connect", "send", "receive" or "request".
    case timeout(target: String, phase: String)
    /// The peer reset or closed the connection before a complete response head.
    case connectionReset(target: String)
    /// The body ended before its announced length (or inside a chunk).
    case shortRead(target: String, expected: Int64?, received: Int64)
    case tls(target: String, reason: String)
    /// The response is not HTTP/1.x as we can read it.
    case malformedResponse(target: String, reason: String)
    /// A memory-bound body exceeded the caller's limit.
    case bodyTooLarge(target: String, limit: Int)
    /// Local I/O (reading a request body file, writing the response file).
    case localIO(String)
    /// The fetch policy (`FetchPolicy`) refuses the URL or every address its host resolves to;
    /// nothing was sent.
    case refused(target: String, reason: String)

    /// Transport failures worth another attempt on an idempotent request.
    public var isTransient: Bool {
        switch self {
        case .connectFailed, .timeout, .connectionReset, .shortRead: return true
        case .invalidURL, .invalidRequest, .tls, .malformedResponse, .bodyTooLarge, .localIO, .refused: return false
        }
    }

    public var description: String {
        switch self {
        case .invalidURL(let s): return "invalid URL: \(s)"
        case .invalidRequest(let s): return "invalid request: \(s)"
        case .connectFailed(let t, let r): return "cannot connect to \(t): \(r)"
        case .timeout(let t, let p): return "\(t): timed out (\(p))"
        case .connectionReset(let t): return "\(t): connection reset or closed before the response"
        case .shortRead(let t, let e, let r):
            return "\(t): response body ended early (\(r) of \(e.map(String.init) ?? "chunked") bytes)"
        case .tls(let t, let r): return "\(t): TLS: \(r)"
        case .malformedResponse(let t, let r): return "\(t): malformed response: \(r)"
        case .bodyTooLarge(let t, let l): return "\(t): response body larger than \(l) bytes"
        case .localIO(let s): return s
        case .refused(let t, let r): return "\(t): refused by the fetch policy: \(r)"
        }
    }
}
