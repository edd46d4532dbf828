import Foundation
import Logging
import Metrics
import SpectralXRaster
import SpectralXSupport

/// The knobs of the jobs layer (`serve --jobs-dir --job-ttl --max-jobs --max-jobs-bytes --max-running-jobs`).
public struct JobConfiguration: Sendable {
    public var directory: URL
    /// How long finished (successful or failed) jobs and their results are kept.
    public var ttl: Duration
    /// Jobs stored at once, whatever their state (→ 503 with Retry-After beyond).
    public var maxJobs: Int
    /// Bytes the jobs directory may hold: inputs, partial and finished results (→ 507 beyond).
    public var maxBytes: Int64
    /// Jobs computed at the same time (their windows share the one batch scheduler).
    public var maxRunning: Int
    /// How often expired jobs are looked for.
    public var sweepInterval: Duration

    public init(directory: URL, ttl: Duration = .seconds(24 * 3600), maxJobs: Int = 100, maxBytes: Int64 = 20 << 30,
                maxRunning: Int = 1, sweepInterval: Duration = .seconds(60)) {
        self.directory = directory
        self.ttl = ttl
        self.maxJobs = maxJobs
        self.maxBytes = maxBytes
        self.maxRunning = maxRunning
        self.sweepInterval = sweepInterval
    }
}

/// The input of a new job: a file to move into the jobs directory (the HTTP spool file), or bytes.
public enum JobUpload: Sendable {
    case file(URL)
    case data(Data)

    /// Puts the upload at `url` (the spool file is moved, or copied across file systems).
    func place(at url: URL) throws {
        switch self {
        case .data(let d):
            guard FileManager.default.createFile(atPath: url.path, contents: d, attributes: [.posixPermissions: 0o600]) else {
                throw JobError.storage("cannot write \(url.path)")
            }
        case .file(let src):
            do { try FileManager.default.moveItem(at: src, to: url) } catch {
                do { try FileManager.default.copyItem(at: src, to: url) } catch {
                    throw JobError.storage("cannot spool the upload: \(error.localizedDescription)")
                }
            }
        }
    }

    var count: Int64 {
        switch self {
        case .file(let url): (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value ?? 0
        case .data(let d): Int64(d.count)
        }
    }
}

/// Accepts, runs, persists and expires scene jobs.
///
/// Every state change is written to the job's `job.json` (atomically, `JobStore`) before it is
/// reported, so what a client was told survives a crash. On start, `accepted` and `running` jobs on
/// disk are queued again (oldest first) and continue from their partial result (the pipeline
/// executor resumes at the first row of output tiles (COG tile size, normally 512 rows) not yet durable, with the recorded statistics).
/// `maxRunning` worker threads take accepted jobs in order; their windows go to the engine's batch
/// scheduler at background priority.
// @unchecked: every mutable field is guarded by `condition`; workers and callers only touch them under it.
public final class JobManager: @unchecked Sendable {
    public let configuration: JobConfiguration
    public let store: JobStore
    let engine: InferenceEngine
    let executor: any SceneJobExecutor
    let logger: Logger

    private let condition = NSCondition()
    private var records: [String: JobRecord] = [:]
    /// Accepted jobs in the order they run.
    private var queue: [String] = []
    private var running: [String: CancellationToken] = [:]
    /// Why a running job's token was cancelled.
    private var stopReasons: [String: JobStopReason] = [:]
    /// Dismissed jobs (files gone), answered until they expire or the process restarts.
    private var tombstones: [String: JobRecord] = [:]
    /// Bytes of submissions being written (counted against `maxBytes` before they land).
    private var reservedBytes: Int64 = 0
    private var reservedJobs = 0
    private var bytesByJob: [String: Int64] = [:]
    private var stopping = false
    private var activeWorkers = 0
    /// Windows finished per second over the current run of each running job.
    private var rates: [String: Double] = [:]

    private let windowCounter = Counter(label: "spectralx_job_windows_total")
    private let queueGauge = Gauge(label: "spectralx_job_queue_length")
    private let rateGauge = Gauge(label: "spectralx_job_windows_per_second")
    private let statusGauges: [JobStatus: Gauge] = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map {
        ($0, Gauge(label: "spectralx_jobs", dimensions: [("status", $0.rawValue)]))
    })

