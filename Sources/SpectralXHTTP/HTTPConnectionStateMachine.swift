import Foundation
import SpectralXSupport

/// The rules of one HTTP/1.1 connection, apart from any I/O (after swift-nio's
/// `HTTPServerPipelineHandler`): the driver feeds it events (bytes received, peer closed, a head
/// validated, a response written, a deadline reached, shutdown) and performs the actions it returns,
/// in order. Every rule — keep-alive, pipelining, `100 Continue`, HEAD, header/body/idle deadlines,
/// the minimum upload rate, early answers, lingering close, drain — lives here and is tested
/// without sockets (`HTTPConnectionStateMachineTests`).
///
/// Requests are strictly sequential: while one is being handled no further bytes are parsed (they
/// stay buffered), which is what makes pipelined answers come back in order.
public struct HTTPConnectionStateMachine: Sendable {
    /// What the driver must do, in order.
    public enum Action: Sendable {
        /// A reserved connection sent a request that is not a probe: find it a normal slot (reclaim one
        /// from a connection that makes no progress, see `reclaimRank`) and report with `slotDecided`,
        /// now or, waiting in order, before `deadline` (then `tick` answers 503).
        case requestSlot
        /// Call `HTTPHandler.validateHead` and report the result with `headValidated`.
        case validateHead(HTTPRequestHead, requestID: String)
        /// Queue the interim `100 Continue`.
        case sendContinue
        /// A body follows: prepare the spool (`expectedLength` from Content-Length, nil when chunked).
        case startBody(expectedLength: Int64?)
        /// Append these de-chunked body bytes to the spool.
        case bodyPart(Data)
        /// The request is complete: run the handler (on the reserved pool when `priority`), write its
        /// response (closing when `HTTPConnectionRules.shouldClose` says so), then report `responseWritten`.
        case dispatch(HTTPRequestHead, requestID: String, trailers: HTTPHeaders, priority: Bool, forceClose: Bool)
        /// Queue this response (produced by the connection rules or `validateHead`). `head` is nil
        /// when no request head was parsed; `close` adds `Connection: close`.
        case respond(HTTPResponse, head: HTTPRequestHead?, requestID: String, close: Bool)
        /// The request in progress ended without a handler call: drop its spool.
        case abortRequest
        /// The peer closed or reset while its request was being handled.
        case clientGone
        /// Once queued bytes are written: half-close, then discard input until EOF or `until`.
        case linger(until: ContinuousClock.Instant)
        /// Close the socket now (after flushing what is queued, when possible).
        case close
    }

    public enum Mode: Sendable, Equatable {
        case normal
        /// Accepted beyond `maxConnections` from the reserve: only a bodiless probe request
        /// (`priorityPaths`) is served (then closed); anything else is answered `503 too_many_connections`.
        case reserved
    }

    enum State: Sendable {
        /// Waiting for the first byte of a request (`first`: none served yet on this connection).
        case idle(first: Bool)
        case readingHead
        case awaitingSlot(HTTPRequestHead, requestID: String, until: ContinuousClock.Instant)
        case validating(HTTPRequestHead, requestID: String)
        case readingBody(BodyProgress)
        case handling(HTTPRequestHead, requestID: String)
        /// An answer that ends the connection has been queued; waiting for it to be written.
        case lingering(until: ContinuousClock.Instant)
        case closed
    }

    struct BodyProgress: Sendable {
        var head: HTTPRequestHead
        var requestID: String
        var lastRead: ContinuousClock.Instant
        var windowStart: ContinuousClock.Instant
        var windowBytes: Int64 = 0
        var started: ContinuousClock.Instant
        var total: Int64 = 0
    }

    public let configuration: HTTPServerConfiguration
    public private(set) var mode: Mode
    private(set) var state: State = .idle(first: true)
    private var parser: HTTPRequestParser
    private let acceptedAt: ContinuousClock.Instant
    /// Deadline of the head being read (fixed when its first byte arrives, or from accept).
    private var headDeadline: ContinuousClock.Instant
    private var idleDeadline: ContinuousClock.Instant?
    public private(set) var isShuttingDown = false
    public private(set) var peerGone = false
    /// Bytes discarded while lingering (bounded so a peer cannot keep us reading forever).
    private var discarded = 0

