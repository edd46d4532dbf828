import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A loopback HTTP/1.1 server for one object with Range, ETag and If-Match, and scripted faults
/// for the next requests: a status, or a reset in the middle of the body. `replace` swaps the
/// object (and its ETag), as a writer replacing a file mid-job would. `redirect` answers paths
/// under a prefix with a 302 to another URL.
/// `@unchecked Sendable`: all mutable state is only touched under `lock`.
final class RangeServer: @unchecked Sendable {
    enum Fault { case status(Int), resetMidBody }

    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var object: Data
    private var version = 1
    private var faults: [Fault] = []
    private var log: [String] = []
    private var accepted = 0
    var redirects: [String: String] = [:]

    init(_ object: Data) throws {
        self.object = object
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in serve() }.start()
    }

    var etag: String { lock.withLock { "\"v\(version)\"" } }
    var requests: [String] { lock.withLock { log } }
    var connections: Int { lock.withLock { accepted } }
    func inject(_ f: [Fault]) { lock.withLock { faults += f } }
    func replace(_ d: Data) { lock.withLock { object = d; version += 1 } }
    func setRedirect(_ path: String, to url: String) { lock.withLock { redirects[path] = url } }
    func close() { shutdown(fd, Int32(SHUT_RDWR)); Glibc.close(fd) }

    private func serve() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { return }
            lock.withLock { accepted += 1 }
            Thread { [self] in handle(c) }.start()
        }
    }

    private func send(_ c: Int32, _ d: Data) -> Bool {
        d.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = Glibc.send(c, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                off += n
            }
            return true
        }
    }

    private func handle(_ c: Int32) {
        var buffer = Data()
        var chunk = [UInt8](repeating: 0, count: 16384)
        // Keep-alive: requests on one connection until the client closes it (every loop reads ≥ 1 byte or ends).
        while true {
            guard let end = buffer.range(of: Data("\r\n\r\n".utf8)) else {
                let n = recv(c, &chunk, chunk.count, 0)
                if n <= 0 { break }
                buffer.append(contentsOf: chunk[0..<n])
                continue
            }
            let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
            buffer = Data(buffer[end.upperBound...])
            let lines = head.split(separator: "\r\n")
            let parts = lines.first?.split(separator: " ") ?? []
            let method = parts.first.map(String.init) ?? "", path = parts.count > 1 ? String(parts[1]) : "/"
            func header(_ name: String) -> String? {
                lines.dropFirst().first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
                    .map { $0[$0.index(after: $0.firstIndex(of: ":")!)...].trimmingCharacters(in: .whitespaces) }
            }
            let (fault, data, etag, redirect): (Fault?, Data, String, String?) = lock.withLock {
                log.append(head)
                return (faults.isEmpty ? nil : faults.removeFirst(), object, "\"v\(version)\"", redirects[path])
            }
            if let redirect {
                _ = send(c, Data("HTTP/1.1 302 Found\r\nLocation: \(redirect)\r\nContent-Length: 0\r\n\r\n".utf8))
                continue
            }
            if case .status(let s)? = fault {
                _ = send(c, Data("HTTP/1.1 \(s) Scripted\r\nContent-Length: 0\r\n\r\n".utf8))
                continue
            }
            guard !path.contains("missing") else {
                _ = send(c, Data("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".utf8))
                continue
            }
            if let m = header("If-Match"), m != etag {
                _ = send(c, Data("HTTP/1.1 412 Precondition Failed\r\nETag: \(etag)\r\nContent-Length: 0\r\n\r\n".utf8))
                continue
            }
            var lo = 0, hi = data.count - 1, status = "200 OK", extra = ""
            if let r = header("Range"), r.hasPrefix("bytes="), let dash = r.firstIndex(of: "-") {
                lo = Int(r[r.index(r.startIndex, offsetBy: 6)..<dash]) ?? 0
                hi = min(data.count - 1, Int(r[r.index(after: dash)...]) ?? data.count - 1)
                status = "206 Partial Content"
                extra = "Content-Range: bytes \(lo)-\(hi)/\(data.count)\r\n"
            }
            let body = method == "HEAD" ? Data() : data.subdata(in: lo..<(hi + 1))
            let headBytes = Data("HTTP/1.1 \(status)\r\nETag: \(etag)\r\n\(extra)Content-Length: \(hi - lo + 1)\r\n\r\n".utf8)
            if case .resetMidBody? = fault {
                _ = send(c, headBytes + body.prefix(body.count / 2))
                var l = linger(l_onoff: 1, l_linger: 0)   // close with RST
                setsockopt(c, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
                break
            }
            guard send(c, headBytes + body) else { break }
        }
        Glibc.close(c)
    }
}