    /// Opens the jobs directory, queues the unfinished jobs found there and starts the workers.
    public init(engine: InferenceEngine, executor: any SceneJobExecutor, configuration: JobConfiguration,
                logger: Logger = Logger(label: "spectralx.jobs")) throws {
        self.engine = engine
        self.executor = executor
        self.configuration = configuration
        self.logger = logger
        store = try JobStore(directory: configuration.directory)
        let (found, unreadable) = store.loadAll()
        for id in unreadable { logger.error("job directory without a readable job.json left alone", metadata: ["job": "\(id)"]) }
        for var r in found.sorted(by: { $0.created < $1.created }) {
            switch r.status {
            case .dismissed:
                store.remove(r.jobID)
                continue
            case .accepted, .running:
                r.message = r.status == .running || r.windowsDone > 0
                    ? "interrupted at \(r.windowsDone)/\(r.windowsTotal) windows by a server stop; queued again"
                    : r.message
                r.status = .accepted
                r.updated = Date()
                try? store.write(r)
                queue.append(r.jobID)
                logger.info("job picked up again", metadata: ["job": "\(r.jobID)", "domain": "\(r.domain)"])
            case .successful, .failed:
                break
            }
            records[r.jobID] = r
            bytesByJob[r.jobID] = store.bytes(of: r.jobID)
        }
        updateGaugesLocked()
        for i in 0..<max(1, configuration.maxRunning) {
            let t = Thread { [self] in workerLoop() }
            t.name = "spectralx-job-worker-\(i)"
            t.start()
        }
        let sweeper = Thread { [self] in sweepLoop() }
        sweeper.name = "spectralx-job-sweeper"
        sweeper.start()
    }

    // MARK: - queries

    /// One job (including a dismissed one until it expires).
    public func record(_ id: String) throws -> JobRecord {
        guard JobRecord.isValidID(id) else { throw JobError.invalidID(id) }
        return try condition.withLock {
            if let r = records[id] { return r }
            if let r = tombstones[id] { return r }
            throw JobError.noSuchJob(id)
        }
    }

    /// Every job, oldest first, optionally only those in `statuses`.
    public func list(statuses: Set<JobStatus>? = nil) -> [JobRecord] {
        condition.withLock {
            (Array(records.values) + Array(tombstones.values))
                .filter { statuses?.contains($0.status) ?? true }
                .sorted { $0.created < $1.created }
        }
    }

    /// Accepted jobs waiting for a slot.
    public var queueLength: Int { condition.withLock { queue.count } }

    /// The error a submission of `bytes` would get now (directory full), or nil; lets the API refuse
    /// an upload from its headers. `submit` checks again.
    public func admissionError(bytes: Int64?) -> JobError? {
        condition.withLock { capacityErrorLocked(bytes: bytes ?? 0) }
    }

    private func capacityErrorLocked(bytes: Int64) -> JobError? {
        if stopping { return .shuttingDown }
        if records.count + reservedJobs >= configuration.maxJobs {
            return .tooManyJobs(limit: configuration.maxJobs, retryAfterSeconds: retryAfterLocked())
        }
        let used = bytesByJob.values.reduce(0, +) + reservedBytes
        if used + bytes > configuration.maxBytes {
            return .storageFull(needed: bytes, available: configuration.maxBytes - used, limit: configuration.maxBytes)
        }
        return nil
    }

    /// Seconds until a slot may free up: the running jobs' remaining time, else a minute.
    private func retryAfterLocked() -> Int {
        let etas = running.keys.compactMap { records[$0]?.etaSeconds }
        return max(1, min(3600, Int((etas.min() ?? 60).rounded(.up))))
    }

    // MARK: - submit

