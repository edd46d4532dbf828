import Foundation
import SpectralXBlobStore
import SpectralXFetch
import SpectralXRaster
import Synchronization

/// What one job (or one CLI run) may fetch by reference, and how: the allow-list with its
/// per-request bounds, the per-job bounds, retries, the AWS variables for `s3://`, and the counters.
/// One `Fetcher` per job: its byte and time budget and its counters cover every object it opens.
public final class Fetcher: Sendable {
    public struct Configuration: Sendable {
        public var policy: FetchPolicy
        /// Bytes all of a job's requests may fetch together.
        public var maxBytesPerJob: Int = 8 << 30
        /// Seconds from the fetcher's creation after which no request starts.
        public var maxSecondsPerJob: Double = 3600
        /// Attempts per request (retries with backoff on 5xx, resets, short reads, timeouts).
        public var maxAttempts: Int = 4
        public var backoffBase: Double = 0.2
        /// Bytes of fetched ranges kept per object (header pieces, blocks a scene's cache dropped, mask blocks).
        public var cacheBytesPerObject: Int = 8 << 20
        /// Ranges at most this far apart are fetched in one request (COG tiles are separated by
        /// GDAL's 4-byte leaders and trailers; a gap of a few KiB costs less than a request).
        public var coalesceGap: Int = 16 << 10
        /// The first read of a TIFF: header and IFDs of any usual COG.
        public var firstRead: Int = 16 << 10
        /// Environment for `s3://` (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3, …).
        public var environment: [String: String] = ProcessInfo.processInfo.environment

        public init(policy: FetchPolicy) { self.policy = policy }
    }

    public let configuration: Configuration
    /// This fetcher's counters (a job's `bytes_fetched`); every count also goes to `FetchCounters.process`.
    public let counters = FetchCounters()
    let client: HTTPClient
    let deadline: Date

    public init(configuration: Configuration) {
        self.configuration = configuration
        var c = HTTPClient.Configuration()
        c.policy = configuration.policy
        c.attemptTimeout = configuration.policy.requestTimeout
        c.maxAttempts = max(1, configuration.maxAttempts)
        c.backoffBase = configuration.backoffBase
        if let ca = configuration.environment["AWS_CA_BUNDLE"], !ca.isEmpty { c.caFile = ca }
        client = HTTPClient(configuration: c)
        deadline = Date().addingTimeInterval(configuration.maxSecondsPerJob)
    }

    func count(bytes: Int = 0, requests: Int = 0, retries: Int = 0, hits: Int = 0, misses: Int = 0) {
        for c in [counters, FetchCounters.process] {
            c.add(bytes: bytes, requests: requests, retries: retries, cacheHits: hits, cacheMisses: misses)
        }
    }

    /// Checks the job's bounds before a request of `bytes` bytes.
    func admit(_ bytes: Int, url: String) throws {
        guard Date() < deadline else {
            throw RemoteError.budget(url: url, what: "the job's fetch time limit (\(Int(configuration.maxSecondsPerJob)) s) is spent")
        }
        guard bytes <= configuration.policy.maxBytesPerRequest else {
            throw RemoteError.budget(url: url, what: "a request of \(bytes) bytes exceeds the per-request limit of \(configuration.policy.maxBytesPerRequest)")
        }
        guard counters.bytes + bytes <= configuration.maxBytesPerJob else {
            throw RemoteError.budget(url: url, what: "the job's fetch limit of \(configuration.maxBytesPerJob) bytes would be exceeded")
        }
    }

    /// Opens an object by reference: `http(s)://…` or `s3://bucket/key`, checked against the policy.
    public func open(_ href: String) throws -> RemoteByteSource {
        guard let url = URL(string: href), let scheme = url.scheme?.lowercased() else {
            throw RemoteError.refused(url: "<invalid URL>", reason: "'\(href.prefix(80))' is not a URL")
        }
        let shown = FetchPolicy.redacted(url)
        do { try configuration.policy.allowing(url) } catch { throw RemoteError.from(error, url: shown) }
        if scheme == "s3" { return try RemoteByteSource(s3: url, fetcher: self) }
        return try RemoteByteSource(http: url, fetcher: self)
    }

