import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An outgoing HTTP/1.1 request.
public struct HTTPClientRequest: Sendable {
    public enum Body: Sendable {
        case none
        case data(Data)
        /// `length` bytes of the file at `path` from `offset`, read while sending (re-read on a retry).
        case file(path: String, offset: UInt64, length: UInt64)
    }

    public var method: String
    /// Sent as given: its percent-encoded path and query go on the wire unchanged (what was signed).
    public var url: URL
    public var headers: HTTPFields
    public var body: Body
    /// Whether a failed attempt may be repeated. nil: by method (GET, HEAD, PUT, DELETE, OPTIONS yes; POST no).
    public var idempotent: Bool?

    public init(method: String = "GET", url: URL, headers: HTTPFields = HTTPFields(), body: Body = .none, idempotent: Bool? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.idempotent = idempotent
    }

    var isIdempotent: Bool { idempotent ?? ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"].contains(method.uppercased()) }
}

/// A received response. `body` holds the bytes unless a 2xx body went to a file.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var headers: HTTPFields
    public var body: Data
    /// Body bytes received (also when they went to a file).
    public var bodyLength: Int64
    /// Attempts made, 1 when the first succeeded.
    public var attempts: Int
}

/// Where a response body goes. Error (non-2xx) bodies always go to memory (at most 1 MiB), so
/// callers can read the server's error document.
public enum ResponseBodyDestination {
    case memory(limit: Int)
    /// Written from the handle's current offset; before a retry the handle is truncated back to
    /// that offset, so a file never holds two attempts' bytes.
    case file(FileHandle)
    case discard
}

/// A small blocking HTTP/1.1 client on sockets (TLS through OpenSSL): one connection per request,
/// timeouts on connect and on every stalled read or write, and retries with jittered exponential
/// backoff for idempotent requests on 5xx/429, connection resets, timeouts and short reads.
/// Chosen over FoundationNetworking's URLSession because that needs libcurl in the runtime image
/// and adds headers of its own (Accept-Encoding) that change what a byte range means.
public final class HTTPClient: Sendable {
    public struct Configuration: Sendable {
        /// Seconds for resolving, connecting and the TLS handshake together.
        public var connectTimeout: Double = 10
        /// Seconds a send or receive may make no progress.
        public var stallTimeout: Double = 30
        /// Seconds one attempt may take in all (connect to last body byte); nil for no limit.
        /// A timed-out attempt counts as transient and is retried like a stall.
        public var attemptTimeout: Double?
        /// Attempts for an idempotent request (1 = no retry).
        public var maxAttempts: Int = 4
        /// Backoff before attempt n (n ≥ 2): random in [½, 1] × min(backoffMax, backoffBase × 2^(n−2)).
        public var backoffBase: Double = 0.2
        public var backoffMax: Double = 5
        /// Statuses retried on idempotent requests.
        public var retryStatuses: Set<Int> = [429, 500, 502, 503, 504]
        public var verifyTLS: Bool = true
        /// A PEM CA bundle to trust instead of the system store.
        public var caFile: String?
        public var userAgent: String = "spectralx"
        /// Keep connections open between idempotent requests to the same scheme, host and port
        /// (POST always gets a fresh one, so a stale connection can never swallow it).
        public var keepAlive: Bool = true
        /// Seconds an unused connection stays in the pool (below common server idle limits).
        public var idleConnectionTimeout: Double = 15
        /// Idle connections kept per scheme, host and port.
        public var maxIdleConnectionsPerHost: Int = 8
        /// Checked before every request (the URL) and before every connect (each resolved address);
        /// nil: no check (operator-configured endpoints such as the blob store's).
        public var policy: FetchPolicy?

        public init() {}
    }

    public let configuration: Configuration
    private let tls: Result<TLSClientContext, FetchError>
    private let pool: ConnectionPool

