import Dispatch
import Foundation
import Logging
import Metrics
import SpectralXModel
import SpectralXRaster
import SpectralXTensor

/// Segmentation of whole tiles: the model store, the batching scheduler and the pre/post-processing
/// of both inference modes. Knows nothing of HTTP: the API and `spectralx predict` both call it.
public final class InferenceEngine: Sendable {
    public let store: ModelStore
    public let scheduler: any BatchScheduling
    public let limits: InferenceLimits

    /// An engine on the SpectralX network (`NetworkBatchRunner`).
    public convenience init(store: ModelStore, scheduler: SchedulerConfiguration = SchedulerConfiguration(),
                            limits: InferenceLimits = InferenceLimits()) {
        self.init(store: store, runner: NetworkBatchRunner(), scheduler: scheduler, limits: limits)
    }

    /// An engine whose batches run on `runner`: tests pass a fake that needs no weights (with a
    /// `ModelStore(binding: .describeOnly)`), so the API is tested without loading the network.
    public init<Runner: BatchRunner>(store: ModelStore, runner: Runner, scheduler: SchedulerConfiguration = SchedulerConfiguration(),
                                     limits: InferenceLimits = InferenceLimits())
    where Runner.Model == DomainRun, Runner.Input == [Float], Runner.Output == [Float] {
        self.store = store
        self.scheduler = BatchScheduler(runner: runner, configuration: scheduler)
        self.limits = limits
    }

    /// The one segmentation use-case (statistics → pipeline → sink → answer) on this engine.
    public var segmenter: Segmenter { Segmenter(engine: self) }

    /// Segments one decoded tile with a loaded domain into memory (leases the domain for the call).
    public func segment(domain name: String, raster: Raster, options: SegmentationOptions = SegmentationOptions()) throws
        -> SegmentationResult
    {
        let lease = try store.lease(name)
        defer { lease.release() }
        return try segmenter.segment(lease.domain, source: raster, options: options)
    }

    /// Checks a tile against a domain and the size limits without running anything.
    public func validate(_ raster: Raster, for domain: LoadedDomain, options: SegmentationOptions) throws {
        try validate(width: raster.width, height: raster.height, bands: raster.bands, for: domain, options: options)
    }

    /// Checks a raster's size and band count against a domain and the limits (before reading pixels).
    public func validate(width: Int, height: Int, bands: Int, for domain: LoadedDomain, options: SegmentationOptions) throws {
        if let reason = options.precision.unavailableReason { throw EngineError.invalidArgument("precision \(options.precision): \(reason)") }
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
}
