import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which URLs a server may fetch on a client's behalf (`--fetch-allow`), against server-side request
/// forgery. Fetching is off while the list is empty. An entry is a URL prefix
/// (`https://host[:port]/path/`, `s3://bucket/prefix/`) or a host (`host`, `host:port`, `[v6]:port`;
/// without a port: 80 for http, 443 for https).
///
/// The URL is checked before anything is sent, and each address its host resolves to before
/// connecting to it (`HTTPClient` does both when its configuration carries the policy): loopback,
/// link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10), private (10/8, 172.16/12,
/// 192.168/16, 100.64/10, fc00::/7), unspecified, multicast and broadcast addresses are refused
/// unless the entry that allowed the URL names that address itself (or `localhost` for loopback),
/// so a public name that resolves to an internal address is still refused. Redirects are not
/// followed by the client; a caller that follows one checks the new URL again.
public struct FetchPolicy: Sendable, Equatable {
    public struct Entry: Sendable, Equatable, CustomStringConvertible {
        /// nil: http or https.
        public var scheme: String?
        /// Lower-cased; IPv6 without brackets.
        public var host: String
        /// nil: the scheme's default port.
        public var port: Int?
        /// Percent-encoded path prefix ("" for any path).
        public var pathPrefix: String
        public var description: String {
            let h = host.contains(":") ? "[\(host)]" : host
            return (scheme.map { "\($0)://" } ?? "") + h + (port.map { ":\($0)" } ?? "") + pathPrefix
        }
    }

    public var entries: [Entry]
    /// Largest response body of one request, in bytes.
    public var maxBytesPerRequest: Int = 256 << 20
    /// Seconds one request may take (connect to last byte).
    public var requestTimeout: Double = 120
    /// Redirects followed per request, each checked again.
    public var maxRedirects: Int = 5

    public init(entries: [Entry] = []) { self.entries = entries }

    /// Parses `--fetch-allow` values (each may hold several entries separated by commas).
    public init(allow: [String]) throws {
        var out: [Entry] = []
        for value in allow {
            for raw in value.split(separator: ",") {
                let s = raw.trimmingCharacters(in: .whitespaces)
                if s.isEmpty { continue }
                out.append(try Self.parseEntry(s))
            }
        }
        self.init(entries: out)
    }

    public var isEnabled: Bool { !entries.isEmpty }

    static func parseEntry(_ s: String) throws -> Entry {
        if s.contains("://") {
            guard let c = URLComponents(string: s), let scheme = c.scheme?.lowercased(), ["http", "https", "s3"].contains(scheme),
                  var host = c.percentEncodedHost, !host.isEmpty else {
                throw FetchError.invalidURL("fetch allow-list entry '\(s)' is not an http(s):// or s3:// URL with a host")
            }
            guard c.user == nil, c.password == nil, c.query == nil, c.fragment == nil else {
                throw FetchError.invalidURL("fetch allow-list entry '\(s)' may not carry user info, a query or a fragment")
            }
            if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
            guard scheme != "s3" || c.port == nil else { throw FetchError.invalidURL("s3:// allow-list entries take no port") }
            try checkPath(c.percentEncodedPath, what: "fetch allow-list entry '\(s)'")
            return Entry(scheme: scheme, host: host.lowercased(), port: c.port, pathPrefix: c.percentEncodedPath)
        }
        // host, host:port, [v6], [v6]:port, or a bare IPv6 address.
        var host = s, port: Int?
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            if rest.hasPrefix(":") { port = Int(rest.dropFirst()) ; if port == nil { throw FetchError.invalidURL("bad port in '\(s)'") } }
            else if !rest.isEmpty { throw FetchError.invalidURL("fetch allow-list entry '\(s)' is not a host") }
        } else if s.filter({ $0 == ":" }).count == 1, let colon = s.firstIndex(of: ":") {
            host = String(s[..<colon])
            guard let p = Int(s[s.index(after: colon)...]) else { throw FetchError.invalidURL("bad port in '\(s)'") }
            port = p
        }
        guard !host.isEmpty, !host.contains("/"), !host.contains("@") else {
            throw FetchError.invalidURL("fetch allow-list entry '\(s)' is not a host or a URL prefix")
        }
        if let port, !(1...65535).contains(port) { throw FetchError.invalidURL("port \(port) out of range in '\(s)'") }
        return Entry(scheme: nil, host: host.lowercased(), port: port, pathPrefix: "")
    }

    /// Refuses dot segments and encoded dots, slashes and backslashes, which could step out of a prefix.
    static func checkPath(_ path: String, what: String) throws {
        let lower = path.lowercased()
        guard !lower.contains("%2e"), !lower.contains("%2f"), !lower.contains("%5c"), !path.contains("\\"),
              !path.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." }) else {
            throw FetchError.refused(target: what, reason: "dot segments or encoded separators in the path")
        }
    }

    /// The entry allowing `url`, or `FetchError.refused` (naming the URL without query or user info).
    @discardableResult
    public func allowing(_ url: URL) throws -> Entry {
        let shown = FetchPolicy.redacted(url)
        guard let c = URLComponents(url: url, resolvingAgainstBaseURL: false), let scheme = c.scheme?.lowercased() else {
            throw FetchError.refused(target: shown, reason: "not a URL")
        }
        guard ["http", "https", "s3"].contains(scheme) else {
            throw FetchError.refused(target: shown, reason: "the \(scheme): scheme is never fetched")
        }
        guard c.user == nil, c.password == nil else { throw FetchError.refused(target: shown, reason: "credentials in the URL") }
        guard isEnabled else { throw FetchError.refused(target: shown, reason: "fetching by reference is off (no --fetch-allow)") }
        var host = (c.percentEncodedHost ?? "").lowercased()
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw FetchError.refused(target: shown, reason: "no host") }
        let port = scheme == "s3" ? nil : (c.port ?? (scheme == "https" ? 443 : 80))
        let path = c.percentEncodedPath
        try Self.checkPath(path, what: shown)
        for e in entries {
            if let s = e.scheme { guard s == scheme else { continue } } else { guard scheme != "s3" else { continue } }
            guard e.host == host || (Self.parseAddress(e.host).map { $0 == Self.parseAddress(host) } ?? false) else { continue }
            if scheme != "s3" { guard port == (e.port ?? (scheme == "https" ? 443 : 80)) else { continue } }
            if !e.pathPrefix.isEmpty && e.pathPrefix != "/" {
                // A prefix ending in "/" matches below it; otherwise the path itself or below it.
                guard path == e.pathPrefix || path.hasPrefix(e.pathPrefix.hasSuffix("/") ? e.pathPrefix : e.pathPrefix + "/") else { continue }
            }
            return e
        }
        throw FetchError.refused(target: shown, reason: "not on the fetch allow-list")
    }

    /// Checks one resolved address of a host allowed by `entry`.
    public func check(address: FetchAddress, allowedBy entry: Entry, target: String) throws {
        guard let special = address.specialRange else { return }
        if let named = Self.parseAddress(entry.host), named == address { return }
        if entry.host == "localhost" && special == "loopback" { return }
        throw FetchError.refused(target: target, reason: "\(entry.host) resolves to \(address) (\(special)), which the allow-list does not name")
    }

    /// `scheme://host:port/path` of a URL, for messages (no user info, no query).
    public static func redacted(_ url: URL) -> String {
        guard let c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "<invalid URL>" }
        let port = c.port.map { ":\($0)" } ?? ""
        return "\(c.scheme ?? "?")://\(c.percentEncodedHost ?? "")\(port)\(c.percentEncodedPath)"
    }

    static func parseAddress(_ s: String) -> FetchAddress? {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 { return .v4(UInt32(bigEndian: v4.s_addr)) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return .v6(withUnsafeBytes(of: v6) { Array($0) }) }
        return nil
    }
}

