import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One connection as the event loop drives it: the socket, its state machine, the bytes queued
/// for it, and the spool of the request being received. Owned by the loop thread, except while
/// `inHandler`, when a handler thread writes the response through `transport` (the loop then only
/// watches the socket for hang-up and touches nothing else).
final class LoopConnection {
    let id: UInt64
    let fd: Int32
    let transport: any Transport
    var machine: HTTPConnectionStateMachine
    let remoteAddress: String?
    let logger: Logger
    var handshakeDone: Bool
    var handshakeWant: IOStep = .wantRead
    /// A transport read wanted the socket writable (TLS); poll for that instead.
    var readWantsWrite = false
    var out = Data()
    var spool: BodySpool?
    var gone = HTTPClientGoneSignal()
    /// The current request's `validateHead` outcome, handed on to its `handle`.
    var headOutcome = HTTPHeadOutcome()
    var inHandler = false
    /// A request waiting for `out` to drain before its handler starts (responses leave in order).
    var pendingDispatch: (request: HTTPRequest, context: HTTPRequestContext, priority: Bool, forceClose: Bool)?
    /// Half-close once `out` is written (then the state machine lingers).
    var lingerPending = false
    var closePending = false
    var head: HTTPRequestHead?
    var requestStarted = ContinuousClock.now
    /// Holds one of the `maxConnections` places (else it is in the reserve, or a reclaimed victim).
    var holdsSlot = false
    /// Its slot was taken for another request: its answer is logged at a bounded rate, not per request.
    var reclaimed = false

    init(id: UInt64, fd: Int32, transport: any Transport, machine: HTTPConnectionStateMachine, logger: Logger, isTLS: Bool) {
        self.id = id
        self.fd = fd
        self.transport = transport
        self.machine = machine
        self.remoteAddress = Socket.peerAddress(fd)
        var l = logger
        l[metadataKey: "connection"] = "\(id)"
        self.logger = l
        self.handshakeDone = !isTLS
    }

}

/// The server's single I/O thread: a `poll` loop over the listening socket, a wake-up pipe and
/// every connection not inside a handler (plus, for those inside one, hang-up only).
final class HTTPEventLoop: Sendable {
    private struct Shared {
        var completions: [(id: UInt64, ok: Bool, closed: Bool)] = []
        var stopped = false
        /// Set after `stop` has closed everything and removed the spool directory, and `onStop`
        /// ran: `waitUntilStopped()` returns only then (`stopped` alone is set before the clean-up).
        var finished = false
        var connectionCount = 0
    }

    private let core: ServerCore
    private let listenFD: Int32
    let spool: SpoolDirectory
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let shared = Mutex(Shared())
    private let done = DispatchSemaphore(value: 0)
    private let handlers: HandlerPool
    private let probes: HandlerPool
    private let refusals: RateLimitedWarning
    private let acceptFailures: RateLimitedWarning
    private let reclaims: RateLimitedWarning

