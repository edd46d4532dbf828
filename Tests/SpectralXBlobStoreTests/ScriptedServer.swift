import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A loopback HTTP server that answers each request with the next scripted reply: the raw bytes a
/// test wants on the wire (short bodies, resets, stalls). It closes each connection after one
/// reply unless `keepAlive`, when it serves requests on a connection until the client closes.
/// `@unchecked Sendable`: the reply queue and the request log are only touched under `lock`.
final class ScriptedServer: @unchecked Sendable {
    enum Reply {
        case bytes(String)
        /// Reads the request, then says nothing for this long.
        case stall(Double)
        /// Sends the bytes one at a time, pausing between them.
        case trickle(String, Double)
    }

    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var replies: [Reply]
    private var log: [(head: String, body: Data)] = []
    private var accepted = 0
    private let keepAlive: Bool

    init(_ replies: [Reply], keepAlive: Bool = false) throws {
        self.replies = replies
        self.keepAlive = keepAlive
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    var requests: [(head: String, body: Data)] { lock.withLock { log } }
    var connections: Int { lock.withLock { accepted } }

    func close() { shutdown(fd, Int32(SHUT_RDWR)); Glibc.close(fd) }

    private func serve() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { return }
            lock.withLock { accepted += 1 }
            // One thread per connection: a client may hold a kept-alive one while opening another.
            Thread { [self] in handle(c) }.start()
        }
    }

    private func handle(_ c: Int32) {
        var buffer = Data()
        serving: while true {
            guard let (head, body) = readRequest(c, &buffer) else { break }
            let reply: Reply? = lock.withLock {
                log.append((head, body))
                return replies.isEmpty ? nil : replies.removeFirst()
            }
            switch reply {
            case .bytes(let s)?: _ = Array(s.utf8).withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            case .stall(let seconds)?: Thread.sleep(forTimeInterval: seconds)
            case .trickle(let s, let pause)?:
                for b in Array(s.utf8) {
                    var byte = b
                    guard send(c, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 else { break }
                    Thread.sleep(forTimeInterval: pause)
                }
            case nil: break serving
            }
            if !keepAlive { break }
        }
        Glibc.close(c)
    }

    /// One request (head and Content-Length body) from `c`, keeping any bytes after it in `buffer`.
    private func readRequest(_ c: Int32, _ buffer: inout Data) -> (String, Data)? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = buffer.range(of: Data("\r\n\r\n".utf8)) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                while buffer.count - end.upperBound < length {
                    let m = recv(c, &chunk, chunk.count, 0)
                    if m <= 0 { return nil }
                    buffer.append(contentsOf: chunk[0..<m])
                }
                let body = Data(buffer[end.upperBound..<(end.upperBound + length)])
                buffer = Data(buffer[(end.upperBound + length)...])
                return (head, body)
            }
            let n = recv(c, &chunk, chunk.count, 0)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
