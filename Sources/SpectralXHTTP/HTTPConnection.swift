import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Serves one accepted connection on its own thread: reads requests strictly one after the other
/// (which is what makes pipelined answers come back in order), calls the handler, writes the
/// response, and closes on errors, timeouts, `Connection: close`, HTTP/1.0 or shutdown.
final class HTTPConnection {
    let id: UInt64
    private let core: ServerCore
    private let fd: Int32
    private let acceptedAt: ContinuousClock.Instant
    private var transport: (any Transport)?
    private var parser: HTTPRequestParser
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private let remoteAddress: String?
    private var logger: Logger

    init(id: UInt64, fd: Int32, core: ServerCore) {
        self.id = id
        self.fd = fd
        self.core = core
        self.acceptedAt = .now
        self.parser = HTTPRequestParser(limits: core.configuration.limits)
        self.remoteAddress = Socket.peerAddress(fd)
        var logger = core.logger
        logger[metadataKey: "connection"] = "\(id)"
        self.logger = logger
    }

    private var config: HTTPServerConfiguration { core.configuration }

    /// Answers `503 too_many_connections` without reading a request, then closes.
    func reject(_ error: HTTPServerError) {
        defer { transport?.close(); if transport == nil { Glibc.close(fd) } }
        guard let t = try? core.makeTransport(fd: fd, deadline: .now + config.headerReadTimeout) else { return }
        transport = t
        sendError(error, requestID: HTTPRequest.generateRequestID(), lingerFor: min(config.lingerTimeout, .seconds(1)))
    }

    /// The connection's whole life.
    func run() {
        defer {
            if let transport { transport.close() } else { Glibc.close(fd) }
        }
        do {
            transport = try core.makeTransport(fd: fd, deadline: acceptedAt + config.headerReadTimeout)
        } catch {
            logger.debug("connection setup failed", metadata: ["error": "\(error)"])
            return
        }
        var first = true
        while serveOne(first: first) { first = false }
    }

    // MARK: One request

    /// Reads, handles and answers one request; returns whether the connection stays open.
    private func serveOne(first: Bool) -> Bool {
        guard let transport else { return false }
        // 1. Wait for the head.
        var headDeadline: ContinuousClock.Instant? = first ? acceptedAt + config.headerReadTimeout : nil
        let head: HTTPRequestHead
        while true {
            let event: HTTPParserEvent?
            do {
                event = try parser.next()
            } catch {
                sendError(error, requestID: HTTPRequest.requestID(from: parser.partialHeaders))
                return false
            }
            if case .head(let h) = event { head = h; break }
            precondition(event == nil, "parser produced body before head")
            let idle = !parser.isReadingHead
            if idle && core.isShuttingDown { return false }
            if !idle && headDeadline == nil { headDeadline = .now + config.headerReadTimeout }
            let deadline = headDeadline ?? .now + config.keepAliveIdleTimeout
            switch readMore(transport, deadline: deadline, wake: idle) {
            case .bytes: continue
            case .timeout:
                if idle && !first { return false }  // keep-alive idle expiry: close silently
                sendError(.requestTimeout, requestID: HTTPRequest.requestID(from: parser.partialHeaders))
                return false
            case .eof, .woken, .failed: return false
            }
        }

        let started = ContinuousClock.now
        let requestID = HTTPRequest.requestID(from: head.headers)
        var requestLogger = logger
        requestLogger[metadataKey: "request-id"] = "\(requestID)"

        // 2. Decide what the head alone can decide.
        let expectations = head.headers.tokens(for: "Expect")
        if !expectations.isEmpty && expectations != ["100-continue"] {
            sendError(.expectationFailed, requestID: requestID)
            access(requestLogger, head, status: 417, bytes: 0, started: started)
            return false
        }
        if head.framing == .none && config.methodsRequiringLength.contains(head.method) {
            sendError(.lengthRequired, requestID: requestID)
            access(requestLogger, head, status: 411, bytes: 0, started: started)
            return false
        }

        let context = HTTPRequestContext(logger: requestLogger, connectionID: id, isTLS: config.tls != nil,
                                         isShuttingDown: { [core] in core.isShuttingDown })
        if let early = core.handler.validateHead(head, context: context) {
            let outcome = writeResponse(early, head: head, requestID: requestID, close: true)
            access(requestLogger, head, status: early.status.code, bytes: outcome.bytes, started: started)
            if outcome.ok { lingeringClose(transport, for: config.lingerTimeout) }
            return false
        }

        // 3. Read the body.
        let spool: BodySpool
        var expectedLength: Int64? = nil
        if case .contentLength(let n) = head.framing { expectedLength = n }
        do {
            spool = try BodySpool(threshold: config.bodyMemoryThreshold, directory: config.temporaryDirectory,
                                  expectedLength: expectedLength)
        } catch {
            requestLogger.error("cannot create body spool file", metadata: ["error": "\(error)"])
            sendError(.internalError, requestID: requestID)
            return false
        }
        defer { spool.remove() }
        let hasBody = head.framing == .chunked || (expectedLength ?? 0) > 0
        if hasBody && head.expectsContinue && parser.bufferedByteCount == 0 {
            do {
                try transport.write(HTTPResponseSerializer.continueLine, idleTimeout: config.writeTimeout)
            } catch {
                return false
            }
        }
        var trailers = HTTPHeaders()
        var bodyDeadline = ContinuousClock.now + config.bodyReadTimeout
        bodyLoop: while true {
            let event: HTTPParserEvent?
            do {
                event = try parser.next()
            } catch {
                sendError(error, requestID: requestID)
                access(requestLogger, head, status: error.status.code, bytes: 0, started: started)
                return false
            }
            switch event {
            case .body(let data):
                do {
                    try spool.append(data)
                } catch {
                    requestLogger.error("cannot spool request body", metadata: ["error": "\(error)"])
                    sendError(.internalError, requestID: requestID)
                    return false
                }
            case .end(let t):
                trailers = t
                break bodyLoop
            case .head:
                preconditionFailure("parser produced a head inside a body")
            case nil:
                switch readMore(transport, deadline: bodyDeadline, wake: false) {
                case .bytes: bodyDeadline = .now + config.bodyReadTimeout
                case .timeout:
                    sendError(.requestTimeout, requestID: requestID)
                    access(requestLogger, head, status: 408, bytes: 0, started: started)
                    return false
                case .eof, .woken, .failed: return false
                }
            }
        }

        // 4. Handle.
        let body: HTTPBody
        do {
            body = try spool.finish()
        } catch {
            sendError(.internalError, requestID: requestID)
            return false
        }
        let request = HTTPRequest(head: head, body: body, trailers: trailers, remoteAddress: remoteAddress,
                                  requestID: requestID)
        var response: HTTPResponse
        do {
            response = try core.handler.handle(request, context: context)
        } catch let error as HTTPServerError {
            response = error.response
        } catch {
            requestLogger.error("handler failed", metadata: ["error": "\(error)"])
            response = HTTPServerError.internalError.response
        }

        // 5. Answer.
        let close = !head.keepAlive || response.requestsClose || core.isShuttingDown
        let outcome = writeResponse(response, head: head, requestID: requestID, close: close)
        access(requestLogger, head, status: response.status.code, bytes: outcome.bytes, started: started)
        guard outcome.ok else { return false }
        if close || outcome.forcedClose {
            lingeringClose(transport, for: config.lingerTimeout)
            return false
        }
        return true
    }

