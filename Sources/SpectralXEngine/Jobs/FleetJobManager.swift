import Foundation
import Logging
import Metrics
import Synchronization
import SpectralXBlobStore
import SpectralXPostgres
import SpectralXRaster
import SpectralXSupport

/// The knobs of a fleet replica (`serve --jobs-db … --replica-id … --job-lease … --job-heartbeat …
/// --blob-store … --blob-presign …`).
public struct FleetConfiguration: Sendable {
    /// This replica's working directory (its copies of inputs, spools being written, results before
    /// upload; nothing another replica needs), the TTL and limits.
    public var jobs: JobConfiguration
    /// Where inputs, committed row bands and results live for every replica (`--blob-store`); nil: a
    /// `FileBlobStore` in `<jobs directory>/blobs` (a volume every replica mounts).
    public var blobs: (any BlobStore)?
    /// Answer `GET …/results` with a `303` to a presigned URL valid this long, when the store can
    /// presign (S3); nil: stream the result through the replica.
    public var presign: Duration?
    /// This replica's name in leases and logs (unique in the fleet: pod name, or host and pid).
    public var replicaID: String
    /// How long a claim lasts without a heartbeat; after it another replica takes the job over.
    public var lease: Duration
    /// How often a running job's lease is renewed (well below `lease`).
    public var heartbeat: Duration
    /// How often an idle worker looks for claimable jobs.
    public var pollInterval: Duration

    public init(jobs: JobConfiguration, replicaID: String, lease: Duration = .seconds(30), heartbeat: Duration = .seconds(5),
                pollInterval: Duration = .seconds(1), blobs: (any BlobStore)? = nil, presign: Duration? = nil) {
        self.jobs = jobs
        self.blobs = blobs
        self.presign = presign
        self.replicaID = replicaID
        self.lease = lease
        self.heartbeat = heartbeat
        self.pollInterval = pollInterval
    }
}

/// Scene jobs shared by a fleet of replicas: any replica answers any job, a dead replica's job is taken
/// over by another, and no job is lost or finished twice.
///
/// State: every job's record, status and lease are rows of ``PostgresJobTable`` (the truth every replica
/// reads); its bytes are objects of a ``BlobStore`` (S3 or a shared directory) under `jobs/<id>/`, so the
/// replica that resumes a job needs nothing from another replica's disk. Workers claim accepted jobs (or
/// ones whose lease expired) and renew the lease every `heartbeat`; progress is committed under the lease
/// at every durable row band and at most every second. Every write names the lease generation, so a
/// replica that lost its lease (killed, frozen, partitioned) writes nothing more to the job's row.
///
/// Blobs, written so that S3 suffices (no append, no rename):
/// - `jobs/<id>/input.tif|npy`: uploaded once (multipart when large) before the job's row is inserted;
///   a submission whose upload fails answers 503 `blob_store_unavailable` and leaves nothing behind.
/// - `jobs/<id>/g<N>/band-<rows>`: each new durable row band of the spool the run writes locally: the
///   spool's state files and the tile bytes added since the previous band. Uploaded *before* the commit
///   that lists it in the record (`spool_bands`); a stale generation's band is under its own `g<N>` and its
///   commit fails, so no record ever lists it. A replica taking a job over rebuilds the spool from the
///   listed bands and continues at its last durable row; the result equals an uninterrupted run's.
/// - `jobs/<id>/result-g<N>.tif`: the COG assembled locally, uploaded whole (multipart), and named in the
///   record only by the `finish` that succeeds under the lease after the upload completed; a replica
///   whose finish fails deletes its own object. On success the input and bands go; on failure, `DELETE`
///   and expiry everything under `jobs/<id>/`.
///
/// Blob store faults: band uploads are retried at the next commit (the band grows; nothing is committed
/// without its band); input downloads, band downloads and the result upload are retried with bounded
/// backoff (1, 2, 4 s) while the lease is held, then the job fails with a message naming the blob store.
/// The model digest recorded at submission must match, as on one replica. `SIGTERM` releases a running
/// job's lease after its batch in flight, so another replica continues at once.
// @unchecked: the mutable fields are guarded by `condition`.
public final class FleetJobManager: JobService, @unchecked Sendable {
    public let configuration: FleetConfiguration
    public let store: JobStore
    /// Inputs, committed row bands and results of every job, for every replica.
    public let blobs: any BlobStore
    let table: PostgresJobTable
    let engine: InferenceEngine
    let executor: any SceneJobExecutor
    let logger: Logger

    private let condition = NSCondition()
    private var running: [String: (token: CancellationToken, lease: PostgresJobTable.Lease)] = [:]
    private var stopReasons: [String: FleetStop] = [:]
    private var stopping = false
    private var activeWorkers = 0

    // Labelled with the replica: the series of a fleet stay apart wherever they are collected together.
    private let claimed: Counter
    private let renewals: Counter
    private let leasesLost: Counter
    private let takeovers: Counter
    private let windowCounter: Counter
    private let blobBytesIn: Counter
    private let blobBytesOut: Counter

