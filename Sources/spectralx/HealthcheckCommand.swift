import ArgumentParser
import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `spectralx healthcheck`: GET /healthz on the local server, exit 0 on 200 and 1 otherwise. It
/// reads the same SPECTRALX_HOST / SPECTRALX_PORT / SPECTRALX_TLS_CERT variables as `serve`, so a
/// container's HEALTHCHECK follows whatever port and TLS setting the container was started with
/// (and the image needs no curl).
struct HealthcheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck", abstract: "Probe a running server's /healthz (exit 0 when it answers 200).",
        discussion: """
            Host, port and TLS default to the server's own settings: SPECTRALX_HOST (a wildcard address \
            is probed on loopback), SPECTRALX_PORT (default 8080), TLS when SPECTRALX_TLS_CERT is set. \
            The certificate is not verified (the probe talks to its own process, often under another name).
            """)

    @Option(help: "Host to probe (default: SPECTRALX_HOST, wildcard → loopback; else 127.0.0.1).") var host: String?
    @Option(help: "Port (default: SPECTRALX_PORT, else 8080).") var port: Int?
    @Flag(inversion: .prefixedNo, help: "Use TLS (default: on when SPECTRALX_TLS_CERT is set).") var tls: Bool?
    @Option(help: "Path to probe.") var path: String = "/healthz"
    @Option(help: "Seconds for connect, handshake and answer together.") var timeout: Double = 3

    func validate() throws {
        guard timeout > 0, timeout <= 300 else { throw ValidationError("--timeout must be in (0, 300] seconds") }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be in 1...65535") }
        guard path.hasPrefix("/"), !path.contains(where: { $0.isWhitespace }) else {
            throw ValidationError("--path must be an absolute path without spaces")
        }
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        var target = host ?? env["SPECTRALX_HOST"] ?? "127.0.0.1"
        if target == "0.0.0.0" || target.isEmpty { target = "127.0.0.1" }
        if target == "::" || target == "[::]" { target = "::1" }
        target = target.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let p: Int
        if let port { p = port } else if let s = env["SPECTRALX_PORT"] {
            guard let v = Int(s), (1...65535).contains(v) else {
                FileHandle.standardError.write(Data("spectralx healthcheck: SPECTRALX_PORT '\(s)' is not a port\n".utf8))
                throw ExitCode(2)
            }
            p = v
        } else { p = 8080 }
        let useTLS = tls ?? !(env["SPECTRALX_TLS_CERT"] ?? "").isEmpty
        do {
            let status = try HealthProbe.status(host: target, port: p, tls: useTLS, path: path, timeout: timeout)
            guard status == 200 else {
                FileHandle.standardError.write(Data("spectralx healthcheck: \(path) answered \(status)\n".utf8))
                throw ExitCode.failure
            }
            print("ok: \(useTLS ? "https" : "http")://\(target.contains(":") ? "[\(target)]" : target):\(p)\(path) 200")
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("spectralx healthcheck: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// A one-shot HTTP/1.1 GET over a blocking socket (with send/receive timeouts), optionally TLS.
enum HealthProbe {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func status(host: String, port: Int, tls: Bool, path: String, timeout: Double) throws -> Int {
        let fd = try connect(host: host, port: port, timeout: timeout)
        defer { Glibc.close(fd) }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\n"
            + "User-Agent: spectralx-healthcheck\r\nConnection: close\r\n\r\n"
        var response = [UInt8]()
        if tls {
            guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw Failure(description: "SSL_CTX_new failed") }
            defer { SSL_CTX_free(ctx) }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
            guard let ssl = SSL_new(ctx) else { throw Failure(description: "SSL_new failed") }
            defer { SSL_free(ssl) }
            SSL_set_fd(ssl, fd)
            guard SSL_connect(ssl) == 1 else { throw Failure(description: "TLS handshake with \(host):\(port) failed") }
            let bytes = Array(request.utf8)
            guard SSL_write(ssl, bytes, Int32(bytes.count)) == Int32(bytes.count) else { throw Failure(description: "TLS write failed") }
            try readStatusLine(into: &response) { buf in Int(SSL_read(ssl, buf.baseAddress, Int32(buf.count))) }
            _ = SSL_shutdown(ssl)
        } else {
            let bytes = Array(request.utf8)
            guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
                throw Failure(description: "send failed: \(String(cString: strerror(errno)))")
            }
            try readStatusLine(into: &response) { buf in Glibc.recv(fd, buf.baseAddress, buf.count, 0) }
        }
        // "HTTP/1.1 200 OK"
        let line = String(decoding: response.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]) else {
            throw Failure(description: "not an HTTP answer: '\(line.prefix(80))'")
        }
        return code
    }

    /// Reads until the first line ending (or 4 KiB, or the peer closes).
    private static func readStatusLine(into out: inout [UInt8], _ read: (UnsafeMutableBufferPointer<UInt8>) -> Int) throws {
        var buf = [UInt8](repeating: 0, count: 1024)
        while !out.contains(0x0A), out.count < 4096 {
            let n = buf.withUnsafeMutableBufferPointer { read($0) }
            if n <= 0 {
                if out.isEmpty { throw Failure(description: "no answer (connection closed or timed out)") }
                return
            }
            out += buf[0..<n]
        }
    }

    /// A connected blocking socket with SO_SNDTIMEO/SO_RCVTIMEO set; the connect itself is bounded by
    /// a non-blocking connect and poll.
    private static func connect(host: String, port: Int, timeout: Double) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            defer { ai = a.pointee.ai_next }
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd < 0 { lastError = String(cString: strerror(errno)); continue }
            var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var ok = Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0
            if !ok && errno == EINPROGRESS {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&pfd, 1, Int32(timeout * 1000)) == 1 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    ok = err == 0
                    if !ok { lastError = String(cString: strerror(err)) }
                } else { lastError = "connect timed out after \(timeout) s" }
            } else if !ok { lastError = String(cString: strerror(errno)) }
            if ok {
                _ = fcntl(fd, F_SETFL, flags)
                return fd
            }
            Glibc.close(fd)
        }
        throw Failure(description: "cannot connect to \(host):\(port): \(lastError)")
    }
}