    init(core: ServerCore, listenFD: Int32, spool: SpoolDirectory) throws {
        self.core = core
        self.listenFD = listenFD
        self.spool = spool
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Socket.errnoError("pipe") }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            Socket.setNonBlocking(fd)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        handlers = HandlerPool(name: "spectralx.http.handler", maxThreads: core.configuration.maxHandlerThreads)
        probes = HandlerPool(name: "spectralx.http.probe", maxThreads: 4)
        refusals = RateLimitedWarning("connection limit reached, refusing connections", logger: core.logger)
        acceptFailures = RateLimitedWarning("accept failed", logger: core.logger)
        reclaims = RateLimitedWarning("connection limit reached, slots taken from connections making no progress", logger: core.logger)
    }

    var connectionCount: Int { shared.withLock { $0.connectionCount } }

    /// Linux's POLLRDHUP (peer shut down its sending side); Glibc only exports it under _GNU_SOURCE.
    static let pollRDHUP: Int16 = 0x2000

    func start(onStop: @escaping @Sendable () -> Void) {
        let box = UncheckedBox(LoopState())
        let thread = Thread { [self] in
            run(box.value)
            onStop()
            shared.withLock { $0.finished = true }
            done.signal()
        }
        thread.name = "spectralx.http.loop"
        thread.start()
    }

    func waitUntilStopped() {
        if shared.withLock({ $0.finished }) { return }
        done.wait()
        done.signal()  // let other waiters through too
    }

    func wake() {
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
    }

    /// Called by a handler thread when its response is written. Returns false when the loop has
    /// already stopped (drain deadline passed): the caller then owns and closes the connection.
    fileprivate func complete(_ id: UInt64, ok: Bool, closed: Bool) -> Bool {
        let accepted = shared.withLock { s -> Bool in
            if s.stopped { return false }
            s.completions.append((id, ok, closed))
            return true
        }
        if accepted { wake() }
        return accepted
    }

    // MARK: The loop

    final class LoopState {
        var connections: [UInt64: LoopConnection] = [:]
        var normalCount = 0
        /// Reserved connections, oldest first.
        var reserve: [UInt64] = []
        /// Reserved connections with a request waiting for a slot, oldest first.
        var waiting: [UInt64] = []
        var nextID: UInt64 = 0
        var acceptPausedUntil: ContinuousClock.Instant? = nil
        var listening = true
        var drainDeadline: ContinuousClock.Instant? = nil
        var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    }

    private var config: HTTPServerConfiguration { core.configuration }

    private func run(_ st: LoopState) {
        var fds: [pollfd] = []
        var order: [LoopConnection?] = []
        while true {
            let now = ContinuousClock.now
            // Handler completions.
            let completions = shared.withLock { s -> [(id: UInt64, ok: Bool, closed: Bool)] in
                defer { s.completions = [] }
                return s.completions
            }
            for c in completions {
                guard let conn = st.connections[c.id] else { continue }
                conn.inHandler = false
                perform(conn.machine.responseWritten(ok: c.ok, closed: c.closed, now: now), on: conn, st)
                service(conn, st)
            }
            // Drain.
            if let deadline = core.drainDeadline, st.drainDeadline == nil {
                st.drainDeadline = deadline
                if st.listening { Glibc.close(listenFD); st.listening = false }
                for conn in Array(st.connections.values) {
                    perform(conn.machine.shutdown(now: now), on: conn, st)
                    service(conn, st)
                }
            }
            if let dd = st.drainDeadline, st.connections.isEmpty || now >= dd {
                if !st.connections.isEmpty {
                    core.logger.warning("drain timeout: closing remaining connections", metadata: ["connections": "\(st.connections.count)"])
                }
                stop(st)
                return
            }

            // Requests waiting for a slot, in order.
            serveWaiting(st, now: now)

            // Poll set.
            fds.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)); order.append(nil)
            var acceptIndex = -1
            if st.listening, st.acceptPausedUntil.map({ now >= $0 }) ?? true {
                st.acceptPausedUntil = nil
                acceptIndex = fds.count
                fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)); order.append(nil)
            }
            var timeout: ContinuousClock.Instant? = st.drainDeadline
            // Slots become reclaimable with time: look again soon while requests wait.
            if !st.waiting.isEmpty { timeout = min(timeout ?? now + .milliseconds(20), now + .milliseconds(20)) }
            if let p = st.acceptPausedUntil { timeout = min(timeout ?? p, p) }
            var immediate = false
            for conn in st.connections.values {
                var events: Int16 = 0
                if conn.inHandler {
                    if conn.gone.isGone { continue }
                    events = Self.pollRDHUP
                } else if !conn.handshakeDone {
                    events = conn.handshakeWant == .wantWrite ? Int16(POLLOUT) : Int16(POLLIN)
                } else {
                    if !conn.out.isEmpty { events |= Int16(POLLOUT) }
                    if conn.machine.wantsInput && conn.out.count < 256 * 1024 && !conn.lingerPending {
                        events |= conn.readWantsWrite ? Int16(POLLOUT) : Int16(POLLIN)
                        if conn.transport.hasBufferedInput { immediate = true }
                    }
                }
                if let d = conn.machine.deadline, !conn.inHandler { timeout = min(timeout ?? d, d) }
                fds.append(pollfd(fd: conn.fd, events: events, revents: 0)); order.append(conn)
            }
            let ms = immediate ? 0 : HTTPLoopTiming.pollTimeout(now: now, until: timeout)
            let r = poll(&fds, nfds_t(fds.count), ms)
            if r < 0 && errno != EINTR {
                core.logger.error("poll failed", metadata: ["error": "\(String(cString: strerror(errno)))"])
                usleep(10_000)
            }
            let after = ContinuousClock.now
            if fds[0].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 256)
                while Glibc.read(wakeRead, &sink, sink.count) > 0 {}
            }
            if acceptIndex >= 0 && fds[acceptIndex].revents != 0 { acceptAll(st, now: after) }
            for (i, entry) in order.enumerated() {
                guard let conn = entry, st.connections[conn.id] != nil else { continue }
                let rev = fds[i].revents
                if conn.inHandler {
                    if rev & (Self.pollRDHUP | Int16(POLLHUP | POLLERR)) != 0 {
                        perform(conn.machine.peerClosed(now: after), on: conn, st)
                    }
                    continue
                }
                if rev != 0 || (conn.transport.hasBufferedInput && conn.machine.wantsInput) {
                    service(conn, st, revents: rev)
                }
            }
            // Deadlines.
            for conn in Array(st.connections.values) where !conn.inHandler {
                if let d = conn.machine.deadline, after >= d {
                    if !conn.handshakeDone { close(conn, st); continue }
                    perform(conn.machine.tick(now: after), on: conn, st)
                    service(conn, st)
                }
            }
        }
    }

    // MARK: Accept

    private func acceptAll(_ st: LoopState, now: ContinuousClock.Instant) {
        for _ in 0..<256 {
            let fd: Int32?
            do {
                fd = try Socket.accept(listenFD)
            } catch {
                // EMFILE and friends: pause accepting briefly instead of spinning; logged at a bounded rate.
                acceptFailures.record(["error": "\(error)"])
                st.acceptPausedUntil = now + .milliseconds(100)
                return
            }
            guard let fd else { return }
            admit(fd, st, now: now)
        }
    }

    private func admit(_ fd: Int32, _ st: LoopState, now: ContinuousClock.Instant) {
        var mode = HTTPConnectionStateMachine.Mode.normal
        if st.normalCount >= config.maxConnections {
            mode = .reserved
            if st.reserve.count >= config.reservedConnections {
                // The reserve is full: refuse its oldest member that has sent nothing (else the oldest
                // not being answered) so the newcomer — maybe a probe — gets its chance.
                let members = st.reserve.compactMap { st.connections[$0] }
                if let victim = members.first(where: { $0.machine.isIdle && !$0.inHandler && $0.out.isEmpty })
                    ?? members.first(where: { !$0.inHandler && $0.pendingDispatch == nil && !$0.machine.isAwaitingSlot }) {
                    refuse(victim, st)
                } else {
                    refuseRaw(fd)
                    return
                }
            }
        }
        let transport: any Transport
        do {
            transport = try core.makeTransport(fd: fd)
        } catch {
            Glibc.close(fd)
            return
        }
        st.nextID += 1
        let conn = LoopConnection(id: st.nextID, fd: fd, transport: transport,
                                  machine: HTTPConnectionStateMachine(configuration: config, mode: mode, now: now),
                                  logger: core.logger, isTLS: core.tls != nil)
        st.connections[conn.id] = conn
        if mode == .reserved { st.reserve.append(conn.id) } else { st.normalCount += 1; conn.holdsSlot = true }
        shared.withLock { $0.connectionCount = st.connections.count }
        if core.isShuttingDown { perform(conn.machine.shutdown(now: now), on: conn, st) }
    }

    /// Answers 503 at once and closes (no linger: the point is to free the place now).
    private func refuse(_ conn: LoopConnection, _ st: LoopState) {
        core.refused.withLock { $0 += 1 }
        refusals.record(["limit": "\(config.maxConnections)", "reserve": "\(config.reservedConnections)"])
        if conn.handshakeDone, let bytes = HTTPResponseWriter.encode(
            HTTPServerError.tooManyConnections.response, head: nil, requestID: HTTPRequest.generateRequestID(),
            close: true, configuration: config) {
            conn.out.append(bytes)
            flush(conn)
        }
        close(conn, st)
    }

    private func refuseRaw(_ fd: Int32) {
        core.refused.withLock { $0 += 1 }
        refusals.record(["limit": "\(config.maxConnections)"])
        if core.tls == nil, let bytes = HTTPResponseWriter.encode(
            HTTPServerError.tooManyConnections.response, head: nil, requestID: HTTPRequest.generateRequestID(),
            close: true, configuration: config) {
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        }
        Glibc.close(fd)
    }

    // MARK: Driving one connection

    /// Does whatever the socket allows: handshake, write queued bytes, read and feed the machine.
    private func service(_ conn: LoopConnection, _ st: LoopState, revents: Int16 = 0) {
        guard st.connections[conn.id] != nil, !conn.inHandler else { return }
        let now = ContinuousClock.now
        if !conn.handshakeDone {
            do {
                switch try conn.transport.handshakeStep() {
                case .done: conn.handshakeDone = true
                case .wantRead: conn.handshakeWant = .wantRead; return
                case .wantWrite: conn.handshakeWant = .wantWrite; return
                case .eof: close(conn, st); return
                }
            } catch {
                conn.logger.debug("TLS handshake failed", metadata: ["error": "\(error)"])
                close(conn, st)
                return
            }
        }
        if !flush(conn) { finishAbruptly(conn, st); return }
        if conn.out.isEmpty { afterFlush(conn, st) }
        guard st.connections[conn.id] != nil, !conn.inHandler else { return }
        // Read while the machine wants input and we are not backed up on output.
        var reads = 0
        while conn.machine.wantsInput && conn.out.count < 256 * 1024 && !conn.lingerPending && reads < 16 {
            reads += 1
            let step: IOStep
            do {
                step = try st.readBuffer.withUnsafeMutableBytes { try conn.transport.readNow(into: $0) }
            } catch {
                conn.logger.debug("read failed", metadata: ["error": "\(error)"])
                perform(conn.machine.peerClosed(now: now), on: conn, st)
                break
            }
            conn.readWantsWrite = false
            switch step {
            case .done(let n):
                perform(conn.machine.received(st.readBuffer[0..<n], now: now), on: conn, st)
            case .wantRead:
                reads = Int.max
            case .wantWrite:
                conn.readWantsWrite = true
                reads = Int.max
            case .eof:
                perform(conn.machine.peerClosed(now: now), on: conn, st)
                reads = Int.max
            }
            guard st.connections[conn.id] != nil, !conn.inHandler else { return }
        }
        if !flush(conn) { finishAbruptly(conn, st); return }
        if conn.out.isEmpty { afterFlush(conn, st) }
        _ = revents
    }

    /// Writes queued bytes without blocking; false when the peer is gone.
    @discardableResult
    private func flush(_ conn: LoopConnection) -> Bool {
        while !conn.out.isEmpty {
            let step: IOStep
            do {
                step = try conn.out.withUnsafeBytes { try conn.transport.writeNow($0) }
            } catch {
                return false
            }
            switch step {
            case .done(let n):
                if n == conn.out.count { conn.out = Data() } else { conn.out = conn.out.subdata(in: n..<conn.out.count) }
            case .wantRead, .wantWrite: return true
            case .eof: return false
            }
        }
        return true
    }

    /// Everything queued has been written: start a pending dispatch, linger or close.
    private func afterFlush(_ conn: LoopConnection, _ st: LoopState) {
        if let p = conn.pendingDispatch {
            conn.pendingDispatch = nil
            conn.inHandler = true
            let spoolBox = UncheckedBox(conn.spool)
            conn.spool = nil
            let job = makeJob(conn, request: p.request, context: p.context, spool: spoolBox, forceClose: p.forceClose)
            (p.priority ? probes : handlers).submit(job)
            return
        }
        if conn.closePending { close(conn, st); return }
        if conn.lingerPending {
            conn.lingerPending = false
            conn.transport.shutdownWrite()
        }
    }

    private func finishAbruptly(_ conn: LoopConnection, _ st: LoopState) {
        conn.out = Data()
        conn.pendingDispatch = nil
        close(conn, st)
    }

    private func close(_ conn: LoopConnection, _ st: LoopState) {
        guard st.connections.removeValue(forKey: conn.id) != nil else { return }
        conn.spool?.remove()
        conn.spool = nil
        if conn.inHandler {
            // A handler thread still writes through it (only at the drain deadline): make its writes
            // fail; the thread closes the socket when `complete` tells it the loop is gone.
            _ = Glibc.shutdown(conn.fd, Int32(SHUT_RDWR))
        } else {
            conn.transport.close()
        }
        if conn.holdsSlot {
            st.normalCount -= 1
            promoteReserved(st)
        } else {
            st.reserve.removeAll { $0 == conn.id }
            st.waiting.removeAll { $0 == conn.id }
        }
        shared.withLock { $0.connectionCount = st.connections.count }
    }

    /// Gives free or reclaimable slots to waiting requests, oldest first.
    private func serveWaiting(_ st: LoopState, now: ContinuousClock.Instant) {
        while let id = st.waiting.first {
            guard let conn = st.connections[id], conn.machine.isAwaitingSlot else { st.waiting.removeFirst(); continue }
            guard reclaimSlot(for: conn, st, now: now) else { return }  // (granting removes it from `waiting`)
            perform(conn.machine.slotDecided(true, now: now), on: conn, st)
            service(conn, st)
        }
    }

    /// A normal place became free: give it to the oldest reserved connection still before its head
    /// (unless requests wait for one: they come first).
    private func promoteReserved(_ st: LoopState) {
        guard st.normalCount < config.maxConnections, st.waiting.isEmpty else { return }
        for (i, id) in st.reserve.enumerated() {
            guard let conn = st.connections[id] else { continue }
            if case .idle = conn.machine.state {} else if case .readingHead = conn.machine.state {} else { continue }
            conn.machine.promote()
            st.reserve.remove(at: i)
            st.normalCount += 1
            conn.holdsSlot = true
            return
        }
    }

    /// The server is full and a reserved connection sent a real request: take the place of the
    /// connection that makes the least progress (`reclaimRank`), if any.
    private func reclaimSlot(for conn: LoopConnection, _ st: LoopState, now: ContinuousClock.Instant) -> Bool {
        if st.normalCount < config.maxConnections {
            grantSlot(conn, st)
            return true
        }
        var best: (rank: Int, conn: LoopConnection)? = nil
        for c in st.connections.values where c.holdsSlot && !c.inHandler && c.pendingDispatch == nil {
            guard let rank = c.machine.reclaimRank(now: now) else { continue }
            if best == nil || rank < best!.rank { best = (rank, c) }
            if rank == 0 { break }
        }
        guard let victim = best?.conn else { return false }
        victim.holdsSlot = false
        victim.reclaimed = true
        reclaims.record(["limit": "\(config.maxConnections)", "rank": "\(best!.rank)"])
        st.normalCount -= 1
        victim.logger.debug("slot reclaimed for a new request")
        perform(victim.machine.reclaim(now: now), on: victim, st)
        service(victim, st)
        grantSlot(conn, st)
        return true
    }

    private func grantSlot(_ conn: LoopConnection, _ st: LoopState) {
        st.reserve.removeAll { $0 == conn.id }
        st.waiting.removeAll { $0 == conn.id }
        st.normalCount += 1
        conn.holdsSlot = true
    }

    private func stop(_ st: LoopState) {
        shared.withLock { $0.stopped = true }
        for conn in Array(st.connections.values) { close(conn, st) }
        if st.listening { Glibc.close(listenFD); st.listening = false }
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
        spool.remove()
    }

    // MARK: Actions

    private func perform(_ actions: [HTTPConnectionStateMachine.Action], on conn: LoopConnection, _ st: LoopState) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            guard st.connections[conn.id] != nil else { return }
            let now = ContinuousClock.now
            switch action {
            case .validateHead(let head, let requestID):
                conn.head = head
                conn.requestStarted = now
                conn.gone = HTTPClientGoneSignal()
                conn.headOutcome = HTTPHeadOutcome()
                let early = core.handler.validateHead(head, context: context(conn, requestID: requestID))
                queue = conn.machine.headValidated(early, now: now)[...] + queue
            case .requestSlot:
                // First come, first served: only when nobody waits ahead may it take a slot now.
                if st.waiting.isEmpty && reclaimSlot(for: conn, st, now: now) {
                    queue = conn.machine.slotDecided(true, now: now)[...] + queue
                } else {
                    st.waiting.append(conn.id)
                }
            case .sendContinue:
                conn.out.append(HTTPResponseSerializer.continueLine)
            case .startBody(let expected):
                do {
                    conn.spool = try BodySpool(threshold: config.bodyMemoryThreshold, directory: spool.url, expectedLength: expected)
                } catch {
                    conn.logger.error("cannot create body spool file", metadata: ["error": "\(error)"])
                    queue = conn.machine.internalFailure(now: now)[...]
                }
            case .bodyPart(let data):
                do {
                    try conn.spool?.append(data)
                } catch {
                    conn.logger.error("cannot spool request body", metadata: ["error": "\(error)"])
                    queue = conn.machine.internalFailure(now: now)[...]
                }
            case .dispatch(let head, let requestID, let trailers, let priority, let forceClose):
                let body: HTTPBody
                do {
                    body = try conn.spool?.finish() ?? .empty
                } catch {
                    conn.logger.error("cannot finish body spool", metadata: ["error": "\(error)"])
                    _ = conn.machine.responseWritten(ok: false, closed: true, now: now)
                    close(conn, st)
                    return
                }
                let request = HTTPRequest(head: head, body: body, trailers: trailers, remoteAddress: conn.remoteAddress,
                                          requestID: requestID)
                conn.pendingDispatch = (request, context(conn, requestID: requestID), priority, forceClose)
                if !flush(conn) { finishAbruptly(conn, st); return }
                if conn.out.isEmpty { afterFlush(conn, st) }
            case .respond(let answer, let head, let requestID, let close):
                let response = core.handler.rendered(answer, head: head)
                let refusal = !conn.holdsSlot && response.status == .serviceUnavailable
                if refusal {
                    core.refused.withLock { $0 += 1 }
                    refusals.record(["limit": "\(config.maxConnections)", "reserve": "\(config.reservedConnections)"])
                }
                if let bytes = HTTPResponseWriter.encode(response, head: head, requestID: requestID, close: close, configuration: config) {
                    conn.out.append(bytes)
                    if let head, !refusal, !conn.reclaimed {
                        HTTPResponseWriter.access(requestLogger(conn, requestID), head, status: response.status.code,
                                                  bytes: Int64(bytes.count), started: conn.requestStarted, remote: conn.remoteAddress)
                    } else {
                        conn.logger.debug("answering error", metadata: ["status": "\(response.status.code)"])
                    }
                } else {
                    conn.logger.error("validateHead answered with a streamed body; sending 500 instead")
                    if let bytes = HTTPResponseWriter.encode(HTTPServerError.internalError.response, head: head,
                                                             requestID: requestID, close: close, configuration: config) {
                        conn.out.append(bytes)
                    }
                }
            case .abortRequest:
                conn.spool?.remove()
                conn.spool = nil
            case .clientGone:
                core.abandoned.withLock { $0 += 1 }
                conn.logger.debug("client gone while its request was handled")
                conn.gone.signal()
            case .linger:
                conn.lingerPending = true
            case .close:
                conn.closePending = true
            }
        }
        if conn.closePending && conn.pendingDispatch == nil && !conn.inHandler {
            _ = flush(conn)
            if conn.out.isEmpty || conn.machine.isClosed { close(conn, st) }
        }
    }

    private func requestLogger(_ conn: LoopConnection, _ requestID: String) -> Logger {
        var l = conn.logger
        l[metadataKey: "request-id"] = "\(requestID)"
        return l
    }

    private func context(_ conn: LoopConnection, requestID: String) -> HTTPRequestContext {
        HTTPRequestContext(logger: requestLogger(conn, requestID), connectionID: conn.id, isTLS: core.tls != nil,
                           clientGone: conn.gone, headOutcome: conn.headOutcome, isShuttingDown: { [core] in core.isShuttingDown })
    }

    /// The handler thread's work: handle, write the answer, clean up, report back.
    private func makeJob(_ conn: LoopConnection, request: HTTPRequest, context: HTTPRequestContext,
                         spool: UncheckedBox<BodySpool?>, forceClose: Bool) -> @Sendable () -> Void {
        let box = UncheckedBox(conn)
        let core = self.core
        return { [self] in
            let conn = box.value
            var response: HTTPResponse
            do {
                response = try core.handler.handle(request, context: context)
            } catch let error as HTTPServerError {
                response = error.response
            } catch {
                context.logger.error("handler failed", metadata: ["error": "\(error)"])
                response = HTTPServerError.internalError.response
            }
            response = core.handler.rendered(response, head: request.head)
            let close = forceClose || HTTPConnectionRules.shouldClose(
                head: request.head, response: response, shuttingDown: core.isShuttingDown, peerGone: context.clientGone.isGone)
            let outcome = HTTPResponseWriter.write(response, head: request.head, requestID: request.requestID, close: close,
                                                   transport: conn.transport, configuration: core.configuration,
                                                   logger: context.logger)
            spool.value?.remove()
            HTTPResponseWriter.access(context.logger, request.head, status: response.status.code, bytes: outcome.bytes,
                                      started: conn.requestStarted, remote: conn.remoteAddress)
            if !complete(conn.id, ok: outcome.ok, closed: outcome.closed) {
                conn.transport.close()
            }
        }
    }
}

/// The event loop's timing arithmetic, apart from any socket (tested in `ServerShutdownTests`).
public enum HTTPLoopTiming {
    /// poll()'s timeout in milliseconds to wake at `deadline`: rounded up (never early, so the next
    /// turn sees the deadline passed; at most 1 ms late), 0 once it passed, -1 (no timeout) without
    /// one, at most a minute.
    public static func pollTimeout(now: ContinuousClock.Instant, until deadline: ContinuousClock.Instant?) -> Int32 {
        guard let deadline else { return -1 }
        let left = now.duration(to: deadline)
        guard left > .zero else { return 0 }
        let (s, atto) = left.components
        if s >= 60 { return 60_000 }
        let ms = s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(min(ms, 60_000))
    }

    /// The drain deadline: the instant the stop was asked for (not the loop's next turn) plus the timeout.
    public static func drainDeadline(requestedAt: ContinuousClock.Instant, timeout: Duration) -> ContinuousClock.Instant {
        requestedAt + max(timeout, .zero)
    }
}
