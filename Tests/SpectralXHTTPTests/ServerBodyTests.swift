import Foundation
import Testing
import SpectralXHTTP

func makeTempDir() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-http-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Files in the server's own spool subdirectory (its lock file aside).
func spoolFiles(_ server: HTTPServer) -> [String] {
    guard let dir = server.spoolDirectory else { return [] }
    return contents(of: dir).filter { $0 != ".lock" }
}

func contents(of dir: URL) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
}

@Suite struct ServerBodyTests {
    @Test func expectContinueIsAnsweredBeforeTheBody() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /e HTTP/1.1\r\nHost: x\r\nX-Request-Id: ec\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            let interim = "HTTP/1.1 100 Continue\r\n\r\n"
            #expect(c.read(count: interim.utf8.count).text == interim)
            try c.send("hello")
            let expected = echoResponse("POST /e hello", id: "ec")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func expectContinueWithChunkedBody() throws {
        try withServer { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /e HTTP/1.1\r\nHost: x\r\nX-Request-Id: ec2\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
            let interim = "HTTP/1.1 100 Continue\r\n\r\n"
            #expect(c.read(count: interim.utf8.count).text == interim)
            try c.send("3\r\nabc\r\n0\r\n\r\n")
            let expected = echoResponse("POST /e abc", id: "ec2")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func expectContinueOverLimitGetsFinalStatusInsteadOf100() throws {
        let config = testConfiguration { $0.limits.maxBodySize = 100 }
        try withServer(config) { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /e HTTP/1.1\r\nHost: x\r\nX-Request-Id: big\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n")
            let (data, closed) = c.readUntilClose()
            #expect(data.text == errorResponse(413, "Content Too Large", "payload_too_large",
                                               "the request body exceeds the limit of 100 bytes", id: "big"))
            #expect(closed)
        }
    }

    @Test func handlerCanRejectFromTheHeadBeforeTheBodyIsRead() throws {
        let server = try HTTPServer(configuration: testConfiguration(), handler: HTTPHandlerFunction(validateHead: { head, _ in
            head.target.path == "/v1/domains/unknown/segment"
                ? .error(.notFound, code: "unknown_domain", message: "no domain 'unknown'") : nil
        }, echoHandler), logger: testLogger())
        try server.start()
        defer { server.shutdown(); server.waitUntilStopped() }
        let c = try RawClient(port: server.port)
        try c.send("POST /v1/domains/unknown/segment HTTP/1.1\r\nHost: x\r\nX-Request-Id: u\r\nExpect: 100-continue\r\nContent-Length: 100000000\r\n\r\n")
        let (data, closed) = c.readUntilClose()
        #expect(data.text == errorResponse(404, "Not Found", "unknown_domain", "no domain 'unknown'", id: "u"))
        #expect(closed)
    }

    @Test func largeBodiesAreSpooledToATemporaryFileAndRemoved() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = testConfiguration { $0.bodyMemoryThreshold = 1024; $0.spoolDirectory = dir }
        let payload = String(repeating: "0123456789abcdef", count: 1000)  // 16000 bytes
        try withServer(config, handler: { req, _ in
            guard let url = req.body.fileURL else { return .text("memory \(req.body.count)") }
            let onDisk = try Data(contentsOf: url)
            let viaAPI = try req.body.readData()
            let same = onDisk == Data(payload.utf8) && viaAPI == onDisk
            return .text("file \(req.body.count) \(same) \(url.deletingLastPathComponent().deletingLastPathComponent().standardizedFileURL.path == dir.standardizedFileURL.path)")
        }) { server in
            let c = try RawClient(port: server.port)
            try c.send("POST /f HTTP/1.1\r\nHost: x\r\nX-Request-Id: f1\r\nContent-Length: \(payload.utf8.count)\r\n\r\n" + payload)
            var expected = echoResponse("file 16000 true true", id: "f1")
            #expect(c.read(count: expected.utf8.count).text == expected)
            #expect(eventually { spoolFiles(server).isEmpty })
            // Chunked: starts in memory, moves to a file when it crosses the threshold.
            let chunks = stride(from: 0, to: payload.utf8.count, by: 4000).map { i -> String in
                let part = String(payload.dropFirst(i).prefix(4000))
                return String(part.utf8.count, radix: 16) + "\r\n" + part + "\r\n"
            }.joined()
            try c.send("POST /f HTTP/1.1\r\nHost: x\r\nX-Request-Id: f2\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + "0\r\n\r\n")
            expected = echoResponse("file 16000 true true", id: "f2")
            #expect(c.read(count: expected.utf8.count).text == expected)
            #expect(eventually { spoolFiles(server).isEmpty })
            // Small bodies stay in memory.
            try c.send("POST /f HTTP/1.1\r\nHost: x\r\nX-Request-Id: f3\r\nContent-Length: 4\r\n\r\nabcd")
            expected = echoResponse("memory 4", id: "f3")
            #expect(c.read(count: expected.utf8.count).text == expected)
        }
    }