    /// Ignores SIGPIPE process-wide (as the server does): TLS writes cannot pass `MSG_NOSIGNAL`,
    /// and a peer closing mid-upload must be an error, not the end of the process.
    public init(configuration: Configuration = Configuration()) {
        signal(SIGPIPE, SIG_IGN)
        self.configuration = configuration
        pool = ConnectionPool(idleTimeout: configuration.idleConnectionTimeout, maxPerHost: configuration.maxIdleConnectionsPerHost)
        do {
            tls = .success(try TLSClientContext(verify: configuration.verifyTLS, caFile: configuration.caFile))
        } catch let e as FetchError {
            tls = .failure(e)
        } catch {
            tls = .failure(.tls(target: "-", reason: "\(error)"))
        }
    }

    /// The Host header value this client sends for `url` (what a signer must sign).
    public static func hostHeader(for url: URL) throws -> String {
        let t = try Target(url)
        return t.hostHeader
    }

    /// `scheme://host:port/path` of `url`: for messages (no query, no user info).
    public static func redacted(_ url: URL) -> String {
        (try? Target(url).description) ?? "<invalid URL>"
    }

    /// Sends `request`, retrying as configured; returns the last response (whatever its status)
    /// or throws the last transport error.
    public func execute(_ request: HTTPClientRequest, body destination: ResponseBodyDestination = .memory(limit: 64 << 20)) throws -> HTTPClientResponse {
        let allowedBy = try configuration.policy?.allowing(request.url)
        let target = try Target(request.url)
        var fileStart: UInt64?
        if case .file(let handle) = destination {
            do { fileStart = try handle.offset() } catch { throw FetchError.localIO("cannot read the output file's offset: \(error)") }
        }
        let attempts = max(1, configuration.maxAttempts)
        var attempt = 1
        var retryAfter: Double = 0
        while true {
            if attempt > 1 {
                let cap = min(configuration.backoffMax, configuration.backoffBase * pow(2, Double(attempt - 2)))
                // A server's Retry-After (seconds) is honoured up to backoffMax.
                Thread.sleep(forTimeInterval: max(cap * Double.random(in: 0.5...1), min(retryAfter, configuration.backoffMax)))
                retryAfter = 0
                if case .file(let handle) = destination, let fileStart {
                    do { try handle.truncate(atOffset: fileStart) } catch {
                        throw FetchError.localIO("cannot rewind the output file: \(error)")
                    }
                }
            }
            do {
                var response = try once(request, target: target, destination: destination, allowedBy: allowedBy)
                response.attempts = attempt
                if request.isIdempotent, attempt < attempts, configuration.retryStatuses.contains(response.status) {
                    retryAfter = response.headers["Retry-After"].flatMap { Double($0.trimmingCharacters(in: .whitespaces)) } ?? 0
                    attempt += 1
                    continue
                }
                return response
            } catch let e as FetchError {
                // Nothing was sent when the connect failed, so even a POST may try again.
                let nothingSent: Bool
                switch e {
                case .connectFailed: nothingSent = true
                case .timeout(_, let phase): nothingSent = phase == "connect"
                default: nothingSent = false
                }
                guard e.isTransient, request.isIdempotent || nothingSent, attempt < attempts else { throw e }
                attempt += 1
            }
        }
    }

    private func once(_ request: HTTPClientRequest, target: Target, destination: ResponseBodyDestination,
                      allowedBy: FetchPolicy.Entry?) throws -> HTTPClientResponse {
        let keepAlive = configuration.keepAlive && request.isIdempotent
        if keepAlive, let parked = pool.take(target.poolKey) {
            // A parked connection the server has closed in the meantime fails before any
            // response byte; then the request goes again on a fresh connection, not as a retry.
            do {
                return try exchange(request, target: target, destination: destination, on: parked, keepAlive: true)
            } catch let e as FetchError where e == .connectionReset(target: target.description) {
            }
        }
        var tlsContext: TLSClientContext?
        if target.tls {
            switch tls {
            case .success(let c): tlsContext = c
            case .failure(let e): throw e
            }
        }
        let connection = try Connection(host: target.host, port: target.port, tls: tlsContext,
                                        connectTimeout: configuration.connectTimeout, stallTimeout: configuration.stallTimeout,
                                        attemptDeadline: configuration.attemptTimeout.map { Date().addingTimeInterval($0) },
                                        target: target.description,
                                        admit: configuration.policy.flatMap { policy in allowedBy.map { entry in { address in
                                            try policy.check(address: address, allowedBy: entry, target: target.description)
                                        } } })
        return try exchange(request, target: target, destination: destination, on: connection, keepAlive: keepAlive)
    }

