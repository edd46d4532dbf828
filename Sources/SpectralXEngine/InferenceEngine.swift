import Dispatch
import Foundation
import Logging
import Metrics
import SpectralXModel
import SpectralXRaster

/// Segmentation of whole tiles: the model store, the batching scheduler and the pre/post-processing
/// of both inference modes. Knows nothing of HTTP: the API and `spectralx predict` both call it.
public final class InferenceEngine: Sendable {
    public let store: ModelStore
    public let scheduler: BatchScheduler<NetworkBatchRunner>
    public let limits: InferenceLimits

    public init(store: ModelStore, scheduler: SchedulerConfiguration = SchedulerConfiguration(),
                limits: InferenceLimits = InferenceLimits()) {
        self.store = store
        self.scheduler = BatchScheduler(runner: NetworkBatchRunner(), configuration: scheduler)
        self.limits = limits
    }

    /// Segments one decoded tile with a loaded domain.
    public func segment(domain name: String, raster: Raster, options: SegmentationOptions = SegmentationOptions()) throws
        -> SegmentationResult
    {
        let lease = try store.lease(name)
        defer { lease.release() }
        return try segment(lease.domain, raster: raster, options: options)
    }

    /// Checks a tile against a domain and the size limits without running anything.
    public func validate(_ raster: Raster, for domain: LoadedDomain, options: SegmentationOptions) throws {
        try validate(width: raster.width, height: raster.height, bands: raster.bands, for: domain, options: options)
    }

    /// The same checks from the dimensions alone (a scene's header, before any pixel is decoded).
    public func validate(width: Int, height: Int, bands: Int, for domain: LoadedDomain, options: SegmentationOptions) throws {
        guard bands == domain.bands else {
            throw EngineError.incompatibleInput(
                "domain '\(domain.name)' takes \(domain.bands) bands, the tile has \(bands)")
        }
        guard width >= 1, height >= 1 else { throw EngineError.incompatibleInput("the tile is empty") }
        let pixels = width * height
        switch options.mode {
        case .resize:
            guard pixels <= limits.maxResizePixels else {
                throw EngineError.incompatibleInput(
                    "\(width)×\(height) exceeds the resize-mode limit of \(limits.maxResizePixels) pixels; use mode=tile")
            }
            guard domain.classes * pixels <= limits.maxResizeLogitValues else {
                throw EngineError.incompatibleInput(
                    "\(width)×\(height) with \(domain.classes) classes exceeds the resize-mode limit of \(limits.maxResizeLogitValues) logit values; use mode=tile")
            }
        case .tile:
            guard pixels <= limits.maxTilePixels else {
                throw EngineError.incompatibleInput("\(width)×\(height) exceeds the tile-mode limit of \(limits.maxTilePixels) pixels")
            }
            guard (0..<ModelShape.imageSize).contains(options.overlap) else {
                throw EngineError.invalidArgument("overlap must be between 0 and \(ModelShape.imageSize - 1)")
            }
        }
        if options.scores {
            guard domain.classes * pixels <= limits.maxScoreValues else {
                throw EngineError.incompatibleInput("scores for \(domain.classes) classes × \(pixels) pixels exceed the limit of \(limits.maxScoreValues) values")
            }
        }
    }

    public func segment(_ domain: LoadedDomain, raster: Raster, options: SegmentationOptions) throws -> SegmentationResult {
        try validate(raster, for: domain, options: options)
        switch options.mode {
        case .resize: return try segmentResized(domain, raster: raster, options: options)
        case .tile: return try TiledInference(engine: self, domain: domain, raster: raster, options: options).run()
        }
    }

    /// `segment` for background work (jobs): windows are submitted at `control.priority`, progress is
    /// reported after every group of windows and `control.cancellation` is checked before each.
    public func segment(_ domain: LoadedDomain, raster: Raster, options: SegmentationOptions,
                        control: SceneRunControl) throws -> SegmentationResult {
        try validate(raster, for: domain, options: options)
        switch options.mode {
        case .resize:
            try control.cancellation?.check()
            control.progress(0, 1)
            let r = try segmentResized(domain, raster: raster, options: options, priority: control.priority)
            control.progress(1, 1)
            return r
        case .tile:
            return try TiledInference(engine: self, domain: domain, raster: raster, options: options, control: control).run()
        }
    }

    /// The upstream pipeline (model spec §3): min–max per band, antialiased resize to 224, one forward,
    /// bilinear back to the tile's size, argmax (or softmax).
    private func segmentResized(_ domain: LoadedDomain, raster: Raster, options: SegmentationOptions,
                                priority: BatchPriority = .interactive) throws -> SegmentationResult {
        let clock = ContinuousClock()
        let t0 = clock.now
        let input = try Preprocessing.preprocess(raster)
        let t1 = clock.now
        let out = try scheduler.submit(model: domain, inputs: [input], timeout: options.timeout, priority: priority)[0]
        let t2 = clock.now
        let k = domain.classes, s = ModelShape.imageSize
        var result = SegmentationResult(width: raster.width, height: raster.height, classes: k, labels: nil, scores: nil,
                                        batchSizes: [out.batchSize], windows: 1, timings: [])
        if options.scores {
            var r = (raster.height == s && raster.width == s) ? out.value
                : try Preprocessing.resizeBilinear(out.value, channels: k, inHeight: s, inWidth: s,
                                                   outHeight: raster.height, outWidth: raster.width)
            ClassScores.softmax(&r, classes: k, pixels: raster.width * raster.height)
            result.scores = r
        } else {
            result.labels = try Preprocessing.labels(fromLogits: out.value, classes: k, height: raster.height, width: raster.width)
        }
        let t3 = clock.now
        result.timings = [("preprocess", Self.seconds(t0.duration(to: t1))), ("queue", out.queueSeconds),
                          ("inference", out.runSeconds), ("postprocess", Self.seconds(t2.duration(to: t3)))]
        return result
    }

    public static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
