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

/// Why a running job was asked to stop (the manager records it next to the job's `CancellationToken`).
public enum JobStopReason: Sendable, Equatable {
    /// `DELETE /v1/jobs/{id}`: the job and its files go away.
    case dismissed
    /// Server shutdown: progress is recorded and the job continues on the next start.
    case shutdown
}

/// A scene's dimensions from its header, read before the job is accepted.
public struct SceneHeader: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var bands: Int
}

/// One job run: what to read, with which domain and options, where to write, where to resume.
public struct SceneJobRun: Sendable {
    public var input: URL
    public var format: JobInputFormat
    public var domain: LoadedDomain
    public var options: JobOptions
    /// Where the result is written; the manager renames it into place once `run` returns.
    public var output: URL
    /// A previous run of this job was interrupted: continue from what it left (when the executor resumes).
    public var resume: Bool
    /// The statistics the previous run recorded, if any.
    public var statistics: BandStatistics?
}

/// What a run reports while it goes.
public enum SceneJobEvent: Sendable {
    /// The normalisation statistics (recorded so that a resumed run skips the first pass).
    case statistics(BandStatistics)
    /// Windows done (computed or skipped as all-nodata) of the total, scene rows durable in the output.
    case progress(SceneProgress)
}

/// How a job's scene is segmented: the seam between the jobs layer and the segmentation pipeline.
public protocol SceneJobExecutor: Sendable {
    /// Reads only what is needed to check the scene (header; format, band count, size limits).
    func inspect(_ input: URL, format: JobInputFormat, domain: LoadedDomain, options: JobOptions) throws -> SceneHeader
    /// Model windows the scene needs with these options.
    func windowCount(_ header: SceneHeader, options: JobOptions) -> Int
    /// Segments the scene and writes the result to `run.output`; throws `EngineError.cancelled` once
    /// `cancel` is set (the partial output stays for a resume unless the job is dismissed).
    func run(_ run: SceneJobRun, cancel: CancellationToken, events: @escaping @Sendable (SceneJobEvent) -> Void) throws
}

/// The executor on the engine's streaming pipeline: the spooled scene is read window row by window
/// row (`RasterFile`), normalised with the scene statistics, its windows run through the shared
/// scheduler at background priority, and the labels stream into a Cloud-Optimized GeoTIFF
/// (`COGSink`), whose spool is durable after every row of output tiles. A resumed run reuses the
/// recorded statistics and continues at the first row that is not durable, so at most one tile row
/// of windows is computed again, and the output equals an uninterrupted run's.
public struct PipelineSceneJobExecutor: SceneJobExecutor {
    public let engine: InferenceEngine
    public let limits: RasterLimits

    public init(engine: InferenceEngine, limits: RasterLimits) {
        self.engine = engine
        self.limits = limits
    }

    public func inspect(_ input: URL, format: JobInputFormat, domain: LoadedDomain, options: JobOptions) throws -> SceneHeader {
        let source = try RasterFile.open(path: input.path, limits: limits)
        // The pipeline's own checks (band count, size limits, nodata value), nothing decoded yet.
        _ = try SegmentationPipeline(engine: engine, domain: domain, source: source, options: options.segmentation)
        return SceneHeader(width: source.width, height: source.height, bands: source.bands)
    }

    public func windowCount(_ header: SceneHeader, options: JobOptions) -> Int {
        options.mode == .tile ? WindowPlan(width: header.width, height: header.height, overlap: options.overlap).total : 1
    }

    public func run(_ run: SceneJobRun, cancel: CancellationToken, events: @escaping @Sendable (SceneJobEvent) -> Void) throws {
        try cancel.check()
        let source = try RasterFile.open(path: run.input.path, limits: limits)
        let options = run.options.segmentation
        let pipeline = try SegmentationPipeline(engine: engine, domain: run.domain, source: source, options: options)
        let stats: BandStatistics
        if let s = run.statistics, run.resume { stats = s } else {
            stats = try pipeline.statistics(cancel: cancel)
            events(.statistics(stats))
        }
        let sink = try COGSink(path: run.output.path, domain: run.domain, width: source.width, height: source.height,
                               geo: source.geo, options: options, scoresEncoding: run.options.scoresEncoding, resume: run.resume)
        do {
            _ = try pipeline.run(into: sink, statistics: stats, resumeFromRow: run.resume ? sink.resumeRow : 0, cancel: cancel,
                                 progress: { p in events(.progress(p)) })
            try cancel.check()
            try sink.finish()
        } catch {
            // An interrupted run keeps its spool for the next start; a failed one removes it.
            if !cancel.isCancelled { sink.abort() }
            throw error
        }
    }
}