    /// Accepts a job: the upload is moved into the jobs directory, its header checked (format, band
    /// count, size limits) and the job recorded, all before this returns; any failure leaves nothing
    /// behind.
    public func submit(domain: LoadedDomain, options: JobOptions, format: JobInputFormat, upload: JobUpload,
                       ownerKeyHash: String?) throws -> JobRecord {
        let bytes = upload.count
        try condition.withLock {
            if let e = capacityErrorLocked(bytes: bytes) { throw e }
            reservedBytes += bytes
            reservedJobs += 1
        }
        defer { condition.withLock { reservedBytes -= bytes; reservedJobs -= 1 } }
        let id = JobRecord.newID()
        var draft = JobRecord(jobID: id, domain: domain.name, options: options, inputFormat: format, inputBytes: bytes,
                              width: 0, height: 0, bands: 0, windowsTotal: 0, ownerKeyHash: ownerKeyHash)
        draft.modelDigest = domain.modelDigest
        let record = try store.create(draft, place: { url in try upload.place(at: url) }, check: { url in
            let header = try executor.inspect(url, format: format, domain: domain, options: options)
            var r = draft
            (r.width, r.height, r.bands) = (header.width, header.height, header.bands)
            r.windowsTotal = executor.windowCount(header, options: options)
            return r
        })
        condition.withLock {
            records[id] = record
            bytesByJob[id] = store.bytes(of: id)
            queue.append(id)
            updateGaugesLocked()
            condition.broadcast()
        }
        logger.info("job accepted", metadata: ["job": "\(id)", "domain": "\(domain.name)", "windows": "\(record.windowsTotal)",
                                               "width": "\(record.width)", "height": "\(record.height)"])
        return record
    }

    // MARK: - dismiss

    /// `DELETE`: a queued or finished job is removed now; a running one is told to stop (its windows
    /// leave the queue with the group in flight) and its files are removed as soon as it has. The
    /// dismissal is on disk before this returns, so a restart does not run the job again.
    @discardableResult
    public func dismiss(_ id: String) throws -> JobRecord {
        guard JobRecord.isValidID(id) else { throw JobError.invalidID(id) }
        return try condition.withLock {
            if tombstones[id] != nil { throw JobError.alreadyDismissed(id) }
            guard var r = records[id] else { throw JobError.noSuchJob(id) }
            let now = Date()
            let wasRunning = running[id] != nil
            r.message = r.status == .running ? "dismissed while running at \(r.windowsDone)/\(r.windowsTotal) windows"
                : "dismissed (was \(r.status.rawValue))"
            r.status = .dismissed
            r.finished = r.finished ?? now
            r.updated = now
            r.etaSeconds = nil
            try? store.write(r)
            records[id] = nil
            tombstones[id] = r
            queue.removeAll { $0 == id }
            if wasRunning {
                stopReasons[id] = .dismissed
                running[id]?.cancel()  // its queued windows leave the queue; the worker removes the files once it stopped
            } else {
                store.remove(id)
                bytesByJob[id] = nil
            }
            updateGaugesLocked()
            logger.info("job dismissed", metadata: ["job": "\(id)", "running": "\(wasRunning)"])
            return r
        }
    }

    // MARK: - shutdown

    /// Stops taking jobs, asks running jobs to stop after the group of windows in flight, records
    /// their progress (they stay queued on disk) and returns once every worker stopped. Call before
    /// the scheduler's own shutdown.
    public func shutdown() {
        _ = shutdown(until: nil)
    }