    /// Fetches a small document (a STAC item) whole, following checked redirects.
    public func document(_ href: String, limit: Int = 4 << 20) throws -> Data {
        let source = try open(href)
        guard source.size <= limit else {
            throw RemoteError.budget(url: source.name, what: "document of \(source.size) bytes exceeds \(limit)")
        }
        return source.size == 0 ? Data() : try source.read([0..<source.size])[0]
    }
}

/// An object read in place by range over HTTP(S) (our `HTTPClient`) or S3 (the blob store's signed
/// ranged GET): its size and ETag are learnt from the first ranged GET, which also brings the
/// first `firstRead` bytes; every later request carries `If-Match` with that ETag, and an object
/// replaced since fails with `RemoteError.changed` naming both ETags. Adjacent ranges are fetched
/// in one request; fetched ranges are kept in a small LRU cache.
public final class RemoteByteSource: ByteRangeSource {
    public let size: Int
    /// `scheme://host:port/path` (no query, no user info).
    public let name: String
    /// The ETag pinned at open ("" when the server sends none: then only the size is checked).
    public let etag: String
    private let fetcher: Fetcher
    private let backend: Backend
    private let cache: Mutex<RangeCache>

    enum Backend: Sendable {
        /// The URL reached after the open's redirects.
        case http(URL)
        case s3(store: any BlobStore, key: String)
        /// The server ignored Range and sent the whole (small) object.
        case memory(Data)
    }

    init(http url: URL, fetcher: Fetcher) throws {
        self.fetcher = fetcher
        name = FetchPolicy.redacted(url)
        let first = fetcher.configuration.firstRead
        let (response, finalURL) = try Self.get(url, headers: ["Range": "bytes=0-\(first - 1)"], expecting: first, fetcher: fetcher, name: name)
        cache = Mutex(RangeCache(limit: fetcher.configuration.cacheBytesPerObject))
        switch response.status {
        case 206:
            guard let total = response.headers["Content-Range"].flatMap(Self.totalSize) else {
                throw RemoteError.badReply(url: name, reason: "206 without a Content-Range total")
            }
            size = total
            etag = Self.strongETag(response.headers["ETag"])
            backend = .http(finalURL)
            guard response.body.count == min(first, total) else {
                throw RemoteError.badReply(url: name, reason: "first read gave \(response.body.count) of \(min(first, total)) bytes")
            }
            cache.withLock { $0.insert(0..<response.body.count, response.body) }
        case 200:
            size = response.body.count
            etag = Self.strongETag(response.headers["ETag"])
            backend = .memory(response.body)
        case 416:
            size = 0
            etag = ""
            backend = .memory(Data())
        default: throw Self.failure(response, name: name)
        }
    }

    init(s3 url: URL, fetcher: Fetcher) throws {
        self.fetcher = fetcher
        name = FetchPolicy.redacted(url)
        guard let bucket = url.host, !bucket.isEmpty else { throw RemoteError.refused(url: name, reason: "s3:// needs a bucket") }
        let key = String(url.path.drop(while: { $0 == "/" }))
        let store: any BlobStore
        do { store = try BlobStores.open(url: "s3://\(bucket)", environment: fetcher.configuration.environment) } catch {
            throw RemoteError.status(url: name, status: 0, detail: "\(error)")
        }
        try fetcher.admit(0, url: name)
        let info: BlobInfo
        do { info = try store.head(key) } catch { throw RemoteError.from(error, url: name) }
        fetcher.count(requests: 1)
        size = Int(info.size)
        etag = info.etag
        backend = .s3(store: store, key: key)
        cache = Mutex(RangeCache(limit: fetcher.configuration.cacheBytesPerObject))
    }