    /// Why this replica stopped a job it ran.
    enum FleetStop: Equatable {
        case shutdown, dismissed, leaseLost
    }

    /// Applies the schema (advisory-locked, idempotent) and starts the workers and the sweeper.
    public init(engine: InferenceEngine, executor: any SceneJobExecutor, table: PostgresJobTable, configuration: FleetConfiguration,
                logger: Logger = Logger(label: "spectralx.fleet")) throws {
        self.engine = engine
        self.executor = executor
        self.table = table
        self.configuration = configuration
        self.logger = logger
        let replica = [("replica", configuration.replicaID)]
        claimed = Counter(label: "spectralx_fleet_jobs_claimed_total", dimensions: replica)
        renewals = Counter(label: "spectralx_fleet_lease_renewals_total", dimensions: replica)
        leasesLost = Counter(label: "spectralx_fleet_leases_lost_total", dimensions: replica)
        takeovers = Counter(label: "spectralx_fleet_takeovers_total", dimensions: replica)
        // Its own family: Prometheus keeps a family all labelled or all not (one replica's is unlabelled).
        windowCounter = Counter(label: "spectralx_fleet_job_windows_total", dimensions: replica)
        blobBytesIn = Counter(label: "spectralx_fleet_blob_bytes_in_total", dimensions: replica)
        blobBytesOut = Counter(label: "spectralx_fleet_blob_bytes_out_total", dimensions: replica)
        store = try JobStore(directory: configuration.jobs.directory)
        if let b = configuration.blobs {
            blobs = b
        } else {
            do {
                blobs = try FileBlobStore(directory: configuration.jobs.directory.appendingPathComponent("blobs", isDirectory: true))
            } catch { throw JobError.storage("cannot create the blob directory: \(error)") }
        }
        do {
            let applied = try table.migrate()
            if !applied.isEmpty { logger.info("job database schema migrated", metadata: ["versions": "\(applied)"]) }
        } catch {
            throw JobError.databaseUnavailable(error.description, retryAfterSeconds: 5)
        }
        for i in 0..<max(1, configuration.jobs.maxRunning) {
            let t = Thread { [self] in workerLoop() }
            t.name = "spectralx-fleet-worker-\(i)"
            t.start()
        }
        let sweeper = Thread { [self] in sweepLoop() }
        sweeper.name = "spectralx-fleet-sweeper"
        sweeper.start()
    }

    // MARK: - database access with typed failures

    private func database<T>(_ body: () throws(PostgresError) -> T) throws -> T {
        do {
            return try body()
        } catch {
            let seconds = Int((Double(table.pool.retryAfter.components.seconds)).rounded(.up))
            throw JobError.databaseUnavailable(error.kind == .connection ? "unreachable" : error.description,
                                               retryAfterSeconds: max(1, seconds))
        }
    }

    static func decode(_ json: String) -> JobRecord? { try? JobRecord.decoder.decode(JobRecord.self, from: Data(json.utf8)) }
    static func encode(_ r: JobRecord) -> String { String(decoding: (try? JobRecord.encoder.encode(r)) ?? Data("{}".utf8), as: UTF8.self) }

    // MARK: - queries

    public func record(_ id: String) throws -> JobRecord {
        guard JobRecord.isValidID(id) else { throw JobError.invalidID(id) }
        guard let row = try database({ () throws(PostgresError) in try table.get(id) }), let r = Self.decode(row.record) else {
            throw JobError.noSuchJob(id)
        }
        return r
    }

    public func jobs(statuses: Set<JobStatus>?) throws -> [JobRecord] {
        let rows = try database { () throws(PostgresError) in try table.list(statuses: statuses.map { $0.map(\.rawValue).sorted() }) }
        return rows.compactMap { Self.decode($0.record) }
    }

    public func admissionError(bytes: Int64?) -> JobError? {
        if condition.withLock({ stopping }) { return .shuttingDown }
        do {
            // A count, not the records: this runs for every job upload's head.
            let count = try database { () throws(PostgresError) in try table.count(statuses: ["accepted", "running", "successful", "failed"]) }
            if count >= configuration.jobs.maxJobs { return .tooManyJobs(limit: configuration.jobs.maxJobs, retryAfterSeconds: 60) }
        } catch let e as JobError {
            return e
        } catch {
            return .storage("\(error)")
        }
        // Per upload only: the shared store's capacity is the store's (walking it per request would not scale).
        if let bytes, bytes > configuration.jobs.maxBytes {
            return .storageFull(needed: bytes, available: configuration.jobs.maxBytes, limit: configuration.jobs.maxBytes)
        }
        return nil
    }

    public func unavailableReason() -> String? {
        do {
            try table.pool.withConnection { (c: PostgresConnection) throws(PostgresError) in try c.query("SELECT 1") }
            return nil
        } catch {
            return "job database: \(error.kind == .connection ? "unreachable" : error.description)"
        }
    }

