import Foundation

/// Size limits enforced by the parser, before any handler runs.
///
/// Status choice (RFC 9112 §3, RFC 6585 §5): a request line longer than `maxRequestLineLength`
/// gets 414 (the request-target is what makes request lines long); a header section over
/// `maxHeaderBytes` or with more than `maxHeaderCount` fields gets 431; the trailer section of a
/// chunked body shares the same limits. A body over `maxBodySize` gets 413 — decided from
/// `Content-Length` before any body byte is read, or as soon as a chunked body crosses it.
public struct HTTPServerLimits: Sendable, Equatable {
    /// Longest request line (method, target, version; without CRLF).
    public var maxRequestLineLength: Int = 8 * 1024
    /// Largest header section in bytes (every field line including CRLFs, without the request line).
    public var maxHeaderBytes: Int = 32 * 1024
    /// Most header fields in one request.
    public var maxHeaderCount: Int = 100
    /// Largest request body in bytes (after de-chunking).
    public var maxBodySize: Int64 = 256 * 1024 * 1024
    /// How the 413 message names `maxBodySize` (e.g. the `serve` flag `--max-body`); nil: not named.
    public var maxBodySizeName: String? = nil
    /// Routes with their own body limit instead of `maxBodySize` (larger or smaller), e.g. scene job
    /// uploads; the first rule matching the request's method and path applies.
    public var routeBodyLimits: [HTTPRouteBodyLimit] = []

    public init(maxRequestLineLength: Int = 8 * 1024, maxHeaderBytes: Int = 32 * 1024,
                maxHeaderCount: Int = 100, maxBodySize: Int64 = 256 * 1024 * 1024) {
        self.maxRequestLineLength = maxRequestLineLength
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodySize = maxBodySize
    }

    /// The body limit of a request (and how the 413 message names it), from its method and path.
    public func bodyLimit(method: String, pathSegments: [String]) -> (bytes: Int64, name: String?) {
        if let rule = routeBodyLimits.first(where: { $0.matches(method: method, pathSegments: pathSegments) }) {
            return (rule.maxBodySize, rule.name)
        }
        return (maxBodySize, maxBodySizeName)
    }
}

/// A body limit for one route: `POST /v1/domains/*/jobs` with its own maximum.
public struct HTTPRouteBodyLimit: Sendable, Equatable {
    /// The method it applies to (exact, e.g. `POST`).
    public var method: String
    /// Path segments (percent-decoded, as `HTTPRequestTarget.pathSegments`); `*` matches any one segment.
    public var pathPattern: [String]
    public var maxBodySize: Int64
    /// How the 413 message names the limit (e.g. `--max-job-body`).
    public var name: String?

    /// `path` like `/v1/domains/*/jobs`.
    public init(method: String, path: String, maxBodySize: Int64, name: String? = nil) {
        self.method = method
        self.pathPattern = path.split(separator: "/").map(String.init)
        self.maxBodySize = maxBodySize
        self.name = name
    }

    public func matches(method m: String, pathSegments p: [String]) -> Bool {
        m == method && p.count == pathPattern.count && zip(pathPattern, p).allSatisfy { $0 == "*" ? !$1.isEmpty : $0 == $1 }
    }
}

/// PEM certificate chain and private key for TLS termination.
public struct HTTPTLSConfiguration: Sendable, Equatable {
    public var certificateChainPath: String
    public var privateKeyPath: String
    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}

/// Everything the server needs besides its handler. Defaults suit a production inference service.
public struct HTTPServerConfiguration: Sendable {
    /// Address to bind: an IPv4 or IPv6 literal (`127.0.0.1`, `::1`, `0.0.0.0`, `::`) or `localhost`.
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks a free port (read it back from `HTTPServer.port`).
    public var port: Int = 8080
    public var backlog: Int32 = 128
    public var limits = HTTPServerLimits()

