import Foundation
import Logging
import Synchronization


/// One complete request, body included, handed to an `HTTPHandler`.
public struct HTTPRequest: Sendable {
    public var head: HTTPRequestHead
    public var body: HTTPBody
    /// Trailer fields of a chunked body (empty otherwise).
    public var trailers: HTTPHeaders
    /// `ip:port` (IPv6 as `[ip]:port`) of the peer, nil when unknown (e.g. requests built in tests).
    public var remoteAddress: String?
    /// The client's `X-Request-Id` when sane (1–128 of `A-Za-z0-9._:-`), else a generated one; echoed on the response.
    public var requestID: String
    /// Parsed once from `head.rawTarget`.
    public let target: HTTPRequestTarget

    public init(head: HTTPRequestHead, body: HTTPBody = .empty, trailers: HTTPHeaders = HTTPHeaders(),
                remoteAddress: String? = nil, requestID: String? = nil) {
        self.head = head
        self.body = body
        self.trailers = trailers
        self.remoteAddress = remoteAddress
        self.requestID = requestID ?? HTTPRequest.requestID(from: head.headers)
        self.target = head.target
    }

    public var method: String { head.method }
    public var version: HTTPVersion { head.version }
    public var headers: HTTPHeaders { head.headers }
    /// Percent-decoded path.
    public var path: String { target.path }
    /// Query pairs, percent-decoded.
    public var query: [(name: String, value: String)] { target.query }

    /// `X-Request-Id` from the headers when it is sane, else a fresh random id.
    public static func requestID(from headers: HTTPHeaders) -> String {
        if let given = headers["X-Request-Id"], isSaneRequestID(given) { return given }
        return generateRequestID()
    }

    static func isSaneRequestID(_ s: String) -> Bool {
        (1...128).contains(s.utf8.count) && s.utf8.allSatisfy { c in
            HTTPSyntax.isDigit(c) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z"))
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: ":") || c == UInt8(ascii: "-")
        }
    }

    static func generateRequestID() -> String {
        var g = SystemRandomNumberGenerator()
        let a = g.next() as UInt64, b = g.next() as UInt64
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return hex(a) + hex(b)
    }
}

/// Per-request information from the server that is not part of the request itself.
public struct HTTPRequestContext: Sendable {
    /// The server's logger with `request-id` and `connection` metadata set.
    public var logger: Logger
    public var connectionID: UInt64
    public var isTLS: Bool
    /// Becomes set when the client closes or resets the connection while its request is handled
    /// (poll it, or subscribe with `onGone`): the answer will not be read, so work can be dropped.
    public let clientGone: HTTPClientGoneSignal
    /// What the handler's `validateHead` decided for this request, handed to its `handle` (the same
    /// object in both contexts of one request), so a check made on the head need not run twice.
    public let headOutcome: HTTPHeadOutcome
    private let shuttingDown: @Sendable () -> Bool

    public init(logger: Logger, connectionID: UInt64 = 0, isTLS: Bool = false,
                clientGone: HTTPClientGoneSignal = HTTPClientGoneSignal(),
                headOutcome: HTTPHeadOutcome = HTTPHeadOutcome(),
                isShuttingDown: @escaping @Sendable () -> Bool = { false }) {
        self.logger = logger
        self.connectionID = connectionID
        self.isTLS = isTLS
        self.clientGone = clientGone
        self.headOutcome = headOutcome
        self.shuttingDown = isShuttingDown
    }

    /// True once the server is draining; long handlers may choose to finish early.
    public var isShuttingDown: Bool { shuttingDown() }
}

/// A slot for the handler: `validateHead` stores what it found (e.g. who the caller is) and
/// `handle` reads it back. The HTTP layer creates one per request and never looks inside.
public final class HTTPHeadOutcome: Sendable {
    private let stored = Mutex<(any Sendable)?>(nil)

    public init() {}

    /// What `validateHead` stored for this request, if anything.
    public var value: (any Sendable)? { stored.withLock { $0 } }

    public func store(_ value: any Sendable) { stored.withLock { $0 = value } }
}

