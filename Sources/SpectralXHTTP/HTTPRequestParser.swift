import Foundation

/// What the parser produces, in order, for each request: one `head`, zero or more `body` pieces
/// (already de-chunked), one `end` carrying the trailer fields of a chunked body (else empty).
public enum HTTPParserEvent: Sendable, Equatable {
    case head(HTTPRequestHead)
    case body(Data)
    case end(trailers: HTTPHeaders)
}

/// An incremental HTTP/1.x request parser (RFC 9112) with no I/O: feed it bytes with `append`,
/// pull events with `next()` until it returns nil (needs more bytes).
///
/// It is strict where leniency enables request smuggling: CRLF only (a bare LF or CR is 400),
/// no obs-fold, no whitespace before the colon, token field names, no control characters in values,
/// exactly one well-formed `Content-Length`, never with `Transfer-Encoding`, and `chunked` as the
/// one and final transfer coding. Every error is an `HTTPServerError`; after one the parser is
/// unusable and the connection must be closed. Pull-based so a server can act on a head (limits,
/// `100 Continue`, spooling choice) before asking for body bytes; pipelined requests simply stay
/// buffered until the previous one has been consumed.
public struct HTTPRequestParser: Sendable {
    enum State: Sendable {
        case requestLine
        case headers
        case body(remaining: Int64)
        case chunkSize
        case chunkData(remaining: Int64)
        case chunkDataEnd
        case trailers
        case failed(HTTPServerError)
    }

    public let limits: HTTPServerLimits
    /// Longest chunk-size line (hex size plus ignored extensions).
    static let maxChunkSizeLineLength = 4096

    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Where the search for the next LF resumes, so byte-by-byte feeding stays linear.
    private var scanIndex = 0
    private var state: State = .requestLine

    // Request under construction.
    private var method = ""
    private var rawTarget = ""
    private var version = HTTPVersion.http1_1
    private var fields = HTTPHeaders()
    private var sectionBytes = 0
    private var bodyReceived: Int64 = 0
    /// The current request's body limit (`HTTPServerLimits.bodyLimit`), set when its head is complete.
    private var bodyLimit: (bytes: Int64, name: String?) = (0, nil)

    public init(limits: HTTPServerLimits = HTTPServerLimits()) {
        self.limits = limits
    }

    /// Adds received bytes.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// Bytes received but not yet turned into events.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// True between requests: the last request was fully consumed and no new line has started.
    public var isAtRequestBoundary: Bool {
        if case .requestLine = state { return true }
        return false
    }

    /// True while the head of a request is still incomplete (request line or header section).
    public var isReadingHead: Bool {
        switch state {
        case .requestLine: return bufferedByteCount > 0
        case .headers: return true
        default: return false
        }
    }

    /// The header fields parsed so far for the current request (to echo `X-Request-Id` on errors).
    public var partialHeaders: HTTPHeaders { fields }

    /// The head of a request whose header section was read whole but refused (framing, length,
    /// Host), so the error can be answered in its route's shape; nil for errors before that.
    public private(set) var refusedHead: HTTPRequestHead?

