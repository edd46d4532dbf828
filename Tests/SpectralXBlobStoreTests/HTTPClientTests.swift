import Foundation
import SpectralXFetch
import Testing

/// The client against scripted loopback servers: framing, retries, timeouts, bodies from files.
@Suite struct HTTPClientTests {
    static func client(attempts: Int = 4, stall: Double = 5) -> HTTPClient {
        var c = HTTPClient.Configuration()
        c.maxAttempts = attempts
        c.backoffBase = 0.01
        c.stallTimeout = stall
        c.connectTimeout = 2
        return HTTPClient(configuration: c)
    }

    static func ok(_ body: String, status: String = "200 OK", extra: String = "") -> ScriptedServer.Reply {
        .bytes("HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\n\(extra)\r\n\(body)")
    }

    static func url(_ server: ScriptedServer, _ path: String = "/k") -> URL { URL(string: "http://127.0.0.1:\(server.port)\(path)")! }

    @Test func retriesA503ThenSucceeds() throws {
        let server = try ScriptedServer([Self.ok("busy", status: "503 Slow Down"), Self.ok("hello", extra: "ETag: \"e1\"\r\n")])
        defer { server.close() }
        let r = try Self.client().execute(HTTPClientRequest(url: Self.url(server)))
        #expect(r.status == 200 && r.attempts == 2 && String(decoding: r.body, as: UTF8.self) == "hello")
        #expect(r.headers["etag"] == "\"e1\"")
        #expect(server.requests.count == 2)
    }

    /// Idempotent requests share a kept-alive connection; POST and `Connection: close` do not.
    @Test func keepAliveReusesConnections() throws {
        let server = try ScriptedServer([Self.ok("one"), Self.ok("two"), Self.ok("", extra: "X: y\r\n").headWithLength(3),
                                         Self.ok("four", extra: "Connection: close\r\n"), Self.ok("five"), Self.ok("six")],
                                        keepAlive: true)
        defer { server.close() }
        let c = Self.client()
        for expected in ["one", "two"] {
            #expect(String(decoding: try c.execute(HTTPClientRequest(url: Self.url(server))).body, as: UTF8.self) == expected)
        }
        #expect(try c.execute(HTTPClientRequest(method: "HEAD", url: Self.url(server))).status == 200)
        #expect(server.connections == 1)
        #expect(String(decoding: try c.execute(HTTPClientRequest(url: Self.url(server))).body, as: UTF8.self) == "four")
        #expect(String(decoding: try c.execute(HTTPClientRequest(url: Self.url(server))).body, as: UTF8.self) == "five")
        #expect(server.connections == 2)  // the server said close
        _ = try c.execute(HTTPClientRequest(method: "POST", url: Self.url(server), body: .data(Data("p".utf8))))
        #expect(server.connections == 3)
        #expect(!server.requests[0].head.lowercased().contains("connection: close"))
        #expect(server.requests[5].head.contains("Connection: close"))
    }

    /// A parked connection the server closed is replaced silently, not counted as an attempt.
    @Test func staleParkedConnectionIsReplaced() throws {
        let server = try ScriptedServer([Self.ok("one"), Self.ok("two")])  // closes after each reply
        defer { server.close() }
        let c = Self.client(attempts: 1)
        #expect(String(decoding: try c.execute(HTTPClientRequest(url: Self.url(server))).body, as: UTF8.self) == "one")
        let second = try c.execute(HTTPClientRequest(url: Self.url(server)))
        #expect(String(decoding: second.body, as: UTF8.self) == "two" && second.attempts == 1)
        #expect(server.connections == 2)
    }

    @Test func retryAfterIsHonouredUpToTheCap() throws {
        let server = try ScriptedServer([Self.ok("later", status: "503 Slow Down", extra: "Retry-After: 1\r\n"), Self.ok("now")])
        defer { server.close() }
        let started = Date()
        let r = try Self.client().execute(HTTPClientRequest(url: Self.url(server)))
        #expect(r.status == 200 && r.attempts == 2)
        #expect(Date().timeIntervalSince(started) >= 0.9)
    }

    @Test func postIsNotRetried() throws {
        let server = try ScriptedServer([Self.ok("busy", status: "503 Slow Down"), Self.ok("hello")])
        defer { server.close() }
        let r = try Self.client().execute(HTTPClientRequest(method: "POST", url: Self.url(server), body: .data(Data("x".utf8))))
        #expect(r.status == 503 && r.attempts == 1)
    }