    public func read(_ ranges: [Range<Int>]) throws -> [Data] {
        for r in ranges where r.lowerBound < 0 || r.upperBound > size || r.isEmpty {
            throw RemoteError.badReply(url: name, reason: "range \(r) outside the object's \(size) bytes")
        }
        if case .memory(let d) = backend { return ranges.map { d.subdata(in: $0) } }
        var out = [Data?](repeating: nil, count: ranges.count)
        var missing: [Int] = []
        cache.withLock { c in
            for (i, r) in ranges.enumerated() { out[i] = c.lookup(r); if out[i] == nil { missing.append(i) } }
        }
        fetcher.count(hits: ranges.count - missing.count, misses: missing.count)
        // Coalesce: sorted by start, a range joins the group when it begins within `coalesceGap` of its end.
        missing.sort { ranges[$0].lowerBound < ranges[$1].lowerBound }
        var groups: [(span: Range<Int>, members: [Int])] = []
        let gap = fetcher.configuration.coalesceGap, cap = fetcher.configuration.policy.maxBytesPerRequest
        for i in missing {
            let r = ranges[i]
            if let last = groups.last, r.lowerBound <= last.span.upperBound + gap,
               max(last.span.upperBound, r.upperBound) - last.span.lowerBound <= cap {
                groups[groups.count - 1] = (last.span.lowerBound..<max(last.span.upperBound, r.upperBound), last.members + [i])
            } else {
                groups.append((r, [i]))
            }
        }
        for g in groups {
            let body = try fetch(g.span)
            cache.withLock { c in
                for i in g.members {
                    let r = ranges[i]
                    let d = body.subdata(in: (r.lowerBound - g.span.lowerBound)..<(r.upperBound - g.span.lowerBound))
                    out[i] = d
                    c.insert(r, d)
                }
            }
        }
        return out.map { $0 ?? Data() }
    }

    /// One ranged GET of `span`, pinned to the ETag.
    private func fetch(_ span: Range<Int>) throws -> Data {
        try fetcher.admit(span.count, url: name)
        switch backend {
        case .memory(let d): return d.subdata(in: span)
        case .s3(let store, let key):
            do {
                let (d, attempts) = try store.getCountingAttempts(key, range: ByteRange(offset: Int64(span.lowerBound), length: Int64(span.count)),
                                                                  ifMatch: etag.isEmpty ? nil : etag)
                fetcher.count(bytes: d.count, requests: 1, retries: attempts - 1)
                guard d.count == span.count else { throw RemoteError.badReply(url: name, reason: "\(d.count) of \(span.count) bytes") }
                return d
            } catch BlobStoreError.changed {
                let now = (try? store.head(key).etag) ?? ""
                throw RemoteError.changed(url: name, pinned: etag, current: now)
            } catch { throw RemoteError.from(error, url: name) }
        case .http(let url):
            var headers: HTTPFields = ["Range": "bytes=\(span.lowerBound)-\(span.upperBound - 1)"]
            if !etag.isEmpty { headers.append("If-Match", etag) }
            // The client retries transport failures and 5xx; a 206 shorter than asked (a proxy cutting
            // it) is retried here, a bounded number of times.
            for attempt in 1...max(1, fetcher.configuration.maxAttempts) {
                let (r, _) = try Self.get(url, headers: headers, expecting: span.count, fetcher: fetcher, name: name)
                switch r.status {
                case 206:
                    let now = Self.strongETag(r.headers["ETag"])
                    if !etag.isEmpty && !now.isEmpty && now != etag { throw RemoteError.changed(url: name, pinned: etag, current: now) }
                    if let total = r.headers["Content-Range"].flatMap(Self.totalSize), total != size {
                        throw RemoteError.changed(url: name, pinned: etag.isEmpty ? "(size \(size))" : etag, current: now.isEmpty ? "(size \(total))" : now)
                    }
                    if r.body.count == span.count { return r.body }
                    if attempt < fetcher.configuration.maxAttempts { fetcher.count(retries: 1); continue }
                    throw RemoteError.badReply(url: name, reason: "short body: \(r.body.count) of \(span.count) bytes")
                case 412:
                    throw RemoteError.changed(url: name, pinned: etag, current: currentETag(url, reply: r))
                case 200:
                    throw RemoteError.badReply(url: name, reason: "the server ignored Range on a later read")
                default: throw Self.failure(r, name: name)
                }
            }
            throw RemoteError.badReply(url: name, reason: "no usable reply")
        }
    }

    /// The object's ETag now, for the message of a 412 (from the reply, else a HEAD).
    private func currentETag(_ url: URL, reply: HTTPClientResponse) -> String {
        if let e = reply.headers["ETag"], !e.isEmpty { return e }
        let r = try? fetcher.client.execute(HTTPClientRequest(method: "HEAD", url: url), body: .discard)
        return r?.headers["ETag"] ?? ""
    }