    /// Sends the request and reads the response on `connection`, then parks it in the pool when
    /// the exchange left it clean (HTTP/1.1, no `Connection: close`, a framed body read to its end)
    /// or closes it.
    private func exchange(_ request: HTTPClientRequest, target: Target, destination: ResponseBodyDestination,
                          on connection: Connection, keepAlive: Bool) throws -> HTTPClientResponse {
        var parked = false
        defer { if !parked { connection.close() } }
        connection.attemptDeadline = configuration.attemptTimeout.map { Date().addingTimeInterval($0) }
        let head = try requestHead(request, target: target, keepAlive: keepAlive)
        do {
            try connection.write(head)
            try sendBody(request.body, on: connection)
        } catch let e as FetchError where e == .connectionReset(target: target.description) {
            // The server may have answered early (an error before reading the body) and closed.
            var reader = ResponseReader(connection: connection, target: target.description)
            if let response = try? reader.readResponse(method: request.method, destination: .memory(limit: 1 << 20)) {
                return response
            }
            throw e
        }
        var reader = ResponseReader(connection: connection, target: target.description)
        let response = try reader.readResponse(method: request.method, destination: destination)
        if keepAlive && reader.leftReusable {
            connection.attemptDeadline = nil
            pool.park(connection, key: target.poolKey)
            parked = true
        }
        return response
    }

    private func requestHead(_ request: HTTPClientRequest, target: Target, keepAlive: Bool) throws -> Data {
        func clean(_ s: String) -> Bool { !s.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) }
        let method = request.method.uppercased()
        guard !method.isEmpty, method.utf8.allSatisfy({ (65...90).contains($0) }) else {
            throw FetchError.invalidRequest("bad method")
        }
        var head = "\(method) \(target.requestTarget) HTTP/1.1\r\n"
        if !request.headers.contains("Host") { head += "Host: \(target.hostHeader)\r\n" }
        for (name, value) in request.headers {
            guard clean(name), clean(value), !name.isEmpty, !name.contains(":") else {
                throw FetchError.invalidRequest("header \(clean(name) ? name : "?") has a forbidden character")
            }
            if name.caseInsensitiveEquals("Content-Length") || name.caseInsensitiveEquals("Connection")
                || name.caseInsensitiveEquals("Transfer-Encoding") { continue }
            head += "\(name): \(value)\r\n"
        }
        if !request.headers.contains("User-Agent") { head += "User-Agent: \(configuration.userAgent)\r\n" }
        switch request.body {
        case .none:
            if method == "PUT" || method == "POST" { head += "Content-Length: 0\r\n" }
        case .data(let d): head += "Content-Length: \(d.count)\r\n"
        case .file(_, _, let length): head += "Content-Length: \(length)\r\n"
        }
        head += keepAlive ? "\r\n" : "Connection: close\r\n\r\n"
        return Data(head.utf8)
    }

    private func sendBody(_ body: HTTPClientRequest.Body, on connection: Connection) throws {
        switch body {
        case .none: return
        case .data(let d): try connection.write(d)
        case .file(let path, let offset, let length):
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FetchError.invalidRequest("cannot open the body file \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 256 << 10)
            var position = offset
            var remaining = length
            while remaining > 0 {
                let want = Int(min(UInt64(buffer.count), remaining))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw FetchError.invalidRequest("the body file \(path) is shorter than announced") }
                try buffer.withUnsafeBytes { try connection.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                position += UInt64(n)
                remaining -= UInt64(n)
            }
        }
    }
}

