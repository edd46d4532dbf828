import Foundation
import SpectralXSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors of the socket layer; they end the connection (no HTTP response can be sent).
enum TransportError: Error, Equatable {
    case timeout
    case closed
    case system(String, Int32)
    case tls(String)
}

/// Result of waiting for input.
enum ReadResult: Equatable {
    case bytes(Int)
    case eof
    case timeout
    /// The server's wake-up descriptor fired (shutdown) while waiting.
    case woken
}

/// Result of one non-blocking transport step.
enum IOStep: Equatable {
    /// Bytes moved (0 for a completed handshake).
    case done(Int)
    /// Nothing possible until the socket is readable / writable.
    case wantRead, wantWrite
    /// The peer closed (or reset) the connection.
    case eof
}

/// A connection's byte stream: plain TCP or TLS over it. Used from one thread at a time: the
/// event loop (non-blocking steps) or, while a handler runs, that handler's thread (blocking writes).
protocol Transport: AnyObject {
    var fd: Int32 { get }
    /// Advances the handshake without blocking (plain TCP: done at once).
    func handshakeStep() throws -> IOStep
    /// Reads what is available without blocking.
    func readNow(into buffer: UnsafeMutableRawBufferPointer) throws -> IOStep
    /// Writes what the socket accepts without blocking.
    func writeNow(_ bytes: UnsafeRawBufferPointer) throws -> IOStep
    /// Decrypted bytes already buffered inside the transport (poll cannot see them).
    var hasBufferedInput: Bool { get }
    /// Reads available bytes, waiting until `deadline`; if `wakeFD` is given and becomes readable
    /// while no input is available, returns `.woken`.
    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant, wakeFD: Int32?) throws -> ReadResult
    /// Writes everything, failing with `.timeout` when the peer accepts nothing for `idleTimeout`.
    func write(_ bytes: UnsafeRawBufferPointer, idleTimeout: Duration) throws
    /// Half-closes our sending side (after the TLS close_notify, if any).
    func shutdownWrite()
    func close()
}

extension Transport {
    func write(_ data: Data, idleTimeout: Duration) throws {
        try data.withUnsafeBytes { try write($0, idleTimeout: idleTimeout) }
    }
}

/// Thin wrappers around the BSD socket calls.
enum Socket {
    static func errnoError(_ call: String) -> TransportError {
        .system(call, errno)
    }

