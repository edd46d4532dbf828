import Foundation
import Testing
import SpectralXHTTP

/// Runs the parser over `input` in pieces of `step` bytes (0 = all at once), merging consecutive
/// body events so results are comparable across feeding patterns.
func parse(_ input: String, step: Int = 0, limits: HTTPServerLimits = HTTPServerLimits()) -> (events: [HTTPParserEvent], error: HTTPServerError?) {
    var parser = HTTPRequestParser(limits: limits)
    var events: [HTTPParserEvent] = []
    let bytes = Array(input.utf8)
    func drain() throws(HTTPServerError) {
        while let e = try parser.next() {
            if case .body(let d) = e, case .body(let prev)? = events.last {
                events[events.count - 1] = .body(prev + d)
            } else {
                events.append(e)
            }
        }
    }
    do {
        if step == 0 {
            parser.append(bytes)
            try drain()
        } else {
            var i = 0
            while i < bytes.count {
                parser.append(bytes[i..<min(i + step, bytes.count)])
                i += step
                try drain()
            }
        }
        return (events, nil)
    } catch {
        return (events, error)
    }
}

/// Parses all at once and byte by byte, requires identical outcomes, and returns them.
func parseBothWays(_ input: String, limits: HTTPServerLimits = HTTPServerLimits()) -> (events: [HTTPParserEvent], error: HTTPServerError?) {
    let whole = parse(input, limits: limits)
    let bytewise = parse(input, step: 1, limits: limits)
    let threes = parse(input, step: 3, limits: limits)
    #expect(whole.events == bytewise.events, "byte-by-byte events differ for \(input.debugDescription)")
    #expect(whole.error == bytewise.error, "byte-by-byte error differs for \(input.debugDescription)")
    #expect(whole.events == threes.events)
    #expect(whole.error == threes.error)
    return whole
}

@Suite struct HTTPRequestParserTests {
    @Test func simpleGet() throws {
        let r = parseBothWays("GET /a?b=c HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n")
        #expect(r.error == nil)
        guard case .head(let head)? = r.events.first else { Issue.record("no head"); return }
        #expect(head.method == "GET")
        #expect(head.rawTarget == "/a?b=c")
        #expect(head.version == .http1_1)
        #expect(head.headers["host"] == "example")
        #expect(head.headers.values(for: "X-MULTI") == ["1", "2"])
        #expect(head.headers.map(\.name) == ["Host", "Accept", "X-Multi", "x-multi"])
        #expect(head.framing == .none)
        #expect(head.keepAlive)
        #expect(r.events.count == 2)
        #expect(r.events.last == .end(trailers: HTTPHeaders()))
    }

    @Test func contentLengthBodyAndPipelinedSecondRequest() {
        let r = parseBothWays("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello worldGET /y HTTP/1.0\r\n\r\n")
        #expect(r.error == nil)
        #expect(r.events.count == 5)
        #expect(r.events[1] == .body(Data("hello world".utf8)))
        #expect(r.events[2] == .end(trailers: HTTPHeaders()))
        guard case .head(let second) = r.events[3] else { Issue.record("no second head"); return }
        #expect(second.rawTarget == "/y")
        #expect(second.version == .http1_0)
        #expect(!second.keepAlive)
    }

