/// Every failure the engine reports, typed so the HTTP layer can map each case to a stable status
/// and code (queue full → 503 with Retry-After, unknown domain → 404, …) without parsing messages.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No loaded domain of that name.
    case unknownDomain(String)
    /// The backbone or every domain is missing: the service cannot answer inference yet.
    case notReady(String)
    /// The scheduler's queue holds `maxQueueLength` images already; retry after roughly this many seconds.
    case queueFull(retryAfterSeconds: Int)
    /// The request waited in the queue past its deadline and was dropped before running.
    case deadlineExceeded(retryAfterSeconds: Int)
    /// The engine is shutting down and takes no new work.
    case shuttingDown
    /// The input is a valid raster but cannot be used with this domain (band count, size limits, …).
    case incompatibleInput(String)
    /// A domain could not be loaded (bad domain.json, digest mismatch, truncated or mismatched weights).
    case domainLoadFailed(domain: String, reason: String)
    /// A name that cannot be a store directory (path traversal, hidden files, …).
    case invalidDomainName(String)
    /// The request's parameters are inconsistent (bad overlap, …).
    case invalidArgument(String)
    /// Backbone could not be loaded.
    case backboneLoadFailed(String)
    /// The batch runner failed; a bug or an I/O failure on the mapped weights.
    case inferenceFailed(String)
    /// The work's `CancellationToken` was cancelled (client gone, job dismissed).
    case cancelled

    public var description: String {
        switch self {
        case .unknownDomain(let d): return "unknown domain '\(d)'"
        case .notReady(let s): return "not ready: \(s)"
        case .queueFull(let s): return "inference queue is full; retry in \(s) s"
        case .deadlineExceeded(let s): return "request deadline passed while queued; retry in \(s) s"
        case .shuttingDown: return "the engine is shutting down"
        case .incompatibleInput(let s): return s
        case let .domainLoadFailed(d, r): return "domain '\(d)' cannot be loaded: \(r)"
        case .invalidDomainName(let s): return s
        case .invalidArgument(let s): return s
        case .backboneLoadFailed(let s): return "backbone cannot be loaded: \(s)"
        case .inferenceFailed(let s): return "inference failed: \(s)"
        case .cancelled: return "the request was cancelled"
        }
    }
}