    // MARK: I/O helpers

    private enum ReadOutcome { case bytes, eof, timeout, woken, failed }

    private func readMore(_ transport: any Transport, deadline: ContinuousClock.Instant, wake: Bool) -> ReadOutcome {
        do {
            let result = try readBuffer.withUnsafeMutableBytes {
                try transport.read(into: $0, deadline: deadline, wakeFD: wake ? core.wakeFD : nil)
            }
            switch result {
            case .bytes(let n):
                parser.append(readBuffer[0..<n])
                return .bytes
            case .eof: return .eof
            case .timeout: return .timeout
            case .woken: return .woken
            }
        } catch {
            logger.debug("read failed", metadata: ["error": "\(error)"])
            return .failed
        }
    }

    /// Writes a response; `bytes` counts body bytes sent.
    private func writeResponse(_ response: HTTPResponse, head: HTTPRequestHead?, requestID: String,
                               close: Bool) -> (ok: Bool, bytes: Int64, forcedClose: Bool) {
        guard let transport else { return (false, 0, true) }
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
                return writeResponse(HTTPServerError.internalError.response, head: head, requestID: requestID, close: close)
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
                return (true, 0, close)
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
                if chunked { try transport.write(HTTPResponseSerializer.lastChunk(), idleTimeout: config.writeTimeout) }
            } else {
                var all = headBytes
                all.append(payload)
                try transport.write(all, idleTimeout: config.writeTimeout)
                sent = Int64(payload.count)
            }
            return (true, sent, close)
        } catch {
            logger.debug("write failed", metadata: ["error": "\(error)"])
            return (false, sent, true)
        }
    }

    /// Sends an error response and closes gracefully.
    private func sendError(_ error: HTTPServerError, requestID: String, lingerFor: Duration? = nil) {
        guard let transport else { return }
        logger.debug("answering error", metadata: ["status": "\(error.status.code)", "code": "\(error.code)"])
        let outcome = writeResponse(error.response, head: nil, requestID: requestID, close: true)
        if outcome.ok { lingeringClose(transport, for: lingerFor ?? config.lingerTimeout) }
    }

    /// Half-closes and discards whatever the peer still sends for a while, so a peer that is still
    /// uploading receives our response instead of a connection reset.
    private func lingeringClose(_ transport: any Transport, for duration: Duration) {
        transport.shutdownWrite()
        let deadline = ContinuousClock.now + duration
        var discarded = 0
        while discarded < 64 * 1024 * 1024 {
            let result = try? readBuffer.withUnsafeMutableBytes {
                try transport.read(into: $0, deadline: deadline, wakeFD: nil)
            }
            guard case .bytes(let n) = result else { return }
            discarded += n
        }
    }

    private func access(_ logger: Logger, _ head: HTTPRequestHead, status: Int, bytes: Int64, started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let ms = (elapsed.seconds * 1000 * 10).rounded() / 10
        logger.info("\(head.method) \(head.target.rawPath) \(status) \(bytes)B \(ms)ms", metadata: [
            "method": "\(head.method)", "path": "\(head.target.rawPath)", "status": "\(status)",
            "bytes": "\(bytes)", "duration_ms": "\(ms)", "remote": "\(remoteAddress ?? "-")",
        ])
    }
}
