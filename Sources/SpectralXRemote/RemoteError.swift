import SpectralXBlobStore
import SpectralXFetch

/// Failures of reading an object by reference. Messages name the URL as `scheme://host:port/path`
/// (never a query string, which may hold a signature, nor user info or header values).
public enum RemoteError: Error, Equatable, Sendable, CustomStringConvertible {
    case notFound(url: String)
    /// The server answered a status other than the one expected.
    case status(url: String, status: Int, detail: String)
    /// The object's ETag changed since it was opened (a 412 on `If-Match`, or a different ETag).
    case changed(url: String, pinned: String, current: String)
    /// The fetch policy refused the URL or its addresses (nothing was sent).
    case refused(url: String, reason: String)
    /// A per-job bound (bytes or time) would be exceeded.
    case budget(url: String, what: String)
    /// The reply cannot be used (no Content-Range, a short body after retries, a bad redirect).
    case badReply(url: String, reason: String)
    case transport(url: String, reason: String)

    public var url: String {
        switch self {
        case .notFound(let u), .status(let u, _, _), .changed(let u, _, _), .refused(let u, _), .budget(let u, _),
             .badReply(let u, _), .transport(let u, _): return u
        }
    }

    public var description: String {
        switch self {
        case .notFound(let u): return "\(u): not found (404)"
        case let .status(u, s, d): return "\(u): the server answered \(s)\(d.isEmpty ? "" : ": \(d)")"
        case let .changed(u, p, c):
            return "\(u) changed while it was read: ETag \(p) when opened, now \(c.isEmpty ? "unknown" : c); the job would mix two versions"
        case let .refused(u, r): return "\(u): refused: \(r)"
        case let .budget(u, w): return "\(u): \(w)"
        case let .badReply(u, r): return "\(u): unusable reply: \(r)"
        case let .transport(u, r): return "\(u): \(r)"
        }
    }

    /// Maps a client or blob store error for `url`.
    static func from(_ error: any Error, url: String) -> any Error {
        switch error {
        case let e as RemoteError: return e
        case FetchError.refused(_, let reason): return RemoteError.refused(url: url, reason: reason)
        case let e as FetchError: return RemoteError.transport(url: url, reason: e.description)
        case BlobStoreError.notFound: return RemoteError.notFound(url: url)
        case BlobStoreError.transport(let e): return RemoteError.transport(url: url, reason: e.description)
        case let e as BlobStoreError: return RemoteError.status(url: url, status: 0, detail: e.description)
        default: return error
        }
    }
}
