import Foundation
import SpectralXEngine
import SpectralXFetch
import SpectralXRaster
import SpectralXRemote

/// The network side of scenes by reference: COGs read in place over HTTP(S) and S3 under the
/// server's fetch policy (`--fetch-allow`). One `Fetcher` per opened scene, so a job's byte and
/// time budget and its `bytes_fetched` cover every object it reads.
public struct RemoteSceneOpener: SceneOpening {
    public let configuration: Fetcher.Configuration

    public init(configuration: Fetcher.Configuration) { self.configuration = configuration }

    public func open(_ reference: SceneReference, limits: RasterLimits) throws -> OpenedScene {
        let fetcher = Fetcher(configuration: configuration)
        return try Self.mapped {
            var pinned = reference
            var files: [any RasterSource] = []
            for (i, s) in reference.sources.enumerated() {
                let scene = try RemoteScene.open(s.href, fetcher: fetcher, limits: limits)
                let object = scene.source as? RemoteByteSource
                let etag = object?.etag ?? ""
                // The object must still be the one checked at submission.
                if let was = s.etag, !was.isEmpty, was != etag {
                    throw SceneReferenceError.changed(url: object?.name ?? s.href, pinned: was, now: etag.isEmpty ? nil : etag)
                }
                pinned.sources[i].etag = etag.isEmpty ? nil : etag
                files.append(scene)
            }
            let counters = fetcher.counters
            return OpenedScene(source: try Self.stack(files, reference: reference), pinned: pinned,
                               bytesFetched: { Int64(counters.bytes) })
        }
    }

    public func document(_ href: String, limit: Int) throws -> Data {
        try Self.mapped { try Fetcher(configuration: configuration).document(href, limit: limit) }
    }

    /// Fetch failures as the engine's `SceneReferenceError` (which the API answers by kind).
    static func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as RemoteError { throw SceneReferenceError(e) }
    }
}

extension SceneReferenceError {
    init(_ e: RemoteError) {
        switch e {
        case .notFound(let url): self = .notFound(url: url, status: 404)
        case let .status(url, status, detail):
            self = [401, 403, 404, 410].contains(status) ? .notFound(url: url, status: status)
                : .unreachable(url: url, reason: "the server answered \(status)\(detail.isEmpty ? "" : ": \(detail)")")
        case let .changed(url, pinned, current): self = .changed(url: url, pinned: pinned, now: current.isEmpty ? nil : current)
        case let .refused(url, reason): self = .notAllowed(url: url, reason: reason)
        case let .budget(url, what): self = .limitExceeded(url: url, reason: what)
        case let .badReply(url, reason), let .transport(url, reason): self = .unreachable(url: url, reason: reason)
        }
    }
}

extension APIConfiguration {
    /// The opener of scenes by reference under `fetchPolicy`; nil when fetching is off (no `--fetch-allow`).
    public var sceneOpener: RemoteSceneOpener? {
        fetchPolicy.isEnabled ? RemoteSceneOpener(configuration: Fetcher.Configuration(policy: fetchPolicy)) : nil
    }
}