    @Test func fileAndChunkedResponseBodies() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("out.bin")
        try Data("file-content".utf8).write(to: file)
        try withServer(handler: { req, _ in
            if req.path == "/file" {
                return HTTPResponse(headers: ["Content-Type": "application/octet-stream"], body: .file(file, removeAfterSending: true))
            }
            return HTTPResponse(headers: ["Content-Type": "text/plain"], body: .chunked({ write in
                try write(Data("abc".utf8))
                try write(Data())
                try write(Data("defgh".utf8))
            }))
        }) { server in
            let c = try RawClient(port: server.port)
            try c.send("GET /file HTTP/1.1\r\nHost: x\r\nX-Request-Id: o1\r\n\r\nGET /chunks HTTP/1.1\r\nHost: x\r\nX-Request-Id: o2\r\n\r\n")
            let expected = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Request-Id: o1\r\nContent-Length: 12\r\n\r\nfile-content"
                + "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: o2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"
            #expect(c.read(count: expected.utf8.count).text == expected)
            #expect(eventually { !FileManager.default.fileExists(atPath: file.path) })
            // HTTP/1.0 gets the streamed body close-delimited.
            let old = try RawClient(port: server.port)
            try old.send("GET /chunks HTTP/1.0\r\nX-Request-Id: o3\r\n\r\n")
            #expect(old.readUntilClose().data.text
                    == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Request-Id: o3\r\nConnection: close\r\n\r\nabcdefgh")
        }
    }

    @Test func multipartUploadSpooledToFile() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = testConfiguration { $0.bodyMemoryThreshold = 256; $0.spoolDirectory = dir }
        let tile = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        var body = Data("--XyZ\r\nContent-Disposition: form-data; name=\"output\"\r\n\r\npng\r\n".utf8)
        body.append(Data("--XyZ\r\nContent-Disposition: form-data; name=\"tile\"; filename=\"x.tif\"\r\nContent-Type: image/tiff\r\n\r\n".utf8))
        body.append(tile)
        body.append(Data("\r\n--XyZ--\r\n".utf8))
        try withServer(config, handler: { req, _ in
            let parts = try MultipartFormData.parse(req.body, contentType: req.headers["Content-Type"] ?? "")
            let t = parts.first { $0.name == "tile" }
            return .text("\(req.body.fileURL != nil) \(parts.count) \(parts[0].body.text) \(t?.filename ?? "-") \(t?.contentType ?? "-") \(t?.body == tile)")
        }) { server in
            let c = try RawClient(port: server.port)
            var request = Data("POST /m HTTP/1.1\r\nHost: x\r\nX-Request-Id: mp\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
            request.append(body)
            try c.send(request)
            let expected = echoResponse("true 2 png x.tif image/tiff true", id: "mp")
            #expect(c.read(count: expected.utf8.count).text == expected)
            #expect(eventually { spoolFiles(server).isEmpty })
        }
    }
}

@Suite struct MultipartTests {
    @Test func boundaryFromContentType() {
        #expect(MultipartFormData.boundary(fromContentType: "multipart/form-data; boundary=abc") == "abc")
        #expect(MultipartFormData.boundary(fromContentType: "Multipart/Form-Data; charset=x; Boundary=\"a b;c\"") == "a b;c")
        #expect(MultipartFormData.boundary(fromContentType: "multipart/mixed; boundary=abc") == nil)
        #expect(MultipartFormData.boundary(fromContentType: "multipart/form-data") == nil)
    }

    @Test func curlStyleBody() throws {
        let body = Data(("preamble\r\n--------------------------d74496d66958873e\r\n"
                         + "Content-Disposition: form-data; name=\"tile\"; filename=\"my \\\"x\\\".tif\"\r\n"
                         + "Content-Type: image/tiff\r\n\r\nII*\0DATA\r\n--notboundary\r\n"
                         + "\r\n--------------------------d74496d66958873e\r\n"
                         + "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"
                         + "\r\n--------------------------d74496d66958873e--\r\nepilogue").utf8)
        let parts = try MultipartFormData.parse(body, boundary: "------------------------d74496d66958873e")
        #expect(parts.count == 2)
        #expect(parts[0].name == "tile")
        #expect(parts[0].filename == "my \"x\".tif")
        #expect(parts[0].contentType == "image/tiff")
        #expect(parts[0].body == Data("II*\0DATA\r\n--notboundary\r\n".utf8))
        #expect(parts[1].name == "empty")
        #expect(parts[1].filename == nil)
        #expect(parts[1].body.isEmpty)
    }

    @Test func malformedBodiesAreRejected() {
        for text in ["", "no boundary here", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated",
                     "--b\r\nBroken header line\r\n\r\nx\r\n--b--", "--bX\r\n"] {
            #expect(throws: HTTPServerError.self, "\(text.debugDescription)") {
                try MultipartFormData.parse(Data(text.utf8), boundary: "b")
            }
        }
        #expect(throws: HTTPServerError.self) {
            try MultipartFormData.parse(HTTPBody.data(Data()), contentType: "application/json")
        }
    }

    @Test func largeBodyIsLinear() throws {
        // 8 MiB of near-miss boundary prefixes must still parse quickly (no quadratic search).
        let noise = Data(repeating: 0x0D, count: 8 << 20)
        var body = Data("--B\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n".utf8)
        body.append(noise)
        body.append(Data("\r\n--B--".utf8))
        let parts = try MultipartFormData.parse(body, boundary: "B")
        #expect(parts.first?.body.count == noise.count)
    }
}
