import Foundation
import SpectralXRaster

/// A scene read in place: the files (URLs) whose bands are stacked in order, as `--stack` stacks
/// files (grids coarser by an integer factor resampled to the finest). A job stores this instead of
/// an uploaded file, with each object's ETag pinned at submission, so the replica that runs it reads
/// the very bytes that were checked, and a file replaced meanwhile fails the job by name.
///
/// Never holds credentials: S3 objects are `s3://bucket/key` read with the server's own AWS
/// credentials, and hrefs with user information are refused before this is made.
public struct SceneReference: Codable, Sendable, Equatable {
    public struct Source: Codable, Sendable, Equatable {
        public var href: String
        /// 0-based bands of the file to use, in order; nil: all of them.
        public var bands: [Int]?
        /// The object's ETag when the reference was checked (nil before that).
        public var etag: String?

        public init(href: String, bands: [Int]? = nil, etag: String? = nil) {
            self.href = href; self.bands = bands; self.etag = etag
        }
    }

    public var sources: [Source]
    /// Where the band choice came from (the STAC item's URL), for the job's record; nil for plain hrefs.
    public var stacItem: String?

    public init(sources: [Source], stacItem: String? = nil) {
        self.sources = sources
        self.stacItem = stacItem
    }

    /// The sources of STAC band picks: consecutive picks from one file become one source with those bands.
    public init(picks: [STACItem.BandPick], stacItem: String?) {
        var out: [Source] = []
        for p in picks {
            if let last = out.last, last.href == p.href { out[out.count - 1].bands!.append(p.band) }
            else { out.append(Source(href: p.href, bands: [p.band])) }
        }
        self.init(sources: out, stacItem: stacItem)
    }

    public func encoded() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)) ?? Data("{}".utf8)
    }

    public static func decode(_ data: Data) throws -> SceneReference {
        try JSONDecoder().decode(SceneReference.self, from: data)
    }
}

/// A scene opened from its reference, with what reading it has cost so far.
public struct OpenedScene: Sendable {
    public var source: any RasterSource
    /// The reference with every object's ETag filled in.
    public var pinned: SceneReference
    /// Bytes fetched for this scene so far (headers and blocks), read at any time.
    public var bytesFetched: @Sendable () -> Int64

    public init(source: any RasterSource, pinned: SceneReference, bytesFetched: @escaping @Sendable () -> Int64) {
        self.source = source; self.pinned = pinned; self.bytesFetched = bytesFetched
    }
}

/// Opens scenes by reference (HTTP(S), S3) under the server's fetch policy; the engine knows
/// nothing of the network beyond this.
public protocol SceneOpening: Sendable {
    /// Opens and stacks the reference's files (header and IFDs only; blocks are read as windows
    /// need them). A source with an ETag must still have it. Errors name the URL.
    func open(_ reference: SceneReference, limits: RasterLimits) throws -> OpenedScene
    /// A small document (a STAC item), at most `limit` bytes.
    func document(_ href: String, limit: Int) throws -> Data
}

extension SceneOpening {
    /// Stacks opened files as a reference asks: each file's chosen bands, in order (one file alone is itself).
    public static func stack(_ files: [any RasterSource], reference: SceneReference) throws -> any RasterSource {
        var parts: [any RasterSource] = []
        for (file, s) in zip(files, reference.sources) {
            if let bands = s.bands, bands != Array(0..<file.bands) {
                do { parts.append(try BandSubsetSource(file, bands: bands)) }
                catch { throw RasterError.invalidArgument("\(s.href): \(error)") }
            } else {
                parts.append(file)
            }
        }
        return parts.count == 1 ? parts[0] : try StackedRasterSource(parts, names: reference.sources.map(\.href))
    }
}

/// Why a scene reference cannot be read; every case names the URL (with any query or user
/// information left out) so the API can answer with the right status.
public enum SceneReferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The fetch policy refuses the URL, its resolved address or a redirect (nothing was fetched from it).
    case notAllowed(url: String, reason: String)
    /// The object does not exist (404/403 from the server, or no such bucket/key).
    case notFound(url: String, status: Int)
    /// The object changed after it was pinned (another ETag, or 412 on If-Match).
    case changed(url: String, pinned: String, now: String?)
    /// The server could not be read after the retries (connection refused, reset, 5xx, timeouts).
    case unreachable(url: String, reason: String)
    /// A per-request or per-job bound on bytes or time was reached.
    case limitExceeded(url: String, reason: String)

    public var description: String {
        switch self {
        case let .notAllowed(url, reason): return "fetching \(url) is not allowed: \(reason)"
        case let .notFound(url, status): return "\(url) was not found (HTTP \(status))"
        case let .changed(url, pinned, now):
            return "\(url) changed while it was read: ETag \(pinned) when the job was accepted, \(now ?? "a different one") now"
        case let .unreachable(url, reason): return "\(url) could not be read: \(reason)"
        case let .limitExceeded(url, reason): return "reading \(url) exceeded a limit: \(reason)"
        }
    }
}