/// An IP address a host name resolved to.
public enum FetchAddress: Sendable, Equatable, CustomStringConvertible {
    /// Host order.
    case v4(UInt32)
    /// 16 bytes, network order.
    case v6([UInt8])

    /// Parses a textual address ("127.0.0.1", "::1").
    public init?(_ s: String) {
        guard let a = FetchPolicy.parseAddress(s) else { return nil }
        self = a
    }

    /// From a `sockaddr` of family AF_INET or AF_INET6.
    init?(_ sa: UnsafePointer<sockaddr>) {
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            let a = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in.self)
            self = .v4(UInt32(bigEndian: a.sin_addr.s_addr))
        case AF_INET6:
            let a = UnsafeRawPointer(sa).loadUnaligned(as: sockaddr_in6.self)
            self = .v6(withUnsafeBytes(of: a.sin6_addr) { Array($0) })
        default: return nil
        }
    }

    /// The name of the non-public range the address is in, or nil for a public address.
    public var specialRange: String? {
        switch self {
        case .v4(let a):
            func inNet(_ net: UInt32, _ bits: UInt32) -> Bool { bits == 0 || (a >> (32 - bits)) == (net >> (32 - bits)) }
            if inNet(0x7F00_0000, 8) { return "loopback" }
            if inNet(0xA9FE_0000, 16) { return a == 0xA9FE_A9FE ? "link-local, cloud metadata" : "link-local" }
            if inNet(0x0A00_0000, 8) || inNet(0xAC10_0000, 12) || inNet(0xC0A8_0000, 16) { return "private" }
            if inNet(0x6440_0000, 10) { return "shared (carrier-grade NAT)" }
            if inNet(0x0000_0000, 8) { return "unspecified" }
            if inNet(0xE000_0000, 4) { return "multicast" }
            if inNet(0xF000_0000, 4) { return a == 0xFFFF_FFFF ? "broadcast" : "reserved" }
            return nil
        case .v6(let b):
            if b.allSatisfy({ $0 == 0 }) { return "unspecified" }
            if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "loopback" }
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): the IPv4 address decides.
            if b[0..<10].allSatisfy({ $0 == 0 }) && ((b[10] == 0xFF && b[11] == 0xFF) || (b[10] == 0 && b[11] == 0)) {
                let v4 = UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15])
                return FetchAddress.v4(v4).specialRange ?? (b[10] == 0 ? "IPv4-compatible" : nil)
            }
            if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return "link-local" }
            if b[0] & 0xFE == 0xFC { return "private (unique local)" }
            if b[0] == 0xFF { return "multicast" }
            if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return "site-local" }
            // NAT64 (64:ff9b::/96) embeds an IPv4 address that may be internal.
            if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B && b[4..<12].allSatisfy({ $0 == 0 }) {
                let v4 = UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15])
                return FetchAddress.v4(v4).specialRange.map { "NAT64 of \($0)" }
            }
            return nil
        }
    }

    public var description: String {
        switch self {
        case .v4(let a): return "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
        case .v6(let b):
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: b) }
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &addr, &buf, socklen_t(buf.count))
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
