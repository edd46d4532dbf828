import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A server-side OpenSSL context loaded from a PEM certificate chain and private key.
/// TLS 1.2 is the minimum; renegotiation is disabled.
// @unchecked Sendable: the SSL_CTX is fully configured in init and afterwards only used through
// SSL_new, which OpenSSL documents as thread-safe on a shared context.
final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer

    init(configuration: HTTPTLSConfiguration) throws {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TLSContext.lastError("SSL_CTX_new") }
        self.ctx = ctx
        _ = SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        _ = SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), nil)
        _ = SSL_CTX_set_options(ctx, UInt64(1) << 30)  // SSL_OP_NO_RENEGOTIATION (a macro Swift cannot import)
        guard SSL_CTX_use_certificate_chain_file(ctx, configuration.certificateChainPath) == 1 else {
            throw TLSContext.lastError("loading certificate chain \(configuration.certificateChainPath)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, configuration.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw TLSContext.lastError("loading private key \(configuration.privateKeyPath)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw TLSContext.lastError("private key does not match the certificate")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// The thread's OpenSSL error queue as one message (and emptied, so it cannot leak into the next call).
    static func lastError(_ what: String) -> TransportError {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            messages.append(String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return .tls(messages.isEmpty ? what : "\(what): \(messages.joined(separator: "; "))")
    }
}

/// TLS over a non-blocking socket: every SSL call that wants I/O waits with `poll` under the
/// same deadlines as plain sockets.
final class TLSTransport: Transport {
    let fd: Int32
    private let ssl: OpaquePointer
    private var closed = false
    private var ownsFD = false

    /// Wraps the socket; the handshake is driven by `handshakeStep()`.
    init(fd: Int32, context: TLSContext) throws {
        guard let ssl = SSL_new(context.ctx) else { throw TLSContext.lastError("SSL_new") }
        self.fd = fd
        self.ssl = ssl
        self.ownsFD = true  // close() frees the SSL and closes the socket
        SSL_set_fd(ssl, fd)
    }

    /// Maps a failed SSL call to a non-blocking step, or nil to retry (EINTR).
    private func step(_ result: Int32) throws -> IOStep? {
        let err = SSL_get_error(ssl, result)
        switch err {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .eof
        case SSL_ERROR_SYSCALL:
            if errno == EINTR { return nil }
            ERR_clear_error()
            return .eof
        default:
            throw TLSContext.lastError("TLS error \(err)")
        }
    }

    func handshakeStep() throws -> IOStep {
        while true {
            ERR_clear_error()
            let r = SSL_accept(ssl)
            if r == 1 { return .done(0) }
            if let s = try step(r) { return s }
        }
    }

    var hasBufferedInput: Bool { SSL_pending(ssl) > 0 }

    func readNow(into buffer: UnsafeMutableRawBufferPointer) throws -> IOStep {
        while true {
            ERR_clear_error()
            let n = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
            if n > 0 { return .done(Int(n)) }
            if let s = try step(n) { return s }
        }
    }

    func writeNow(_ bytes: UnsafeRawBufferPointer) throws -> IOStep {
        guard bytes.count > 0 else { return .done(0) }
        while true {
            ERR_clear_error()
            let n = SSL_write(ssl, bytes.baseAddress!, Int32(clamping: bytes.count))
            if n > 0 { return .done(Int(n)) }
            if let s = try step(n) { return s }
        }
    }

    /// After a failed SSL call: waits for the I/O it wants and returns nil to retry, or a
    /// `ReadResult` that ends the operation (eof / timeout / woken). Throws on real errors.
    private func waitForRetry(_ result: Int32, deadline: ContinuousClock.Instant, wakeFD: Int32?) throws -> ReadResult? {
        let err = SSL_get_error(ssl, result)
        let events: Int16
        switch err {
        case SSL_ERROR_WANT_READ: events = Int16(POLLIN)
        case SSL_ERROR_WANT_WRITE: events = Int16(POLLOUT)
        case SSL_ERROR_ZERO_RETURN: return .eof
        case SSL_ERROR_SYSCALL:
            if errno == EINTR { return nil }
            ERR_clear_error()
            return .eof  // peer vanished (EOF or reset without close_notify)
        default:
            throw TLSContext.lastError("TLS error \(err)")
        }
        let r = try Socket.wait(fd: fd, events: events, deadline: deadline, wakeFD: wakeFD)
        if r == 0 { return .timeout }
        if r == -1 { return .woken }
        return nil
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant, wakeFD: Int32?) throws -> ReadResult {
        while true {
            ERR_clear_error()
            let n = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
            if n > 0 { return .bytes(Int(n)) }
            if let end = try waitForRetry(n, deadline: deadline, wakeFD: wakeFD) { return end }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, idleTimeout: Duration) throws {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let n = SSL_write(ssl, bytes.baseAddress! + offset, Int32(clamping: bytes.count - offset))
            if n > 0 { offset += Int(n); continue }
            switch try waitForRetry(n, deadline: .now + idleTimeout, wakeFD: nil) {
            case nil: continue
            case .timeout: throw TransportError.timeout
            default: throw TransportError.closed
            }
        }
    }

    func shutdownWrite() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)  // sends close_notify; we do not wait for the peer's
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    func close() {
        guard !closed else { return }
        closed = true
        SSL_free(ssl)
        if ownsFD { _ = Glibc.close(fd) }
    }

    deinit { close() }
}
