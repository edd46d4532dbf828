import SpectralXRaster
import SpectralXTensor

/// How a tile becomes model input (service.md §2 `mode`).
public enum InferenceMode: String, Sendable, CaseIterable {
    /// The upstream pipeline: whole tile min–max normalised, resized to 224, logits resized back.
    case resize
    /// Sliding 224-pixel windows over the full-resolution scene, logits blended across overlaps.
    case tile
}

/// What to compute for one tile.
/// What one batch of the scheduler runs: images of one domain at one precision (the batch key).
public struct DomainRun: Sendable, Hashable {
    public let domain: LoadedDomain
    public let precision: Precision
    public init(_ domain: LoadedDomain, precision: Precision = .fp32) {
        self.domain = domain
        self.precision = precision
    }
}

public struct SegmentationOptions: Sendable, Equatable {
    public var mode: InferenceMode
    /// Pixels shared by neighbouring windows in `tile` mode (0 ..< 224).
    public var overlap: Int
    /// Per-class softmax probabilities (float32, K bands) instead of uint8 labels.
    public var scores: Bool
    /// Deadline for the request's images while queued; nil uses the scheduler's default.
    public var timeout: Duration?
    /// Treat declared nodata values (GDAL_NODATA) as invalid (`nodata_mask`); NaN samples and the
    /// internal mask always are.
    public var maskNodata: Bool
    /// When a pixel is invalid: all bands nodata (default) or any band.
    public var nodataRule: NodataRule
    /// Label written on invalid pixels (and GDAL_NODATA of label outputs); must not be a class index.
    public var outputNodata: UInt8
    /// Batch priority of the windows: `.background` for jobs, so interactive requests go first.
    public var priority: BatchPriority = .interactive
    /// The frozen backbone linears' arithmetic (``Precision``); batches never mix precisions.
    public var precision: Precision = .fp32

    /// The default output nodata value.
    public static let defaultOutputNodata: UInt8 = 255

    public init(mode: InferenceMode = .resize, overlap: Int = 32, scores: Bool = false, timeout: Duration? = nil,
                maskNodata: Bool = true, nodataRule: NodataRule = .all, outputNodata: UInt8 = SegmentationOptions.defaultOutputNodata) {
        self.mode = mode
        self.overlap = overlap
        self.scores = scores
        self.timeout = timeout
        self.maskNodata = maskNodata
        self.nodataRule = nodataRule
        self.outputNodata = outputNodata
    }
}

/// Size bounds the engine enforces before running anything (→ 422 at the API).
public struct InferenceLimits: Sendable, Equatable {
    /// Largest width × height in `resize` mode (its post-processing works on whole K×H×W planes).
    public var maxResizePixels: Int
    /// Largest width × height in `tile` mode (processed in window rows, memory grows with the width only).
    public var maxTilePixels: Int
    /// Largest K × H × W in `resize` mode: the logits are resized back to the tile as one float32 plane
    /// per class before the argmax, so this bounds that transient memory (default 512 MiB).
    public var maxResizeLogitValues: Int
    /// Largest K × H × W for score output (the answer itself has that many float32 values).
    public var maxScoreValues: Int
    /// Largest working memory of one band of window rows in `tile` mode, in bytes: the decoded rows
    /// (C × 224 × W native + float32), the K × 224 × W blend accumulators and one finished row band of
    /// K float32 planes (default 4 GiB; a 10980-wide 13-band scene with 23 classes needs ~0.5 GB).
    public var maxRowBandBytes: Int

    public init(maxResizePixels: Int = 4096 * 4096, maxTilePixels: Int = 16384 * 16384,
                maxResizeLogitValues: Int = 1 << 27, maxScoreValues: Int = 1 << 28, maxRowBandBytes: Int = 4 << 30) {
        self.maxResizePixels = maxResizePixels
        self.maxResizeLogitValues = maxResizeLogitValues
        self.maxTilePixels = maxTilePixels
        self.maxScoreValues = maxScoreValues
        self.maxRowBandBytes = maxRowBandBytes
    }
}
