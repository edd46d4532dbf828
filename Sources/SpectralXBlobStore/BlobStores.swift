import Foundation
import SpectralXFetch

/// Opening a blob store from its `--blob-store` URL.
public enum BlobStores {
    /// `file:///abs/dir` → `FileBlobStore` (the directory must exist: an unmounted shared volume
    /// fails here instead of filling the container's disk).
    /// `s3://bucket[/prefix]` → `S3BlobStore`, configured from the standard AWS variables:
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (both required), AWS_SESSION_TOKEN, AWS_REGION
    /// (else AWS_DEFAULT_REGION, else us-east-1), AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL;
    /// a custom endpoint means path-style addressing) and AWS_CA_BUNDLE.
    public static func open(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any BlobStore {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased() else {
            throw BlobStoreError.invalidURL("'\(url)' is not a URL (expected file:///dir or s3://bucket/prefix)")
        }
        guard c.query == nil, c.fragment == nil, c.user == nil, c.password == nil else {
            throw BlobStoreError.invalidURL("\(scheme):// blob store URLs take no query, fragment or user info")
        }
        switch scheme {
        case "file":
            guard (c.host ?? "").isEmpty || c.host == "localhost" else {
                throw BlobStoreError.invalidURL("file:// URLs name a local path (file:///dir), not a host")
            }
            let path = c.path
            guard path.hasPrefix("/"), path.count > 1 else { throw BlobStoreError.invalidURL("file:// needs an absolute directory path") }
            return try FileBlobStore(directory: URL(fileURLWithPath: path, isDirectory: true), createIfMissing: false)
        case "s3":
            guard let bucket = c.host, !bucket.isEmpty else { throw BlobStoreError.invalidURL("s3:// needs a bucket: s3://bucket/prefix") }
            guard c.port == nil else { throw BlobStoreError.invalidURL("s3:// takes no port (set AWS_ENDPOINT_URL_S3 for a custom endpoint)") }
            guard S3BlobStore.validBucket(bucket) else { throw BlobStoreError.invalidURL("'\(bucket)' is not an S3 bucket name") }
            guard let credentials = AWSCredentials.fromEnvironment(environment) else {
                throw BlobStoreError.configuration("s3:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
            }
            let region = [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"]].compactMap { $0 }.first { !$0.isEmpty } ?? "us-east-1"
            var endpoint: URL?
            if let e = [environment["AWS_ENDPOINT_URL_S3"], environment["AWS_ENDPOINT_URL"]].compactMap({ $0 }).first(where: { !$0.isEmpty }) {
                guard let u = URL(string: e), let s = u.scheme?.lowercased(), s == "http" || s == "https", u.host != nil else {
                    throw BlobStoreError.invalidURL("AWS_ENDPOINT_URL(_S3) must be an http(s) URL")
                }
                endpoint = u
            }
            var configuration = S3Configuration(endpoint: endpoint, bucket: bucket, prefix: c.path, region: region, credentials: credentials)
            if let ca = environment["AWS_CA_BUNDLE"], !ca.isEmpty { configuration.client.caFile = ca }
            return try S3BlobStore(configuration: configuration)
        default:
            throw BlobStoreError.invalidURL("unsupported scheme '\(scheme)' (expected file:// or s3://)")
        }
    }
}
