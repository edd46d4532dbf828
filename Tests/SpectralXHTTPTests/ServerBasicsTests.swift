import Foundation
import Testing
import SpectralXHTTP

@Suite struct ServerBasicsTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            let first = echoResponse("GET /a", id: "r1")
            try c.send("GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: r1\r\n\r\n")
            #expect(c.read(count: first.utf8.count).text == first)
            let second = echoResponse("POST /b hello", id: "r2")
            try c.send("POST /b HTTP/1.1\r\nHost: x\r\nX-Request-Id: r2\r\nContent-Length: 5\r\n\r\nhello")
            #expect(c.read(count: second.utf8.count).text == second)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        // The first handler call is slow, so an out-of-order server would answer /fast first.
        try withServer(handler: { req, ctx in
            if req.path == "/slow" { usleep(200_000) }
            return try echoHandler(req, ctx)
        }) { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Request-Id: p1\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\nX-Request-Id: p2\r\n\r\n")
            let expected = echoResponse("GET /slow", id: "p1") + echoResponse("GET /fast", id: "p2")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func http10ClosesAfterResponse() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /old HTTP/1.0\r\nX-Request-Id: h1\r\n\r\n")
            let (data, closed) = c.readUntilClose()
            #expect(data.text == echoResponse("GET /old", id: "h1", close: true))
            #expect(closed)
        }
    }

    @Test func http10KeepAliveWhenAsked() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /k HTTP/1.0\r\nConnection: keep-alive\r\nX-Request-Id: k1\r\n\r\n")
            let expected = echoResponse("GET /k", id: "k1", keepAlive10: true)
            #expect(c.read(count: expected.utf8.count).text == expected)
            try c.send("GET /k2 HTTP/1.0\r\nX-Request-Id: k2\r\n\r\n")
            #expect(c.readUntilClose().data.text == echoResponse("GET /k2", id: "k2", close: true))
        }
    }

    @Test func connectionCloseRequestIsHonoured() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: c1\r\n\r\n")
            let (data, closed) = c.readUntilClose()
            #expect(data.text == echoResponse("GET /c", id: "c1", close: true))
            #expect(closed)
        }
    }

    @Test func ipv6Loopback() throws {
        var config = testConfiguration()
        config.host = "::1"
        let server = try HTTPServer(configuration: config, logger: testLogger(), handler: echoHandler)
        do {
            try server.start()
        } catch {
            // No IPv6 on this host: nothing to test.
            return
        }
        defer { server.shutdown(); server.waitUntilStopped() }
        let c = try RawClient(port: server.port, host: "::1")
        try c.send("GET /six HTTP/1.1\r\nHost: x\r\nX-Request-Id: v6\r\n\r\n")
        let expected = echoResponse("GET /six", id: "v6")
        #expect(c.read(count: expected.utf8.count).text == expected)
    }

    @Test func requestIDIsGeneratedWhenMissingOrInsane() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /id HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id with spaces\r\n\r\n")
            let text = c.read(until: "GET /id").text
            #expect(normalizeIDs(text) == echoResponse("GET /id", id: "*"))
        }
    }

    @Test func chunkedRequestWithExtensionsAndTrailers() throws {
        try withServer(handler: { req, _ in
            let body = try req.body.readData().text
            let trailer = req.trailers["X-Checksum"] ?? "none"
            return .text("\(body)|\(trailer)")
        }) { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /u HTTP/1.1\r\nHost: x\r\nX-Request-Id: ch\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + "5;name=value;flag\r\nhello\r\n6 ; ext=\"q\"\r\n world\r\n0;last\r\nX-Checksum: abc\r\n\r\n")
            let expected = echoResponse("hello world|abc", id: "ch")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func headRequestGetsNoBody() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("HEAD /h HTTP/1.1\r\nHost: x\r\nX-Request-Id: hd\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\nX-Request-Id: g\r\n\r\n")
            let expected = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Request-Id: hd\r\nContent-Length: 7\r\n\r\n"
                + echoResponse("GET /g", id: "g")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func queryAndPathArePercentDecoded() throws {
        try withServer(handler: { req, _ in
            .text("\(req.path)|" + req.query.map { "\($0.name)=\($0.value)" }.joined(separator: ","))
        }) { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /v1/a%20b?output=png&x=1%2B1&y=a+b&flag HTTP/1.1\r\nHost: x\r\nX-Request-Id: q\r\n\r\n")
            let expected = echoResponse("/v1/a b|output=png,x=1+1,y=a b,flag=", id: "q")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func handlerErrorsBecome500AndServerErrorsPassThrough() throws {
        struct Boom: Error {}
        try withServer(handler: { req, _ in
            if req.path == "/boom" { throw Boom() }
            throw HTTPServerError(status: .notFound, code: "not_found", message: "no such route")
        }) { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /boom HTTP/1.1\r\nHost: x\r\nX-Request-Id: b\r\n\r\n")
            var expected = errorResponse(500, "Internal Server Error", "internal_error", "internal server error", id: "b")
                .replacingOccurrences(of: "Connection: close\r\n", with: "")
            #expect(c.read(count: expected.utf8.count).text == expected)
            try c.send("GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: n\r\n\r\n")
            expected = errorResponse(404, "Not Found", "not_found", "no such route", id: "n")
                .replacingOccurrences(of: "Connection: close\r\n", with: "")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }
}
