import Foundation
import Testing
import SpectralXHTTP
#if canImport(Glibc)
import Glibc
#endif

/// A value shared between a handler thread and the test.
// @unchecked Sendable: every access goes through the lock.
final class Shared<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    var current: T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}

/// The event-loop driver over real loopback sockets, at small scale (the full attack is
/// scripts/service/attack.py).
@Suite struct ServerConnectionModelTests {
    @Test func probesAreAnsweredWhenEveryConnectionSlotIsTaken() throws {
        let config = testConfiguration { $0.maxConnections = 4; $0.reservedConnections = 2; $0.headerReadTimeout = .seconds(30) }
        try withServer(config) { server in
            // Fill every slot with connections that are mid-head (so no slot can be reclaimed), and
            // the reserve with silent ones.
            var idle: [RawClient] = []
            for _ in 0..<4 {
                let c = try RawClient(port: server.port)
                try c.send("GET /slow HTTP/1.1\r\n")
                idle.append(c)
            }
            #expect(eventually { server.connectionCount == 4 })
            for _ in 0..<4 { idle.append(try RawClient(port: server.port)) }
            #expect(eventually { server.connectionCount >= 6 })
            for i in 0..<3 {
                let probe = try RawClient(port: server.port)
                try probe.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: p\(i)\r\n\r\n")
                let (data, _) = probe.readUntilClose(timeout: 5)
                #expect(data.text == echoResponse("GET /healthz", id: "p\(i)", close: true))
            }
            let other = try RawClient(port: server.port)
            try other.send("GET /work HTTP/1.1\r\nHost: x\r\nX-Request-Id: w\r\n\r\n")
            let (refused, closed) = other.readUntilClose(timeout: 5)
            #expect(refused.text == errorResponse(503, "Service Unavailable", "too_many_connections",
                                                  "the server is at its connection limit", id: "w"))
            #expect(closed)
            #expect(server.refusedConnectionCount >= 1)
            withExtendedLifetime(idle) {}
        }
    }

    @Test func aFreedSlotGoesToAReservedConnection() throws {
        let config = testConfiguration { $0.maxConnections = 1; $0.reservedConnections = 2; $0.reservedHeaderTimeout = .seconds(30) }
        try withServer(config) { server in
            var first: RawClient? = try RawClient(port: server.port)
            #expect(eventually { server.connectionCount == 1 })
            let waiting = try RawClient(port: server.port)  // reserved
            #expect(eventually { server.connectionCount == 2 })
            first = nil
            #expect(eventually { server.connectionCount == 1 })
            try waiting.send("GET /work HTTP/1.1\r\nHost: x\r\nX-Request-Id: w\r\n\r\n")
            let expected = echoResponse("GET /work", id: "w")
            #expect(waiting.read(count: expected.utf8.count).text == expected)
            withExtendedLifetime(first) {}
        }
    }

    @Test func aRealRequestTakesTheSlotOfASilentConnectionWhenFull() throws {
        let config = testConfiguration { $0.maxConnections = 2; $0.headerReadTimeout = .seconds(30) }
        try withServer(config) { server in
            let silent = [try RawClient(port: server.port), try RawClient(port: server.port)]
            #expect(eventually { server.connectionCount == 2 })
            usleep(1_100_000)  // silent for over a second: reclaimable
            let c = try RawClient(port: server.port)
            try c.send("POST /up HTTP/1.1\r\nHost: x\r\nX-Request-Id: up\r\nContent-Length: 2\r\n\r\nhi")
            let expected = echoResponse("POST /up hi", id: "up")
            #expect(c.read(count: expected.utf8.count).text == expected)
            // One silent connection was given 503 to make room.
            let answers = silent.map { $0.readUntilClose(timeout: 0.5).data.text }
            #expect(answers.filter { $0.contains("too_many_connections") }.count == 1)
        }
    }

    @Test func aRequestWaitsInLineForASlotFreedFromATrickleUpload() throws {
        let config = testConfiguration { $0.maxConnections = 2; $0.minBodyRate = 100_000; $0.bodyRateWindow = .seconds(30)
                                         $0.reservedHeaderTimeout = .seconds(5) }
        try withServer(config) { server in
            var trickle: [RawClient] = []
            for _ in 0..<2 {
                let c = try RawClient(port: server.port)
                try c.send("POST /t HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx")
                trickle.append(c)
            }
            #expect(eventually { server.connectionCount == 2 })
            // Two requests arrive while neither upload is old enough to judge: both wait, in order.
            let a = try RawClient(port: server.port)
            try a.send("GET /first HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n\r\n")
            usleep(100_000)
            let b = try RawClient(port: server.port)
            try b.send("GET /second HTTP/1.1\r\nHost: x\r\nX-Request-Id: b\r\n\r\n")
            let ea = echoResponse("GET /first", id: "a"), eb = echoResponse("GET /second", id: "b")
            #expect(a.read(count: ea.utf8.count).text == ea)
            #expect(b.read(count: eb.utf8.count).text == eb)
            let answers = trickle.map { $0.readUntilClose(timeout: 2).data.text }
            #expect(answers.allSatisfy { $0.contains("body_too_slow") })
        }
    }

    @Test func threePipelinedRequestsWithA404InTheMiddleOnOneConnection() throws {
        let server = try HTTPServer(configuration: testConfiguration(), handler: HTTPHandlerFunction(validateHead: { head, _ in
            head.target.path == "/missing" ? .error(.notFound, code: "not_found", message: "no route") : nil
        }, echoHandler), logger: testLogger())
        try server.start()
        defer { server.shutdown(); server.waitUntilStopped() }
        let c = try RawClient(port: server.port)
        try c.send("GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\nX-Request-Id: m\r\n\r\n"
                   + "GET /c HTTP/1.1\r\nHost: x\r\nX-Request-Id: c\r\n\r\n")
        let notFound = errorResponse(404, "Not Found", "not_found", "no route", id: "m").replacingOccurrences(of: "Connection: close\r\n", with: "")
        let expected = echoResponse("GET /a", id: "a") + notFound + echoResponse("GET /c", id: "c")
        #expect(c.read(count: expected.utf8.count).text == expected)
    }

    @Test func clientGoneIsSignalledWhileTheHandlerRuns() throws {
        let seen = Shared<Bool?>(nil)
        let viaCallback = Shared(false)
        try withServer(handler: { req, ctx in
            ctx.clientGone.onGone { viaCallback.set(true) }
            let deadline = Date().addingTimeInterval(10)
            while !ctx.clientGone.isGone && Date() < deadline { usleep(5_000) }
            seen.set(ctx.clientGone.isGone)
            return .text("late")
        }) { server in
            var c: RawClient? = try RawClient(port: server.port)
            try c!.send("POST /seg HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            usleep(50_000)
            c = nil  // close right after sending
            #expect(eventually { seen.current != nil })
            #expect(seen.current == true)
            #expect(viaCallback.current)
            #expect(server.abandonedRequestCount == 1)
            withExtendedLifetime(c) {}
        }
    }

    @Test func slowUploadGets408BodyTooSlow() throws {
        let config = testConfiguration { $0.minBodyRate = 1000; $0.bodyRateWindow = .milliseconds(300) }
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /u HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow\r\nContent-Length: 100000\r\n\r\nab")
            let (data, closed) = c.readUntilClose(timeout: 10)
            #expect(normalizeIDs(data.text) == errorResponse(408, "Request Timeout", "body_too_slow",
                                                            "the request body arrived slower than 1000 bytes/s over 0.3 s", id: "slow"))
            #expect(closed)
        }
    }

    @Test func drainTimeoutEndsAServerWhoseHandlerNeverReturns() throws {
        let release = Shared(false)
        let config = testConfiguration { $0.drainTimeout = .milliseconds(300) }
        let server = try HTTPServer(configuration: config, logger: testLogger()) { _, _ in
            while !release.current { usleep(10_000) }
            return .text("done")
        }
        try server.start()
        let c = try RawClient(port: server.port)
        try c.send("GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(100_000)
        let stopped = Shared(false)
        server.shutdown()
        Thread.detachNewThread { server.waitUntilStopped(); stopped.set(true) }
        #expect(eventually(timeout: 10) { stopped.current })
        #expect(c.waitForClose(timeout: 5))
        release.set(true)
    }

    @Test func staleSpoolDirectoriesAreRemovedAtStartAndLiveOnesKept() throws {
        let root = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        // A server killed during an upload: its directory, lock file unlocked, a partial body.
        let dead = root.appendingPathComponent("srv-99999-dead")
        try fm.createDirectory(at: dead, withIntermediateDirectories: true)
        fm.createFile(atPath: dead.appendingPathComponent(".lock").path, contents: nil)
        fm.createFile(atPath: dead.appendingPathComponent("spectralx-body-x").path, contents: Data(count: 4096))
        // A loose file from the old layout.
        fm.createFile(atPath: root.appendingPathComponent("spectralx-body-old").path, contents: Data(count: 10))
        // A live server's directory: its lock is held.
        let live = root.appendingPathComponent("srv-1-live")
        try fm.createDirectory(at: live, withIntermediateDirectories: true)
        let lockFD = open(live.appendingPathComponent(".lock").path, O_RDWR | O_CREAT, 0o600)
        #expect(flock(lockFD, LOCK_EX | LOCK_NB) == 0)
        defer { close(lockFD) }
        fm.createFile(atPath: live.appendingPathComponent("spectralx-body-y").path, contents: Data(count: 10))

        try withServer(testConfiguration { $0.spoolDirectory = root }) { server in
            #expect(!fm.fileExists(atPath: dead.path))
            #expect(!fm.fileExists(atPath: root.appendingPathComponent("spectralx-body-old").path))
            #expect(fm.fileExists(atPath: live.appendingPathComponent("spectralx-body-y").path))
            #expect(server.spoolDirectory?.deletingLastPathComponent().standardizedFileURL.path == root.standardizedFileURL.path)
            var mode = stat()
            #expect(stat(root.path, &mode) == 0 && mode.st_mode & 0o777 == 0o700)
        }
        // A clean stop removes the server's own directory.
        #expect(contents(of: root).sorted() == ["srv-1-live"])
    }

    @Test func spoolFileIsRemovedWhenTheRequestFailsOrTheClientLeaves() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = testConfiguration { $0.bodyMemoryThreshold = 100; $0.spoolDirectory = dir }
        let sawFile = Shared(false)
        try withServer(config, handler: { req, _ in
            sawFile.set(req.body.fileURL != nil)
            throw TestError("handler fails")
        }) { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + String(repeating: "z", count: 1000))
            _ = c.read(until: "internal_error")
            #expect(sawFile.current)
            #expect(eventually { spoolFiles(server).isEmpty })
            // Client leaves halfway through a spooled body.
            var d: RawClient? = try RawClient(port: server.port)
            try d!.send("POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "z", count: 5000))
            #expect(eventually { spoolFiles(server).count == 1 })
            d = nil
            #expect(eventually { spoolFiles(server).isEmpty })
            withExtendedLifetime(d) {}
        }
    }

    @Test func connectionLimitAboveTheOldThreadCapHoldsIdleClients() throws {
        // 300 idle connections with maxConnections 400: none refused, and requests still served.
        let config = testConfiguration { $0.maxConnections = 400; $0.headerReadTimeout = .seconds(30) }
        try withServer(config) { server in
            var idle: [RawClient] = []
            for _ in 0..<300 { idle.append(try RawClient(port: server.port)) }
            #expect(eventually { server.connectionCount >= 300 })
            let c = try RawClient(port: server.port)
            try c.send("GET /ok HTTP/1.1\r\nHost: x\r\nX-Request-Id: ok\r\n\r\n")
            let expected = echoResponse("GET /ok", id: "ok")
            #expect(c.read(count: expected.utf8.count).text == expected)
            #expect(server.refusedConnectionCount == 0)
            withExtendedLifetime(idle) {}
        }
    }
}
