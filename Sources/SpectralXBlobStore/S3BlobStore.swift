import Foundation
import SpectralXFetch

/// Where and how to reach an S3-compatible bucket.
public struct S3Configuration: Sendable {
    /// scheme://host[:port] of the service; nil → https://s3.<region>.amazonaws.com.
    public var endpoint: URL?
    public var bucket: String
    /// Key prefix inside the bucket, without leading or trailing "/" ("" for the bucket's root).
    public var prefix: String
    public var region: String
    public var credentials: AWSCredentials
    /// Path-style URLs (endpoint/bucket/key), needed by most S3-compatible servers; default: on for
    /// a custom endpoint or a bucket name with dots, virtual-hosted (bucket.endpoint/key) otherwise.
    public var pathStyle: Bool?
    /// Files of at least this size are uploaded in parts of `partSize` bytes (S3: ≥ 5 MiB, ≤ 10 000 parts).
    public var partSize: Int = 8 << 20
    /// Hash request bodies (S3 then checks them); false sends UNSIGNED-PAYLOAD and reads each file once.
    public var signPayload: Bool = true
    public var client: HTTPClient.Configuration = HTTPClient.Configuration()

    public init(endpoint: URL? = nil, bucket: String, prefix: String = "", region: String, credentials: AWSCredentials) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.credentials = credentials
    }
}

/// A blob store in an S3 bucket under a prefix, over `HTTPClient` with SigV4. Objects of
/// `partSize` or more are uploaded in parts (aborted on failure); ranged reads use `Range`.
public final class S3BlobStore: BlobStore {
    public let configuration: S3Configuration
    private let client: HTTPClient
    private let signer: SigV4Signer
    private let endpoint: URL
    private let pathStyle: Bool
    private let prefix: String