/// Where a URL points, as the client needs it.
struct Target: CustomStringConvertible {
    let tls: Bool
    let host: String
    let port: Int
    let requestTarget: String
    let hostHeader: String
    let path: String

    init(_ url: URL) throws {
        guard let c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { throw FetchError.invalidURL("unparsable") }
        let scheme = (c.scheme ?? "").lowercased()
        guard scheme == "http" || scheme == "https" else { throw FetchError.invalidURL("scheme must be http or https, not '\(scheme)'") }
        tls = scheme == "https"
        var h = c.percentEncodedHost ?? ""
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        guard !h.isEmpty else { throw FetchError.invalidURL("no host") }
        host = h
        let defaultPort = tls ? 443 : 80
        port = c.port ?? defaultPort
        guard (1...65535).contains(port) else { throw FetchError.invalidURL("port \(port) out of range") }
        path = c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath
        requestTarget = path + (c.percentEncodedQuery.map { "?\($0)" } ?? "")
        let bracketed = h.contains(":") ? "[\(h)]" : h
        hostHeader = port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }

    var description: String { "\(tls ? "https" : "http")://\(hostHeader)\(path)" }
    var poolKey: String { "\(tls ? "https" : "http")://\(hostHeader)" }
}

/// Reads one response from a connection: head (skipping 1xx), then the body framed by
/// Content-Length, chunked coding or end of stream.
struct ResponseReader {
    let connection: Connection
    let target: String
    private var buffer = [UInt8]()
    private var start = 0
    private static let headLimit = 64 << 10
    /// After `readResponse`: the connection may carry another exchange (HTTP/1.1, no
    /// `Connection: close`, the body framed and read to its end, nothing unread).
    private(set) var leftReusable = false

    init(connection: Connection, target: String) {
        self.connection = connection
        self.target = target
    }

    /// Reads more bytes into the buffer; false at end of stream.
    private mutating func fill() throws -> Bool {
        if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
        if start > 1 << 20 { buffer.removeFirst(start); start = 0 }
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: 64 << 10))
        let n = try buffer.withUnsafeMutableBytes { try connection.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[old...])) }
        buffer.removeLast((64 << 10) - n)
        return n > 0
    }

    /// One CRLF- (or LF-) terminated line without its terminator; nil at end of stream.
    private mutating func readLine() throws -> String? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 10) {
                var end = nl
                if end > start && buffer[end - 1] == 13 { end -= 1 }
                let line = String(decoding: buffer[start..<end], as: UTF8.self)
                start = nl + 1
                return line
            }
            guard buffer.count - start < Self.headLimit else {
                throw FetchError.malformedResponse(target: target, reason: "header line too long")
            }
            guard try fill() else { return nil }
        }
    }

    mutating func readResponse(method: String, destination: ResponseBodyDestination) throws -> HTTPClientResponse {
        var status = 0
        var headers = HTTPFields()
        var http11 = false
        repeat {
            guard let statusLine = try readLine() else { throw FetchError.connectionReset(target: target) }
            if statusLine.isEmpty { continue }  // tolerate a stray CRLF between responses
            let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]), (100...599).contains(code) else {
                throw FetchError.malformedResponse(target: target, reason: "bad status line")
            }
            status = code
            http11 = parts[0] == "HTTP/1.1"
            headers = HTTPFields()
            while true {
                guard let line = try readLine() else { throw FetchError.connectionReset(target: target) }
                if line.isEmpty { break }
                guard let colon = line.firstIndex(of: ":") else {
                    throw FetchError.malformedResponse(target: target, reason: "header line without a colon")
                }
                headers.append(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
        } while (100..<200).contains(status)

        let sink = BodySink(destination: (200..<300).contains(status) ? destination : .memory(limit: 1 << 20), target: target)
        let bodyless = method.uppercased() == "HEAD" || status == 204 || status == 304
        if !bodyless {
            if let te = headers["Transfer-Encoding"], te.lowercased().contains("chunked") {
                while true {
                    guard let sizeLine = try readLine() else { throw FetchError.shortRead(target: target, expected: nil, received: sink.received) }
                    let hex = sizeLine.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                    guard let size = Int(hex, radix: 16), size >= 0 else {
                        throw FetchError.malformedResponse(target: target, reason: "bad chunk size")
                    }
                    if size == 0 {
                        while let trailer = try readLine(), !trailer.isEmpty {}
                        break
                    }
                    try readExactly(size, expected: nil, into: sink)
                    guard try readLine() != nil else { throw FetchError.shortRead(target: target, expected: nil, received: sink.received) }
                }
            } else if let cl = headers["Content-Length"] {
                guard let length = Int64(cl), length >= 0 else {
                    throw FetchError.malformedResponse(target: target, reason: "bad Content-Length")
                }
                try readExactly(Int(length), expected: length, into: sink)
            } else {
                while true {
                    if start < buffer.count { try sink.deliver(buffer[start...]); start = buffer.count }
                    guard try fill() else { break }
                }
                return HTTPClientResponse(status: status, headers: headers, body: sink.collected, bodyLength: sink.received, attempts: 1)
            }
        }
        let closing = headers["Connection"].map { $0.lowercased().contains("close") } ?? false
        leftReusable = http11 && !closing && start == buffer.count
        return HTTPClientResponse(status: status, headers: headers, body: sink.collected, bodyLength: sink.received, attempts: 1)
    }

    private mutating func readExactly(_ count: Int, expected: Int64?, into sink: BodySink) throws {
        var remaining = count
        while remaining > 0 {
            if start == buffer.count {
                guard try fill() else { throw FetchError.shortRead(target: target, expected: expected, received: sink.received) }
            }
            let n = min(remaining, buffer.count - start)
            try sink.deliver(buffer[start..<(start + n)])
            start += n
            remaining -= n
        }
    }
}

