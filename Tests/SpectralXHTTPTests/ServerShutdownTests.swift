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
}
