import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One client connection (TCP, optionally TLS) on a non-blocking socket; every wait is a poll with
/// the caller's stall timeout, so a silent peer costs at most that long.
/// `@unchecked Sendable`: used by one thread at a time, the request that owns it; between requests
/// it is parked in the `ConnectionPool`, which hands it over under its lock.
final class Connection: @unchecked Sendable {
    let fd: Int32
    private var ssl: OpaquePointer?
    private let target: String
    private let stallTimeout: Double
    /// The current attempt's overall deadline, if any: no wait runs past it.
    var attemptDeadline: Date?

    /// Resolves `host`, connects (within `connectTimeout` in total) and, with `tls`, handshakes.
    /// `admit` checks each resolved address before a connect to it (the fetch policy); an address
    /// it refuses is skipped, and when it refuses all, its error is thrown and nothing was sent.
    init(host: String, port: Int, tls: TLSClientContext?, connectTimeout: Double, stallTimeout: Double,
         attemptDeadline: Date?, target: String, admit: ((FetchAddress) throws -> Void)? = nil) throws {
        self.target = target
        self.stallTimeout = stallTimeout
        self.attemptDeadline = attemptDeadline
        var deadline = Date().addingTimeInterval(connectTimeout)
        if let attemptDeadline, attemptDeadline < deadline { deadline = attemptDeadline }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw FetchError.connectFailed(target: target, reason: "cannot resolve host: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastReason = "no address"
        var refusal: (any Error)?
        var connected: Int32 = -1
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor, connected < 0 {
            cursor = ai.pointee.ai_next
            if let admit {
                guard let sa = ai.pointee.ai_addr, let address = FetchAddress(UnsafePointer(sa)) else { continue }
                do { try admit(address) } catch { refusal = error; continue }
            }
            let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
            if s < 0 { lastReason = String(cString: strerror(errno)); continue }
            _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { connected = s; break }
            guard errno == EINPROGRESS else { lastReason = String(cString: strerror(errno)); Glibc.close(s); continue }
            let remaining = deadline.timeIntervalSinceNow
            var pfd = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
            let ready = remaining > 0 ? poll(&pfd, 1, Int32(max(1, remaining * 1000))) : 0
            if ready <= 0 {
                Glibc.close(s)
                throw FetchError.timeout(target: target, phase: "connect")
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(s, SOL_SOCKET, SO_ERROR, &soError, &len)
            if soError == 0 { connected = s } else { lastReason = String(cString: strerror(soError)); Glibc.close(s) }
        }
        if connected < 0, let refusal, lastReason == "no address" { throw refusal }
        guard connected >= 0 else { throw FetchError.connectFailed(target: target, reason: lastReason) }
        fd = connected
        var nosig: Int32 = 1
        #if canImport(Darwin)
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &nosig, socklen_t(MemoryLayout<Int32>.size))
        #else
        _ = nosig
        #endif
        if let tls {
            do { try handshake(tls, host: host, deadline: deadline) } catch { close(); throw error }
        }
    }

    private func handshake(_ tls: TLSClientContext, host: String, deadline: Date) throws {
        guard let s = SSL_new(tls.ctx) else { throw FetchError.tls(target: target, reason: "SSL_new failed") }
        ssl = s
        SSL_set_fd(s, fd)
        // A name gets SNI (SSL_set_tlsext_host_name is a macro) and a DNS-name check; an address
        // literal gets no SNI (RFC 6066) and is matched against the certificate's IP entries.
        var scratch = in6_addr()
        let isAddress = inet_pton(AF_INET, host, &scratch) == 1 || inet_pton(AF_INET6, host, &scratch) == 1
        if !isAddress {
            _ = host.withCString { SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) }
        }
        if tls.verify {
            let ok = isAddress ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host) : SSL_set1_host(s, host)
            guard ok == 1 else { throw FetchError.tls(target: target, reason: "cannot set the name to verify") }
        }
        while true {
            ERR_clear_error()
            let r = SSL_connect(s)
            if r == 1 { return }
            let e = SSL_get_error(s, r)
            if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE {
                let remaining = deadline.timeIntervalSinceNow
                guard remaining > 0, try waitFor(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, seconds: remaining) else {
                    throw FetchError.timeout(target: target, phase: "connect")
                }
                continue
            }
            let verify = SSL_get_verify_result(s)
            if verify != X509_V_OK {
                throw FetchError.tls(target: target, reason: "certificate verification failed: \(String(cString: X509_verify_cert_error_string(verify)))")
            }
            throw FetchError.tls(target: target, reason: "handshake failed: \(Self.opensslError())")
        }
    }

    static func opensslError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "connection closed" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Waits until the socket is ready for `events`; false on timeout. Past the attempt's
    /// deadline it throws `timeout(phase: "request")`.
    private func waitFor(_ events: Int32, seconds: Double) throws -> Bool {
        var limit = seconds
        var deadlineBound = false
        if let attemptDeadline {
            let remaining = attemptDeadline.timeIntervalSinceNow
            guard remaining > 0 else { throw FetchError.timeout(target: target, phase: "request") }
            if remaining < limit { limit = remaining; deadlineBound = true }
        }
        var pfd = pollfd(fd: fd, events: Int16(events), revents: 0)
        while true {
            let r = poll(&pfd, 1, Int32(max(1, min(limit, 86_400) * 1000)))
            if r > 0 { return true }
            if r == 0 {
                if deadlineBound { throw FetchError.timeout(target: target, phase: "request") }
                return false
            }
            if errno != EINTR { throw FetchError.connectionReset(target: target) }
        }
    }

    /// Writes all of `bytes`; fails when the peer accepts nothing for the stall timeout.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let chunk = bytes.baseAddress! + offset
            let count = bytes.count - offset
            if let ssl {
                ERR_clear_error()
                let n = SSL_write(ssl, chunk, Int32(min(count, Int(Int32.max))))
                if n > 0 { offset += Int(n); continue }
                let e = SSL_get_error(ssl, n)
                if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE {
                    guard try waitFor(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, seconds: stallTimeout) else {
                        throw FetchError.timeout(target: target, phase: "send")
                    }
                    continue
                }
                throw FetchError.connectionReset(target: target)
            } else {
                let n = send(fd, chunk, count, Int32(MSG_NOSIGNAL))
                if n > 0 { offset += n; continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    guard try waitFor(POLLOUT, seconds: stallTimeout) else { throw FetchError.timeout(target: target, phase: "send") }
                    continue
                }
                throw FetchError.connectionReset(target: target)
            }
        }
    }

    func write(_ data: Data) throws { try data.withUnsafeBytes { try write($0) } }

    /// Reads what is available (waiting up to the stall timeout); 0 means the peer closed.
    /// A reset after some response bytes reads as end of stream: the framing check decides.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            if let ssl {
                ERR_clear_error()
                let n = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
                if n > 0 { return Int(n) }
                let e = SSL_get_error(ssl, n)
                if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE {
                    guard try waitFor(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, seconds: stallTimeout) else {
                        throw FetchError.timeout(target: target, phase: "receive")
                    }
                    continue
                }
                return 0  // close_notify, unexpected EOF or reset
            } else {
                let n = recv(fd, buffer.baseAddress, buffer.count, 0)
                if n > 0 { return n }
                if n == 0 { return 0 }
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                    guard try waitFor(POLLIN, seconds: stallTimeout) else { throw FetchError.timeout(target: target, phase: "receive") }
                    continue
                }
                return 0
            }
        }
    }

    /// Whether a parked connection still looks usable: nothing to read (a readable idle socket
    /// means the peer closed it or sent something unasked) and no error.
    func isIdleAndOpen() -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) == 0
    }

    func close() {
        if let ssl { SSL_free(ssl); self.ssl = nil }
        Glibc.close(fd)
    }
}

/// The client's TLS settings: one SSL_CTX made at start-up and only read afterwards.
/// `@unchecked Sendable`: the context is configured once in `init` and then only passed to
/// `SSL_new`, which OpenSSL documents as safe from several threads; it is freed in `deinit`.
final class TLSClientContext: @unchecked Sendable {
    let ctx: OpaquePointer
    let verify: Bool

    /// `caFile`: PEM bundle to trust instead of the system store (OpenSSL's default paths, which
    /// honour SSL_CERT_FILE / SSL_CERT_DIR).
    init(verify: Bool, caFile: String?) throws {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw FetchError.tls(target: "-", reason: "SSL_CTX_new failed")
        }
        self.ctx = ctx
        self.verify = verify
        _ = SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        if verify {
            if let caFile {
                guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                    throw FetchError.tls(target: "-", reason: "cannot load CA file \(caFile)")
                }
            } else {
                SSL_CTX_set_default_verify_paths(ctx)
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
    }

    deinit { SSL_CTX_free(ctx) }
}