    // MARK: - submit and dismiss

    public func submit(domain: LoadedDomain, options: JobOptions, format: JobInputFormat, upload: JobUpload,
                       ownerKeyHash: String?) throws -> JobRecord {
        if let e = admissionError(bytes: upload.count) { throw e }
        let id = JobRecord.newID()
        var draft = JobRecord(jobID: id, domain: domain.name, options: options, inputFormat: format, inputBytes: upload.count,
                              width: 0, height: 0, bands: 0, windowsTotal: 0, ownerKeyHash: ownerKeyHash)
        draft.modelDigest = domain.modelDigest
        let record = try store.create(draft, place: { url in try upload.place(at: url) }, check: { url in
            let header = try executor.inspect(url, format: format, domain: domain, options: options)
            var r = draft
            (r.width, r.height, r.bands) = (header.width, header.height, header.bands)
            r.windowsTotal = executor.windowCount(header, options: options)
            return r
        })
        let inputKey = Self.inputKey(id, format: format)
        do {
            // Before the row: a job any replica can claim has its input in the store.
            let info = try blob("upload the input", attempts: 2, token: nil, metadata: ["job": "\(id)"]) { try blobs.put(inputKey, fromFile: store.inputURL(id, format: format)) }
            blobBytesOut.increment(by: Int(info.size))
            try database { () throws(PostgresError) in
                try table.insert(jobID: id, created: record.created, ownerKey: ownerKeyHash, record: Self.encode(record))
            }
        } catch {
            store.remove(id)  // not recorded: nothing of it may stay behind
            try? blobs.delete(inputKey)
            throw error
        }
        condition.withLock { condition.broadcast() }  // an idle worker of this replica claims it at once
        logger.info("job accepted", metadata: ["job": "\(id)", "domain": "\(domain.name)", "windows": "\(record.windowsTotal)"])
        return record
    }

    @discardableResult
    public func dismiss(_ id: String) throws -> JobRecord {
        guard JobRecord.isValidID(id) else { throw JobError.invalidID(id) }
        let now = Date()
        var dismissed: JobRecord?
        let before = try database { () throws(PostgresError) in
            try table.dismiss(id) { row in
                var r = Self.decode(row.record) ?? JobRecord(jobID: id, domain: "?", options: JobOptions(), inputFormat: .tiff,
                                                            inputBytes: 0, width: 0, height: 0, bands: 0, windowsTotal: 0,
                                                            ownerKeyHash: row.ownerKey)
                r.message = row.status == "running" ? "dismissed while running at \(r.windowsDone)/\(r.windowsTotal) windows"
                    : "dismissed (was \(row.status))"
                r.status = .dismissed
                r.finished = r.finished ?? now
                r.updated = now
                r.etaSeconds = nil
                dismissed = r
                return Self.encode(r)
            }
        }
        guard let before, let record = dismissed else {
            if let row = try database({ () throws(PostgresError) in try table.get(id) }), row.status == "dismissed" {
                throw JobError.alreadyDismissed(id)
            }
            throw JobError.noSuchJob(id)
        }
        let local = condition.withLock { () -> Bool in
            guard let run = running[id] else { return false }
            stopReasons[id] = .dismissed
            run.token.cancel()
            return true
        }
        // Running elsewhere: that replica sees the dismissal at its next heartbeat or commit and removes
        // the files; the sweeper removes them if it died first.
        if !local && before.status != "running" { removeEverything(id) }
        logger.info("job dismissed", metadata: ["job": "\(id)", "was": "\(before.status)"])
        return record
    }

    // MARK: - shutdown

    public func beginShutdown() {
        condition.withLock {
            stopping = true
            for (id, run) in running {
                if stopReasons[id] == nil { stopReasons[id] = .shutdown }
                run.token.cancel()
            }
            condition.broadcast()
        }
    }

    public func shutdown(until deadline: Date?) -> Bool {
        beginShutdown()
        condition.lock()
        defer { condition.unlock() }
        while activeWorkers > 0 {
            if let deadline {
                if !condition.wait(until: deadline) && activeWorkers > 0 { return false }
            } else {
                condition.wait()
            }
        }
        return true
    }

    // MARK: - workers