    /// `shutdown()` bounded by `deadline` (the server's drain deadline): returns whether every worker
    /// stopped by then. A job still in its batch at the deadline has its progress durable up to its
    /// last tile row and resumes from there on the next start, as after `kill -9`.
    public func shutdown(until deadline: Date?) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        beginShutdownLocked()
        while activeWorkers > 0 {
            if let deadline {
                if !condition.wait(until: deadline) && activeWorkers > 0 { return false }
            } else {
                condition.wait()
            }
        }
        return true
    }

    /// Stops taking jobs and asks running ones to stop after their batch in flight, without waiting
    /// (called when the server starts draining, so they stop within the drain).
    public func beginShutdown() {
        condition.withLock { beginShutdownLocked() }
    }

    private func beginShutdownLocked() {
        stopping = true
        for (id, token) in running {
            if stopReasons[id] == nil { stopReasons[id] = .shutdown }
            token.cancel()
        }
        condition.broadcast()
    }

    // MARK: - workers

    private func workerLoop() {
        condition.lock()
        activeWorkers += 1
        while true {
            if stopping { break }
            guard !queue.isEmpty, var r = records[queue[0]] else {
                if !queue.isEmpty { queue.removeFirst(); continue }
                condition.wait()
                continue
            }
            queue.removeFirst()
            let token = CancellationToken()
            running[r.jobID] = token
            let now = Date()
            r.attempts += 1
            r.status = .running
            r.started = r.started ?? now
            r.updated = now
            r.etaSeconds = nil
            r.message = r.attempts > 1 ? "resumed after a server stop (attempt \(r.attempts)) at row \(r.rowsDone ?? 0)" : "running"
            records[r.jobID] = r
            try? store.write(r)
            updateGaugesLocked()
            condition.unlock()

            let outcome = execute(r, token: token)

            condition.lock()
            finish(r.jobID, outcome: outcome)
            condition.broadcast()
        }
        activeWorkers -= 1
        condition.broadcast()
        condition.unlock()
    }

    private enum Outcome {
        case success(bytes: Int64, etag: String)
        case interrupted(JobStopReason)
        case failure(String)
    }

    /// Runs one job outside the lock.
    private func execute(_ r: JobRecord, token: CancellationToken) -> Outcome {
        let id = r.jobID
        let partial = store.partialResultURL(id)
        do {
            let lease = try engine.store.lease(r.domain)
            defer { lease.release() }
            if let submitted = r.modelDigest, submitted != lease.domain.modelDigest {
                throw JobError.modelChanged(domain: r.domain, submitted: submitted, now: lease.domain.modelDigest)
            }
            if r.modelDigest == nil { adoptDigest(id, lease.domain.modelDigest) }
            let clock = ContinuousClock()
            let started = clock.now
            let last = LastWrite()
            let first = RunProgress()
            let run = SceneJobRun(jobID: id, input: store.inputURL(id, format: r.inputFormat), format: r.inputFormat,
                                  domain: lease.domain, options: r.options, output: partial)
            try executor.run(run, cancel: token) { [self] event in
                switch event {
                case .statistics(let stats): recordStatistics(id, stats)
                case .progress(let p):
                    progressed(id, p, elapsed: started.duration(to: clock.now).inSeconds, first: first, last: last)
                }
            }
            try token.check()
            let result = store.resultURL(id)
            try JobStore.durableRename(partial, to: result)
            let size = (try? FileManager.default.attributesOfItem(atPath: result.path)[.size] as? NSNumber)?.int64Value ?? 0
            let digest: String
            do { digest = try SHA256.hash(fileAtPath: result.path).hex } catch { throw JobError.storage("\(error)") }
            return .success(bytes: size, etag: "\"\(digest.prefix(32))\"")
        } catch EngineError.shuttingDown {
            return .interrupted(.shutdown)
        } catch {
            if token.isCancelled { return .interrupted(condition.withLock { stopReasons[id] } ?? .shutdown) }
            return .failure("\(error)")
        }
    }

    /// A record from before model digests: the model of its first run on this version is the job's.
    private func adoptDigest(_ id: String, _ digest: String) {
        condition.withLock {
            guard var r = records[id] else { return }
            r.modelDigest = digest
            records[id] = r
            try? store.write(r)
        }
    }

    /// The statistics pass finished: record them (status and diagnosis; the resume reads its own copy beside the spool).
    private func recordStatistics(_ id: String, _ stats: BandStatistics) {
        condition.withLock {
            guard var r = records[id] else { return }
            r.statistics = stats
            r.updated = Date()
            records[id] = r
            try? store.write(r)
        }
    }

    /// Progress callback of a running job (outside the lock). The window counter and rate count only
    /// windows computed in this run (`SceneProgress.windowsComputed`: not the rows a resumed run
    /// skipped, nor all-invalid windows).
    private func progressed(_ id: String, _ p: SceneProgress, elapsed: Double, first: RunProgress, last: LastWrite) {
        condition.withLock {
            guard var r = records[id], r.status == .running else { return }
            let isFirst = first.reported == nil
            let added = p.windowsComputed - (first.reported ?? 0)
            if added > 0 { windowCounter.increment(by: added) }
            first.reported = max(first.reported ?? 0, p.windowsComputed)
            rates[id] = r.apply(p, elapsed: elapsed)
            let (done, total) = (r.windowsDone, r.windowsTotal)
            records[id] = r
            rateGauge.record(rates.values.reduce(0, +))
            // Persist at most every second (and always the first and last call).
            let now = ContinuousClock.now
            if isFirst || done == total || last.instant.map({ $0.duration(to: now) >= .seconds(1) }) ?? true {
                try? store.write(r)
                last.instant = now
            }
        }
    }

    /// Records a run's outcome. Caller holds the lock.
    private func finish(_ id: String, outcome: Outcome) {
        running[id] = nil
        stopReasons[id] = nil
        rates[id] = nil
        rateGauge.record(rates.values.reduce(0, +))
        defer { updateGaugesLocked() }
        guard var r = records[id] else {
            // Dismissed while running: the record is a tombstone already; remove the files now.
            store.remove(id)
            bytesByJob[id] = nil
            return
        }
        let now = Date()
        r.updated = now
        r.etaSeconds = nil
        switch outcome {
        case let .success(bytes, etag):
            r.status = .successful
            r.progress = 100
            r.windowsDone = r.windowsTotal
            r.finished = now
            r.resultBytes = bytes
            r.resultETag = etag
            r.message = "successful: \(r.windowsTotal) windows"
            try? FileManager.default.removeItem(at: store.inputURL(id, format: r.inputFormat))
            logger.info("job successful", metadata: ["job": "\(id)", "bytes": "\(bytes)"])
        case .interrupted(.shutdown):
            r.status = .accepted
            r.message = "interrupted at \(r.windowsDone)/\(r.windowsTotal) windows by a server stop; continues on the next start"
            logger.info("job interrupted by shutdown", metadata: ["job": "\(id)", "windows_done": "\(r.windowsDone)"])
        case .interrupted(.dismissed):
            store.remove(id)
            bytesByJob[id] = nil
            records[id] = nil
            return
        case .failure(let message):
            r.status = .failed
            r.finished = now
            r.message = "failed: \(message)"
            try? FileManager.default.removeItem(at: store.inputURL(id, format: r.inputFormat))
            try? FileManager.default.removeItem(at: store.partialResultURL(id))
            try? FileManager.default.removeItem(atPath: COGWriter.spoolDirectory(for: store.partialResultURL(id).path))
            logger.error("job failed", metadata: ["job": "\(id)", "error": "\(message)"])
        }
        records[id] = r
        try? store.write(r)
        bytesByJob[id] = store.bytes(of: id)
    }

    // MARK: - expiry

    private func sweepLoop() {
        condition.lock()
        while !stopping {
            sweepLocked(now: Date())
            _ = condition.wait(until: Date(timeIntervalSinceNow: configuration.sweepInterval.inSeconds))
        }
        condition.unlock()
    }

    /// Removes finished jobs older than the TTL. Caller holds the lock.
    private func sweepLocked(now: Date) {
        let ttl = configuration.ttl.inSeconds
        for (id, r) in records where r.status.isFinal {
            guard let f = r.finished, now.timeIntervalSince(f) >= ttl else { continue }
            store.remove(id)
            records[id] = nil
            bytesByJob[id] = nil
            logger.info("job expired", metadata: ["job": "\(id)", "status": "\(r.status.rawValue)"])
        }
        for (id, r) in tombstones where now.timeIntervalSince(r.finished ?? r.updated) >= ttl { tombstones[id] = nil }
        updateGaugesLocked()
    }

    private func updateGaugesLocked() {
        var counts = [JobStatus: Int]()
        for r in records.values { counts[r.status, default: 0] += 1 }
        counts[.dismissed, default: 0] += tombstones.count
        for (s, g) in statusGauges { g.record(counts[s] ?? 0) }
        queueGauge.record(queue.count)
    }
}