    public init(configuration: S3Configuration) throws {
        guard Self.validBucket(configuration.bucket) else {
            throw BlobStoreError.invalidURL("'\(configuration.bucket)' is not an S3 bucket name")
        }
        guard configuration.partSize >= 5 << 20 else { throw BlobStoreError.configuration("S3 part size must be at least 5 MiB") }
        self.configuration = configuration
        endpoint = configuration.endpoint ?? URL(string: "https://s3.\(configuration.region).amazonaws.com")!
        guard let scheme = endpoint.scheme?.lowercased(), scheme == "http" || scheme == "https", endpoint.host != nil else {
            throw BlobStoreError.invalidURL("S3 endpoint must be an http(s) URL with a host")
        }
        pathStyle = configuration.pathStyle ?? (configuration.endpoint != nil || configuration.bucket.contains("."))
        let trimmed = configuration.prefix.split(separator: "/").joined(separator: "/")
        if !trimmed.isEmpty { try BlobKey.validate(trimmed) }
        prefix = trimmed.isEmpty ? "" : trimmed + "/"
        client = HTTPClient(configuration: configuration.client)
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "s3")
    }

    public var location: String { "s3://\(configuration.bucket)/\(prefix) at \(HTTPClient.redacted(endpoint))" }

    /// 3–63 of lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit.
    static func validBucket(_ b: String) -> Bool {
        let ok = b.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 45 }
        return ok && (3...63).contains(b.utf8.count) && b.first != "-" && b.first != "." && b.last != "-" && b.last != "."
    }

    // MARK: - URLs

    /// The bucket's URL with an encoded object path (`objectPath` "" for the bucket itself) and query.
    private func url(objectPath: String, query: String? = nil) throws -> URL {
        guard var c = URLComponents(url: endpoint, resolvingAgainstBaseURL: false) else { throw BlobStoreError.invalidURL("endpoint") }
        let encoded = SigV4Signer.uriEncode(objectPath, keepSlash: true)
        if pathStyle {
            c.percentEncodedPath = "/\(configuration.bucket)/" + encoded
        } else {
            c.host = "\(configuration.bucket).\(c.host ?? "")"
            c.percentEncodedPath = "/" + encoded
        }
        c.percentEncodedQuery = query
        guard let u = c.url else { throw BlobStoreError.invalidURL("cannot form a URL for '\(objectPath)'") }
        return u
    }

    private func objectURL(_ key: String, query: String? = nil) throws -> URL {
        try BlobKey.validate(key)
        return try url(objectPath: prefix + key, query: query)
    }

    /// A URL that GETs `key` without credentials until `expires` seconds from now.
    public func presignedGetURL(_ key: String, expires: Int, date: Date = Date()) throws -> URL {
        do { return try signer.presignedURL(method: "GET", url: try objectURL(key), expires: expires, date: date) }
        catch let e as FetchError { throw BlobStoreError.configuration(e.description) }
    }

    // MARK: - Requests

    private func send(_ method: String, _ url: URL, headers: HTTPFields = HTTPFields(), body: HTTPClientRequest.Body = .none,
                      payloadHash: String = Digest.emptySHA256Hex, idempotent: Bool? = nil,
                      to destination: ResponseBodyDestination = .memory(limit: 64 << 20)) throws -> HTTPClientResponse {
        var request = HTTPClientRequest(method: method, url: url, headers: headers, body: body, idempotent: idempotent)
        do {
            try signer.sign(&request, payloadHash: payloadHash)
            return try client.execute(request, body: destination)
        } catch let e as FetchError {
            throw BlobStoreError.transport(e)
        }
    }

    /// Maps a non-success response to a typed error (server text with our secrets blanked, in case).
    private func failure(_ r: HTTPClientResponse, key: String?, range: ByteRange? = nil) -> BlobStoreError {
        let xml = String(decoding: r.body, as: UTF8.self)[...]
        let code = MiniXML.first("Code", in: xml) ?? "HTTP\(r.status)"
        var message = MiniXML.first("Message", in: xml) ?? ""
        for secret in [configuration.credentials.secretAccessKey, configuration.credentials.sessionToken ?? ""] where !secret.isEmpty {
            message = message.replacingOccurrences(of: secret, with: "<redacted>")
        }
        switch (r.status, code) {
        case (404, "NoSuchBucket"): return .configuration("bucket '\(configuration.bucket)' does not exist")
        case (404, _): return key.map { .notFound(key: $0) } ?? .server(status: 404, code: code, message: message)
        case (403, _), (401, _): return .accessDenied(code: code, message: message)
        case (412, _): return key.map { .alreadyExists(key: $0) } ?? .server(status: 412, code: code, message: message)
        case (416, _): if let key, let range { return .invalidRange(key: key, range: range) }
        default: break
        }
        return .server(status: r.status, code: code, message: message)
    }

    private func payloadHash(_ body: HTTPClientRequest.Body) throws -> String {
        guard configuration.signPayload else { return SigV4Signer.unsignedPayload }
        switch body {
        case .none: return Digest.emptySHA256Hex
        case .data(let d): return Digest.sha256Hex(d)
        case .file(let path, let offset, let length):
            do { return try Digest.sha256Hex(file: path, offset: offset, length: length) }
            catch { throw BlobStoreError.io("cannot read \(path): \(error)") }
        }
    }

    // MARK: - BlobStore

    public func put(_ key: String, data: Data, mode: PutMode) throws -> BlobInfo {
        try putSingle(key, body: .data(data), size: Int64(data.count), mode: mode)
    }

    public func put(_ key: String, fromFile file: URL, mode: PutMode) throws -> BlobInfo {
        let size: Int64
        do { size = ((try FileManager.default.attributesOfItem(atPath: file.path)[.size]) as? NSNumber)?.int64Value ?? 0 }
        catch { throw BlobStoreError.io("cannot stat \(file.path): \(error.localizedDescription)") }
        if size >= Int64(configuration.partSize) { return try putMultipart(key, file: file, size: size, mode: mode) }
        return try putSingle(key, body: .file(path: file.path, offset: 0, length: UInt64(size)), size: size, mode: mode)
    }

    private func putSingle(_ key: String, body: HTTPClientRequest.Body, size: Int64, mode: PutMode) throws -> BlobInfo {
        let url = try objectURL(key)
        var headers: HTTPFields = ["Content-Type": "application/octet-stream"]
        if mode == .ifAbsent { headers.append("If-None-Match", "*") }
        let r = try send("PUT", url, headers: headers, body: body, payloadHash: try payloadHash(body))
        guard (200..<300).contains(r.status) else { throw failure(r, key: key) }
        return BlobInfo(key: key, size: size, etag: r.headers["ETag"] ?? "", lastModified: nil)
    }

    private func putMultipart(_ key: String, file: URL, size: Int64, mode: PutMode) throws -> BlobInfo {
        let partSize = Int64(configuration.partSize)
        let partCount = Int((size + partSize - 1) / partSize)
        guard partCount <= 10_000 else { throw BlobStoreError.configuration("\(size) bytes need more than 10 000 parts of \(partSize)") }
        // Creating an upload twice only leaves an unused upload behind (lifecycle rules clean those), so it may be retried.
        let created = try send("POST", try objectURL(key, query: "uploads"), headers: ["Content-Type": "application/octet-stream"],
                               idempotent: true)
        guard created.status == 200 else { throw failure(created, key: key) }
        guard let uploadID = MiniXML.first("UploadId", in: String(decoding: created.body, as: UTF8.self)[...]), !uploadID.isEmpty else {
            throw BlobStoreError.server(status: created.status, code: "NoUploadId", message: "CreateMultipartUpload answered without an UploadId")
        }
        let idQuery = "uploadId=" + SigV4Signer.uriEncode(uploadID)
        do {
            var etags: [String] = []
            for part in 0..<partCount {
                let offset = Int64(part) * partSize
                let body = HTTPClientRequest.Body.file(path: file.path, offset: UInt64(offset), length: UInt64(min(partSize, size - offset)))
                let r = try send("PUT", try objectURL(key, query: "partNumber=\(part + 1)&\(idQuery)"), body: body,
                                 payloadHash: try payloadHash(body))
                guard r.status == 200, let etag = r.headers["ETag"] else { throw failure(r, key: key) }
                etags.append(etag)
            }
            var xml = "<CompleteMultipartUpload>"
            for (i, etag) in etags.enumerated() { xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(MiniXML.escape(etag))</ETag></Part>" }
            xml += "</CompleteMultipartUpload>"
            let body = Data(xml.utf8)
            var headers: HTTPFields = ["Content-Type": "application/xml"]
            if mode == .ifAbsent { headers.append("If-None-Match", "*") }
            // Completing is idempotent on S3 (a repeat of a completed upload answers with the object).
            let r = try send("POST", try objectURL(key, query: idQuery), headers: headers, body: .data(body),
                             payloadHash: Digest.sha256Hex(body), idempotent: true)
            let text = String(decoding: r.body, as: UTF8.self)[...]
            // S3 may answer 200 and still report an error in the body.
            guard r.status == 200, MiniXML.elements("Error", in: text).isEmpty else { throw failure(r, key: key) }
            let etag = MiniXML.first("ETag", in: text) ?? r.headers["ETag"] ?? ""
            return BlobInfo(key: key, size: size, etag: etag, lastModified: nil)
        } catch {
            _ = try? send("DELETE", try objectURL(key, query: idQuery))  // abort: free the parts
            throw error
        }
    }

    private static func readHeaders(range: ByteRange?, ifMatch: String?) -> HTTPFields {
        var headers = HTTPFields()
        if let range { headers.append("Range", range.httpValue) }
        if let ifMatch { headers.append("If-Match", ifMatch) }
        return headers
    }

    public func get(_ key: String, range: ByteRange?, ifMatch: String?) throws -> Data {
        try getCountingAttempts(key, range: range, ifMatch: ifMatch).data
    }

    /// `get`, with how many attempts the client made (1 without retries): scenes read by reference
    /// count S3 retries with the rest of their fetches.
    public func getCountingAttempts(_ key: String, range: ByteRange?, ifMatch: String?) throws -> (data: Data, attempts: Int) {
        let r = try send("GET", try objectURL(key), headers: Self.readHeaders(range: range, ifMatch: ifMatch), to: .memory(limit: Int.max))
        switch r.status {
        case 412: throw BlobStoreError.changed(key: key)
        case 206: return (r.body, r.attempts)
        case 200:
            // A server that ignores Range sends everything; cut the range out.
            guard let range else { return (r.body, r.attempts) }
            guard range.offset < Int64(r.body.count) else { throw BlobStoreError.invalidRange(key: key, range: range) }
            let end = min(Int64(r.body.count), range.offset + range.length)
            return (r.body.subdata(in: Int(range.offset)..<Int(end)), r.attempts)
        default: throw failure(r, key: key, range: range)
        }
    }

    public func get(_ key: String, range: ByteRange?, ifMatch: String?, toFile file: URL) throws -> BlobInfo {
        let url = try objectURL(key)
        let headers = Self.readHeaders(range: range, ifMatch: ifMatch)
        var info: BlobInfo?
        try LocalFile.replace(file) { fd, _ in
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
            let r = try send("GET", url, headers: headers, to: .file(handle))
            if r.status == 412 { throw BlobStoreError.changed(key: key) }
            guard r.status == 200 || r.status == 206 else { throw failure(r, key: key, range: range) }
            if range != nil && r.status == 200 { throw BlobStoreError.server(status: 200, code: "RangeIgnored", message: "the server ignored Range") }
            info = BlobInfo(key: key, size: Self.objectSize(r) ?? r.bodyLength, etag: r.headers["ETag"] ?? "",
                            lastModified: r.headers["Last-Modified"].flatMap(Self.httpDate))
        }
        return info!
    }

    /// The whole object's size: Content-Range's total on a 206, Content-Length otherwise.
    private static func objectSize(_ r: HTTPClientResponse) -> Int64? {
        if r.status == 206, let cr = r.headers["Content-Range"], let slash = cr.lastIndex(of: "/") { return Int64(cr[cr.index(after: slash)...]) }
        return r.headers["Content-Length"].flatMap { Int64($0) }
    }

    public func head(_ key: String) throws -> BlobInfo {
        let r = try send("HEAD", try objectURL(key))
        guard r.status == 200 else { throw failure(r, key: key) }
        return BlobInfo(key: key, size: r.headers["Content-Length"].flatMap { Int64($0) } ?? 0, etag: r.headers["ETag"] ?? "",
                        lastModified: r.headers["Last-Modified"].flatMap(Self.httpDate))
    }

    public func delete(_ key: String) throws {
        let r = try send("DELETE", try objectURL(key))
        guard (200..<300).contains(r.status) || r.status == 404 else { throw failure(r, key: key) }
    }

    public func list(prefix listPrefix: String) throws -> [BlobInfo] {
        try BlobKey.validate(listPrefix, isPrefix: true)
        var out: [BlobInfo] = []
        var token: String?
        repeat {
            var query = "list-type=2&prefix=" + SigV4Signer.uriEncode(prefix + listPrefix)
            if let token { query += "&continuation-token=" + SigV4Signer.uriEncode(token) }
            let r = try send("GET", try url(objectPath: "", query: query))
            guard r.status == 200 else { throw failure(r, key: nil) }
            let xml = String(decoding: r.body, as: UTF8.self)[...]
            for item in MiniXML.elements("Contents", in: xml) {
                guard let full = MiniXML.first("Key", in: item), full.hasPrefix(prefix) else { continue }
                out.append(BlobInfo(key: String(full.dropFirst(prefix.count)),
                                    size: MiniXML.first("Size", in: item).flatMap { Int64($0) } ?? 0,
                                    etag: MiniXML.first("ETag", in: item) ?? "",
                                    lastModified: MiniXML.first("LastModified", in: item).flatMap(Self.isoDate)))
            }
            token = MiniXML.first("IsTruncated", in: xml) == "true" ? MiniXML.first("NextContinuationToken", in: xml) : nil
        } while token != nil
        return out.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    /// Creates the bucket (for tests and first-time setup); an existing bucket of ours is fine.
    public func createBucket() throws {
        var body = HTTPClientRequest.Body.none
        var hash = Digest.emptySHA256Hex
        if configuration.region != "us-east-1" {
            let xml = Data("<CreateBucketConfiguration><LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
            body = .data(xml)
            hash = Digest.sha256Hex(xml)
        }
        let r = try send("PUT", try url(objectPath: ""), body: body, payloadHash: hash)
        guard (200..<300).contains(r.status) || (r.status == 409 && MiniXML.first("Code", in: String(decoding: r.body, as: UTF8.self)[...]) == "BucketAlreadyOwnedByYou") else {
            throw failure(r, key: nil)
        }
    }

    // MARK: - Dates

    private static func isoDate(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)
    }

    private static func httpDate(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: s)
    }
}