    /// Connections served at once. Beyond it a new connection is answered
    /// `503 too_many_connections` and closed at once (no queueing: a client can retry, and a
    /// waiting queue would hide overload from load balancers).
    public var maxConnections: Int = 256
    /// Connections accepted beyond `maxConnections` only to read one request head, within
    /// `reservedHeaderTimeout`: a bodiless GET/HEAD of a `priorityPaths` path is answered (then the
    /// connection closes), anything else — or silence until the deadline — gets
    /// `503 too_many_connections`. When the reserve is full, its oldest member that has sent nothing
    /// is refused to make room, so a probe (which sends its head at once) always gets in; a flood
    /// costs each refused client at most `reservedHeaderTimeout`. 0 refuses at accept.
    public var reservedConnections: Int = 128
    /// Head deadline of a reserved connection.
    public var reservedHeaderTimeout: Duration = .seconds(1)
    /// Paths (exact, percent-decoded) of health and metrics probes: served from the reserve when
    /// the server is full, and run on their own handler threads so they never wait behind others.
    public var priorityPaths: Set<String> = ["/healthz", "/readyz", "/metrics"]
    /// Most handler threads running at once (requests beyond wait in order); probes have their own.
    /// Reading heads and bodies and idle keep-alive connections hold no thread.
    public var maxHandlerThreads: Int = 256

    /// Time allowed for a complete request head, counted from its first byte (or from accept for
    /// a fresh connection). Expiry → 408 and close (slowloris defence).
    public var headerReadTimeout: Duration = .seconds(10)
    /// Longest pause allowed between two reads of a body. Expiry → 408 and close.
    public var bodyReadTimeout: Duration = .seconds(30)
    /// Minimum average upload rate in bytes/s, checked over each `bodyRateWindow` of a body;
    /// slower → `408 body_too_slow` and close. 0 disables (then only `bodyReadTimeout` applies).
    public var minBodyRate: Int64 = 4096
    /// The window over which `minBodyRate` is averaged (the first check is one window after the head).
    public var bodyRateWindow: Duration = .seconds(20)
    /// After `shutdown()`, how long in-flight requests may take; then every remaining connection is
    /// closed and `waitUntilStopped()` returns (handlers still running are abandoned).
    public var drainTimeout: Duration = .seconds(30)
    /// How long a kept-alive connection may wait for the next request before being closed silently.
    public var keepAliveIdleTimeout: Duration = .seconds(15)
    /// Longest pause allowed while the peer does not accept response bytes; expiry closes.
    public var writeTimeout: Duration = .seconds(30)
    /// After an error response, how long unread request bytes are drained before the close (so the
    /// peer sees the response instead of a reset).
    public var lingerTimeout: Duration = .seconds(2)

    /// Bodies larger than this (declared, or reached while de-chunking) are written to a temporary
    /// file instead of memory.
    public var bodyMemoryThreshold: Int64 = 8 * 1024 * 1024
    /// Where request bodies are spooled: a directory owned by this user (created mode 0700; start-up
    /// fails if it belongs to someone else or is a symlink). Each server takes a locked subdirectory
    /// and removes the subdirectories of servers that are gone (e.g. killed during an upload) at
    /// start-up; each file is removed once its request ends, answered or not.
    /// Default: `<temporary directory>/spectralx-spool-<uid>`.
    public var spoolDirectory: URL = SpoolDirectory.defaultRoot

    /// Methods that must declare a body (`Content-Length` or chunked); otherwise 411.
    public var methodsRequiringLength: Set<String> = ["POST"]

    /// Adds `Date` to every response; tests turn it off for byte-exact assertions.
    public var includeDateHeader: Bool = true
    /// Value of the `Server` header; nil omits it.
    public var serverName: String? = "spectralx"

    /// Installs SIGTERM/SIGINT sources that trigger `shutdown()` (a process-wide choice, off by default).
    public var installSignalHandlers: Bool = false

    /// TLS termination through the system OpenSSL; nil serves plain HTTP.
    public var tls: HTTPTLSConfiguration? = nil

    public init() {}

    public init(host: String = "127.0.0.1", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}
