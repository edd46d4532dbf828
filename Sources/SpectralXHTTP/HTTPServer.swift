import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// What every connection of one server shares.
final class ServerCore: Sendable {
    let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    let logger: Logger
    let tls: TLSContext?
    /// Read end of a pipe that becomes readable (for good) when shutdown starts; idle waits poll it.
    let wakeFD: Int32
    let wakeWriteFD: Int32
    private let shuttingDown = Locked(false)

    init(configuration: HTTPServerConfiguration, handler: any HTTPHandler, logger: Logger) throws {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        self.tls = try configuration.tls.map { try TLSContext(configuration: $0) }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Socket.errnoError("pipe") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        wakeFD = fds[0]
        wakeWriteFD = fds[1]
    }

    deinit {
        Glibc.close(wakeFD)
        Glibc.close(wakeWriteFD)
    }

    var isShuttingDown: Bool { shuttingDown.current }

    /// Marks the server as draining and wakes every idle wait; returns false if it already was.
    func beginShutdown() -> Bool {
        let first = shuttingDown.withLock { flag in defer { flag = true }; return !flag }
        if first {
            var byte: UInt8 = 1
            _ = Glibc.write(wakeWriteFD, &byte, 1)
        }
        return first
    }

    func makeTransport(fd: Int32, deadline: ContinuousClock.Instant) throws -> any Transport {
        if let tls { return try TLSTransport(fd: fd, context: tls, handshakeDeadline: deadline) }
        return PlainTransport(fd: fd)
    }
}

/// An HTTP/1.1 server on plain sockets.
///
/// Threading: one accept loop on its own dispatch queue, and one serial dispatch queue per
/// connection (an overcommitting queue, so a handler blocked for seconds in inference holds only
/// its own thread: other connections and the accept loop keep running). Connections are bounded
/// by `maxConnections`; beyond it a new connection is answered `503 too_many_connections` and
/// closed immediately rather than queued.
///
/// Lifecycle: `start()` binds and returns (read `port`), `waitUntilStopped()` blocks until a
/// `shutdown()` (or SIGTERM/SIGINT when `installSignalHandlers`) has drained: no more accepts,
/// idle keep-alive connections closed, in-flight requests answered (with `Connection: close`).
/// `run()` is `start()` + `waitUntilStopped()`. SIGPIPE is ignored process-wide once started
/// (TLS writes cannot pass `MSG_NOSIGNAL`).
public final class HTTPServer: Sendable {
    private struct State {
        var listenFD: Int32 = -1
        var port: Int = 0
        var started = false
        var connections = 0
        var nextConnectionID: UInt64 = 0
        var signalSources: [any DispatchSourceSignal] = []
    }

    private let core: ServerCore
    private let state = Locked(State())
    private let group = DispatchGroup()
    private let acceptQueue = DispatchQueue(label: "spectralx.http.accept")

    public init(configuration: HTTPServerConfiguration, handler: any HTTPHandler,
                logger: Logger = Logger(label: "spectralx.http")) throws {
        core = try ServerCore(configuration: configuration, handler: handler, logger: logger)
    }

    /// Convenience for a closure handler.
    public convenience init(configuration: HTTPServerConfiguration, logger: Logger = Logger(label: "spectralx.http"),
                            handler: @escaping @Sendable (HTTPRequest, HTTPRequestContext) throws -> HTTPResponse) throws {
        try self.init(configuration: configuration, handler: HTTPHandlerFunction(handler), logger: logger)
    }

    public var configuration: HTTPServerConfiguration { core.configuration }

    /// The bound port (the real one when configured with 0); 0 before `start()`.
    public var port: Int { state.current.port }

    /// Connections currently being served.
    public var connectionCount: Int { state.current.connections }

    public var isShuttingDown: Bool { core.isShuttingDown }

    /// Binds, listens and starts accepting in the background. Throws if binding fails.
    public func start() throws {
        let config = core.configuration
        let alreadyStarted = state.withLock { s in defer { s.started = true }; return s.started }
        precondition(!alreadyStarted, "HTTPServer.start() called twice")
        signal(SIGPIPE, SIG_IGN)
        let (fd, port) = try Socket.listen(host: config.host, port: config.port, backlog: config.backlog)
        state.withLock { s in
            s.listenFD = fd
            s.port = port
        }
        if config.installSignalHandlers { installSignalHandlers() }
        core.logger.info("listening", metadata: [
            "host": "\(config.host)", "port": "\(port)", "tls": "\(config.tls != nil)",
        ])
        group.enter()
        acceptQueue.async { [self] in
            acceptLoop(listenFD: fd)
            group.leave()
        }
    }

    /// Starts and blocks until the server has shut down and drained.
    public func run() throws {
        try start()
        waitUntilStopped()
    }

    /// Blocks until shutdown has completed (returns at once if never started).
    public func waitUntilStopped() {
        group.wait()
    }

    /// Stops accepting, closes idle connections and lets in-flight requests finish. Returns at
    /// once; pair with `waitUntilStopped()`.
    public func shutdown() {
        if core.beginShutdown() {
            core.logger.info("shutting down")
        }
    }

    private func installSignalHandlers() {
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.shutdown() }
            source.resume()
            sources.append(source)
        }
        state.withLock { $0.signalSources = sources }
    }

    private func acceptLoop(listenFD: Int32) {
        defer {
            Glibc.close(listenFD)
            state.withLock { s in
                for source in s.signalSources { source.cancel() }
                s.signalSources = []
            }
        }
        let forever = ContinuousClock.now + .seconds(100 * 365 * 24 * 3600)
        while !core.isShuttingDown {
            let ready: Int32
            do {
                ready = try Socket.wait(fd: listenFD, events: Int16(POLLIN), deadline: forever, wakeFD: core.wakeFD)
            } catch {
                core.logger.error("accept loop failed", metadata: ["error": "\(error)"])
                return
            }
            if ready < 0 { return }
            while !core.isShuttingDown {
                let fd: Int32?
                do {
                    fd = try Socket.accept(listenFD)
                } catch {
                    // EMFILE and friends: back off briefly instead of spinning.
                    core.logger.warning("accept failed", metadata: ["error": "\(error)"])
                    usleep(50_000)
                    break
                }
                guard let fd else { break }
                dispatch(fd)
            }
        }
    }

    private func dispatch(_ fd: Int32) {
        let max = core.configuration.maxConnections
        let (admitted, id) = state.withLock { s -> (Bool, UInt64) in
            s.nextConnectionID += 1
            guard s.connections < max else { return (false, s.nextConnectionID) }
            s.connections += 1
            return (true, s.nextConnectionID)
        }
        let connection = HTTPConnection(id: id, fd: fd, core: core)
        // Sendable transfer: the connection object is only ever used by the one queue it is handed to.
        let box = UncheckedBox(connection)
        if !admitted {
            core.logger.warning("connection limit reached, rejecting", metadata: ["limit": "\(max)"])
            DispatchQueue.global().async { box.value.reject(.tooManyConnections) }
            return
        }
        group.enter()
        DispatchQueue(label: "spectralx.http.connection.\(id)").async { [self] in
            box.value.run()
            state.withLock { $0.connections -= 1 }
            group.leave()
        }
    }
}

/// Moves a non-Sendable value to another queue that becomes its only user.
// @unchecked Sendable: used only to hand an object over to exactly one other thread, never shared.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