    public init(configuration: HTTPServerConfiguration, mode: Mode = .normal, now: ContinuousClock.Instant) {
        self.configuration = configuration
        self.mode = mode
        self.parser = HTTPRequestParser(limits: configuration.limits)
        self.acceptedAt = now
        self.headDeadline = now + (mode == .reserved ? min(configuration.headerReadTimeout, configuration.reservedHeaderTimeout)
                                                     : configuration.headerReadTimeout)
    }

    // MARK: What the driver asks

    /// When `tick` must be called next; nil while nothing is timed (a handler is running).
    public var deadline: ContinuousClock.Instant? {
        switch state {
        case .idle(let first): return first ? headDeadline : idleDeadline
        case .readingHead: return headDeadline
        case .readingBody(let p):
            var d = p.lastRead + configuration.bodyReadTimeout
            if configuration.minBodyRate > 0 { d = min(d, p.windowStart + configuration.bodyRateWindow) }
            return d
        case .lingering(let until), .awaitingSlot(_, _, let until): return until
        case .validating, .handling, .closed: return nil
        }
    }

    /// Whether the driver should read from the socket now (otherwise bytes stay in the kernel,
    /// which is the backpressure for pipelined requests).
    public var wantsInput: Bool {
        switch state {
        case .idle, .readingHead, .readingBody, .lingering: return true
        case .awaitingSlot, .validating, .handling, .closed: return false
        }
    }

    /// Whether a handler is running and the driver should watch the socket for hang-up only.
    public var isHandling: Bool { if case .handling = state { return true } else { return false } }

    public var isClosed: Bool { if case .closed = state { return true } else { return false } }

    /// True when nothing of a request has arrived (safe to close without an answer).
    public var isIdle: Bool { if case .idle = state { return parser.bufferedByteCount == 0 } else { return false } }

    // MARK: Events

