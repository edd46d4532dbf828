import Foundation
import Logging
import SpectralXHTTP
#if canImport(Glibc)
import Glibc
#endif

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A raw loopback client: sends exact bytes, reads exact bytes, with generous timeouts.
final class RawClient {
    let fd: Int32

    init(port: Int, host: String = "127.0.0.1") throws {
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = in_port_t(UInt16(port).bigEndian)
            addr.sin6_addr = v6
            let r = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            guard r == 0 else { Glibc.close(fd); throw TestError("connect failed: \(errno)") }
        } else {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, host, &addr.sin_addr)
            let r = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard r == 0 else { Glibc.close(fd); throw TestError("connect failed: \(errno)") }
        }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws { try send(Data(text.utf8)) }

    func send(_ data: Data) throws {
        try data.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
            var off = 0
            while off < p.count {
                let n = Glibc.send(fd, p.baseAddress! + off, p.count - off, Int32(MSG_NOSIGNAL))
                if n <= 0 {
                    if errno == EINTR { continue }
                    throw TestError("send failed: \(errno)")
                }
                off += n
            }
        }
    }

    /// Reads until `count` bytes arrived, the peer closed, or `timeout` seconds passed.
    func read(count: Int, timeout: Double = 20) -> Data {
        read(timeout: timeout) { $0.count >= count }
    }

    /// Reads until the peer closes (or the timeout passes); `closed` tells which.
    func readUntilClose(timeout: Double = 20) -> (data: Data, closed: Bool) {
        var closed = false
        let d = read(timeout: timeout, sawClose: &closed) { _ in false }
        return (d, closed)
    }

    /// Reads until the accumulated bytes contain `marker`.
    func read(until marker: String, timeout: Double = 20) -> Data {
        let m = Data(marker.utf8)
        return read(timeout: timeout) { $0.range(of: m) != nil }
    }

    func read(timeout: Double, until done: (Data) -> Bool) -> Data {
        var closed = false
        return read(timeout: timeout, sawClose: &closed, until: done)
    }

    func read(timeout: Double, sawClose: inout Bool, until done: (Data) -> Bool) -> Data {
        var out = Data()
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 65536)
        while !done(out) {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(left * 1000) + 1)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { sawClose = true; break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// True if the peer closed (EOF or reset) within the timeout without sending more bytes.
    func waitForClose(timeout: Double = 20) -> Bool {
        readUntilClose(timeout: timeout).closed
    }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }
}

extension Data {
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// Replaces generated request ids (32 hex digits) so error responses compare byte for byte.
func normalizeIDs(_ s: String) -> String {
    s.replacingOccurrences(of: "X-Request-Id: [0-9a-f]{32}\r\n", with: "X-Request-Id: *\r\n", options: .regularExpression)
}

func testLogger() -> Logger {
    var l = Logger(label: "test.http")
    l.logLevel = .critical
    return l
}

func testConfiguration(_ tweak: (inout HTTPServerConfiguration) -> Void = { _ in }) -> HTTPServerConfiguration {
    var c = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    c.includeDateHeader = false
    c.serverName = nil
    c.headerReadTimeout = .seconds(5)
    c.bodyReadTimeout = .seconds(5)
    c.keepAliveIdleTimeout = .seconds(5)
    c.lingerTimeout = .milliseconds(500)
    tweak(&c)
    return c
}

/// Starts a server, runs `body`, then shuts it down and waits for it.
func withServer(_ config: HTTPServerConfiguration = testConfiguration(),
                handler: @escaping @Sendable (HTTPRequest, HTTPRequestContext) throws -> HTTPResponse = echoHandler,
                _ body: (HTTPServer) throws -> Void) throws {
    let server = try HTTPServer(configuration: config, logger: testLogger(), handler: handler)
    try server.start()
    defer {
        server.shutdown()
        server.waitUntilStopped()
    }
    try body(server)
}

/// Answers `METHOD PATH` plus the body, as text.
@Sendable func echoHandler(_ request: HTTPRequest, _ context: HTTPRequestContext) throws -> HTTPResponse {
    var text = "\(request.method) \(request.path)"
    let body = try request.body.readData()
    if !body.isEmpty { text += " " + body.text }
    return .text(text)
}

/// The exact bytes the echo handler answers with.
func echoResponse(_ text: String, id: String, close: Bool = false, keepAlive10: Bool = false) -> String {
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Request-Id: \(id)\r\nContent-Length: \(text.utf8.count)\r\n"
        + (close ? "Connection: close\r\n" : "") + (keepAlive10 ? "Connection: keep-alive\r\n" : "") + "\r\n" + text
}

func errorResponse(_ status: Int, _ reason: String, _ code: String, _ message: String, id: String = "*") -> String {
    let body = "{\"error\":{\"status\":\(status),\"code\":\"\(code)\",\"message\":\"\(message)\"}}"
    return "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\nX-Request-Id: \(id)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
}

/// Waits (generously) until `condition` holds.
func eventually(timeout: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