/// Accumulates or forwards body bytes for one response.
private final class BodySink {
    let destination: ResponseBodyDestination
    let target: String
    var collected = Data()
    var received: Int64 = 0

    init(destination: ResponseBodyDestination, target: String) {
        self.destination = destination
        self.target = target
    }

    func deliver(_ bytes: ArraySlice<UInt8>) throws {
        received += Int64(bytes.count)
        switch destination {
        case .memory(let limit):
            guard collected.count + bytes.count <= limit else { throw FetchError.bodyTooLarge(target: target, limit: limit) }
            collected.append(contentsOf: bytes)
        case .file(let handle):
            do { try handle.write(contentsOf: bytes) } catch { throw FetchError.localIO("cannot write the response body: \(error)") }
        case .discard: break
        }
    }
}

/// Idle keep-alive connections by scheme, host and port, newest first out.
/// `@unchecked Sendable`: the dictionary is only touched under `lock`.
final class ConnectionPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [String: [(connection: Connection, since: Date)]] = [:]
    private let idleTimeout: Double
    private let maxPerHost: Int

    init(idleTimeout: Double, maxPerHost: Int) {
        self.idleTimeout = idleTimeout
        self.maxPerHost = maxPerHost
    }

    /// The newest parked connection to `key` that is young enough and still open; others are closed.
    func take(_ key: String) -> Connection? {
        var discard: [Connection] = []
        defer { for c in discard { c.close() } }
        while true {
            let candidate: (connection: Connection, since: Date)? = lock.withLock { idle[key]?.popLast() }
            guard let candidate else { return nil }
            if -candidate.since.timeIntervalSinceNow < idleTimeout && candidate.connection.isIdleAndOpen() { return candidate.connection }
            discard.append(candidate.connection)
        }
    }

    func park(_ connection: Connection, key: String) {
        let evicted: Connection? = lock.withLock {
            idle[key, default: []].append((connection, Date()))
            return idle[key]!.count > maxPerHost ? idle[key]!.removeFirst().connection : nil
        }
        evicted?.close()
    }

    deinit { for list in idle.values { for entry in list { entry.connection.close() } } }
}
