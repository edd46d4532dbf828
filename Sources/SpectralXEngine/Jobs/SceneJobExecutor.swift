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
    /// The domain was reloaded with other weights since the job was submitted: it is not run (or
    /// resumed) on a model it was not submitted for.
    case modelChanged(domain: String, submitted: String, now: String)
    /// Fleet mode: the shared job database cannot be reached (job routes answer 503 with Retry-After;
    /// tile requests are unaffected).
    case databaseUnavailable(String, retryAfterSeconds: Int)
    /// Fleet mode: the blob store (inputs, row bands, results) failed after bounded retries.
    case blobStoreUnavailable(String, retryAfterSeconds: Int)

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
        case let .modelChanged(domain, submitted, now):
            return "the model of domain '\(domain)' changed since the job was submitted (model digest \(submitted.prefix(12))… then, "
                + "\(now.prefix(12))… now); the job is not run on other weights: submit it again"
        case let .databaseUnavailable(why, _): return "the job database is unavailable (\(why)); retry later"
        case let .blobStoreUnavailable(why, _): return "the blob store is unavailable (\(why)); retry later"
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

/// One job run: what to read, with which domain and options, where to write.
public struct SceneJobRun: Sendable {
    public var jobID: String
    public var input: URL
    public var format: JobInputFormat
    public var domain: LoadedDomain
    public var options: JobOptions
    /// Where the result is written; the manager renames it into place once `run` returns. A spool
    /// left there by an interrupted run of the same job on the same model is continued.
    public var output: URL
}

/// How a job's scene is segmented: the seam between the jobs layer and the segmentation pipeline.
public protocol SceneJobExecutor: Sendable {
    /// Reads only what is needed to check the scene (header; format, band count, size limits).
    func inspect(_ input: URL, format: JobInputFormat, domain: LoadedDomain, options: JobOptions) throws -> SceneHeader
    /// Model windows the scene needs with these options.
    func windowCount(_ header: SceneHeader, options: JobOptions) -> Int
    /// Segments the scene and writes the result to `run.output`; throws `EngineError.cancelled` once
    /// `cancel` is set (the partial output stays for a resume unless the job is dismissed).
    func run(_ run: SceneJobRun, cancel: CancellationToken, events: @escaping @Sendable (SegmentationEvent) -> Void) throws
}

/// The executor on the `Segmenter`: the spooled scene is read window row by window row
/// (`RasterFile`) into a resumable COG (`SegmentationOutput.resumableFile`, identity: the job), at
/// background priority. A resumed run continues at the first tile row that is durable, with the
/// statistics recorded beside the spool, so at most one tile row of windows is computed again and
/// the output equals an uninterrupted run's.
public struct PipelineSceneJobExecutor: SceneJobExecutor {
    public let engine: InferenceEngine
    public let limits: RasterLimits
    /// Opens scenes by reference (`JobInputFormat.reference`); nil: such jobs fail saying fetching is off.
    public let opener: (any SceneOpening)?

    public init(engine: InferenceEngine, limits: RasterLimits, opener: (any SceneOpening)? = nil) {
        self.engine = engine
        self.limits = limits
        self.opener = opener
    }

    /// The job's scene: the spooled file, or the files its reference names (ETags as pinned at
    /// submission), with the bytes fetched so far for a scene by reference.
    func open(_ input: URL, format: JobInputFormat) throws -> (any RasterSource, (@Sendable () -> Int64)?) {
        guard format == .reference else { return (try RasterFile.open(path: input.path, limits: limits), nil) }
        guard let opener else {
            throw RasterError.invalidArgument("this server does not read scenes by reference (start it with --fetch-allow)")
        }
        let opened = try opener.open(try SceneReference.decode(try Data(contentsOf: input)), limits: limits)
        return (opened.source, opened.bytesFetched)
    }

    public func inspect(_ input: URL, format: JobInputFormat, domain: LoadedDomain, options: JobOptions) throws -> SceneHeader {
        let (source, _) = try open(input, format: format)
        // The segmenter's own checks (band count, size limits, nodata value), nothing decoded yet.
        try engine.segmenter.check(domain, source: source, options: options.segmentation)
        return SceneHeader(width: source.width, height: source.height, bands: source.bands)
    }

    public func windowCount(_ header: SceneHeader, options: JobOptions) -> Int {
        Segmenter.windowCount(width: header.width, height: header.height, options: options.segmentation)
    }

    public func run(_ run: SceneJobRun, cancel: CancellationToken, events: @escaping @Sendable (SegmentationEvent) -> Void) throws {
        try cancel.check()
        let (source, fetched) = try open(run.input, format: run.format)
        // A scene by reference reports its bytes fetched with each progress event (the job's `bytes_fetched`).
        let report: @Sendable (SegmentationEvent) -> Void = { e in
            if let fetched, case .progress(var p) = e {
                p.bytesFetched = Int(fetched())
                events(.progress(p))
            } else {
                events(e)
            }
        }
        _ = try engine.segmenter.segment(run.domain, source: source, options: run.options.segmentation,
                                         output: .resumableFile(path: run.output.path, scoresEncoding: run.options.scoresEncoding,
                                                                identity: ResumeIdentity(input: "job \(run.jobID)")),
                                         cancel: cancel, events: report)
    }
}