    /// The next event, or nil when more bytes are needed.
    public mutating func next() throws(HTTPServerError) -> HTTPParserEvent? {
        do {
            let event = try step()
            compact()
            return event
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step() throws(HTTPServerError) -> HTTPParserEvent? {
        while true {
            switch state {
            case .failed(let error):
                throw error

            case .requestLine:
                guard let line = try nextLine(limit: limits.maxRequestLineLength, onOverflow: .uriTooLong(limit: limits.maxRequestLineLength)) else {
                    return nil
                }
                if line.isEmpty { continue }  // RFC 9112 §2.2: ignore empty lines before a request
                try parseRequestLine(line)
                fields = HTTPHeaders()
                sectionBytes = 0
                state = .headers

            case .headers:
                guard let line = try nextSectionLine() else { return nil }
                if !line.isEmpty {
                    try addField(line)
                    continue
                }
                let head: HTTPRequestHead
                do {
                    head = try finishHead()
                } catch {
                    refusedHead = HTTPRequestHead(method: method, rawTarget: rawTarget, version: version, headers: fields, framing: .none)
                    throw error
                }
                bodyReceived = 0
                switch head.framing {
                case .none, .contentLength(0): state = .body(remaining: 0)
                case .contentLength(let n): state = .body(remaining: n)
                case .chunked: state = .chunkSize
                }
                return .head(head)

            case .body(let remaining):
                if remaining == 0 {
                    state = .requestLine
                    return .end(trailers: HTTPHeaders())
                }
                guard bufferedByteCount > 0 else { return nil }
                let n = Int(min(Int64(bufferedByteCount), remaining))
                let data = Data(buffer[readIndex..<readIndex + n])
                readIndex += n
                state = .body(remaining: remaining - Int64(n))
                return .body(data)

            case .chunkSize:
                guard let line = try nextLine(limit: Self.maxChunkSizeLineLength,
                                              onOverflow: .badRequest("chunk size line too long")) else { return nil }
                let size = try parseChunkSize(line)
                if size == 0 {
                    fields = HTTPHeaders()
                    sectionBytes = 0
                    state = .trailers
                    continue
                }
                if bodyReceived + size > bodyLimit.bytes {
                    throw .payloadTooLarge(limit: bodyLimit.bytes, name: bodyLimit.name)
                }
                bodyReceived += size
                state = .chunkData(remaining: size)

            case .chunkData(let remaining):
                guard bufferedByteCount > 0 else { return nil }
                let n = Int(min(Int64(bufferedByteCount), remaining))
                let data = Data(buffer[readIndex..<readIndex + n])
                readIndex += n
                state = remaining == Int64(n) ? .chunkDataEnd : .chunkData(remaining: remaining - Int64(n))
                return .body(data)

            case .chunkDataEnd:
                guard bufferedByteCount >= 2 else {
                    if bufferedByteCount == 1 && buffer[readIndex] != 13 { throw .badRequest("chunk data not followed by CRLF") }
                    return nil
                }
                guard buffer[readIndex] == 13, buffer[readIndex + 1] == 10 else {
                    throw .badRequest("chunk data not followed by CRLF")
                }
                readIndex += 2
                scanIndex = readIndex
                state = .chunkSize

            case .trailers:
                guard let line = try nextSectionLine() else { return nil }
                if !line.isEmpty {
                    try addField(line)
                    continue
                }
                let trailers = fields
                state = .requestLine
                return .end(trailers: trailers)
            }
        }
    }

    // MARK: Lines

    /// The next CRLF-terminated line (without CRLF) or nil if incomplete. A bare LF or CR is an error;
    /// a line (complete or not) longer than `limit` throws `onOverflow`.
    private mutating func nextLine(limit: Int, onOverflow: HTTPServerError) throws(HTTPServerError) -> ArraySlice<UInt8>? {
        var i = max(scanIndex, readIndex)
        let end = buffer.count
        while i < end {
            let c = buffer[i]
            if c == 10 {
                guard i > readIndex, buffer[i - 1] == 13 else { throw .badRequest("bare LF in request") }
                let line = buffer[readIndex..<(i - 1)]
                if line.count > limit { throw onOverflow }
                readIndex = i + 1
                scanIndex = readIndex
                return line
            }
            if c == 13, i + 1 < end, buffer[i + 1] != 10 { throw .badRequest("bare CR in request") }
            i += 1
        }
        // A trailing CR is re-examined once its successor arrives.
        scanIndex = (end > readIndex && buffer[end - 1] == 13) ? end - 1 : end
        // The pending line may end with its CR; more than limit+1 bytes cannot become a valid line.
        if end - readIndex > limit + 1 { throw onOverflow }
        return nil
    }

    /// A line of the header or trailer section, enforcing the section's byte and count limits.
    private mutating func nextSectionLine() throws(HTTPServerError) -> ArraySlice<UInt8>? {
        let remainingBudget = max(0, limits.maxHeaderBytes - sectionBytes)
        let overflow = HTTPServerError.headerFieldsTooLarge("header section exceeds \(limits.maxHeaderBytes) bytes")
        guard let line = try nextLine(limit: remainingBudget, onOverflow: overflow) else { return nil }
        sectionBytes += line.count + 2
        if sectionBytes > limits.maxHeaderBytes + 2 { throw overflow }
        return line
    }

    private mutating func compact() {
        if readIndex > 0 && (readIndex == buffer.count || readIndex >= 64 * 1024) {
            buffer.removeSubrange(0..<readIndex)
            scanIndex -= readIndex
            readIndex = 0
        }
    }

    // MARK: Request line and fields

    private mutating func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPServerError) {
        let parts = line.split(separator: 32, maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .badRequest("malformed request line") }
        let m = parts[0], t = parts[1], v = parts[2]
        guard !m.isEmpty, m.allSatisfy(HTTPSyntax.isTokenChar) else { throw .badRequest("invalid method") }
        guard !t.isEmpty, t.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw .badRequest("invalid request target") }
        let vb = Array(v)
        guard vb.count == 8, vb[0...4].elementsEqual("HTTP/".utf8), HTTPSyntax.isDigit(vb[5]), vb[6] == UInt8(ascii: "."),
              HTTPSyntax.isDigit(vb[7]) else {
            throw .badRequest("malformed HTTP version")
        }
        let major = Int(vb[5] - 48), minor = Int(vb[7] - 48)
        guard major == 1 else { throw .versionNotSupported }
        method = String(decoding: m, as: UTF8.self)
        rawTarget = String(decoding: t, as: UTF8.self)
        version = HTTPVersion(major: 1, minor: minor)
    }

