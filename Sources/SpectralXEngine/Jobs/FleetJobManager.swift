import Foundation
import Logging
import Metrics
import Synchronization
import SpectralXPostgres
import SpectralXRaster
import SpectralXSupport

/// The knobs of a fleet replica (`serve --jobs-db … --replica-id … --job-lease … --job-heartbeat …`).
public struct FleetConfiguration: Sendable {
    /// The jobs directory (a volume every replica mounts: inputs, resume spools, results), TTL and limits.
    public var jobs: JobConfiguration
    /// This replica's name in leases and logs (unique in the fleet: pod name, or host and pid).
    public var replicaID: String
    /// How long a claim lasts without a heartbeat; after it another replica takes the job over.
    public var lease: Duration
    /// How often a running job's lease is renewed (well below `lease`).
    public var heartbeat: Duration
    /// How often an idle worker looks for claimable jobs.
    public var pollInterval: Duration

    public init(jobs: JobConfiguration, replicaID: String, lease: Duration = .seconds(30), heartbeat: Duration = .seconds(5),
                pollInterval: Duration = .seconds(1)) {
        self.jobs = jobs
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
/// reads); its files (spooled input, resume spools, result) are in the jobs directory on a volume every
/// replica mounts. Workers claim accepted jobs (or ones whose lease expired) and renew the lease every
/// `heartbeat`; progress is committed under the lease at every durable row band and at most every second.
/// Every write names the lease generation, so a replica that lost its lease (killed, frozen, partitioned)
/// writes nothing more; each generation writes its own spool (`result.partial.g<N>.tif`) and result
/// (`result-g<N>.tif`), so a stale replica's files are never the job's. A replica taking a job over copies
/// the spool of the generation that last committed and continues from its last durable row band; the
/// model digest recorded at submission must match, as on one replica. `SIGTERM` releases a running job's
/// lease after its batch in flight, so another replica continues at once.
// @unchecked: the mutable fields are guarded by `condition`.
public final class FleetJobManager: JobService, @unchecked Sendable {
    public let configuration: FleetConfiguration
    public let store: JobStore
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
        store = try JobStore(directory: configuration.jobs.directory)
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
        let used = JobStore.treeBytes(store.directory)
        if used + (bytes ?? 0) > configuration.jobs.maxBytes {
            return .storageFull(needed: bytes ?? 0, available: configuration.jobs.maxBytes - used, limit: configuration.jobs.maxBytes)
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
        do {
            try database { () throws(PostgresError) in
                try table.insert(jobID: id, created: record.created, ownerKey: ownerKeyHash, record: Self.encode(record))
            }
        } catch {
            store.remove(id)  // not recorded: nothing of it may stay behind
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
        if !local && before.status != "running" { store.remove(id) }
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
        // Continue from the spool of the generation that last committed (a copy: its replica may still run).
        if let g = r.spoolGeneration, g != lease.generation {
            copySpool(from: partialURL(id, generation: g), to: partial)
        }
        r.spoolGeneration = lease.generation
        let token = CancellationToken()
        condition.withLock { running[id] = (token, lease) }
        let committed = Committed(record: r, rows: r.rowsDone ?? 0)
        guard commit(lease, committed: committed, force: true, token: token) else {
            condition.withLock { running[id] = nil; stopReasons[id] = nil }
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
        case let .success(url, bytes, etag):
            final.status = .successful
            final.progress = 100
            final.windowsDone = final.windowsTotal
            final.finished = Date()
            final.resultBytes = bytes
            final.resultETag = etag
            final.resultFile = url.lastPathComponent
            final.message = "successful: \(final.windowsTotal) windows"
            let state = (try? table.finish(lease, status: "successful", record: Self.encode(final))) ?? .lost
            if state == .held {
                removeWorkFiles(id, keeping: url.lastPathComponent)
                logger.info("job successful", metadata: metadata(lease).merging(["bytes": "\(bytes)"]) { $1 })
            } else {
                try? FileManager.default.removeItem(at: url)  // not ours any more: never the job's result
                if state == .dismissed { store.remove(id) }
                logger.warning("finished job not recorded: the lease is gone", metadata: metadata(lease))
            }
        case .stopped:
            switch reason ?? .shutdown {
            case .shutdown:
                final.message = "released by replica \(configuration.replicaID) at \(final.windowsDone)/\(final.windowsTotal) windows (shutdown); another replica continues"
                final.replica = nil
                _ = try? table.release(lease, record: Self.encode(final))
                logger.info("job released", metadata: metadata(lease))
            case .dismissed:
                store.remove(id)
            case .leaseLost:
                leasesLost.increment()
                logger.warning("job lease lost; stopped without writing", metadata: metadata(lease))
            }
        case .failure(let message):
            final.status = .failed
            final.finished = Date()
            final.message = "failed: \(message)"
            if (try? table.finish(lease, status: "failed", record: Self.encode(final))) == .held {
                removeWorkFiles(id, keeping: nil)
            }
            logger.error("job failed", metadata: metadata(lease).merging(["error": "\(message)"]) { $1 })
        }
    }

    private enum Outcome {
        case success(URL, bytes: Int64, etag: String)
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
        }
        let state: Mutex<State>
        init(record: JobRecord, rows: Int) { state = Mutex(State(record: record, rows: rows)) }
        var record: JobRecord { state.withLock { $0.record } }
    }

    /// Writes the record under the lease when rows advanced, when `force`, or a second after the last
    /// write; false (and the token cancelled) when the lease is gone.
    @discardableResult
    private func commit(_ lease: PostgresJobTable.Lease, committed: Committed, force: Bool, token: CancellationToken) -> Bool {
        let (r, rows, due) = committed.state.withLock { c -> (JobRecord, Int, Bool) in
            let rows = c.record.rowsDone ?? 0
            return (c.record, rows, force || rows > c.rows || c.at.duration(to: .now) >= .seconds(1))
        }
        guard due else { return true }
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
            let clock = ContinuousClock(), started = clock.now
            let run = SceneJobRun(jobID: id, input: store.inputURL(id, format: r.inputFormat), format: r.inputFormat,
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
            return .success(result, bytes: size, etag: "\"\(digest.prefix(32))\"")
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

    /// Copies a spool directory (its state first, then the tile file: the resume cuts the tile file to
    /// what that state vouches for, so a writer still appending to the source cannot make the copy
    /// inconsistent).
    private func copySpool(from old: URL, to new: URL) {
        let fm = FileManager.default
        let src = COGWriter.spoolDirectory(for: old.path), dst = COGWriter.spoolDirectory(for: new.path)
        guard fm.fileExists(atPath: src) else { return }
        try? fm.removeItem(atPath: dst)
        do {
            try fm.createDirectory(atPath: dst, withIntermediateDirectories: true)
            let names = try fm.contentsOfDirectory(atPath: src).sorted { a, b in
                // JSON state files before the tile data
                (a.hasSuffix(".json") ? 0 : 1, a) < (b.hasSuffix(".json") ? 0 : 1, b)
            }
            for name in names { try fm.copyItem(atPath: src + "/" + name, toPath: dst + "/" + name) }
        } catch {
            try? fm.removeItem(atPath: dst)  // start over rather than continue from a broken copy
            logger.warning("could not copy the previous spool; the job restarts from row 0: \(error.localizedDescription)")
        }
    }

    /// Removes the input and every generation's spool and stale result, keeping `result`.
    private func removeWorkFiles(_ id: String, keeping result: String?) {
        let fm = FileManager.default, dir = store.jobDirectory(id)
        for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where name != result && name != "job.json" {
            try? fm.removeItem(at: dir.appendingPathComponent(name))
        }
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
                store.remove(row.jobID)
                logger.info("job expired", metadata: ["job": "\(row.jobID)", "status": "\(row.status)"])
            } else if row.status == "dismissed", age >= 2 * lease, FileManager.default.fileExists(atPath: store.jobDirectory(row.jobID).path) {
                store.remove(row.jobID)
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
