import Foundation

/// Writes response body chunks for `HTTPResponse.Body.chunked`; each call becomes one chunk on the wire.
public typealias HTTPChunkProducer = @Sendable (_ write: (Data) throws -> Void) throws -> Void

/// What a handler answers.
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case empty
        case data(Data)
        /// Streams a file from disk with a `Content-Length`; `removeAfterSending` deletes it once written
        /// (or once the connection failed), which suits temporary result files.
        case file(URL, removeAfterSending: Bool = false)
        /// Streams `length` bytes of a file from `offset` with a `Content-Length` (a `206` answer to
        /// a `Range` request); the caller checked that the region lies inside the file.
        case fileRegion(URL, offset: Int64, length: Int64)
        /// Sent with `Transfer-Encoding: chunked` (HTTP/1.1 clients) or close-delimited (HTTP/1.0).
        case chunked(HTTPChunkProducer)
        /// Exactly `length` bytes from the producer, with a `Content-Length` (a body read from elsewhere in
        /// pieces, e.g. a blob store); a producer that fails or writes another count closes the connection.
        case stream(length: Int64, HTTPChunkProducer)
    }

    public var status: HTTPStatus
    /// Fields sent as given, in order. `Content-Length`, `Transfer-Encoding` and `Connection` are
    /// computed by the server and any such field set here is replaced; `Connection: close` here
    /// makes the server close after this response.
    public var headers: HTTPHeaders
    public var body: Body
    /// Set when this is an error of the HTTP layer's shape (`HTTPServerError.response`), so the
    /// handler can re-shape it per route (`HTTPHandler.errorResponse`).
    public internal(set) var serverError: HTTPServerError? = nil

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: Body = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with a body and its media type.
    public init(status: HTTPStatus = .ok, contentType: String, body: Data) {
        self.init(status: status, headers: ["Content-Type": contentType], body: .data(body))
    }

    /// A UTF-8 `text/plain` response.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Data(text.utf8))
    }

    /// An `application/json` response from already encoded JSON.
    public static func json(_ json: Data, status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: json)
    }

    /// The standard JSON error shape (see `HTTPServerError`), for handlers' own errors.
    public static func error(_ status: HTTPStatus, code: String, message: String) -> HTTPResponse {
        HTTPServerError(status: status, code: code, message: message).response
    }

    /// Whether the handler asked for the connection to be closed after this response.
    public var requestsClose: Bool { headers.tokens(for: "Connection").contains("close") }
}

/// How a response body is delimited.
public enum HTTPResponseFraming: Sendable, Equatable {
    /// No body and no length header (1xx, 204, 304).
    case none
    case contentLength(Int64)
    case chunked
    /// Body ends when the connection closes (HTTP/1.0 clients with a streamed body).
    case closeDelimited
}

/// Serializes response heads and chunked framing; pure functions, no I/O.
public enum HTTPResponseSerializer {
    /// The status line and header section, ending with the empty line.
    ///
    /// Order: status line, the response's own fields (minus framing and `Connection` fields),
    /// `Content-Length` or `Transfer-Encoding`, `Connection`, `Date`, `Server`.
    /// `keepAliveHeader` adds `Connection: keep-alive` (needed by HTTP/1.0 clients that asked for it).
    public static func head(status: HTTPStatus, headers: HTTPHeaders, framing: HTTPResponseFraming,
                            close: Bool, keepAliveHeader: Bool = false,
                            date: Date? = nil, serverName: String? = nil) -> Data {
        var out = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        for field in headers {
            let name = field.name
            guard !name.isEmpty, name.utf8.allSatisfy(HTTPSyntax.isTokenChar) else { continue }
            if HTTPHeaders.equalNames(name, "Content-Length") || HTTPHeaders.equalNames(name, "Transfer-Encoding")
                || HTTPHeaders.equalNames(name, "Connection") {
                continue
            }
            if (date != nil && HTTPHeaders.equalNames(name, "Date")) || (serverName != nil && HTTPHeaders.equalNames(name, "Server")) {
                continue
            }
            out += name + ": " + sanitize(field.value) + "\r\n"
        }
        switch framing {
        case .none, .closeDelimited: break
        case .contentLength(let n): out += "Content-Length: \(n)\r\n"
        case .chunked: out += "Transfer-Encoding: chunked\r\n"
        }
        if close {
            out += "Connection: close\r\n"
        } else if keepAliveHeader {
            out += "Connection: keep-alive\r\n"
        }
        if let date { out += "Date: \(imfFixdate(date))\r\n" }
        if let serverName { out += "Server: \(sanitize(serverName))\r\n" }
        out += "\r\n"
        return Data(out.utf8)
    }

    /// The interim `100 Continue` response.
    public static let continueLine = Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// One chunk of a chunked body (empty data produces nothing: an empty chunk would end the body).
    public static func chunk(_ data: Data) -> Data {
        guard !data.isEmpty else { return Data() }
        var out = Data(String(data.count, radix: 16).utf8)
        out.append(contentsOf: [13, 10])
        out.append(data)
        out.append(contentsOf: [13, 10])
        return out
    }

    /// The last chunk, optional trailer fields, and the final empty line.
    public static func lastChunk(trailers: HTTPHeaders = HTTPHeaders()) -> Data {
        var out = "0\r\n"
        for field in trailers where field.name.utf8.allSatisfy(HTTPSyntax.isTokenChar) {
            out += field.name + ": " + sanitize(field.value) + "\r\n"
        }
        out += "\r\n"
        return Data(out.utf8)
    }

    /// Field values must not carry CR, LF or NUL (response splitting); they become spaces.
    static func sanitize(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else { return value }
        return String(value.map { $0 == "\r" || $0 == "\n" || $0 == "\0" || $0 == "\r\n" ? " " : $0 })
    }

    /// RFC 9110 §5.6.7 date (`Sun, 06 Nov 1994 08:49:37 GMT`).
    public static func imfFixdate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tm.tm_wday)]), \(two(tm.tm_mday)) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) "
            + "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) GMT"
    }
}
