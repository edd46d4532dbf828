import Foundation

/// How the body of a request is delimited on the wire (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Equatable {
    case none
    case contentLength(Int64)
    case chunked
}

/// The request line and header section of one request, as the parser validated them.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request-target exactly as sent (origin-form `path?query` in practice).
    public var rawTarget: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var framing: HTTPBodyFraming

    public init(method: String, rawTarget: String, version: HTTPVersion, headers: HTTPHeaders,
                framing: HTTPBodyFraming) {
        self.method = method
        self.rawTarget = rawTarget
        self.version = version
        self.headers = headers
        self.framing = framing
    }

    /// Whether the client asks for a persistent connection (RFC 9112 §9.3): HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        let tokens = headers.tokens(for: "Connection")
        if tokens.contains("close") { return false }
        if version.major == 1 && version.minor >= 1 { return true }
        return tokens.contains("keep-alive")
    }

    /// True when the client waits for `100 Continue` before sending its body.
    public var expectsContinue: Bool {
        version == .http1_1 && headers.tokens(for: "Expect").contains("100-continue")
    }

    public var target: HTTPRequestTarget { HTTPRequestTarget(rawTarget) }
}

/// A request-target split into a percent-decoded path and query pairs.
public struct HTTPRequestTarget: Sendable, Equatable {
    /// The path as sent (still percent-encoded), without the query.
    public var rawPath: String
    /// The percent-decoded path (`/v1/domains/a%20b` → `/v1/domains/a b`); undecodable bytes are kept as sent.
    public var path: String
    /// The query string after `?`, without the `#fragment`; nil when absent.
    public var rawQuery: String?
    /// Query pairs in order, percent-decoded, `+` read as space (form encoding); a key without `=` has value "".
    public var query: [(name: String, value: String)]

    public init(_ raw: String) {
        var rest = Substring(raw)
        // absolute-form (RFC 9112 §3.2.2): keep only the path and query.
        for scheme in ["http://", "https://"] where rest.lowercased().hasPrefix(scheme) {
            let afterScheme = rest.dropFirst(scheme.count)
            rest = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }).map { afterScheme[$0...] } ?? "/"
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        if let q = rest.firstIndex(of: "?") {
            rawPath = String(rest[..<q])
            let qs = String(rest[rest.index(after: q)...])
            rawQuery = qs
            query = qs.split(separator: "&", omittingEmptySubsequences: true).map { pair in
                if let eq = pair.firstIndex(of: "=") {
                    return (name: Self.decode(pair[..<eq], plusAsSpace: true),
                            value: Self.decode(pair[pair.index(after: eq)...], plusAsSpace: true))
                }
                return (name: Self.decode(pair, plusAsSpace: true), value: "")
            }
        } else {
            rawPath = String(rest)
            rawQuery = nil
            query = []
        }
        path = Self.decode(Substring(rawPath), plusAsSpace: false)
    }

    /// The first value of a query parameter.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }

    /// Every value of a query parameter in order.
    public func queryValues(_ name: String) -> [String] {
        query.filter { $0.name == name }.map(\.value)
    }

    /// The path split on `/` (empty segments dropped, each segment decoded separately so an
    /// encoded `%2F` stays inside its segment).
    public var pathSegments: [String] {
        rawPath.split(separator: "/").map { Self.decode($0, plusAsSpace: false) }
    }

    public static func == (a: HTTPRequestTarget, b: HTTPRequestTarget) -> Bool {
        a.rawPath == b.rawPath && a.rawQuery == b.rawQuery
    }

    /// Percent-decoding; a malformed escape is kept literally, invalid UTF-8 is repaired.
    public static func decode(_ s: Substring, plusAsSpace: Bool) -> String {
        let utf8 = Array(s.utf8)
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }) else {
            return String(s)
        }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let c = utf8[i]
            if c == UInt8(ascii: "%"), i + 2 < utf8.count,
               let h = hexValue(utf8[i + 1]), let l = hexValue(utf8[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else if plusAsSpace && c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
                i += 1
            } else {
                out.append(c)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
