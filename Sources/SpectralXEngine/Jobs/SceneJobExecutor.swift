import Foundation
import SpectralXRaster

/// Failures of the jobs layer, typed so the API maps each to a stable status and code.
public enum JobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a job id (lowercase UUID).
    case invalidID(String)
    /// No such job (or not visible to the caller's key).
    case noSuchJob(String)
    /// The job was dismissed already (a second `DELETE`).
    case alreadyDismissed(String)
    /// Results asked for before the job succeeded.
    case notFinished(id: String, status: JobStatus)
    /// `--max-jobs` jobs are stored already; retry after roughly this many seconds.
    case tooManyJobs(limit: Int, retryAfterSeconds: Int)
    /// The upload would take the jobs directory past `--max-jobs-bytes`.
    case storageFull(needed: Int64, available: Int64, limit: Int64)
    /// The jobs manager is stopping (SIGTERM).
    case shuttingDown
    /// The jobs directory could not be written.
    case storage(String)

    public var description: String {
        switch self {
        case .invalidID(let s): return "'\(s)' is not a job id (a lowercase UUID)"
        case .noSuchJob(let s): return "no job with id '\(s)'"
        case .alreadyDismissed(let s): return "job '\(s)' was dismissed already"
        case let .notFinished(id, status): return "job '\(id)' is \(status.rawValue); results are available once it is successful"
        case let .tooManyJobs(limit, _): return "the jobs directory holds the maximum of \(limit) jobs (--max-jobs); retry later or delete finished jobs"
        case let .storageFull(needed, available, limit):
            return "the upload needs \(needed) bytes but only \(max(0, available)) of the \(limit)-byte jobs budget (--max-jobs-bytes) are free"
        case .shuttingDown: return "the server is shutting down and takes no new jobs"
        case .storage(let s): return "jobs directory: \(s)"
        }
    }
}

/// Why a running job was asked to stop.
public enum JobStopReason: Sendable, Equatable {
    /// `DELETE /v1/jobs/{id}`: the job and its files go away.
    case dismissed
    /// Server shutdown: progress is recorded and the job runs again on the next start.
    case shutdown
}

/// Thrown out of a job's run once its cancellation was requested (checked between window groups).
public struct JobInterrupted: Error, Sendable, Equatable {
    public var reason: JobStopReason
}

/// A flag a job's run checks between groups of windows; set by `DELETE` or shutdown.
// @unchecked: the only state, `reason`, is guarded by `lock`.
public final class JobCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var reason: JobStopReason?

    public init() {}

    /// Requests the stop; the first reason wins.
    public func cancel(_ why: JobStopReason) { lock.withLock { if reason == nil { reason = why } } }

    public var stopReason: JobStopReason? { lock.withLock { reason } }

    /// Throws `JobInterrupted` once cancelled.
    public func check() throws {
        if let r = stopReason { throw JobInterrupted(reason: r) }
    }
}

/// What a background scene run reports to and is steered by.
public struct SceneRunControl: Sendable {
    /// Batch priority of its windows (`.background` for jobs).
    public var priority: BatchPriority
    /// Called with (windows done, windows total) at the start and after each group of windows.
    public var progress: @Sendable (_ done: Int, _ total: Int) -> Void
    /// Checked before each group of windows is submitted.
    public var cancellation: JobCancellation?

    public init(priority: BatchPriority = .background, cancellation: JobCancellation? = nil,
                progress: @escaping @Sendable (_ done: Int, _ total: Int) -> Void = { _, _ in }) {
        self.priority = priority
        self.progress = progress
        self.cancellation = cancellation
    }
}

/// A scene's dimensions from its header, read before the job is accepted.
public struct SceneHeader: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var bands: Int
}

/// One job run: what to read, with which domain and options, where to write.
public struct SceneJobRun: Sendable {
    public var input: URL
    public var format: JobInputFormat
    public var domain: LoadedDomain
    public var options: JobOptions
    /// Where the result is written; the manager renames it into place once `run` returns.
    public var output: URL
}

/// How a job's scene is segmented: the seam between the jobs layer and the segmentation pipeline.
public protocol SceneJobExecutor: Sendable {
    /// Reads only what is needed to check the scene (header; format, band count, size limits).
    func inspect(_ input: URL, format: JobInputFormat) throws -> SceneHeader
    /// Model windows the scene needs with these options.
    func windowCount(_ header: SceneHeader, options: JobOptions) -> Int
    /// Whether `run` can continue a job from its recorded progress; when false a job interrupted by
    /// a restart is run again from scratch.
    var resumes: Bool { get }
    /// Segments the scene and writes the result to `run.output`; throws `JobInterrupted` when
    /// `control.cancellation` is set.
    func run(_ run: SceneJobRun, control: SceneRunControl) throws
}

/// The executor on today's engine: decode the whole scene, tiled inference through the shared
/// scheduler (background priority), write a tiled Deflate GeoTIFF. It does not resume: a job
/// interrupted by a restart runs again from its first window.
public struct EngineSceneJobExecutor: SceneJobExecutor {
    public let engine: InferenceEngine
    public let limits: RasterLimits

    public init(engine: InferenceEngine, limits: RasterLimits) {
        self.engine = engine
        self.limits = limits
    }

    public var resumes: Bool { false }

    public func inspect(_ input: URL, format: JobInputFormat) throws -> SceneHeader {
        switch format {
        case .tiff:
            let info = try TIFFReader(path: input.path, limits: limits).info
            return SceneHeader(width: info.width, height: info.height, bands: info.bands)
        case .npy:
            let r = try RasterInput.raster(from: try NpyArray.read(path: input.path, limits: limits))
            return SceneHeader(width: r.width, height: r.height, bands: r.bands)
        }
    }

    public func windowCount(_ header: SceneHeader, options: JobOptions) -> Int {
        switch options.mode {
        case .resize: return 1
        case .tile:
            return TiledInference.origins(length: header.width, overlap: options.overlap).count
                * TiledInference.origins(length: header.height, overlap: options.overlap).count
        }
    }

    public func run(_ run: SceneJobRun, control: SceneRunControl) throws {
        try control.cancellation?.check()
        let raster: Raster
        switch run.format {
        case .tiff: raster = try TIFFReader(path: run.input.path, limits: limits).read()
        case .npy: raster = try RasterInput.raster(from: try NpyArray.read(path: run.input.path, limits: limits))
        }
        let result = try engine.segment(run.domain, raster: raster, options: run.options.segmentation, control: control)
        try control.cancellation?.check()
        if let scores = result.scores {
            try GeoTIFFWriter.writeScores(scores, bands: result.classes, width: result.width, height: result.height,
                                          geo: raster.geo, to: run.output.path)
        } else {
            try GeoTIFFWriter.writeLabels(result.labels ?? [], width: result.width, height: result.height,
                                          geo: raster.geo, to: run.output.path)
        }
    }
}
