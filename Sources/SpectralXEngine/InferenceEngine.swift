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

    /// Checks a raster's size and band count against a domain and the limits (before reading pixels).
    public func validate(width: Int, height: Int, bands: Int, for domain: LoadedDomain, options: SegmentationOptions) throws {
        guard bands == domain.bands else {
            throw EngineError.incompatibleInput(
                "domain '\(domain.name)' takes \(domain.bands) bands, the tile has \(bands)")
        }
        guard width >= 1, height >= 1 else { throw EngineError.incompatibleInput("the tile is empty") }
        guard Int(options.outputNodata) >= domain.classes else {
            throw EngineError.invalidArgument(
                "the output nodata value \(options.outputNodata) is a class index of domain '\(domain.name)' (\(domain.classes) classes)")
        }
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
            let rows = min(height, ModelShape.imageSize)
            let (bytes, o1) = (rows * width).multipliedReportingOverflow(by: bands * 16 + domain.classes * 8 + 8)
            guard !o1, bytes <= limits.maxRowBandBytes else {
                throw EngineError.incompatibleInput(
                    "a \(width)-pixel-wide scene with \(bands) bands and \(domain.classes) classes needs \(bytes >> 20) MiB per band of window rows, over the limit of \(limits.maxRowBandBytes >> 20) MiB (maxRowBandBytes)")
            }
        }
    }

    /// Checks that an in-memory answer (`MemorySink`: labels, or K float32 score planes) fits the limits.
    public func validateInMemoryOutput(width: Int, height: Int, for domain: LoadedDomain, scores: Bool) throws {
        let pixels = width * height
        if scores {
            guard domain.classes * pixels <= limits.maxScoreValues else {
                throw EngineError.incompatibleInput("scores for \(domain.classes) classes × \(pixels) pixels exceed the limit of \(limits.maxScoreValues) values")
            }
        }
    }

    /// Segments a decoded tile into memory: the `SegmentationPipeline` over the raster with a `MemorySink`.
    public func segment(_ domain: LoadedDomain, raster: Raster, options: SegmentationOptions,
                        cancel: CancellationToken? = nil) throws -> SegmentationResult {
        try segment(domain, source: raster, options: options, cancel: cancel)
    }

    /// Segments any raster source into memory (bounded by `InferenceLimits`).
    public func segment(_ domain: LoadedDomain, source: any RasterSource, options: SegmentationOptions,
                        cancel: CancellationToken? = nil) throws -> SegmentationResult {
        let pipeline = try SegmentationPipeline(engine: self, domain: domain, source: source, options: options)
        try validateInMemoryOutput(width: source.width, height: source.height, for: domain, scores: options.scores)
        let sink = MemorySink(width: source.width, height: source.height, classes: domain.classes, scores: options.scores)
        let report = try pipeline.run(into: sink, cancel: cancel)
        return SegmentationResult(width: source.width, height: source.height, classes: domain.classes,
                                  labels: options.scores ? nil : sink.labels, scores: sink.scores, batchSizes: report.batchSizes,
                                  windows: report.windows, timings: report.timings, labelPlane: sink.labels,
                                  histogram: report.histogram, nodata: options.outputNodata)
    }

    public static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