    @Test func chunkedWithExtensionsAndTrailers() {
        let r = parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              + "4;a=b\r\nWiki\r\nA ;x;y=\"z\"\r\npedia in\r\n\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n")
        #expect(r.error == nil)
        #expect(r.events.count == 3)
        #expect(r.events[1] == .body(Data("Wikipedia in\r\n".utf8)))
        #expect(r.events[2] == .end(trailers: ["X-Sum": "1", "X-Other": "two"]))
    }

    @Test func transferEncodingIsCaseInsensitiveAndListAware() {
        let r = parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n")
        #expect(r.error == nil)
        #expect(r.events.count == 2)
    }

    @Test func leadingEmptyLinesAreIgnored() {
        let r = parseBothWays("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(r.error == nil)
        #expect(r.events.count == 2)
    }

    @Test func keepAliveSemantics() {
        func head(_ s: String) -> HTTPRequestHead? {
            if case .head(let h)? = parse(s).events.first { return h }
            return nil
        }
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\n\r\n")?.keepAlive == true)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n")?.keepAlive == false)
        #expect(head("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(head("GET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n")?.keepAlive == true)
        #expect(head("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n")?.expectsContinue == true)
    }

    // MARK: Smuggling and malformed input: each must fail with the given status and code.

    static let rejected: [(String, Int, String)] = [
        // both framings
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "conflicting_framing"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "conflicting_framing"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "conflicting_framing"),
        // Content-Length
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400, "invalid_content_length"),
        // transfer codings
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "invalid_transfer_encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400, "invalid_transfer_encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "invalid_transfer_encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400, "invalid_transfer_encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported_transfer_coding"),
        // line syntax
        ("GET / HTTP/1.1\nHost: h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: h\r\n\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n  folded\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\n: h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: h\u{01}x\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: h\u{7f}\r\n\r\n", 400, "bad_request"),
        ("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "bad_request"),
        ("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request"),
        ("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400, "bad_request"),
        ("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http_version_not_supported"),
        ("GET / HTTP/0.9\r\n\r\n", 505, "http_version_not_supported"),
        // Host
        ("GET / HTTP/1.1\r\n\r\n", 400, "bad_request"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request"),
        // chunked framing
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_request"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400, "bad_request"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", 400, "bad_request"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n", 400, "bad_request"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n", 400, "bad_request"),
    ]

    @Test(arguments: 0..<rejected.count)
    func rejectsMalformedAndAmbiguousRequests(_ index: Int) {
        let (input, status, code) = Self.rejected[index]
        let r = parseBothWays(input)
        #expect(r.error?.status.code == status, "\(input.debugDescription)")
        #expect(r.error?.code == code, "\(input.debugDescription)")
    }

    /// A route with its own body limit (`serve --max-job-body` for `POST /v1/domains/*/jobs`): larger
    /// or smaller than `maxBodySize`, decided from the head (Content-Length) or at the chunk size, and
    /// the 413 message names the limit that applied.
    @Test func routeBodyLimits() {
        var limits = HTTPServerLimits(maxBodySize: 10)
        limits.maxBodySizeName = "--max-body"
        limits.routeBodyLimits = [HTTPRouteBodyLimit(method: "POST", path: "/v1/domains/*/jobs", maxBodySize: 100, name: "--max-job-body"),
                                  HTTPRouteBodyLimit(method: "PUT", path: "/tiny", maxBodySize: 2)]
        var r = parseBothWays("POST /v1/domains/syn/jobs?overlap=0 HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 100), limits: limits)
        #expect(r.error == nil)
        r = parseBothWays("POST /v1/domains/syn/jobs HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", limits: limits)
        #expect(r.error?.status.code == 413 && r.error?.message == "the request body exceeds the limit of 100 bytes (--max-job-body)")
        #expect(r.events.isEmpty)
        // Other methods and paths keep maxBodySize.
        for head in ["POST /v1/domains/syn/segment", "PUT /v1/domains/syn/jobs", "POST /v1/domains/syn/jobs/x", "POST /v1/domains/jobs"] {
            r = parseBothWays("\(head) HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: limits)
            #expect(r.error?.message == "the request body exceeds the limit of 10 bytes (--max-body)", "\(head)")
        }
        r = parseBothWays("PUT /tiny HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", limits: limits)
        #expect(r.error?.message == "the request body exceeds the limit of 2 bytes")
        // Chunked: the route's limit applies at each chunk size.
        let chunk = String(repeating: "y", count: 60)
        r = parseBothWays("POST /v1/domains/syn/jobs HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n\(chunk)\r\n3c\r\n", limits: limits)
        #expect(r.error?.status.code == 413 && r.error?.message.hasSuffix("(--max-job-body)") == true)
        r = parseBothWays("POST /v1/domains/syn/jobs HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n\(chunk)\r\n0\r\n\r\n", limits: limits)
        #expect(r.error == nil)
    }

    @Test func limits() {
        let small = HTTPServerLimits(maxRequestLineLength: 20, maxHeaderBytes: 40, maxHeaderCount: 2, maxBodySize: 10)
        // request line: fails before the line ends
        var r = parseBothWays("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", limits: small)
        #expect(r.error?.status.code == 414)
        #expect(r.error?.code == "uri_too_long")
        r = parseBothWays("GET /12345678 HTTP/1.1\r\nHost: h\r\n\r\n", limits: small)  // exactly 22 > 20
        #expect(r.error?.status.code == 414)
        r = parseBothWays("GET /123456 HTTP/1.1\r\nHost: h\r\n\r\n", limits: small)  // exactly 20
        #expect(r.error == nil)
        // header bytes, even without a line end
        r = parseBothWays("GET / HTTP/1.1\r\nHost: hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh", limits: small)
        #expect(r.error?.status.code == 431)
        // header count
        r = parseBothWays("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", limits: small)
        #expect(r.error?.status.code == 431)
        #expect(r.error?.code == "header_fields_too_large")
        // declared body too large: decided from the head
        r = parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: small)
        #expect(r.error?.status.code == 413)
        #expect(r.events.isEmpty)
        r = parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n")
        #expect(r.error?.status.code == 413)
        // chunked body crossing the limit: decided at the chunk size, before its data
        r = parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n", limits: small)
        #expect(r.error?.status.code == 413)
        #expect(r.events.count == 2)
        r = parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", limits: small)
        #expect(r.error?.status.code == 413)
        // trailers share the header limits
        r = parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: small)
        #expect(r.error?.status.code == 431)
    }

    @Test func errorsAreSticky() {
        var p = HTTPRequestParser()
        p.append(Array("GET / HTTP/1.1\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPServerError.self) { try p.next() }
        p.append(Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPServerError.self) { try p.next() }
    }

    @Test func targetParsing() {
        let t = HTTPRequestTarget("/v1/domains/a%2Fb/segment?output=png&scores=true&e=%E2%82%AC&bad=%zz#frag")
        #expect(t.path == "/v1/domains/a/b/segment")
        #expect(t.pathSegments == ["v1", "domains", "a/b", "segment"])
        #expect(t.queryValue("output") == "png")
        #expect(t.queryValue("scores") == "true")
        #expect(t.queryValue("e") == "€")
        #expect(t.queryValue("bad") == "%zz")
        #expect(t.queryValue("missing") == nil)
        #expect(HTTPRequestTarget("http://host:8080/p?q=1").path == "/p")
    }

    @Test func headersAreCaseInsensitiveAndOrdered() {
        var h: HTTPHeaders = ["Content-Type": "a"]
        h.add(name: "X-A", value: "1")
        h.add(name: "x-a", value: "2")
        #expect(h["content-type"] == "a")
        #expect(h.values(for: "X-a") == ["1", "2"])
        h.replaceOrAdd(name: "X-A", value: "3")
        #expect(h.map(\.name) == ["Content-Type", "X-A"])
        #expect(h["x-a"] == "3")
        h.remove(name: "CONTENT-TYPE")
        #expect(h.count == 1)
    }
}

@Suite struct HTTPResponseSerializerTests {
    @Test func headLayout() {
        let bytes = HTTPResponseSerializer.head(
            status: .ok, headers: ["Content-Type": "text/plain", "Content-Length": "999", "X-Bad": "a\r\nInjected: 1"],
            framing: .contentLength(5), close: true,
            date: Date(timeIntervalSince1970: 784111777), serverName: "spectralx")
        #expect(bytes.text == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Bad: a Injected: 1\r\nContent-Length: 5\r\n"
                + "Connection: close\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: spectralx\r\n\r\n")
    }

    @Test func chunkedFraming() {
        let head = HTTPResponseSerializer.head(status: .ok, headers: HTTPHeaders(), framing: .chunked, close: false)
        #expect(head.text == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(HTTPResponseSerializer.chunk(Data(repeating: 65, count: 26)).text == "1a\r\n" + String(repeating: "A", count: 26) + "\r\n")
        #expect(HTTPResponseSerializer.chunk(Data()).isEmpty)
        #expect(HTTPResponseSerializer.lastChunk(trailers: ["X-T": "1"]).text == "0\r\nX-T: 1\r\n\r\n")
    }

    @Test func errorBodyShape() {
        let e = HTTPServerError(status: .payloadTooLarge, code: "payload_too_large", message: "too \"big\"\n")
        #expect(e.jsonBody.text == #"{"error":{"status":413,"code":"payload_too_large","message":"too \"big\"\n"}}"#)
        #expect(e.response.headers["Content-Type"] == "application/json")
    }
}