/// The computed-window count a run last reported, nil before its first report (touched only under
/// the manager's lock).
// @unchecked: mutated only inside `JobManager.condition`.
private final class RunProgress: @unchecked Sendable {
    var reported: Int?
}

/// When a running job's record was last persisted (touched only under the manager's lock).
// @unchecked: mutated only inside `JobManager.condition`.
private final class LastWrite: @unchecked Sendable {
    var instant: ContinuousClock.Instant?
}

extension JobRecord {
    /// Takes a progress report of the running job into the record (windows, rows, progress, ETA from this
    /// run's window rate, message); returns that rate (windows per second), nil before the first window.
    @discardableResult
    mutating func apply(_ p: SceneProgress, elapsed: Double) -> Double? {
        let total = p.windowsTotal, done = p.windowsDone
        windowsDone = done
        windowsTotal = total
        rowsDone = p.rowsDone
        if let b = p.bytesFetched { bytesFetched = Int64(b) }
        progress = total > 0 ? min(99, max(progress, done * 100 / total)) : 0
        let thisRun = p.windowsComputed
        let rate = elapsed > 0 && thisRun > 0 ? Double(thisRun) / elapsed : nil
        etaSeconds = rate.map { (Double(total - done) / $0 * 10).rounded() / 10 }
        updated = Date()
        message = attempts > 1 ? "running (attempt \(attempts), resumed): \(done)/\(total) windows" : "running: \(done)/\(total) windows"
        return rate
    }
}
