import Foundation
import COpenSSL

/// Placeholder until TLS is implemented.
final class TLSContext: Sendable {
    init(configuration: HTTPTLSConfiguration) throws {
        throw TransportError.tls("TLS not implemented yet")
    }
}

final class TLSTransport: Transport {
    let fd: Int32
    init(fd: Int32, context: TLSContext, handshakeDeadline: ContinuousClock.Instant) throws {
        throw TransportError.tls("TLS not implemented yet")
    }
    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant, wakeFD: Int32?) throws -> ReadResult { .eof }
    func write(_ bytes: UnsafeRawBufferPointer, idleTimeout: Duration) throws {}
    func shutdownWrite() {}
    func close() {}
}