    /// A GET following redirects (each target checked by the client against the policy before any
    /// connection), bounded in count, body size and time.
    static func get(_ url: URL, headers: HTTPFields, expecting: Int, fetcher: Fetcher, name: String) throws -> (HTTPClientResponse, URL) {
        var current = url
        for _ in 0...fetcher.configuration.policy.maxRedirects {
            let r: HTTPClientResponse
            do {
                r = try fetcher.client.execute(HTTPClientRequest(url: current, headers: headers),
                                               body: .memory(limit: min(fetcher.configuration.policy.maxBytesPerRequest, max(expecting, 1 << 20))))
            } catch { throw RemoteError.from(error, url: name) }
            fetcher.count(bytes: r.body.count, requests: 1, retries: r.attempts - 1)
            guard [301, 302, 303, 307, 308].contains(r.status) else { return (r, current) }
            guard let location = r.headers["Location"], let next = URL(string: location, relativeTo: current)?.absoluteURL else {
                throw RemoteError.badReply(url: name, reason: "redirect \(r.status) without a usable Location")
            }
            do { try fetcher.configuration.policy.allowing(next) } catch {
                throw RemoteError.refused(url: name, reason: "redirected to \(FetchPolicy.redacted(next)), which is not allowed")
            }
            current = next
        }
        throw RemoteError.badReply(url: name, reason: "more than \(fetcher.configuration.policy.maxRedirects) redirects")
    }

    static func failure(_ r: HTTPClientResponse, name: String) -> RemoteError {
        switch r.status {
        case 404, 410: return .notFound(url: name)
        default: return .status(url: name, status: r.status, detail: "")
        }
    }

    /// "bytes a-b/total" → total.
    static func totalSize(_ contentRange: String) -> Int? {
        guard let slash = contentRange.lastIndex(of: "/") else { return nil }
        return Int(contentRange[contentRange.index(after: slash)...].trimmingCharacters(in: .whitespaces))
    }

    /// A weak ETag (W/"…") cannot be used with If-Match (strong comparison): not pinned then.
    static func strongETag(_ e: String?) -> String {
        guard let e, !e.hasPrefix("W/") else { return "" }
        return e
    }
}

/// Fetched ranges of one object, least recently used first out, bounded in bytes.
struct RangeCache: Sendable {
    let limit: Int
    private var entries: [(range: Range<Int>, data: Data)] = []
    private var bytes = 0

    init(limit: Int) { self.limit = limit }

    /// The bytes of `r` when one entry holds all of them.
    mutating func lookup(_ r: Range<Int>) -> Data? {
        guard let i = entries.lastIndex(where: { $0.range.lowerBound <= r.lowerBound && r.upperBound <= $0.range.upperBound }) else { return nil }
        let e = entries.remove(at: i)
        entries.append(e)
        return e.data.subdata(in: (r.lowerBound - e.range.lowerBound)..<(r.upperBound - e.range.lowerBound))
    }

    mutating func insert(_ r: Range<Int>, _ d: Data) {
        guard d.count <= limit else { return }
        while bytes + d.count > limit, !entries.isEmpty { bytes -= entries.removeFirst().data.count }
        entries.append((r, d))
        bytes += d.count
    }
}

/// Scenes by reference.
public enum RemoteScene {
    /// A TIFF (COG) read in place: `http(s)://…` or `s3://bucket/key`.
    public static func open(_ href: String, fetcher: Fetcher, limits: RasterLimits = .default,
                            cacheBytes: Int = 32 << 20) throws -> TIFFScene {
        let source = try fetcher.open(href)
        guard source.size >= 8 else { throw RasterError.notRecognized("\(source.name) is not a TIFF (\(source.size) bytes)") }
        return try TIFFScene(source: source, limits: limits, cacheBytes: cacheBytes, firstRead: fetcher.configuration.firstRead)
    }

    /// Several hrefs as one scene, as `--stack` stacks files: each file's bands in order, coarser
    /// integer-multiple grids resampled to the finest (`StackedRasterSource`); one href is itself.
    public static func open(stack hrefs: [String], fetcher: Fetcher, limits: RasterLimits = .default,
                            cacheBytes: Int = 32 << 20) throws -> any RasterSource {
        guard !hrefs.isEmpty else { throw RasterError.invalidArgument("no href") }
        let scenes = try hrefs.map { try open($0, fetcher: fetcher, limits: limits, cacheBytes: cacheBytes) }
        if scenes.count == 1 { return scenes[0] }
        return try StackedRasterSource(scenes, names: scenes.map { ($0.source as? RemoteByteSource)?.name ?? "href" })
    }
}