    /// Waits for `events` on `fd` (and readability of `wakeFD`) until `deadline`.
    /// Returns the ready `fd` events, 0 on timeout, or -1 when woken.
    static func wait(fd: Int32, events: Int16, deadline: ContinuousClock.Instant, wakeFD: Int32?) throws -> Int32 {
        while true {
            let now = ContinuousClock.now
            if now >= deadline { return 0 }
            let remaining = (deadline - now)
            let ms = Int32(min(remaining.inSeconds * 1000 + 1, 60_000))
            var fds = [pollfd(fd: fd, events: events, revents: 0)]
            if let wakeFD { fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)) }
            let r = poll(&fds, nfds_t(fds.count), ms)
            if r < 0 {
                if errno == EINTR { continue }
                throw errnoError("poll")
            }
            if r == 0 { continue }  // re-check the deadline
            if fds[0].revents != 0 { return Int32(fds[0].revents) }
            if fds.count > 1 && fds[1].revents != 0 { return -1 }
        }
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var v = value
        _ = setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Creates a bound, listening, non-blocking socket; returns it with the actual port.
    static func listen(host: String, port: Int, backlog: Int32) throws -> (fd: Int32, port: Int) {
        let name = host == "localhost" ? "127.0.0.1" : host
        var v4 = in_addr()
        var v6 = in6_addr()
        let fd: Int32
        if inet_pton(AF_INET, name, &v4) == 1 {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw errnoError("socket") }
            setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr = v4
            let r = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard r == 0 else { let e = errnoError("bind"); Glibc.close(fd); throw e }
        } else if inet_pton(AF_INET6, name, &v6) == 1 {
            fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw errnoError("socket") }
            setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            // `::` serves IPv4 too (dual stack); a specific IPv6 address only itself.
            setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, name == "::" ? 0 : 1)
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = in_port_t(UInt16(port).bigEndian)
            addr.sin6_addr = v6
            let r = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            guard r == 0 else { let e = errnoError("bind"); Glibc.close(fd); throw e }
        } else {
            throw TransportError.system("invalid listen address '\(host)'", EINVAL)
        }
        guard Glibc.listen(fd, backlog) == 0 else { let e = errnoError("listen"); Glibc.close(fd); throw e }
        setNonBlocking(fd)
        return (fd, localPort(fd))
    }

    static func localPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return describe(storage).port
    }

    /// `ip:port` of the peer (`[ip]:port` for IPv6).
    static func peerAddress(_ fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        guard r == 0 else { return nil }
        let (host, port, isV6) = describe(storage)
        return isV6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func describe(_ storage: sockaddr_storage) -> (host: String, port: Int, isV6: Bool) {
        var s = storage
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if s.ss_family == sa_family_t(AF_INET) {
            return withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                    var a = p.pointee.sin_addr
                    inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
                    return (String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self), Int(UInt16(bigEndian: p.pointee.sin_port)), false)
                }
            }
        } else {
            return withUnsafePointer(to: &s) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                    var a = p.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
                    return (String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self), Int(UInt16(bigEndian: p.pointee.sin6_port)), true)
                }
            }
        }
    }

    /// Accepts one pending connection as a non-blocking socket, or nil if none is pending.
    static func accept(_ listenFD: Int32) throws -> Int32? {
        while true {
            let fd = Glibc.accept(listenFD, nil, nil)
            if fd >= 0 {
                setNonBlocking(fd)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
                return fd
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK, ECONNABORTED, EPROTO: return nil
            default: throw errnoError("accept")
            }
        }
    }
}

/// Plain TCP.
final class PlainTransport: Transport {
    let fd: Int32
    private let closed = Mutex(false)

    init(fd: Int32) { self.fd = fd }

    func handshakeStep() throws -> IOStep { .done(0) }

    var hasBufferedInput: Bool { false }

    func readNow(into buffer: UnsafeMutableRawBufferPointer) throws -> IOStep {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 { return .done(n) }
            if n == 0 { return .eof }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wantRead
            case ECONNRESET, ENOTCONN, ETIMEDOUT: return .eof
            default: throw Socket.errnoError("recv")
            }
        }
    }

    func writeNow(_ bytes: UnsafeRawBufferPointer) throws -> IOStep {
        guard bytes.count > 0 else { return .done(0) }
        while true {
            let n = send(fd, bytes.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if n >= 0 { return .done(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wantWrite
            case EPIPE, ECONNRESET, ENOTCONN: return .eof
            default: throw Socket.errnoError("send")
            }
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant, wakeFD: Int32?) throws -> ReadResult {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            if n > 0 { return .bytes(n) }
            if n == 0 { return .eof }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                let r = try Socket.wait(fd: fd, events: Int16(POLLIN), deadline: deadline, wakeFD: wakeFD)
                if r == 0 { return .timeout }
                if r == -1 { return .woken }
            case ECONNRESET: return .eof
            default: throw Socket.errnoError("recv")
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, idleTimeout: Duration) throws {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                let r = try Socket.wait(fd: fd, events: Int16(POLLOUT), deadline: .now + idleTimeout, wakeFD: nil)
                if r == 0 { throw TransportError.timeout }
                continue
            }
            if n < 0 && (errno == EPIPE || errno == ECONNRESET) { throw TransportError.closed }
            throw Socket.errnoError("send")
        }
    }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    func close() {
        let wasClosed = closed.withLock { c in defer { c = true }; return c }
        if !wasClosed { _ = Glibc.close(fd) }
    }
}