/// "The client has gone": set once, never cleared, by the server's event loop when it sees the
/// peer close (EOF, also a half-close after sending the request) or reset the connection while the
/// request is being handled. Cheap to read from any thread (`isGone`); `onGone` callbacks run once,
/// on the event loop thread (keep them short, e.g. cancel a token), or at once if already gone.
public final class HTTPClientGoneSignal: Sendable {
    private struct State {
        var gone = false
        var callbacks: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    public init() {}

    /// True once the client closed or reset its connection.
    public var isGone: Bool { state.withLock { $0.gone } }

    /// Runs `callback` once when the client goes (immediately if it already has).
    public func onGone(_ callback: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.gone { return true }
            s.callbacks.append(callback)
            return false
        }
        if now { callback() }
    }

    /// Marks the client gone and runs the callbacks (the first call only). Public so tests and
    /// in-process callers can simulate a disconnect.
    public func signal() {
        let callbacks = state.withLock { s -> [@Sendable () -> Void] in
            if s.gone { return [] }
            s.gone = true
            defer { s.callbacks = [] }
            return s.callbacks
        }
        for c in callbacks { c() }
    }
}

/// Answers requests. `handle` is called on a handler thread and may block (e.g. waiting for
/// inference) without stalling other connections or the event loop; `validateHead` runs on the
/// event loop itself and must be quick (no I/O, no waiting). A thrown error becomes
/// `500 internal_error`, except an `HTTPServerError`, which is answered as is.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, context: HTTPRequestContext) throws -> HTTPResponse

    /// Called with the head alone, before `100 Continue` is sent and before any body byte is read,
    /// so a request that is bound to fail (unknown route, wrong media type, missing token) is
    /// answered without receiving a large upload. Return nil to proceed. A response returned here
    /// is sent instead of reading the body; the connection stays open when the request has no body
    /// (and neither side asked to close), otherwise it is closed. Default: nil.
    func validateHead(_ head: HTTPRequestHead, context: HTTPRequestContext) -> HTTPResponse?

    /// How an error of the HTTP layer itself (framing, body size, timeouts, a thrown
    /// `HTTPServerError`) is written for a request whose head was read: a layer above may answer some
    /// routes in another document shape (OGC exception documents). nil keeps the standard JSON error
    /// body. The status and the HTTP layer's own fields (e.g. `Connection: close`) are kept. Default: nil.
    func errorResponse(_ error: HTTPServerError, head: HTTPRequestHead) -> HTTPResponse?
}

extension HTTPHandler {
    public func validateHead(_ head: HTTPRequestHead, context: HTTPRequestContext) -> HTTPResponse? { nil }
    public func errorResponse(_ error: HTTPServerError, head: HTTPRequestHead) -> HTTPResponse? { nil }

    /// `response` as this handler writes it: an HTTP-layer error re-shaped by `errorResponse`, else unchanged.
    func rendered(_ response: HTTPResponse, head: HTTPRequestHead?) -> HTTPResponse {
        guard let error = response.serverError, let head, let custom = errorResponse(error, head: head) else { return response }
        var out = response
        out.body = custom.body
        for (name, value) in custom.headers { out.headers.replaceOrAdd(name: name, value: value) }
        out.serverError = nil
        return out
    }
}

/// An `HTTPHandler` from closures.
public struct HTTPHandlerFunction: HTTPHandler {
    let body: @Sendable (HTTPRequest, HTTPRequestContext) throws -> HTTPResponse
    let headCheck: (@Sendable (HTTPRequestHead, HTTPRequestContext) -> HTTPResponse?)?

    public init(validateHead: (@Sendable (HTTPRequestHead, HTTPRequestContext) -> HTTPResponse?)? = nil,
                _ body: @escaping @Sendable (HTTPRequest, HTTPRequestContext) throws -> HTTPResponse) {
        self.body = body
        self.headCheck = validateHead
    }

    public func handle(_ request: HTTPRequest, context: HTTPRequestContext) throws -> HTTPResponse {
        try body(request, context)
    }

    public func validateHead(_ head: HTTPRequestHead, context: HTTPRequestContext) -> HTTPResponse? {
        headCheck?(head, context)
    }
}
