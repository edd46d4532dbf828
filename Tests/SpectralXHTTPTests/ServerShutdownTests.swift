import Foundation
import Testing
import SpectralXHTTP
#if canImport(Glibc)
import Glibc
#endif

final class Flag: @unchecked Sendable {  // test-only: guarded by `lock`
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

@Suite struct ServerShutdownTests {
    @Test func shutdownDrainsInFlightRequestsAndClosesIdleOnes() throws {
        let entered = DispatchSemaphore(value: 0)
        let server = try HTTPServer(configuration: testConfiguration(), logger: testLogger()) { req, ctx in
            if req.path == "/slow" {
                entered.signal()
                usleep(500_000)
                return .text("finished while draining=\(ctx.isShuttingDown)")
            }
            return try echoHandler(req, ctx)
        }
        try server.start()
        let port = server.port

        // An idle keep-alive connection.
        let idle = try RawClient(port: port)
        try idle.send("GET /i HTTP/1.1\r\nHost: x\r\nX-Request-Id: i\r\n\r\n")
        let first = echoResponse("GET /i", id: "i")
        #expect(idle.read(count: first.utf8.count).text == first)

        // A request in flight.
        let busy = try RawClient(port: port)
        try busy.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Request-Id: s\r\n\r\n")
        #expect(entered.wait(timeout: .now() + 20) == .success)

        let stopped = Flag()
        server.shutdown()
        DispatchQueue.global().async {
            server.waitUntilStopped()
            stopped.set()
        }
        // The idle connection is closed without a response.
        let (idleData, idleClosed) = idle.readUntilClose()
        #expect(idleData.isEmpty)
        #expect(idleClosed)
        // The in-flight request gets its full response, then the connection closes.
        let (data, closed) = busy.readUntilClose()
        #expect(data.text == echoResponse("finished while draining=true", id: "s", close: true))
        #expect(closed)
        #expect(eventually { stopped.isSet })
        // No more accepts.
        #expect(throws: (any Error).self) { _ = try RawClient(port: port) }
    }

    @Test func runReturnsAfterShutdown() throws {
        let server = try HTTPServer(configuration: testConfiguration(), logger: testLogger(), handler: echoHandler)
        let returned = Flag()
        let thread = Thread {
            try? server.run()
            returned.set()
        }
        thread.start()
        #expect(eventually { server.port != 0 })
        let c = try RawClient(port: server.port)
        try c.send("GET /r HTTP/1.1\r\nHost: x\r\nX-Request-Id: r\r\n\r\n")
        let expected = echoResponse("GET /r", id: "r")
        #expect(c.read(count: expected.utf8.count).text == expected)
        server.shutdown()
        #expect(eventually { returned.isSet })
    }

    @Test func sigtermTriggersShutdown() throws {
        let config = testConfiguration { $0.installSignalHandlers = true }
        let server = try HTTPServer(configuration: config, logger: testLogger(), handler: echoHandler)
        try server.start()
        let stopped = Flag()
        DispatchQueue.global().async {
            server.waitUntilStopped()
            stopped.set()
        }
        // The dispatch source registers asynchronously; until then the signal is ignored, so repeat it.
        #expect(eventually {
            if !stopped.isSet { kill(getpid(), SIGTERM) }
            usleep(50_000)
            return stopped.isSet
        })
        #expect(server.isShuttingDown)
    }

    /// The loop sleeps in poll() until the earliest deadline: the timeout is rounded up to whole
    /// milliseconds (waking early would cost a turn, truncating cost the deadline a turn too late).
    @Test func pollTimeoutWakesAtTheDeadline() {
        let now = ContinuousClock.now
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: nil) == -1)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now) == 0)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now - .milliseconds(5)) == 0)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now + .microseconds(1)) == 1)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now + .milliseconds(300)) == 300)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now + .microseconds(300_001)) == 301)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now + .seconds(5) + .nanoseconds(1)) == 5001)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now + .seconds(59) + .milliseconds(999)) == 59_999)
        #expect(HTTPLoopTiming.pollTimeout(now: now, until: now + .seconds(3600)) == 60_000)
    }

    /// The drain deadline counts from the moment `shutdown()` is called, and the server stops then
    /// with a connection still busy (a body that never ends), not a turn or a handler later.
    @Test func drainDeadlineIsFixedWhenTheStopIsAskedFor() throws {
        let requested = ContinuousClock.now
        #expect(HTTPLoopTiming.drainDeadline(requestedAt: requested, timeout: .seconds(5)) == requested + .seconds(5))
        #expect(HTTPLoopTiming.drainDeadline(requestedAt: requested, timeout: .seconds(-1)) == requested)

        let server = try HTTPServer(configuration: testConfiguration { $0.drainTimeout = .milliseconds(200) },
                                    logger: testLogger(), handler: echoHandler)
        try server.start()
        #expect(server.drainDeadline == nil)
        let started = Flag()
        server.onShutdown { started.set() }
        let c = try RawClient(port: server.port)
        try c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc")
        #expect(eventually { server.connectionCount == 1 })  // accepted (not left in the backlog)
        let before = ContinuousClock.now
        server.shutdown()
        let after = ContinuousClock.now
        let deadline = try #require(server.drainDeadline)
        #expect(deadline >= before + .milliseconds(200) && deadline <= after + .milliseconds(200))
        #expect(started.isSet)
        server.shutdown()  // a second stop keeps the first deadline
        #expect(server.drainDeadline == deadline)
        withExtendedLifetime(c) { server.waitUntilStopped() }  // the upload stays open until then
        #expect(ContinuousClock.now >= deadline)
    }
}