    private func workerLoop() {
        condition.withLock { activeWorkers += 1 }
        defer { condition.withLock { activeWorkers -= 1; condition.broadcast() } }
        var lastComplaint: ContinuousClock.Instant?
        while !condition.withLock({ stopping }) {
            let claim: PostgresJobTable.Claim?
            do {
                claim = try table.claim(owner: configuration.replicaID, lease: configuration.lease)
            } catch {
                if lastComplaint.map({ $0.duration(to: .now) > .seconds(30) }) ?? true {
                    logger.warning("cannot claim jobs: \(error.description)")
                    lastComplaint = .now
                }
                claim = nil
            }
            guard let claim else {
                condition.withLock {
                    if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: (configuration.pollInterval).inSeconds)) }
                }
                continue
            }
            claimed.increment()
            if claim.isTakeover { takeovers.increment() }
            run(claim)
        }
    }

    private func metadata(_ lease: PostgresJobTable.Lease) -> Logger.Metadata {
        ["job": "\(lease.jobID)", "lease_generation": "\(lease.generation)", "replica": "\(configuration.replicaID)"]
    }

    /// The spool of generation `g`'s partial result.
    private func partialURL(_ id: String, generation g: Int64) -> URL {
        store.jobDirectory(id).appendingPathComponent("result.partial.g\(g).tif")
    }

    /// Runs one claimed job to its end on this replica (or until it is stopped).
    private func run(_ claim: PostgresJobTable.Claim) {
        let lease = claim.lease, id = lease.jobID
        guard var r = Self.decode(claim.row.record) else {
            logger.error("unreadable job record; failing the job", metadata: metadata(lease))
            _ = try? table.finish(lease, status: "failed", record: claim.row.record)
            return
        }
        let now = Date()
        r.attempts += 1
        r.status = .running
        r.started = r.started ?? now
        r.updated = now
        r.replica = configuration.replicaID
        r.message = claim.isTakeover ? "taken over by replica \(configuration.replicaID) at row \(r.rowsDone ?? 0)" : "running"
        if claim.isTakeover { logger.info("job taken over", metadata: metadata(lease).merging(["rows_done": "\(r.rowsDone ?? 0)"]) { $1 }) }
        let partial = partialURL(id, generation: lease.generation)
        let token = CancellationToken()
        condition.withLock { running[id] = (token, lease) }
        let committed = Committed(record: r, rows: r.rowsDone ?? 0, spool: COGWriter.spoolDirectory(for: partial.path))
        guard commit(lease, committed: committed, force: true, token: token) else {
            let reason = condition.withLock { () -> FleetStop? in
                running[id] = nil
                return stopReasons.removeValue(forKey: id)
            }
            // Dismissed between the claim and this first commit: nobody else removes the job's files.
            if reason == .dismissed { removeEverything(id) } else { removeGenerationFiles(id, generation: lease.generation) }
            return
        }
        let beat = Heartbeat()
        let heart = Thread { [self] in heartbeatLoop(lease, token: token, beat: beat) }
        heart.name = "spectralx-fleet-heartbeat"
        heart.start()
        let outcome = execute(r, partial: partial, lease: lease, token: token, committed: committed)
        beat.stop()
        let reason = condition.withLock { () -> FleetStop? in
            running[id] = nil
            return stopReasons.removeValue(forKey: id)
        }
        var final = committed.record
        final.updated = Date()
        final.etaSeconds = nil
        switch outcome {
        case let .success(name, bytes, etag):
            final.status = .successful
            final.progress = 100
            final.windowsDone = final.windowsTotal
            final.finished = Date()
            final.resultBytes = bytes
            final.resultETag = etag
            final.resultFile = name
            final.spoolBands = nil
            final.message = "successful: \(final.windowsTotal) windows"
            let state = (try? table.finish(lease, status: "successful", record: Self.encode(final))) ?? .lost
            if state == .held {
                removeEverything(id, keeping: Self.prefix(id) + name)
                logger.info("job successful", metadata: metadata(lease).merging(["bytes": "\(bytes)"]) { $1 })
            } else {
                try? blobs.delete(Self.prefix(id) + name)  // this generation's own object: never the job's result
                if state == .dismissed { removeEverything(id) } else { removeGenerationFiles(id, generation: lease.generation) }
                logger.warning("finished job not recorded: the lease is gone", metadata: metadata(lease))
            }
        case .stopped:
            removeGenerationFiles(id, generation: lease.generation)  // the committed bands are in the store
            switch reason ?? .shutdown {
            case .shutdown:
                final.message = "released by replica \(configuration.replicaID) at \(final.windowsDone)/\(final.windowsTotal) windows (shutdown); another replica continues"
                final.replica = nil
                _ = try? table.release(lease, record: Self.encode(final))
                logger.info("job released", metadata: metadata(lease))
            case .dismissed:
                removeEverything(id)
            case .leaseLost:
                leasesLost.increment()
                logger.warning("job lease lost; stopped without writing", metadata: metadata(lease))
            }
        case .failure(let message):
            final.status = .failed
            final.finished = Date()
            final.message = "failed: \(message)"
            final.spoolBands = nil
            if (try? table.finish(lease, status: "failed", record: Self.encode(final))) == .held {
                removeEverything(id)
            } else {
                removeGenerationFiles(id, generation: lease.generation)
            }
            logger.error("job failed", metadata: metadata(lease).merging(["error": "\(message)"]) { $1 })
        }
    }

    private enum Outcome {
        /// The result's name under the job's prefix, uploaded.
        case success(String, bytes: Int64, etag: String)
        case stopped
        case failure(String)
    }

    /// The record as last committed, and the rows committed with it (the run's callbacks write it, the
    /// commits read it).
    private final class Committed: Sendable {
        struct State {
            var record: JobRecord
            var rows: Int
            var at: ContinuousClock.Instant = .now
            /// Windows this run computed, as last reported (for the window counter).
            var reported = 0
            /// The spool's tile byte counts covered by the bands in `record.spoolBands`.
            var shipped: [UInt64] = []
        }
        let state: Mutex<State>
        /// The local spool directory of this generation's partial result.
        let spool: String
        init(record: JobRecord, rows: Int, spool: String) {
            state = Mutex(State(record: record, rows: rows))
            self.spool = spool
        }
        var record: JobRecord { state.withLock { $0.record } }
    }

    /// Writes the record under the lease when rows advanced, when `force`, or a second after the last
    /// write; false (and the token cancelled) when the lease is gone. A new durable row band is uploaded
    /// first, so the record committed never lists a band that is not in the store.
    @discardableResult
    private func commit(_ lease: PostgresJobTable.Lease, committed: Committed, force: Bool, token: CancellationToken) -> Bool {
        let due = committed.state.withLock { c -> Bool in
            force || (c.record.rowsDone ?? 0) > c.rows || c.at.duration(to: .now) >= .seconds(1)
        }
        guard due else { return true }
        shipBand(lease, committed: committed)
        let (r, rows) = committed.state.withLock { c in (c.record, c.record.rowsDone ?? 0) }
        do {
            let state = try table.commitProgress(lease, rows: rows, record: Self.encode(r), extend: configuration.lease)
            committed.state.withLock { c in
                c.rows = max(c.rows, rows)
                c.at = .now
            }
            if state != .held { stop(lease.jobID, state == .dismissed ? .dismissed : .leaseLost, token) }
            return state == .held
        } catch {
            // The database is away: keep computing; the heartbeat decides when the lease must be presumed lost.
            return true
        }
    }

    private func stop(_ id: String, _ reason: FleetStop, _ token: CancellationToken) {
        condition.withLock { if stopReasons[id] == nil { stopReasons[id] = reason } }
        token.cancel()
    }

    /// Runs the job's scene outside the lock (the same executor as one replica's jobs).
    private func execute(_ r: JobRecord, partial: URL, lease: PostgresJobTable.Lease, token: CancellationToken,
                         committed: Committed) -> Outcome {
        let id = r.jobID
        do {
            let domainLease = try engine.store.lease(r.domain)
            defer { domainLease.release() }
            if let submitted = r.modelDigest, submitted != domainLease.domain.modelDigest {
                throw JobError.modelChanged(domain: r.domain, submitted: submitted, now: domainLease.domain.modelDigest)
            }
            let input = try ensureInput(r, token: token)
            let bands = try rebuildSpool(r.spoolBands ?? [], at: committed.spool, lease: lease, token: token)
            committed.state.withLock { c in
                c.record.spoolBands = bands
                c.shipped = bands.isEmpty ? [] : COGWriter.durableState(spoolDirectory: committed.spool)?.byteCounts ?? []
            }
            let clock = ContinuousClock(), started = clock.now
            let run = SceneJobRun(jobID: id, input: input, format: r.inputFormat,
                                  domain: domainLease.domain, options: r.options, output: partial)
            try executor.run(run, cancel: token) { [self] event in
                committed.state.withLock { c in
                    switch event {
                    case .statistics(let stats):
                        c.record.statistics = stats
                    case .progress(let p):
                        let added = p.windowsComputed - c.reported
                        if added > 0 { windowCounter.increment(by: added) }
                        c.reported = max(c.reported, p.windowsComputed)
                        c.record.apply(p, elapsed: started.duration(to: clock.now).inSeconds)
                    }
                }
                commit(lease, committed: committed, force: false, token: token)
            }
            try token.check()
            let result = store.jobDirectory(id).appendingPathComponent("result-g\(lease.generation).tif")
            try JobStore.durableRename(partial, to: result)
            let size = (try? FileManager.default.attributesOfItem(atPath: result.path)[.size] as? NSNumber)?.int64Value ?? 0
            let digest: String
            do { digest = try SHA256.hash(fileAtPath: result.path).hex } catch { throw JobError.storage("\(error)") }
            // Whole or not at all (multipart completes atomically); named in the record only after this.
            let info = try blob("upload the result", token: token, metadata: metadata(lease)) { try blobs.put(Self.prefix(id) + result.lastPathComponent, fromFile: result) }
            blobBytesOut.increment(by: Int(info.size))
            try? FileManager.default.removeItem(at: result)
            return .success(result.lastPathComponent, bytes: size, etag: "\"\(digest.prefix(32))\"")
        } catch {
            if token.isCancelled { return .stopped }
            if case EngineError.shuttingDown? = error as? EngineError { return .stopped }
            return .failure("\(error)")
        }
    }

    /// Renews the lease every `heartbeat` until stopped; stops the job when the lease is gone, or when it
    /// could not be renewed for a whole lease period (the database unreachable: another replica may own it).
    private func heartbeatLoop(_ lease: PostgresJobTable.Lease, token: CancellationToken, beat: Heartbeat) {
        var lastRenewed = ContinuousClock.now
        while beat.wait(configuration.heartbeat) {
            do {
                switch try table.renew(lease, for: configuration.lease) {
                case .held:
                    renewals.increment()
                    lastRenewed = .now
                case .lost:
                    stop(lease.jobID, .leaseLost, token)
                    return
                case .dismissed:
                    stop(lease.jobID, .dismissed, token)
                    return
                }
            } catch {
                if lastRenewed.duration(to: .now) >= configuration.lease {
                    logger.warning("lease not renewable for a whole lease period; stopping", metadata: metadata(lease))
                    stop(lease.jobID, .leaseLost, token)
                    return
                }
            }
        }
    }

    // MARK: - blobs

    /// Everything of job `id` in the blob store is under this prefix.
    static func prefix(_ id: String) -> String { "jobs/\(id)/" }
    static func inputKey(_ id: String, format: JobInputFormat) -> String { prefix(id) + format.fileName }
    /// Zero-padded rows, so a listing sorts in row order.
    static func bandKey(_ id: String, generation: Int64, rows: Int) -> String {
        prefix(id) + "g\(generation)/band-" + String(repeating: "0", count: max(0, 9 - String(rows).count)) + String(rows)
    }

    /// Runs a blob store operation, retrying a transient failure (unreachable, 5xx, local I/O such as a
    /// full disk) after 1, 2, 4 … s, at most `attempts` times in all and never once `token` is cancelled;
    /// the last failure is thrown as `JobError.blobStoreUnavailable`. The HTTP client's own retries of
    /// idempotent requests come on top.
    private func blob<T>(_ what: String, attempts: Int = 4, token: CancellationToken?, metadata: Logger.Metadata,
                         _ body: () throws -> T) throws -> T {
        var delay = 1.0
        for attempt in 1... {
            do {
                return try body()
            } catch let e as BlobStoreError {
                switch e {
                case .transport, .server, .io:
                    guard attempt < attempts, !(token?.isCancelled ?? false) else {
                        throw JobError.blobStoreUnavailable("\(what): \(e)", retryAfterSeconds: 5)
                    }
                    logger.warning("blob store: \(what) failed, retrying in \(Int(delay)) s: \(e)", metadata: metadata)
                    // Sliced so that a cancelled job stops waiting promptly.
                    let until = ContinuousClock.now + .seconds(delay)
                    while ContinuousClock.now < until && !(token?.isCancelled ?? false) { Thread.sleep(forTimeInterval: 0.1) }
                    delay *= 2
                default:
                    throw JobError.blobStoreUnavailable("\(what): \(e)", retryAfterSeconds: 5)
                }
            }
        }
        fatalError("unreachable: the loop returns or throws")
    }

    /// The job's input on this replica's disk: the copy made at submission, or downloaded from the store.
    private func ensureInput(_ r: JobRecord, token: CancellationToken) throws -> URL {
        let url = store.inputURL(r.jobID, format: r.inputFormat)
        if let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value, size == r.inputBytes {
            return url
        }
        try FileManager.default.createDirectory(at: store.jobDirectory(r.jobID), withIntermediateDirectories: true)
        let info = try blob("download the input", token: token, metadata: ["job": "\(r.jobID)", "replica": "\(configuration.replicaID)"]) {
            try blobs.get(Self.inputKey(r.jobID, format: r.inputFormat), range: nil, toFile: url)
        }
        blobBytesIn.increment(by: Int(info.size))
        return url
    }

    /// A band object: an 8-byte big-endian header length, the header (JSON), then the tile bytes.
    private struct BandHeader: Codable {
        /// The spool's state files (`state.json`, `resume.json`) when the band was durable.
        var files: [String: Data]
        var start: Int64
        var end: Int64
        var rows: Int
    }

    /// Uploads the spool's new durable rows as a band object and lists it in the record to be committed;
    /// on failure nothing is listed and the next commit tries again with a larger band.
    private func shipBand(_ lease: PostgresJobTable.Lease, committed: Committed) {
        let dir = committed.spool
        guard let (rows, counts) = COGWriter.durableState(spoolDirectory: dir), rows > 0 else { return }
        var (shipped, bands) = committed.state.withLock { ($0.shipped, $0.record.spoolBands ?? []) }
        guard counts != shipped else { return }
        if counts.count < shipped.count || Array(counts.prefix(shipped.count)) != shipped {
            (shipped, bands) = ([], [])  // the spool started over (the resume was refused): so do the bands
        }
        let start = Int64(shipped.reduce(0, +)), end = Int64(counts.reduce(0, +))
        let key = Self.bandKey(lease.jobID, generation: lease.generation, rows: rows)
        let object = URL(fileURLWithPath: dir + ".band")
        defer { try? FileManager.default.removeItem(at: object) }
        do {
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".json") {
                files[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            }
            let header = try JSONEncoder().encode(BandHeader(files: files, start: start, end: end, rows: rows))
            FileManager.default.createFile(atPath: object.path, contents: nil)
            let out = try FileHandle(forWritingTo: object)
            defer { try? out.close() }
            var length = UInt64(header.count).bigEndian
            try out.write(contentsOf: Data(bytes: &length, count: 8))
            try out.write(contentsOf: header)
            let tiles = try FileHandle(forReadingFrom: URL(fileURLWithPath: dir + "/" + COGWriter.tileFileName))
            defer { try? tiles.close() }
            try tiles.seek(toOffset: UInt64(start))
            var left = end - start
            while left > 0 {
                guard let chunk = try tiles.read(upToCount: Int(min(left, 4 << 20))), !chunk.isEmpty else {
                    throw JobError.storage("the spool's tile file is shorter than its state says")
                }
                try out.write(contentsOf: chunk)
                left -= Int64(chunk.count)
            }
            try out.close()
            let info = try blobs.put(key, fromFile: object)
            blobBytesOut.increment(by: Int(info.size))
        } catch {
            logger.warning("row band not uploaded; retried at the next commit: \(error)", metadata: metadata(lease))
            return
        }
        committed.state.withLock { c in
            c.shipped = counts
            c.record.spoolBands = bands + [JobRecord.SpoolBand(key: key, rows: rows, start: start, end: end)]
        }
    }

    /// Rebuilds the spool at `dir` from the committed bands (tile bytes in order, state files of the
    /// last); the bands it stands on, or [] when there were none or their chain is broken (the job then
    /// starts over at row 0). A store that stays unreachable fails the job.
    private func rebuildSpool(_ bands: [JobRecord.SpoolBand], at dir: String, lease: PostgresJobTable.Lease,
                              token: CancellationToken) throws -> [JobRecord.SpoolBand] {
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        guard !bands.isEmpty else { return [] }
        let download = URL(fileURLWithPath: dir + ".band")
        defer { try? fm.removeItem(at: download) }
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            fm.createFile(atPath: dir + "/" + COGWriter.tileFileName, contents: nil)
            let tiles = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + COGWriter.tileFileName))
            defer { try? tiles.close() }
            var written: Int64 = 0, files: [String: Data] = [:]
            for band in bands {
                let info = try blob("download a row band", token: token, metadata: metadata(lease)) { try blobs.get(band.key, range: nil, toFile: download) }
                blobBytesIn.increment(by: Int(info.size))
                let h = try FileHandle(forReadingFrom: download)
                defer { try? h.close() }
                guard let lengthBytes = try h.read(upToCount: 8), lengthBytes.count == 8 else { throw JobError.storage("band \(band.key) is truncated") }
                let length = lengthBytes.reduce(0) { $0 << 8 | Int($1) }
                guard length > 0, length < 64 << 20, let headerBytes = try h.read(upToCount: length), headerBytes.count == length else {
                    throw JobError.storage("band \(band.key) has no readable header")
                }
                let header = try JSONDecoder().decode(BandHeader.self, from: headerBytes)
                guard header.start == written, header.start == band.start, header.end == band.end else {
                    throw JobError.storage("band \(band.key) does not continue the previous one")
                }
                var left = header.end - header.start
                while left > 0 {
                    guard let chunk = try h.read(upToCount: Int(min(left, 4 << 20))), !chunk.isEmpty else {
                        throw JobError.storage("band \(band.key) is truncated")
                    }
                    try tiles.write(contentsOf: chunk)
                    left -= Int64(chunk.count)
                }
                written = header.end
                files = header.files
            }
            for (name, data) in files where !name.contains("/") { try data.write(to: URL(fileURLWithPath: dir + "/" + name)) }
            logger.info("spool rebuilt from the store", metadata: metadata(lease).merging(["bands": "\(bands.count)", "rows": "\(bands.last?.rows ?? 0)"]) { $1 })
            return bands
        } catch let e as JobError {
            if case .blobStoreUnavailable = e { try? fm.removeItem(atPath: dir); throw e }
            try? fm.removeItem(atPath: dir)
            logger.warning("cannot rebuild the spool from its bands; the job restarts at row 0: \(e)", metadata: metadata(lease))
            return []
        } catch {
            try? fm.removeItem(atPath: dir)
            logger.warning("cannot rebuild the spool from its bands; the job restarts at row 0: \(error)", metadata: metadata(lease))
            return []
        }
    }

    /// This replica's working files of one generation (its partial result and spool); the rest of the
    /// job directory may be in use by another replica when the jobs directory is shared.
    private func removeGenerationFiles(_ id: String, generation g: Int64) {
        let partial = partialURL(id, generation: g)
        try? FileManager.default.removeItem(at: partial)
        try? FileManager.default.removeItem(atPath: COGWriter.spoolDirectory(for: partial.path))
    }

    /// The job's local directory and every object under its prefix except `keeping`.
    private func removeEverything(_ id: String, keeping: String? = nil) {
        store.remove(id)
        do {
            for object in try blobs.list(prefix: Self.prefix(id)) where object.key != keeping { try blobs.delete(object.key) }
        } catch {
            logger.warning("cannot remove the job's blobs (the sweeper tries again): \(error)", metadata: ["job": "\(id)"])
        }
    }

    public func result(_ r: JobRecord) throws -> JobResult {
        guard let name = r.resultFile else { throw JobError.noSuchJob(r.jobID) }
        let key = Self.prefix(r.jobID) + name
        if let presign = configuration.presign, let s3 = blobs as? S3BlobStore {
            do {
                return .redirect(try s3.presignedGetURL(key, expires: max(1, Int(presign.components.seconds))))
            } catch { throw JobError.blobStoreUnavailable("presign the result: \(error)", retryAfterSeconds: 5) }
        }
        let info: BlobInfo
        do {
            info = try blobs.head(key)
        } catch BlobStoreError.notFound {
            throw JobError.noSuchJob(r.jobID)  // removed (expired or dismissed) since the record was read
        } catch {
            throw JobError.blobStoreUnavailable("read the result: \(error)", retryAfterSeconds: 5)
        }
        let blobs = blobs, counter = blobBytesIn
        return .stored(StoredResult(size: info.size) { offset, length in
            let data = try blobs.get(key, range: ByteRange(offset: offset, length: length), ifMatch: info.etag)
            counter.increment(by: data.count)
            return data
        })
    }

    // MARK: - expiry

    private func sweepLoop() {
        while !condition.withLock({ stopping }) {
            sweep(now: Date())
            condition.withLock {
                if !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: (configuration.jobs.sweepInterval).inSeconds)) }
            }
        }
    }

    /// Any replica: removes finished jobs past the TTL (row first, then files) and the files of jobs
    /// dismissed while their replica was gone.
    func sweep(now: Date) {
        let ttl = (configuration.jobs.ttl).inSeconds, lease = (configuration.lease).inSeconds
        guard let rows = try? table.list(statuses: ["successful", "failed", "dismissed"]) else { return }
        for row in rows {
            guard let r = Self.decode(row.record) else { continue }
            let age = now.timeIntervalSince(r.finished ?? r.updated)
            if age >= ttl {
                try? table.delete(row.jobID)
                removeEverything(row.jobID)
                logger.info("job expired", metadata: ["job": "\(row.jobID)", "status": "\(row.status)"])
            } else if row.status == "dismissed", age >= 2 * lease,
                      FileManager.default.fileExists(atPath: store.jobDirectory(row.jobID).path)
                        || !((try? blobs.list(prefix: Self.prefix(row.jobID))) ?? []).isEmpty {
                removeEverything(row.jobID)
            }
        }
        sweepWorkingCopies(finished: Set(rows.map(\.jobID)), now: now, grace: 2 * lease)
        // A shared directory keeps the temp file of a replica killed mid-put (S3 drops unfinished uploads
        // by its own lifecycle rules).
        (blobs as? FileBlobStore)?.removeStaleTemporaryFiles()
    }

    /// Removes this replica's working copies of jobs that are not running here and are finished or gone
    /// (the input a submission left when another replica ran the job, a released or lost run's input).
    /// A directory without a row is left alone for `grace` seconds: its submission may be inserting it.
    private func sweepWorkingCopies(finished: Set<String>, now: Date, grace: TimeInterval) {
        let fm = FileManager.default
        let mine = condition.withLock { Set(running.keys) }
        for name in (try? fm.contentsOfDirectory(atPath: store.directory.path)) ?? [] where JobRecord.isValidID(name) && !mine.contains(name) {
            if finished.contains(name) {
                store.remove(name)
            } else if case .some(.none) = try? table.get(name),
                      let modified = (try? fm.attributesOfItem(atPath: store.jobDirectory(name).path))?[.modificationDate] as? Date,
                      now.timeIntervalSince(modified) >= grace {
                store.remove(name)
            }
        }
    }
}

/// Stops a heartbeat thread promptly (it sleeps on a condition, not in `sleep`).
private final class Heartbeat: @unchecked Sendable {  // @unchecked: `stopped` is guarded by `condition`
    private let condition = NSCondition()
    private var stopped = false

    /// Waits `interval`; false once stopped.
    func wait(_ interval: Duration) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if !stopped { _ = condition.wait(until: Date(timeIntervalSinceNow: (interval).inSeconds)) }
        return !stopped
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
