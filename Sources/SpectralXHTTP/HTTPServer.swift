import Foundation
import Logging
import SpectralXSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the event loop and the handler threads of one server share.
final class ServerCore: Sendable {
    let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    let logger: Logger
    let tls: TLSContext?
    /// Set when the drain starts: the instant it was asked for plus `drainTimeout`.
    private let drain = Mutex<ContinuousClock.Instant?>(nil)
    /// Requests whose client went away while they were handled.
    let abandoned = Mutex(0)
    /// Connections answered `503 too_many_connections` (or evicted from the reserve).
    let refused = Mutex(0)

    init(configuration: HTTPServerConfiguration, handler: any HTTPHandler, logger: Logger) throws {
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        self.tls = try configuration.tls.map { try TLSContext(configuration: $0) }
    }

    var isShuttingDown: Bool { drain.withLock { $0 != nil } }

    /// When the drain ends (nil until `beginShutdown`).
    var drainDeadline: ContinuousClock.Instant? { drain.withLock { $0 } }

    /// Marks the server as draining, the deadline counted from `now` (the moment the stop was asked
    /// for, not the loop's next turn); returns false if it already was.
    func beginShutdown(now: ContinuousClock.Instant = .now) -> Bool {
        drain.withLock { d in
            if d != nil { return false }
            d = HTTPLoopTiming.drainDeadline(requestedAt: now, timeout: configuration.drainTimeout)
            return true
        }
    }

    func makeTransport(fd: Int32) throws -> any Transport {
        if let tls { return try TLSTransport(fd: fd, context: tls) }
        return PlainTransport(fd: fd)
    }
}

/// An HTTP/1.1 server on plain sockets.
///
/// Threading: one event loop thread (`poll`) accepts, reads every request head and body, answers
/// what the connection rules answer themselves (errors, timeouts, refusals, `validateHead`) and
/// watches handled connections for hang-up; handlers run on a pool of at most
/// `maxHandlerThreads` threads (probe paths on a small pool of their own) and write their own
/// responses. So idle, slow and uploading clients hold no thread, `maxConnections` can be as large
/// as the file-descriptor limit allows (raised to the hard limit at start), and `/healthz` keeps
/// answering when every slot is taken (see `reservedConnections`).
///
/// Lifecycle: `start()` binds and returns (read `port`), `waitUntilStopped()` blocks until a
/// `shutdown()` (or SIGTERM/SIGINT when `installSignalHandlers`) has drained: no more accepts,
/// idle keep-alive connections closed, in-flight requests answered (with `Connection: close`),
/// and after `drainTimeout` whatever remains closed. `run()` is `start()` + `waitUntilStopped()`.
/// SIGPIPE is ignored process-wide once started (TLS writes cannot pass `MSG_NOSIGNAL`).
public final class HTTPServer: Sendable {
    private struct State {
        var port: Int = 0
        var started = false
        var loop: HTTPEventLoop?
        var signalSources: [any DispatchSourceSignal] = []
        var onShutdown: [@Sendable () -> Void] = []
    }

    private let core: ServerCore
    private let state = Mutex(State())

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
    public var port: Int { state.withLock { $0.port } }

    /// Connections currently open (including reserved ones).
    public var connectionCount: Int { state.withLock { $0.loop }?.connectionCount ?? 0 }

    /// Requests whose client closed or reset the connection while they were being handled.
    public var abandonedRequestCount: Int { core.abandoned.withLock { $0 } }

    /// Connections refused with `503 too_many_connections` since start.
    public var refusedConnectionCount: Int { core.refused.withLock { $0 } }

    /// The directory this server spools request bodies to (nil before `start()`).
    public var spoolDirectory: URL? { state.withLock { $0.loop }?.spool.url }

    public var isShuttingDown: Bool { core.isShuttingDown }

    /// When the drain started by `shutdown()` ends: then the remaining connections are closed and
    /// `waitUntilStopped()` returns. nil before `shutdown()`.
    public var drainDeadline: ContinuousClock.Instant? { core.drainDeadline }

    /// Registers work to start when the drain begins (on the thread calling `shutdown()`, e.g. the
    /// signal handler's), such as asking background jobs to stop within the drain.
    public func onShutdown(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.onShutdown.append(action) }
    }

    /// Binds, listens and starts the event loop. Throws if binding or the spool directory fails.
    public func start() throws {
        let config = core.configuration
        let alreadyStarted = state.withLock { s in defer { s.started = true }; return s.started }
        precondition(!alreadyStarted, "HTTPServer.start() called twice")
        signal(SIGPIPE, SIG_IGN)
        let limit = Self.raiseFileLimit()
        let needed = config.maxConnections + config.reservedConnections + 64
        if limit < needed {
            core.logger.warning("file descriptor limit below what maxConnections needs; accepts will fail beyond it", metadata: [
                "limit": "\(limit)", "needed": "\(needed)", "max_connections": "\(config.maxConnections)",
            ])
        }
        let spool = try SpoolDirectory(root: config.spoolDirectory)
        if spool.sweptFiles > 0 {
            core.logger.notice("removed stale spool files", metadata: [
                "files": "\(spool.sweptFiles)", "bytes": "\(spool.sweptBytes)", "directory": "\(config.spoolDirectory.path)",
            ])
        }
        let fd: Int32, port: Int
        do {
            (fd, port) = try Socket.listen(host: config.host, port: config.port, backlog: config.backlog)
        } catch {
            spool.remove()
            throw error
        }
        let loop = try HTTPEventLoop(core: core, listenFD: fd, spool: spool)
        state.withLock { s in
            s.port = port
            s.loop = loop
        }
        if config.installSignalHandlers { installSignalHandlers() }
        core.logger.info("listening", metadata: [
            "host": "\(config.host)", "port": "\(port)", "tls": "\(config.tls != nil)",
            "max_connections": "\(config.maxConnections)",
        ])
        loop.start { [weak self] in
            self?.state.withLock { s in
                for source in s.signalSources { source.cancel() }
                s.signalSources = []
            }
        }
    }

    /// Starts and blocks until the server has shut down and drained.
    public func run() throws {
        try start()
        waitUntilStopped()
    }

    /// Blocks until shutdown has completed (returns at once if never started).
    public func waitUntilStopped() {
        state.withLock { $0.loop }?.waitUntilStopped()
    }

    /// Stops accepting, closes idle connections and lets in-flight requests finish (for at most
    /// `drainTimeout`). Returns at once; pair with `waitUntilStopped()`.
    public func shutdown() {
        if core.beginShutdown() {
            core.logger.info("shutting down", metadata: ["drain_timeout_s": "\(core.configuration.drainTimeout.inSeconds)"])
            for action in state.withLock({ $0.onShutdown }) { action() }
        }
        state.withLock { $0.loop }?.wake()
    }

    private func installSignalHandlers() {
        // Made inside the lock: the sources are not Sendable, so they cannot be handed in from outside.
        state.withLock { s in
            for sig in [SIGTERM, SIGINT] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { [weak self] in self?.shutdown() }
                source.resume()
                s.signalSources.append(source)
            }
        }
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in force.
    static func raiseFileLimit() -> Int {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return Int.max }
        if rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { rl = raised }
        }
        return Int(clamping: rl.rlim_cur)
    }
}

/// Moves a non-Sendable value to another thread that becomes its only user.
// @unchecked Sendable: used only to hand an object over to exactly one other thread at a time
// (the event loop hands a connection to a handler thread and gets it back through `complete`).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
