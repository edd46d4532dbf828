import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// AWS credentials. The secret and the session token never appear in `description`, debug
/// output or reflection (`dump`, string interpolation of a containing value).
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// From AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and (optional) AWS_SESSION_TOKEN; nil when
    /// the key id or the secret is missing or empty.
    public static func fromEnvironment(_ environment: [String: String]) -> AWSCredentials? {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty,
              let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else { return nil }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>\(sessionToken == nil ? "" : ", sessionToken: <redacted>"))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["accessKeyID": accessKeyID], displayStyle: .struct) }
}

/// AWS Signature Version 4 (header and query-string forms) over OpenSSL's HMAC-SHA256.
/// The path is signed as it goes on the wire (S3's rule: no second encoding, no normalisation);
/// other services get their path segments encoded once more, as the SigV4 test suite expects.
public struct SigV4Signer: Sendable {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The payload hash S3 accepts when the body is not hashed.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// Headers never signed: set or changed by the transport or by proxies on the way.
    private static let unsignedHeaders: Set<String> = ["authorization", "user-agent", "connection", "expect", "content-length",
                                                       "transfer-encoding", "x-amzn-trace-id"]

    /// Signs `request` in place: sets Host (when absent), X-Amz-Date, X-Amz-Security-Token (with a
    /// session token), X-Amz-Content-SHA256 (when `contentSHA256Header`, as S3 requires) and
    /// Authorization. Every other header present is signed too.
    public func sign(_ request: inout HTTPClientRequest, payloadHash: String, date: Date = Date(),
                     contentSHA256Header: Bool = true) throws {
        let target = try Target(request.url)
        let stamp = Self.timestamp(date)
        if !request.headers.contains("Host") { request.headers.append("Host", target.hostHeader) }
        request.headers.set("X-Amz-Date", stamp)
        if let token = credentials.sessionToken { request.headers.set("X-Amz-Security-Token", token) }
        if contentSHA256Header { request.headers.set("X-Amz-Content-SHA256", payloadHash) }
        request.headers.remove("Authorization")

        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(request.headers)
        let canonical = canonicalRequest(method: request.method.uppercased(), path: target.path,
                                         query: URLComponents(url: request.url, resolvingAgainstBaseURL: false)?.percentEncodedQuery,
                                         canonicalHeaders: canonicalHeaders, signedHeaders: signedHeaders, payloadHash: payloadHash)
        let signature = self.signature(canonicalRequest: canonical, timestamp: stamp)
        request.headers.append("Authorization",
                               "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(stamp)), SignedHeaders=\(signedHeaders), Signature=\(signature)")
    }

    /// A URL anyone can GET (or `method`) until `expires` seconds after `date` (1 s … 7 days),
    /// signed over the host header only, with an unsigned payload.
    public func presignedURL(method: String = "GET", url: URL, expires: Int, date: Date = Date()) throws -> URL {
        guard (1...604_800).contains(expires) else { throw FetchError.invalidRequest("presigned URL expiry must be 1 s … 7 days") }
        let target = try Target(url)
        let stamp = Self.timestamp(date)
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { throw FetchError.invalidURL("unparsable") }
        var query = components.percentEncodedQuery.map { [$0] } ?? []
        query.append("X-Amz-Algorithm=AWS4-HMAC-SHA256")
        query.append("X-Amz-Credential=" + Self.uriEncode("\(credentials.accessKeyID)/\(scope(stamp))"))
        query.append("X-Amz-Date=\(stamp)")
        query.append("X-Amz-Expires=\(expires)")
        if let token = credentials.sessionToken { query.append("X-Amz-Security-Token=" + Self.uriEncode(token)) }
        query.append("X-Amz-SignedHeaders=host")
        let joined = query.joined(separator: "&")
        let canonical = canonicalRequest(method: method.uppercased(), path: target.path, query: joined,
                                         canonicalHeaders: "host:\(target.hostHeader)\n", signedHeaders: "host",
                                         payloadHash: Self.unsignedPayload)
        components.percentEncodedQuery = joined + "&X-Amz-Signature=" + signature(canonicalRequest: canonical, timestamp: stamp)
        guard let signed = components.url else { throw FetchError.invalidURL("cannot build the presigned URL") }
        return signed
    }

    // MARK: - The steps, visible to tests

    /// The canonical request of SigV4 task 1.
    public func canonicalRequest(method: String, path: String, query: String?, canonicalHeaders: String,
                                 signedHeaders: String, payloadHash: String) -> String {
        let canonicalPath = service == "s3" ? path : path.split(separator: "/", omittingEmptySubsequences: false)
            .map { Self.uriEncode(String($0)) }.joined(separator: "/")
        return [method, canonicalPath.isEmpty ? "/" : canonicalPath, Self.canonicalQuery(query), canonicalHeaders, signedHeaders, payloadHash]
            .joined(separator: "\n")
    }

    /// Hex signature of a canonical request at `timestamp` (yyyyMMdd'T'HHmmss'Z').
    public func signature(canonicalRequest: String, timestamp: String) -> String {
        let stringToSign = "AWS4-HMAC-SHA256\n\(timestamp)\n\(scope(timestamp))\n\(Digest.sha256Hex(canonicalRequest))"
        var key = Digest.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), data: Array(timestamp.prefix(8).utf8))
        for part in [region, service, "aws4_request"] { key = Digest.hmacSHA256(key: key, data: Array(part.utf8)) }
        return Digest.hex(Digest.hmacSHA256(key: key, data: Array(stringToSign.utf8)))
    }

    private func scope(_ timestamp: String) -> String { "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request" }

    /// Lower-cased, sorted names; values trimmed with inner runs of spaces collapsed; repeated names joined by commas.
    static func canonicalHeaders(_ headers: HTTPFields) -> (canonical: String, signed: String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            let n = name.lowercased()
            guard !unsignedHeaders.contains(n) else { continue }
            let v = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[n, default: []].append(v)
        }
        let names = merged.keys.sorted()
        let canonical = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (canonical, names.joined(separator: ";"))
    }

    /// Parameters decoded and re-encoded with RFC 3986 unreserved characters kept, sorted by name then value.
    static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        let pairs: [(String, String)] = query.split(separator: "&").map { item in
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = String(kv[0]).removingPercentEncoding ?? String(kv[0])
            let v = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            return (uriEncode(k), uriEncode(v))
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Percent-encodes everything but A–Z a–z 0–9 - _ . ~ (and "/" when `keepSlash`), upper-case hex.
    public static func uriEncode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    /// yyyyMMdd'T'HHmmss'Z' in UTC.
    public static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { String(v).leftPadded(2) }
        return "\(tm.tm_year + 1900)\(two(tm.tm_mon + 1))\(two(tm.tm_mday))T\(two(tm.tm_hour))\(two(tm.tm_min))\(two(tm.tm_sec))Z"
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
