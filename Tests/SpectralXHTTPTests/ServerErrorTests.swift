import Foundation
import Testing
import SpectralXHTTP

/// Every status the server produces itself, over a real socket, byte for byte; each must close
/// (except where no body is left unread: 411).
@Suite struct ServerErrorTests {
    func expectError(_ request: String, _ expected: String, config: HTTPServerConfiguration = testConfiguration()) throws {
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            try c.send(request)
            let (data, closed) = c.readUntilClose()
            #expect(normalizeIDs(data.text) == expected, "\(request.debugDescription)")
            #expect(closed)
        }
    }

    @Test func badRequest400() throws {
        try expectError("GET / HTTP/1.1\nHost: x\r\n\r\n", errorResponse(400, "Bad Request", "bad_request", "bare LF in request"))
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: s1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                        errorResponse(400, "Bad Request", "conflicting_framing", "both Content-Length and Transfer-Encoding present", id: "s1"))
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: s2\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                        errorResponse(400, "Bad Request", "invalid_content_length", "multiple Content-Length header fields", id: "s2"))
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n\r\n",
                        errorResponse(400, "Bad Request", "bad_request", "obsolete line folding is not allowed"))
    }

    /// A POST without framing has an empty body (RFC 9112 §6.3): nothing is left unread, so the
    /// 411 keeps the connection and a pipelined request behind it is still answered.
    @Test func lengthRequired411KeepsTheConnection() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /v1/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: l1\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n\r\n")
            let error = errorResponse(411, "Length Required", "length_required", "a Content-Length or chunked body is required", id: "l1")
                .replacingOccurrences(of: "Connection: close\r\n", with: "")
            let expected = error + echoResponse("GET /after", id: "a")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func payloadTooLarge413DecidedFromHeadersAlone() throws {
        let config = testConfiguration { $0.limits.maxBodySize = 1000 }
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            // Only the head is sent; the answer must come without any body byte.
            try c.send("POST /up HTTP/1.1\r\nHost: x\r\nX-Request-Id: big\r\nContent-Length: 1001\r\n\r\n")
            let expected = errorResponse(413, "Content Too Large", "payload_too_large",
                                         "the request body exceeds the limit of 1000 bytes", id: "big")
            #expect(c.read(count: expected.utf8.count).text == expected)
            #expect(c.waitForClose())
        }
    }

    @Test func chunkedBodyCrossingLimit413() throws {
        let config = testConfiguration { $0.limits.maxBodySize = 10 }
        try expectError("POST /up HTTP/1.1\r\nHost: x\r\nX-Request-Id: ck\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n",
                        errorResponse(413, "Content Too Large", "payload_too_large", "the request body exceeds the limit of 10 bytes", id: "ck"),
                        config: config)
    }

    @Test func uriTooLong414() throws {
        let config = testConfiguration { $0.limits.maxRequestLineLength = 64 }
        try expectError("GET /" + String(repeating: "a", count: 100), // never finished: decided early
                        errorResponse(414, "URI Too Long", "uri_too_long", "the request line exceeds the limit of 64 bytes"),
                        config: config)
    }

    @Test func expectationFailed417() throws {
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nX-Request-Id: e\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\n",
                        errorResponse(417, "Expectation Failed", "expectation_failed", "only 'Expect: 100-continue' is supported", id: "e"))
    }

    @Test func headerFieldsTooLarge431() throws {
        let config = testConfiguration { $0.limits.maxHeaderCount = 3; $0.limits.maxHeaderBytes = 200 }
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
                        errorResponse(431, "Request Header Fields Too Large", "header_fields_too_large", "more than 3 header fields"),
                        config: config)
        try expectError("GET / HTTP/1.1\r\nHost: x\r\nA: " + String(repeating: "b", count: 300),
                        errorResponse(431, "Request Header Fields Too Large", "header_fields_too_large", "header section exceeds 200 bytes"),
                        config: config)
    }

    @Test func notImplemented501() throws {
        try expectError("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                        errorResponse(501, "Not Implemented", "unsupported_transfer_coding", "transfer coding 'gzip' is not supported"))
    }

    @Test func versionNotSupported505() throws {
        try expectError("GET / HTTP/2.0\r\nHost: x\r\n\r\n",
                        errorResponse(505, "HTTP Version Not Supported", "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported"))
    }

    /// Without a reserve the refusal is immediate on accept (with one, see ServerConnectionModelTests).
    @Test func tooManyConnections503() throws {
        let config = testConfiguration { $0.maxConnections = 1; $0.reservedConnections = 0 }
        try withServer(config) { server in
            let a = try RawClient(port: server.port)
            try a.send("GET /a HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\n")  // head not finished: A holds the slot
            #expect(eventually { server.connectionCount == 1 })
            let b = try RawClient(port: server.port)
            let (data, closed) = b.readUntilClose()
            #expect(normalizeIDs(data.text) == errorResponse(503, "Service Unavailable", "too_many_connections",
                                                            "the server is at its connection limit"))
            #expect(closed)
            // A is still served normally.
            try a.send("\r\n")
            let expected = echoResponse("GET /a", id: "a")
            #expect(a.read(count: expected.utf8.count).text == expected)
        }
    }
}
