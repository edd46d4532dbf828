import Foundation
import SpectralXFetch

/// Shared object storage for jobs that several replicas see: spooled inputs, resume state, results.
///
/// Keys are relative paths under the store's configured prefix ("jobs/42/result.tif"): no leading
/// or trailing "/", no empty, "." or ".." segments, no control characters, at most 1024 bytes.
///
/// Visibility: a put is all-or-nothing. Readers see the old object or the complete new one, never
/// a part (files: temp file + fsync + rename; S3: single PUT or CompleteMultipartUpload).
/// `PutMode.overwrite` replaces, last writer wins; `PutMode.ifAbsent` succeeds for exactly one of
/// several concurrent writers and the others get `BlobStoreError.alreadyExists` (files: link(2),
/// atomic on local filesystems and NFS; S3: `If-None-Match: *`, honoured by AWS S3 since 2024,
/// MinIO and moto; a store that ignores the header would overwrite). An S3 put whose reply was lost
/// is retried, so a put-if-absent that did land can still report `alreadyExists`: a caller that must
/// know compares the stored object (ETag or bytes) with its own.
/// Deleting a missing key succeeds (as on S3). Listing is by plain string prefix, recursive,
/// sorted by key bytes.
public protocol BlobStore: Sendable {
    /// Where the store points, for logs (no credentials).
    var location: String { get }

    /// Stores the file's bytes under `key`. Large files go to S3 as a multipart upload.
    @discardableResult
    func put(_ key: String, fromFile file: URL, mode: PutMode) throws -> BlobInfo
    @discardableResult
    func put(_ key: String, data: Data, mode: PutMode) throws -> BlobInfo
    /// The object's bytes, or those of `range` (clipped at the end; a range starting at or past the
    /// end is `invalidRange`). With `ifMatch` (an ETag from `head`), an object replaced since then
    /// fails with `changed` instead of mixing bytes of two versions across ranged reads.
    func get(_ key: String, range: ByteRange?, ifMatch: String?) throws -> Data
    /// `get`, with the attempts it took (stores without retries: 1).
    func getCountingAttempts(_ key: String, range: ByteRange?, ifMatch: String?) throws -> (data: Data, attempts: Int)
    /// Writes the object (or `range` of it) to `file`, replaced atomically; returns the object's info.
    @discardableResult
    func get(_ key: String, range: ByteRange?, ifMatch: String?, toFile file: URL) throws -> BlobInfo
    func head(_ key: String) throws -> BlobInfo
    func delete(_ key: String) throws
    /// Every object whose key starts with `prefix` ("" for all).
    func list(prefix: String) throws -> [BlobInfo]
}

extension BlobStore {
    public func getCountingAttempts(_ key: String, range: ByteRange?, ifMatch: String?) throws -> (data: Data, attempts: Int) {
        (try get(key, range: range, ifMatch: ifMatch), 1)
    }

    @discardableResult
    public func put(_ key: String, fromFile file: URL) throws -> BlobInfo { try put(key, fromFile: file, mode: .overwrite) }
    @discardableResult
    public func put(_ key: String, data: Data) throws -> BlobInfo { try put(key, data: data, mode: .overwrite) }
    public func get(_ key: String, range: ByteRange? = nil) throws -> Data { try get(key, range: range, ifMatch: nil) }
    @discardableResult
    public func get(_ key: String, range: ByteRange?, toFile file: URL) throws -> BlobInfo {
        try get(key, range: range, ifMatch: nil, toFile: file)
    }
    /// Whether `key` exists (a head that maps not-found to false).
    public func exists(_ key: String) throws -> Bool {
        do { _ = try head(key); return true } catch BlobStoreError.notFound { return false }
    }
}

public enum PutMode: Sendable, Equatable {
    /// Replace any existing object.
    case overwrite
    /// Fail with `alreadyExists` when the key exists.
    case ifAbsent
}

public struct BlobInfo: Sendable, Equatable {
    /// Relative to the store's prefix.
    public var key: String
    public var size: Int64
    /// Opaque, quoted as HTTP sends it; changes whenever the object is replaced.
    public var etag: String
    public var lastModified: Date?

    public init(key: String, size: Int64, etag: String, lastModified: Date? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// `length` bytes from `offset`.
public struct ByteRange: Sendable, Equatable, CustomStringConvertible {
    public var offset: Int64
    public var length: Int64

    public init(offset: Int64, length: Int64) {
        precondition(offset >= 0 && length > 0, "a byte range needs offset ≥ 0 and length > 0")
        self.offset = offset
        self.length = length
    }

    /// The HTTP Range header value.
    public var httpValue: String { "bytes=\(offset)-\(offset + length - 1)" }
    public var description: String { "\(offset)+\(length)" }
}

/// Failures of a blob store. Descriptions carry keys, bucket names and server error codes, never
/// credentials.
public enum BlobStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidURL(String)
    case invalidKey(String, reason: String)
    /// The store cannot be set up (missing credentials, missing directory, missing bucket).
    case configuration(String)
    case notFound(key: String)
    case alreadyExists(key: String)
    /// The object's ETag is no longer the one the read was pinned to (`ifMatch`).
    case changed(key: String)
    case invalidRange(key: String, range: ByteRange)
    /// The server refused our credentials or their permissions (403: InvalidAccessKeyId,
    /// SignatureDoesNotMatch, AccessDenied, ExpiredToken, …).
    case accessDenied(code: String, message: String)
    case server(status: Int, code: String, message: String)
    case transport(FetchError)
    case io(String)

    public var description: String {
        switch self {
        case .invalidURL(let s): return "invalid blob store URL: \(s)"
        case .invalidKey(let k, let r): return "invalid blob key '\(k)': \(r)"
        case .configuration(let s): return "blob store configuration: \(s)"
        case .notFound(let k): return "blob '\(k)' not found"
        case .alreadyExists(let k): return "blob '\(k)' already exists"
        case .changed(let k): return "blob '\(k)' was replaced since its ETag was read"
        case .invalidRange(let k, let r): return "range \(r.httpValue) is outside blob '\(k)'"
        case .accessDenied(let c, let m): return "access denied (\(c)): \(m)"
        case .server(let s, let c, let m): return "blob store answered \(s) \(c): \(m)"
        case .transport(let e): return "blob store unreachable: \(e)"
        case .io(let s): return s
        }
    }
}

enum BlobKey {
    static let tempPrefix = ".blobtmp-"

    /// Checks a key (or, with `isPrefix`, a listing prefix, which may be empty or end in "/").
    static func validate(_ key: String, isPrefix: Bool = false) throws {
        func bad(_ reason: String) -> BlobStoreError { .invalidKey(key, reason: reason) }
        if key.isEmpty { if isPrefix { return }; throw bad("empty") }
        guard key.utf8.count <= 1024 else { throw bad("longer than 1024 bytes") }
        guard !key.hasPrefix("/") else { throw bad("starts with /") }
        guard !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f || $0 == "\\" }) else {
            throw bad("contains a control character or a backslash")
        }
        var segments = key.split(separator: "/", omittingEmptySubsequences: false)
        if isPrefix && segments.last == "" { segments.removeLast() }
        for (i, s) in segments.enumerated() {
            if s.isEmpty { throw bad("has an empty path segment") }
            if s == "." || s == ".." { throw bad("has a '\(s)' segment") }
            // A prefix's last segment may be partial, so only whole segments are checked for the temp prefix.
            if s.hasPrefix(tempPrefix) && !(isPrefix && i == segments.count - 1) { throw bad("uses the reserved \(tempPrefix) name") }
        }
    }
}
