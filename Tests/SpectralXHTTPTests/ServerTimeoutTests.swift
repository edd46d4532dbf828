import Foundation
import Testing
import SpectralXHTTP

@Suite struct ServerTimeoutTests {
    static let timeoutBody = errorResponse(408, "Request Timeout", "request_timeout", "the request was not received in time")

    @Test func slowHeadersGet408WhileOthersAreServed() throws {
        let config = testConfiguration { $0.headerReadTimeout = .milliseconds(300) }
        try withServer(config) { server in
            let slow = try RawClient(port: server.port)
            try slow.send("GET /slow HTTP/1.1\r\nHo")
            // A normal client is served while the slow one dribbles.
            let normal = try RawClient(port: server.port)
            try normal.send("GET /n HTTP/1.1\r\nHost: x\r\nX-Request-Id: n\r\n\r\n")
            let expected = echoResponse("GET /n", id: "n")
            #expect(normal.read(count: expected.utf8.count).text == expected)
            try? slow.send("s")
            let (data, closed) = slow.readUntilClose()
            #expect(normalizeIDs(data.text) == Self.timeoutBody)
            #expect(closed)
            // The normal connection still works afterwards.
            try normal.send("GET /n2 HTTP/1.1\r\nHost: x\r\nX-Request-Id: n2\r\n\r\n")
            let expected2 = echoResponse("GET /n2", id: "n2")
            #expect(normal.read(count: expected2.utf8.count).text == expected2)
        }
    }

    @Test func silentNewConnectionGets408() throws {
        let config = testConfiguration { $0.headerReadTimeout = .milliseconds(200) }
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            let (data, closed) = c.readUntilClose()
            #expect(normalizeIDs(data.text) == Self.timeoutBody)
            #expect(closed)
        }
    }

    @Test func slowBodyGets408() throws {
        let config = testConfiguration { $0.bodyReadTimeout = .milliseconds(200) }
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /b HTTP/1.1\r\nHost: x\r\nX-Request-Id: sb\r\nContent-Length: 10\r\n\r\nabc")
            let (data, closed) = c.readUntilClose()
            #expect(normalizeIDs(data.text) == errorResponse(408, "Request Timeout", "request_timeout",
                                                            "the request was not received in time", id: "sb"))
            #expect(closed)
        }
    }

    @Test func idleKeepAliveConnectionIsClosedSilently() throws {
        let config = testConfiguration { $0.keepAliveIdleTimeout = .milliseconds(200) }
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /i HTTP/1.1\r\nHost: x\r\nX-Request-Id: i\r\n\r\n")
            let expected = echoResponse("GET /i", id: "i")
            #expect(c.read(count: expected.utf8.count).text == expected)
            let (data, closed) = c.readUntilClose()
            #expect(data.isEmpty)
            #expect(closed)
        }
    }

    @Test func clientThatStopsReadingIsDroppedAfterTheWriteTimeout() throws {
        let config = testConfiguration { $0.writeTimeout = .milliseconds(200) }
        let big = Data(repeating: 0x61, count: 64 << 20)
        try withServer(config, handler: { req, ctx in
            req.path == "/big" ? HTTPResponse(status: .ok, contentType: "application/octet-stream", body: big) : try echoHandler(req, ctx)
        }) { server in
            let stalled = try RawClient(port: server.port)
            try stalled.send("GET /big HTTP/1.1\r\nHost: x\r\nX-Request-Id: w\r\n\r\n")
            // Never read: the server must give up on its own while still serving others.
            let other = try RawClient(port: server.port)
            try other.send("GET /o HTTP/1.1\r\nHost: x\r\nX-Request-Id: o\r\nConnection: close\r\n\r\n")
            #expect(other.readUntilClose().data.text == echoResponse("GET /o", id: "o", close: true))
            #expect(eventually(timeout: 30) { server.connectionCount == 0 })
            withExtendedLifetime(stalled) {}
        }
    }
}