    private mutating func addField(_ line: ArraySlice<UInt8>) throws(HTTPServerError) {
        guard let first = line.first, first != 32, first != 9 else {
            throw .badRequest("obsolete line folding is not allowed")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .badRequest("header field without colon") }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty, name.allSatisfy(HTTPSyntax.isTokenChar) else { throw .badRequest("invalid header field name") }
        var value = line[(colon + 1)...]
        while let f = value.first, f == 32 || f == 9 { value.removeFirst() }
        while let l = value.last, l == 32 || l == 9 { value.removeLast() }
        guard value.allSatisfy(HTTPSyntax.isFieldValueChar) else { throw .badRequest("invalid character in header field value") }
        if fields.count >= limits.maxHeaderCount {
            throw .headerFieldsTooLarge("more than \(limits.maxHeaderCount) header fields")
        }
        fields.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
    }

    /// Validates the framing headers and builds the head.
    private mutating func finishHead() throws(HTTPServerError) -> HTTPRequestHead {
        let hosts = fields.values(for: "Host")
        if hosts.count > 1 { throw .badRequest("multiple Host header fields") }
        if version == .http1_1 && hosts.isEmpty { throw .badRequest("missing Host header field") }

        bodyLimit = limits.bodyLimit(method: method, pathSegments: HTTPRequestTarget(rawTarget).pathSegments)
        let lengths = fields.values(for: "Content-Length")
        let hasTE = fields.contains(name: "Transfer-Encoding")
        var framing = HTTPBodyFraming.none
        if hasTE {
            if version == .http1_0 { throw .conflictingFraming("Transfer-Encoding is not allowed in HTTP/1.0") }
            if !lengths.isEmpty { throw .conflictingFraming("both Content-Length and Transfer-Encoding present") }
            let codings = fields.values(for: "Transfer-Encoding").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { $0.trimmingOWS().lowercased() }
            guard codings.last == "chunked" else { throw .invalidTransferEncoding("chunked must be the final transfer coding") }
            if codings.filter({ $0 == "chunked" }).count > 1 { throw .invalidTransferEncoding("chunked applied more than once") }
            if let other = codings.first(where: { $0 != "chunked" }) {
                if other.isEmpty { throw .invalidTransferEncoding("empty transfer coding") }
                throw .unsupportedTransferCoding(other)
            }
            framing = .chunked
        } else if !lengths.isEmpty {
            if lengths.count > 1 { throw .invalidContentLength("multiple Content-Length header fields") }
            let text = lengths[0]
            guard !text.isEmpty, text.utf8.allSatisfy(HTTPSyntax.isDigit) else {
                throw .invalidContentLength("Content-Length is not a decimal number")
            }
            guard let n = Int64(text), n <= bodyLimit.bytes else { throw .payloadTooLarge(limit: bodyLimit.bytes, name: bodyLimit.name) }
            framing = .contentLength(n)
        }
        return HTTPRequestHead(method: method, rawTarget: rawTarget, version: version, headers: fields, framing: framing)
    }

    private func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTPServerError) -> Int64 {
        var size: Int64 = 0
        var digits = 0
        var i = line.startIndex
        while i < line.endIndex, let h = HTTPRequestTarget.hexValue(line[i]) {
            if digits >= 15 { throw .payloadTooLarge(limit: bodyLimit.bytes, name: bodyLimit.name) }
            size = size << 4 | Int64(h)
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw .badRequest("malformed chunk size") }
        // Anything after the size must be an extension (`;name[=value]`, with optional BWS); ignored.
        var rest = line[i...]
        while let f = rest.first, f == 32 || f == 9 { rest.removeFirst() }
        if let f = rest.first {
            guard f == UInt8(ascii: ";"), rest.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
                throw .badRequest("malformed chunk extension")
            }
        }
        return size
    }
}

/// Character classes of RFC 9110 §5.6.
enum HTTPSyntax {
    static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 48...57: return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// VCHAR, obs-text, SP and HTAB.
    static func isFieldValueChar(_ c: UInt8) -> Bool {
        c == 9 || (c >= 32 && c != 127)
    }
}
