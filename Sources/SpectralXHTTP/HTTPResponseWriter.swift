import Foundation
import Logging
import SpectralXSupport
import Synchronization

/// Turns a response into bytes on a transport: the head through `HTTPResponseSerializer`, then the
/// body (none for HEAD and for statuses without one). Used by handler threads (blocking writes
/// with `writeTimeout`) and, for small in-memory answers, by the event loop (`encode`).
enum HTTPResponseWriter {
    struct Outcome {
        var ok: Bool
        var bytes: Int64
        /// The connection must close after this response (asked, or close-delimited body).
        var closed: Bool
    }

    /// The complete bytes of a response whose body is empty or in memory; nil for file/streamed bodies.
    static func encode(_ response: HTTPResponse, head: HTTPRequestHead?, requestID: String, close: Bool,
                       configuration: HTTPServerConfiguration) -> Data? {
        var payload = Data()
        switch response.body {
        case .empty: break
        case .data(let d): payload = d
        case .file, .fileRegion, .chunked, .stream: return nil
        }
        var headers = response.headers
        headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        let framing: HTTPResponseFraming = response.status.allowsBody ? .contentLength(Int64(payload.count)) : .none
        var out = HTTPResponseSerializer.head(
            status: response.status, headers: headers, framing: framing, close: close,
            keepAliveHeader: !close && head?.version == .http1_0,
            date: configuration.includeDateHeader ? Date() : nil, serverName: configuration.serverName)
        if head?.method != "HEAD" && response.status.allowsBody { out.append(payload) }
        return out
    }

    /// Writes a response with blocking writes (each waits at most `writeTimeout` for the peer).
    static func write(_ response: HTTPResponse, head: HTTPRequestHead?, requestID: String, close: Bool,
                      transport: any Transport, configuration config: HTTPServerConfiguration, logger: Logger) -> Outcome {
        var headers = response.headers
        headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        let isHead = head?.method == "HEAD"
        let http10 = head?.version == .http1_0
        var close = close
        var fileCleanup: URL? = nil
        defer { if let fileCleanup { try? FileManager.default.removeItem(at: fileCleanup) } }

        var framing: HTTPResponseFraming
        var payload = Data()
        var fileURL: URL? = nil
        var fileRegion: (offset: Int64, length: Int64)? = nil
        var producer: HTTPChunkProducer? = nil
        switch response.body {
        case .empty:
            framing = .contentLength(0)
        case .data(let d):
            framing = .contentLength(Int64(d.count))
            payload = d
        case .file(let url, let remove):
            if remove { fileCleanup = url }
            guard let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value else {
                logger.error("response file missing", metadata: ["path": "\(url.path)"])
                return write(HTTPServerError.internalError.response, head: head, requestID: requestID, close: close,
                             transport: transport, configuration: config, logger: logger)
            }
            framing = .contentLength(size)
            fileURL = url
        case .fileRegion(let url, let offset, let length):
            framing = .contentLength(length)
            fileURL = url
            fileRegion = (offset, length)
        case .chunked(let p):
            producer = p
            if http10 { framing = .closeDelimited; close = true } else { framing = .chunked }
        case .stream(let length, let p):
            producer = p
            framing = .contentLength(length)
        }
        if !response.status.allowsBody {
            framing = .none
            payload = Data()
            fileURL = nil
            producer = nil
        }
        let headBytes = HTTPResponseSerializer.head(
            status: response.status, headers: headers, framing: framing, close: close,
            keepAliveHeader: !close && http10,
            date: config.includeDateHeader ? Date() : nil, serverName: config.serverName)
        var sent: Int64 = 0
        do {
            if isHead {
                try transport.write(headBytes, idleTimeout: config.writeTimeout)
                return Outcome(ok: true, bytes: 0, closed: close)
            }
            if let fileURL {
                try transport.write(headBytes, idleTimeout: config.writeTimeout)
                let handle = try FileHandle(forReadingFrom: fileURL)
                defer { try? handle.close() }
                if let fileRegion { try handle.seek(toOffset: UInt64(fileRegion.offset)) }
                var left = fileRegion?.length ?? .max
                while left > 0, let chunk = try handle.read(upToCount: Int(min(256 * 1024, left))), !chunk.isEmpty {
                    try transport.write(chunk, idleTimeout: config.writeTimeout)
                    sent += Int64(chunk.count)
                    left -= Int64(chunk.count)
                }
            } else if let producer {
                try transport.write(headBytes, idleTimeout: config.writeTimeout)
                let chunked = framing == .chunked
                var count: Int64 = 0
                try producer { data in
                    guard !data.isEmpty else { return }
                    try transport.write(chunked ? HTTPResponseSerializer.chunk(data) : data, idleTimeout: config.writeTimeout)
                    count += Int64(data.count)
                }
                sent = count
                if case .contentLength(let n) = framing, count != n {
                    // The peer was promised n bytes: only closing tells it the body is incomplete.
                    logger.error("streamed body ended at \(count) of \(n) bytes")
                    return Outcome(ok: false, bytes: sent, closed: true)
                }
                if chunked { try transport.write(HTTPResponseSerializer.lastChunk(), idleTimeout: config.writeTimeout) }
            } else {
                var all = headBytes
                all.append(payload)
                try transport.write(all, idleTimeout: config.writeTimeout)
                sent = Int64(payload.count)
            }
            return Outcome(ok: true, bytes: sent, closed: close)
        } catch {
            logger.debug("write failed", metadata: ["error": "\(error)"])
            return Outcome(ok: false, bytes: sent, closed: true)
        }
    }

    /// One access-log line per answered request.
    static func access(_ logger: Logger, _ head: HTTPRequestHead, status: Int, bytes: Int64,
                       started: ContinuousClock.Instant, remote: String?) {
        let elapsed = ContinuousClock.now - started
        let ms = (elapsed.inSeconds * 1000 * 10).rounded() / 10
        logger.info("\(head.method) \(head.target.rawPath) \(status) \(bytes)B \(ms)ms", metadata: [
            "method": "\(head.method)", "path": "\(head.target.rawPath)", "status": "\(status)",
            "bytes": "\(bytes)", "duration_ms": "\(ms)", "remote": "\(remote ?? "-")",
        ])
    }
}

/// A warning logged at most once per interval, with the number of occurrences it stands for, so a
/// flood (refused connections, accept failures) costs a few log lines instead of one per event.
final class RateLimitedWarning: Sendable {
    private struct State { var last: ContinuousClock.Instant? = nil; var suppressed = 0 }
    private let state = Mutex(State())
    private let interval: Duration
    private let logger: Logger
    private let message: Logger.Message

    init(_ message: Logger.Message, logger: Logger, interval: Duration = .seconds(10)) {
        self.message = message
        self.logger = logger
        self.interval = interval
    }

    func record(_ metadata: Logger.Metadata = [:], now: ContinuousClock.Instant = .now) {
        let count = state.withLock { s -> Int? in
            if let last = s.last, now - last < interval { s.suppressed += 1; return nil }
            s.last = now
            defer { s.suppressed = 0 }
            return s.suppressed + 1
        }
        guard let count else { return }
        var m = metadata
        m["occurrences"] = "\(count)"
        logger.warning(message, metadata: m)
    }
}
