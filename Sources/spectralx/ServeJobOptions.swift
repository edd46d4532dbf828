import ArgumentParser
import Foundation
import Logging
import SpectralXBlobStore
import SpectralXEngine
import SpectralXHTTP
import SpectralXPostgres
import SpectralXRaster

/// The jobs flags of `spectralx serve` (each also read from `SPECTRALX_<NAME>`).
struct ServeJobOptions: ParsableArguments {
    @Option(help: "Directory for job metadata, spooled scenes and results (SPECTRALX_JOBS_DIR; default <cache>/jobs).")
    var jobsDir: String?
    @Option(help: "How long finished jobs and their results are kept: seconds or 90s/30m/24h/7d (SPECTRALX_JOB_TTL; default 24h).")
    var jobTtl: String?
    @Option(help: "Jobs stored at once, any state; beyond it submissions get 503 (SPECTRALX_MAX_JOBS; default 100).")
    var maxJobs: Int?
    @Option(help: "Bytes the jobs directory may hold, suffixes k/m/g; beyond it submissions get 507; fleet mode: the largest single upload (SPECTRALX_MAX_JOBS_BYTES; default 20g).")
    var maxJobsBytes: String?
    @Option(help: "Jobs computed at the same time (SPECTRALX_MAX_RUNNING_JOBS; default 1).")
    var maxRunningJobs: Int?
    @Option(help: "Largest job upload (POST /v1/domains/{name}/jobs) in bytes, suffixes k/m/g, instead of --max-body; larger gets 413 before anything is spooled (SPECTRALX_MAX_JOB_BODY; default 8g).")
    var maxJobBody: String?
    @Option(help: "Fleet mode: shared job state in PostgreSQL (postgres://user:password@host:port/db; SPECTRALX_JOBS_DB). Without --blob-store, --jobs-dir must then be a volume every replica mounts. Default: the jobs directory alone (one replica).")
    var jobsDb: String?
    @Option(help: "Fleet mode: this replica's name in job leases and logs (SPECTRALX_REPLICA_ID; default <hostname>-<pid>).")
    var replicaId: String?
    @Option(help: "Fleet mode: how long a job's lease lasts without a heartbeat before another replica takes the job over (SPECTRALX_JOB_LEASE; default 30s).")
    var jobLease: String?
    @Option(help: "Fleet mode: how often a running job's lease is renewed (SPECTRALX_JOB_HEARTBEAT; default 5s).")
    var jobHeartbeat: String?
    @Option(help: "Fleet mode: where job inputs, committed row bands and results live for every replica: file:///shared/dir (a volume every replica mounts) or s3://bucket/prefix (endpoint, region and credentials from the AWS_* variables) (SPECTRALX_BLOB_STORE; default file://<jobs-dir>/blobs).")
    var blobStore: String?
    @Option(help: "Fleet mode with an s3:// blob store: answer GET …/results with 303 to a presigned URL valid this long (e.g. 15m) instead of streaming the result (SPECTRALX_BLOB_PRESIGN; default off).")
    var blobPresign: String?

    /// The upload limit of `POST /v1/domains/{name}/jobs` (`--max-body` stays the limit of every other route).
    func jobBodyLimit() throws -> HTTPRouteBodyLimit {
        let text = maxJobBody ?? Env()["MAX_JOB_BODY"] ?? "8g"
        let bytes = try ByteSize.parse(text)
        guard bytes >= 1 else { throw CLIError("--max-job-body must be at least 1 byte") }
        return HTTPRouteBodyLimit(method: "POST", path: "/v1/domains/*/jobs", maxBodySize: bytes, name: "--max-job-body")
    }

    /// The configuration from flags, environment and defaults; `cache` is the resolved cache directory.
    func configuration(cache: URL) throws -> JobConfiguration {
        let env = Env()
        let dir = jobsDir ?? env["JOBS_DIR"]
        let config = JobConfiguration(
            directory: dir.map { URL(fileURLWithPath: $0) } ?? cache.appendingPathComponent("jobs"),
            ttl: try Self.duration(jobTtl ?? env["JOB_TTL"] ?? "24h"),
            maxJobs: try maxJobs ?? env.int("MAX_JOBS") ?? 100,
            maxBytes: try ByteSize.parse(maxJobsBytes ?? env["MAX_JOBS_BYTES"] ?? "20g"),
            maxRunning: try maxRunningJobs ?? env.int("MAX_RUNNING_JOBS") ?? 1)
        guard config.maxJobs >= 1 else { throw CLIError("--max-jobs must be at least 1") }
        guard config.maxRunning >= 1 else { throw CLIError("--max-running-jobs must be at least 1") }
        return config
    }

    /// The job service: a `FleetJobManager` on the job database when `--jobs-db` is given, else a `JobManager`.
    func service(engine: InferenceEngine, executor: any SceneJobExecutor, configuration: JobConfiguration) throws -> any JobService {
        let env = Env()
        guard let url = jobsDb ?? env["JOBS_DB"] else {
            return try JobManager(engine: engine, executor: executor, configuration: configuration, logger: Logger(label: "spectralx.jobs"))
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw CLIError("--jobs-db must be a postgres:// URL, got '\(redactedDatabaseURL(url))'")
        }
        let lease = try Self.duration(jobLease ?? env["JOB_LEASE"] ?? "30s")
        let heartbeat = try Self.duration(jobHeartbeat ?? env["JOB_HEARTBEAT"] ?? "5s")
        guard heartbeat * 2 <= lease else { throw CLIError("--job-heartbeat must be at most half of --job-lease") }
        let replica = replicaId ?? env["REPLICA_ID"] ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        var blobs: (any BlobStore)?
        if let location = blobStore ?? env["BLOB_STORE"], !location.isEmpty {
            do { blobs = try BlobStores.open(url: location) } catch { throw CLIError("--blob-store: \(error)") }
        }
        let presign = try (blobPresign ?? env["BLOB_PRESIGN"]).map { try Self.duration($0) }
        if presign != nil, !(blobs is S3BlobStore) { throw CLIError("--blob-presign needs an s3:// --blob-store") }
        let pool = PostgresPool(.init(url: url, size: configuration.maxRunning + 3))
        do {
            return try FleetJobManager(engine: engine, executor: executor, table: PostgresJobTable(pool: pool),
                                       configuration: FleetConfiguration(jobs: configuration, replicaID: replica, lease: lease,
                                                                         heartbeat: heartbeat, blobs: blobs, presign: presign),
                                       logger: Logger(label: "spectralx.fleet"))
        } catch let e as JobError {
            throw CLIError("cannot start the fleet job manager on \(redactedDatabaseURL(url)): \(e)")
        }
    }

    /// `90`, `90s`, `30m`, `24h`, `7d`.
    static func duration(_ s: String) throws -> Duration {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var number = Substring(t), scale = 1.0
        if let last = t.last, let u = units[last] { number = number.dropLast(); scale = u }
        guard let v = Double(number), v > 0, v.isFinite else { throw CLIError("'\(s)' is not a duration (e.g. 24h, 30m, 90s)") }
        return .milliseconds(Int64(v * scale * 1000))
    }
}