    @Test func shortReadIsRetriedAndTheFileRewound() throws {
        let short = ScriptedServer.Reply.bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
        let server = try ScriptedServer([short, Self.ok("0123456789")])
        defer { server.close() }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fetch-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: path.path, contents: Data("keep:".utf8))
        defer { try? FileManager.default.removeItem(at: path) }
        let handle = try FileHandle(forWritingTo: path)
        try handle.seekToEnd()
        let r = try Self.client().execute(HTTPClientRequest(url: Self.url(server)), body: .file(handle))
        try handle.close()
        #expect(r.attempts == 2 && r.bodyLength == 10)
        #expect(try String(contentsOf: path, encoding: .utf8) == "keep:0123456789")

        let again = try ScriptedServer([short])
        defer { again.close() }
        #expect(throws: FetchError.shortRead(target: "http://127.0.0.1:\(again.port)/k", expected: 10, received: 5)) {
            try Self.client(attempts: 1).execute(HTTPClientRequest(url: Self.url(again)))
        }
    }

    @Test func chunkedAndCloseDelimitedBodies() throws {
        let server = try ScriptedServer([
            .bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: z\r\n\r\n"),
            .bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close"),
        ])
        defer { server.close() }
        let c = Self.client()
        #expect(String(decoding: try c.execute(HTTPClientRequest(url: Self.url(server))).body, as: UTF8.self) == "hello world")
        #expect(String(decoding: try c.execute(HTTPClientRequest(url: Self.url(server))).body, as: UTF8.self) == "until close")
    }

    @Test func headHasNoBodyAndPutSendsAFileRange() throws {
        let server = try ScriptedServer([Self.ok("", extra: "X-Len: 1\r\n").headWithLength(10), Self.ok("")])
        defer { server.close() }
        let c = Self.client()
        let head = try c.execute(HTTPClientRequest(method: "HEAD", url: Self.url(server)))
        #expect(head.status == 200 && head.body.isEmpty && head.headers["Content-Length"] == "10")

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fetch-\(UUID().uuidString)")
        try Data("0123456789".utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        _ = try c.execute(HTTPClientRequest(method: "PUT", url: Self.url(server, "/a%20b?x=1"), headers: ["X-Test": "yes"],
                                            body: .file(path: path.path, offset: 2, length: 5)))
        let put = try #require(server.requests.last)
        #expect(put.head.hasPrefix("PUT /a%20b?x=1 HTTP/1.1\r\n"))
        #expect(put.head.contains("\r\nContent-Length: 5") && put.head.contains("\r\nX-Test: yes") && put.head.contains("\r\nHost: 127.0.0.1:\(server.port)"))
        #expect(put.body == Data("23456".utf8))
    }

    @Test func stallTimesOutAndRefusedConnectFails() throws {
        let server = try ScriptedServer([.stall(3)])
        defer { server.close() }
        #expect(throws: FetchError.timeout(target: "http://127.0.0.1:\(server.port)/k", phase: "receive")) {
            try Self.client(attempts: 1, stall: 0.3).execute(HTTPClientRequest(url: Self.url(server)))
        }
        // A server that trickles: each read makes progress, the attempt's deadline still ends it.
        let slow = try ScriptedServer([.trickle("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 100), 0.05)])
        defer { slow.close() }
        var bounded = HTTPClient.Configuration()
        bounded.maxAttempts = 1
        bounded.attemptTimeout = 0.5
        #expect(throws: FetchError.timeout(target: "http://127.0.0.1:\(slow.port)/k", phase: "request")) {
            try HTTPClient(configuration: bounded).execute(HTTPClientRequest(url: Self.url(slow)))
        }
        let closed = try ScriptedServer([])
        let port = closed.port
        closed.close()
        #expect {
            try Self.client(attempts: 2).execute(HTTPClientRequest(url: URL(string: "http://127.0.0.1:\(port)/")!))
        } throws: { error in
            if case FetchError.connectFailed = error { return true }
            return false
        }
        #expect(throws: FetchError.self) { try Self.client().execute(HTTPClientRequest(url: URL(string: "ftp://127.0.0.1/")!)) }
    }
}

extension ScriptedServer.Reply {
    /// A HEAD answer announcing `length` bytes it does not send.
    func headWithLength(_ length: Int) -> ScriptedServer.Reply { .bytes("HTTP/1.1 200 OK\r\nContent-Length: \(length)\r\n\r\n") }
}