    /// Bytes read from the peer.
    public mutating func received(_ bytes: some Sequence<UInt8>, now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .lingering:
            var n = 0
            for _ in bytes { n += 1 }
            discarded += n
            if discarded > Self.maxLingerDiscard { state = .closed; return [.close] }
            return []
        case .closed:
            return []
        case .readingBody(var p):
            var n: Int64 = 0
            for _ in bytes { n += 1 }
            p.lastRead = now
            p.windowBytes += n
            p.total += n
            state = .readingBody(p)
            parser.append(bytes)
            return advance(now: now)
        default:
            parser.append(bytes)
            return advance(now: now)
        }
    }

    /// The peer closed its side (EOF) or reset the connection.
    public mutating func peerClosed(now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .handling:
            peerGone = true
            return [.clientGone]
        case .readingBody:
            state = .closed
            return [.abortRequest, .close]
        case .validating, .awaitingSlot:
            peerGone = true
            return []
        case .closed:
            return []
        default:
            state = .closed
            return [.close]
        }
    }

    /// The answer to `.validateHead`: nil to read the body and dispatch, or a response to send instead.
    public mutating func headValidated(_ early: HTTPResponse?, now: ContinuousClock.Instant) -> [Action] {
        guard case .validating(let head, let requestID) = state else { return [] }
        let bodyIsEmpty = Self.bodyIsEmpty(head.framing)
        if let early {
            // Answered without reading the body: the connection stays usable only if there is no
            // unread body left on it.
            let close = !bodyIsEmpty || HTTPConnectionRules.shouldClose(
                head: head, response: early, shuttingDown: isShuttingDown || mode == .reserved, peerGone: peerGone)
            return finish(with: early, head: head, requestID: requestID, close: close, now: now)
        }
        if peerGone { state = .closed; return [.close] }
        var actions: [Action] = []
        if !bodyIsEmpty {
            var expected: Int64? = nil
            if case .contentLength(let n) = head.framing { expected = n }
            actions.append(.startBody(expectedLength: expected))
            if head.expectsContinue && parser.bufferedByteCount == 0 { actions.append(.sendContinue) }
        }
        state = .readingBody(BodyProgress(head: head, requestID: requestID, lastRead: now, windowStart: now, started: now))
        return actions + advance(now: now)
    }

    /// The handler's response has been written (`ok` false: the write failed; `closed`: the
    /// response ended the connection — it was sent with `Connection: close` or close-delimited).
    public mutating func responseWritten(ok: Bool, closed: Bool, now: ContinuousClock.Instant) -> [Action] {
        guard isHandling else { return [] }
        if !ok || peerGone { state = .closed; return [.close] }
        if closed {
            state = .lingering(until: now + configuration.lingerTimeout)
            return [.linger(until: now + configuration.lingerTimeout)]
        }
        if isShuttingDown && parser.bufferedByteCount == 0 { state = .closed; return [.close] }
        state = .idle(first: false)
        idleDeadline = now + configuration.keepAliveIdleTimeout
        return advance(now: now)
    }

    /// A deadline may have passed.
    public mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        guard let deadline, now >= deadline else { return [] }
        switch state {
        case .idle where mode == .reserved, .readingHead where mode == .reserved:
            // Beyond the connection limit and no probe arrived in time.
            return fail(.tooManyConnections, head: nil, requestID: HTTPRequest.requestID(from: parser.partialHeaders), now: now)
        case .idle(let first):
            if first && !isShuttingDown {
                return fail(.requestTimeout, head: nil, requestID: HTTPRequest.generateRequestID(), now: now)
            }
            state = .closed  // keep-alive expiry: close silently
            return [.close]
        case .readingHead:
            return fail(.requestTimeout, head: nil, requestID: HTTPRequest.requestID(from: parser.partialHeaders), now: now)
        case .readingBody(var p):
            if now >= p.lastRead + configuration.bodyReadTimeout {
                return fail(.requestTimeout, head: p.head, requestID: p.requestID, now: now, abort: true)
            }
            let window = configuration.bodyRateWindow
            let needed = Int64((Double(configuration.minBodyRate) * window.inSeconds).rounded(.up))
            if p.windowBytes < needed {
                return fail(.bodyTooSlow(minRate: configuration.minBodyRate, window: window), head: p.head,
                            requestID: p.requestID, now: now, abort: true)
            }
            p.windowStart = now
            p.windowBytes = 0
            state = .readingBody(p)
            return []
        case .lingering:
            state = .closed
            return [.close]
        case .awaitingSlot(let head, let requestID, _):
            return finish(with: HTTPServerError.tooManyConnections.response, head: head, requestID: requestID, close: true, now: now)
        case .validating, .handling, .closed:
            return []
        }
    }

    /// Whether a `.requestSlot` is still unanswered.
    public var isAwaitingSlot: Bool { if case .awaitingSlot = state { return true } else { return false } }

    /// The answer to `.requestSlot`: granted → served as on a normal connection; refused → 503.
    public mutating func slotDecided(_ granted: Bool, now: ContinuousClock.Instant) -> [Action] {
        guard case .awaitingSlot(let head, let requestID, _) = state else { return [] }
        if !granted || peerGone {
            return finish(with: HTTPServerError.tooManyConnections.response, head: head, requestID: requestID, close: true, now: now)
        }
        mode = .normal
        return admitHead(head, requestID: requestID, now: now)
    }

    /// How cheaply this connection's slot can be taken for a new request when the server is full
    /// (lower first), nil when it is making progress: 0 idle keep-alive, 1 silent for a second since
    /// accept, 2 a body slower than `minBodyRate` on average for at least 2 s.
    public func reclaimRank(now: ContinuousClock.Instant) -> Int? {
        guard mode == .normal else { return nil }
        switch state {
        case .idle(let first):
            guard parser.bufferedByteCount == 0 else { return nil }
            if !first { return 0 }
            return now - acceptedAt >= .seconds(1) ? 1 : nil
        case .readingBody(let p):
            guard configuration.minBodyRate > 0 else { return nil }
            let elapsed = now - p.started
            // A body under an eighth of the rate is hopeless sooner than a request waits for a slot
            // (`reservedHeaderTimeout`): slots granted together in a wave of reclaims (trickling
            // clients reconnecting) are reclaimable again before a waiting request gives up on them.
            if elapsed >= Self.hopelessAge(configuration),
               Double(p.total) < Double(configuration.minBodyRate) * elapsed.inSeconds / 8 { return 2 }
            guard elapsed >= .seconds(2) else { return nil }
            return Double(p.total) / elapsed.inSeconds < Double(configuration.minBodyRate) ? 2 : nil
        default:
            return nil
        }
    }

    /// How soon a body far below the minimum rate may lose its slot: half the time a request waits for one.
    static func hopelessAge(_ c: HTTPServerConfiguration) -> Duration {
        min(.milliseconds(500), c.reservedHeaderTimeout / 2)
    }

    /// Gives up this connection's slot (see `reclaimRank`): idle keep-alive closes silently, a silent
    /// new connection gets 503, a too-slow body 408 `body_too_slow`.
    public mutating func reclaim(now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .idle(let first):
            if !first { state = .closed; return [.close] }
            return fail(.tooManyConnections, head: nil, requestID: HTTPRequest.generateRequestID(), now: now)
        case .readingBody(let p):
            return fail(.bodyTooSlow(minRate: configuration.minBodyRate, window: configuration.bodyRateWindow),
                        head: p.head, requestID: p.requestID, now: now, abort: true)
        default:
            return []
        }
    }

    /// The server started draining: an idle connection closes now, a request in progress is
    /// finished and answered with `Connection: close`.
    public mutating func shutdown(now: ContinuousClock.Instant) -> [Action] {
        isShuttingDown = true
        if case .idle = state, parser.bufferedByteCount == 0 {
            state = .closed
            return [.close]
        }
        return []
    }

    /// The driver could not store the body (spool file): answer 500 and close.
    public mutating func internalFailure(now: ContinuousClock.Instant) -> [Action] {
        switch state {
        case .readingBody(let p): return fail(.internalError, head: p.head, requestID: p.requestID, now: now, abort: true)
        case .validating(let head, let id), .handling(let head, let id), .awaitingSlot(let head, let id, _):
            return fail(.internalError, head: head, requestID: id, now: now, abort: true)
        case .closed, .lingering: return []
        default: return fail(.internalError, head: nil, requestID: HTTPRequest.generateRequestID(), now: now, abort: true)
        }
    }

    /// Moves a reserved connection into a normal slot (one became free before its head arrived).
    public mutating func promote() {
        guard mode == .reserved else { return }
        mode = .normal
        if case .idle(true) = state { headDeadline = acceptedAt + configuration.headerReadTimeout }
        if case .readingHead = state { headDeadline = acceptedAt + configuration.headerReadTimeout }
    }

    // MARK: Internals

    static let maxLingerDiscard = 64 * 1024 * 1024

    static func bodyIsEmpty(_ framing: HTTPBodyFraming) -> Bool {
        switch framing {
        case .none, .contentLength(0): return true
        default: return false
        }
    }

    /// Pulls parser events as far as the current state allows.
    private mutating func advance(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        while true {
            switch state {
            case .idle(let first):
                if parser.bufferedByteCount == 0 { return actions }
                if !first { headDeadline = now + configuration.headerReadTimeout }
                state = .readingHead
            case .readingHead:
                let event: HTTPParserEvent?
                do { event = try parser.next() } catch {
                    return actions + fail(error, head: parser.refusedHead, requestID: HTTPRequest.requestID(from: parser.partialHeaders), now: now)
                }
                guard case .head(let head) = event else {
                    // Only blank lines so far: still between requests.
                    if parser.bufferedByteCount == 0, parser.isAtRequestBoundary, !parser.isReadingHead { return actions }
                    return actions
                }
                actions += headArrived(head, now: now)
            case .readingBody(let p):
                let event: HTTPParserEvent?
                do { event = try parser.next() } catch {
                    return actions + fail(error, head: p.head, requestID: p.requestID, now: now, abort: true)
                }
                switch event {
                case nil: return actions
                case .body(let data): actions.append(.bodyPart(data))
                case .end(let trailers):
                    state = .handling(p.head, requestID: p.requestID)
                    actions.append(.dispatch(p.head, requestID: p.requestID, trailers: trailers,
                                             priority: isPriority(p.head), forceClose: mode == .reserved || peerGone))
                    return actions
                case .head: return actions + fail(.internalError, head: p.head, requestID: p.requestID, now: now, abort: true)
                }
            default:
                return actions
            }
        }
    }

    /// The decisions the head alone allows.
    private mutating func headArrived(_ head: HTTPRequestHead, now: ContinuousClock.Instant) -> [Action] {
        let requestID = HTTPRequest.requestID(from: head.headers)
        if mode == .reserved && !(isPriority(head) && Self.bodyIsEmpty(head.framing)) {
            state = .awaitingSlot(head, requestID: requestID, until: now + configuration.reservedHeaderTimeout)
            return [.requestSlot]
        }
        return admitHead(head, requestID: requestID, now: now)
    }

    private mutating func admitHead(_ head: HTTPRequestHead, requestID: String, now: ContinuousClock.Instant) -> [Action] {
        let empty = Self.bodyIsEmpty(head.framing)
        let expectations = head.headers.tokens(for: "Expect")
        if !expectations.isEmpty && expectations != ["100-continue"] {
            return finish(with: HTTPServerError.expectationFailed.response, head: head, requestID: requestID,
                          close: !empty || !head.keepAlive || isShuttingDown, now: now)
        }
        if head.framing == .none && configuration.methodsRequiringLength.contains(head.method) {
            // No Content-Length and not chunked means an empty body (RFC 9112 §6.3): nothing unread.
            return finish(with: HTTPServerError.lengthRequired.response, head: head, requestID: requestID,
                          close: !head.keepAlive || isShuttingDown, now: now)
        }
        state = .validating(head, requestID: requestID)
        return [.validateHead(head, requestID: requestID)]
    }

    private func isPriority(_ head: HTTPRequestHead) -> Bool {
        (head.method == "GET" || head.method == "HEAD") && configuration.priorityPaths.contains(head.target.path)
    }

    /// Answers without a handler; keeps the connection when `close` is false (body empty or read).
    private mutating func finish(with response: HTTPResponse, head: HTTPRequestHead, requestID: String, close: Bool,
                                 now: ContinuousClock.Instant) -> [Action] {
        if close || isShuttingDown || mode == .reserved {
            state = .lingering(until: now + configuration.lingerTimeout)
            return [.respond(response, head: head, requestID: requestID, close: true),
                    .linger(until: now + configuration.lingerTimeout)]
        }
        // The body is empty: consume the parser's end of this request so the next one can follow.
        do {
            guard case .end = try parser.next() else { return fail(.internalError, head: head, requestID: requestID, now: now) }
        } catch {
            return fail(error, head: head, requestID: requestID, now: now)
        }
        state = .idle(first: false)
        idleDeadline = now + configuration.keepAliveIdleTimeout
        return [.respond(response, head: head, requestID: requestID, close: false)] + advance(now: now)
    }

    /// Answers an error that ends the connection (the parser cannot continue, or a deadline passed).
    private mutating func fail(_ error: HTTPServerError, head: HTTPRequestHead?, requestID: String,
                               now: ContinuousClock.Instant, abort: Bool = false) -> [Action] {
        let until = now + (mode == .reserved ? min(configuration.lingerTimeout, .seconds(1)) : configuration.lingerTimeout)
        state = .lingering(until: until)
        return (abort ? [.abortRequest] : []) + [.respond(error.response, head: head, requestID: requestID, close: true),
                                                  .linger(until: until)]
    }
}

/// Decisions shared by the state machine and the thread that writes a handler's response.
public enum HTTPConnectionRules {
    /// Whether the connection closes after this response: the client asked (`Connection: close`,
    /// or HTTP/1.0 without keep-alive), the handler asked, the server is draining, or the peer is gone.
    public static func shouldClose(head: HTTPRequestHead, response: HTTPResponse, shuttingDown: Bool, peerGone: Bool) -> Bool {
        !head.keepAlive || response.requestsClose || shuttingDown || peerGone
    }
}
