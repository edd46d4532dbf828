import Foundation
import SpectralXBlobStore
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXPostgres
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// Two replicas in one process (two engines on the fake runner, two `FleetJobManager`s) sharing one job
/// table and one blob store — each with a jobs directory of its own, so nothing passes between them
/// but the database and the store. Every test runs against `file://` and `s3://` (moto on loopback):
/// jobs are spread over both replicas, each finished once; a replica shutting down releases its job and
/// the other continues from the last committed row band with the same result; a lost lease is taken
/// over from the committed bands and the stale generation's work never becomes the result; a `DELETE`
/// on one replica stops the job running on the other.
@Suite("Fleet jobs: two replicas on PostgreSQL (fake model)", .serialized)
struct FleetJobTests {
    struct Fleet {
        let table: PostgresJobTable
        let directory: URL
        let replicas: [FleetJobManager]
        let domain: LoadedDomain
        let blobs: any BlobStore

        /// The result's bytes as the results route reads them (from the store, in ranges).
        func result(_ id: String, on replica: Int = 0) throws -> Data {
            let r = try replicas[replica].record(id)
            guard case .stored(let stored) = try replicas[replica].result(r) else { throw JobError.noSuchJob(id) }
            return try stored.read(0, stored.size)
        }
    }

    static func fleet(_ kind: TestBlobStoreKind, delay: Duration, name: String = #function,
                      wrap: (any BlobStore) -> any BlobStore = { $0 }) throws -> Fleet? {
        guard let table = try PostgresTestDatabase.freshTable(name + kind.rawValue) else { return nil }
        guard let blobs = try kind.fresh().map(wrap) else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-fleet-\(UUID().uuidString)")
        var replicas: [FleetJobManager] = []
        var domain: LoadedDomain?
        for id in ["A", "B"] {
            let engine = FakeStore.engine(delay: delay, scheduler: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .milliseconds(2)))
            _ = try engine.store.load("syn")
            let lease = try engine.store.lease("syn")
            domain = lease.domain
            lease.release()
            let config = FleetConfiguration(jobs: JobConfiguration(directory: dir.appendingPathComponent(id), sweepInterval: .seconds(3600)),
                                            replicaID: id, lease: .seconds(3), heartbeat: .milliseconds(300), pollInterval: .milliseconds(100),
                                            blobs: blobs)
            replicas.append(try FleetJobManager(engine: engine, executor: PipelineSceneJobExecutor(engine: engine, limits: .default),
                                                table: table, configuration: config))
        }
        return Fleet(table: table, directory: dir, replicas: replicas, domain: domain!, blobs: blobs)
    }

    /// A 4-band scene, `height` rows of 224 columns, values from a fixed pattern (.npy bytes).
    static func scene(height: Int) throws -> Data {
        let w = 224, n = 4 * height * w
        let values = (0..<n).map { Float(($0 * 7919) % 1000) / 1000 }
        return Data(try NpyWriter.encode(values, shape: [4, height, w]))
    }

    static func wait(_ timeout: Duration, _ what: String, _ condition: () throws -> Bool) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test("jobs submitted to one replica run on both, each finished exactly once, results identical", arguments: TestBlobStoreKind.allCases)
    func spreadAndFinishedOnce(_ kind: TestBlobStoreKind) throws {
        guard let f = try Self.fleet(kind, delay: .milliseconds(20)) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        let body = try Self.scene(height: 448)
        var ids: [String] = []
        for i in 0..<4 {
            let r = try f.replicas[i % 2].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy, upload: .data(body),
                                                 ownerKeyHash: nil)
            ids.append(r.jobID)
        }
        try Self.wait(.seconds(60), "four successful jobs") {
            try ids.allSatisfy { try f.replicas[1].record($0).status == .successful }
        }
        var results: Set<Data> = []
        for id in ids {
            let row = try #require(try f.table.get(id))
            #expect(row.finishedCount == 1 && row.status == "successful")
            results.insert(try f.result(id, on: 0))
            // Only the result stays in the store: the input and the row bands go right after the success.
            let r = try f.replicas[0].record(id)
            try Self.wait(.seconds(10), "the input and bands to go") {
                try f.blobs.list(prefix: "jobs/\(id)/").map(\.key) == ["jobs/\(id)/\(r.resultFile ?? "?")"]
            }
        }
        #expect(results.count == 1, "the same scene gives the same result on either replica")
        #expect(results.first.map { $0.starts(with: [0x49, 0x49]) } == true, "a TIFF")
        #expect(try f.replicas[0].jobs(statuses: [.successful]).count == 4)
    }

    @Test("a replica shutting down releases its job; the other continues from the last row band with the same result",
          arguments: TestBlobStoreKind.allCases)
    func releaseAndContinue(_ kind: TestBlobStoreKind) throws {
        guard let f = try Self.fleet(kind, delay: .milliseconds(250)) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        // The reference: the same scene run without interruption.
        let body = try Self.scene(height: 2240)
        let reference = try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy, upload: .data(body),
                                                 ownerKeyHash: nil)
        try Self.wait(.seconds(120), "the reference job") { try f.replicas[0].record(reference.jobID).status == .successful }
        let expected = try f.result(reference.jobID)

        let job = try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy, upload: .data(body),
                                           ownerKeyHash: nil)
        // Wait until some replica runs it with a durable row band, then stop that replica.
        var owner = -1
        try Self.wait(.seconds(120), "a committed row band") {
            guard let row = try f.table.get(job.jobID), row.status == "running", row.progressRows > 0 else { return false }
            owner = row.leaseOwner == "A" ? 0 : 1
            return true
        }
        guard owner >= 0 else { return }
        let stopped = ContinuousClock.now
        #expect(f.replicas[owner].shutdown(until: Date(timeIntervalSinceNow: 30)))
        try Self.wait(.seconds(120), "the other replica to finish the job") {
            try f.replicas[1 - owner].record(job.jobID).status == .successful
        }
        let row = try #require(try f.table.get(job.jobID))
        #expect(row.leaseGeneration == 2 && row.finishedCount == 1)
        let r = try f.replicas[1 - owner].record(job.jobID)
        #expect(r.attempts == 2 && r.replica == (owner == 0 ? "B" : "A"))
        #expect(try f.result(job.jobID, on: 1 - owner) == expected, "labels identical to an uninterrupted run")
        print("fleet: released job finished on the other replica \(ContinuousClock.now - stopped) after the shutdown")
    }

    @Test("a lost lease is taken over from the committed row bands; the stale generation's work never becomes the result",
          arguments: TestBlobStoreKind.allCases)
    func lostLeaseTakeover(_ kind: TestBlobStoreKind) throws {
        guard let f = try Self.fleet(kind, delay: .milliseconds(250)) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        let body = try Self.scene(height: 2240)
        let reference = try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy, upload: .data(body),
                                                 ownerKeyHash: nil)
        try Self.wait(.seconds(120), "the reference job") { try f.replicas[0].record(reference.jobID).status == .successful }
        let expected = try f.result(reference.jobID)

        let job = try f.replicas[1].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy, upload: .data(body),
                                           ownerKeyHash: nil)
        var first: PostgresJobTable.Row?
        try Self.wait(.seconds(120), "a committed row band") {
            guard let row = try f.table.get(job.jobID), row.status == "running",
                  let r = try? f.replicas[0].record(job.jobID), !(r.spoolBands ?? []).isEmpty else { return false }
            first = row
            return true
        }
        guard let first else { return }
        // The lease lost as if the owner had been frozen past it and another replica had claimed the job and
        // died at once: the generation moves on, the lease has expired.
        try f.table.pool.withConnection { (c: PostgresConnection) throws(PostgresError) in
            try c.query("""
                UPDATE spectralx_jobs SET lease_owner = 'ghost', lease_generation = lease_generation + 1,
                    lease_expires = now() - interval '1 second' WHERE job_id = $1
                """, [job.jobID])
        }
        let takeover = first.leaseGeneration + 2
        // The new generation's first band continues the committed ones (it does not start at byte 0).
        var continued: JobRecord.SpoolBand?
        try Self.wait(.seconds(120), "a band of the new generation") {
            let r = try f.replicas[0].record(job.jobID)
            if r.status == .successful { return true }
            continued = r.spoolBands?.first { $0.key.contains("/g\(takeover)/") }
            return continued != nil
        }
        if let continued { #expect(continued.start > 0, "the takeover resumed from the committed bands") }
        try Self.wait(.seconds(120), "the job to finish after the takeover") { try f.replicas[0].record(job.jobID).status == .successful }
        let row = try #require(try f.table.get(job.jobID))
        #expect(row.leaseGeneration == takeover && row.finishedCount == 1)
        let r = try f.replicas[0].record(job.jobID)
        #expect(r.resultFile == "result-g\(takeover).tif", "the result is the final generation's")
        #expect(try f.result(job.jobID, on: 1) == expected, "labels identical to an uninterrupted run")
        // Nothing of the stale generation stays: no result object of its own, no bands (removed right after the success).
        try Self.wait(.seconds(10), "only the result in the store") {
            try f.blobs.list(prefix: "jobs/\(job.jobID)/").map(\.key) == ["jobs/\(job.jobID)/result-g\(takeover).tif"]
        }
    }

    @Test("a result is read in ranges from the store, pinned to the object it measured", arguments: TestBlobStoreKind.allCases)
    func rangesFromTheStore(_ kind: TestBlobStoreKind) throws {
        guard let f = try Self.fleet(kind, delay: .zero) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        let job = try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy,
                                           upload: .data(try Self.scene(height: 448)), ownerKeyHash: nil)
        try Self.wait(.seconds(60), "the job") { try f.replicas[1].record(job.jobID).status == .successful }
        let whole = try f.result(job.jobID, on: 1)
        let r = try f.replicas[0].record(job.jobID)
        guard case .stored(let stored) = try f.replicas[0].result(r) else { Issue.record("not read from the store"); return }
        #expect(stored.size == Int64(whole.count) && r.resultBytes == stored.size)
        #expect(try stored.read(10, 100) == whole.subdata(in: 10..<110))
        // The object replaced under the same key (never done by the fleet): the pinned read refuses to mix.
        try f.blobs.put("jobs/\(job.jobID)/\(r.resultFile!)", data: Data("other".utf8))
        #expect(throws: BlobStoreError.self) { try stored.read(0, 5) }
    }

    @Test("blob store full at submission: 503-mapped error, nothing accepted, nothing left behind")
    func inputUploadFails() throws {
        guard let f = try Self.fleet(.file, delay: .zero, wrap: { FailingBlobStore($0, failing: "input.") }) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        let body = try Self.scene(height: 224)
        let error = #expect(throws: JobError.self) {
            try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy, upload: .data(body), ownerKeyHash: nil)
        }
        if case .blobStoreUnavailable(let why, _)? = error {
            #expect(why.contains("upload the input") && why.contains("No space left"), "\(why)")
        } else {
            Issue.record("expected blobStoreUnavailable, got \(String(describing: error))")
        }
        #expect(try f.table.list().isEmpty, "no job recorded")
        #expect(try f.blobs.list(prefix: "").isEmpty)
        let local = try FileManager.default.contentsOfDirectory(atPath: f.replicas[0].store.directory.path)
        #expect(!local.contains { JobRecord.isValidID($0) }, "no working copy left: \(local)")
    }

    @Test("blob store full for the result: the job fails naming the store after bounded retries; no result")
    func resultUploadFails() throws {
        guard let f = try Self.fleet(.file, delay: .zero, wrap: { FailingBlobStore($0, failing: "result-") }) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        let job = try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy,
                                           upload: .data(try Self.scene(height: 224)), ownerKeyHash: nil)
        try Self.wait(.seconds(60), "the job to fail") { try f.replicas[1].record(job.jobID).status == .failed }
        let r = try f.replicas[1].record(job.jobID)
        #expect(r.message.contains("blob store") && r.message.contains("upload the result"), "\(r.message)")
        #expect(r.resultFile == nil)
        #expect(throws: JobError.noSuchJob(job.jobID)) { try f.replicas[1].result(r) }
        try Self.wait(.seconds(10), "the job's blobs to go") { try f.blobs.list(prefix: "jobs/\(job.jobID)/").isEmpty }
    }

    @Test("DELETE on one replica stops the job running on the other", arguments: TestBlobStoreKind.allCases)
    func dismissAcrossReplicas(_ kind: TestBlobStoreKind) throws {
        guard let f = try Self.fleet(kind, delay: .milliseconds(300)) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        let job = try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy,
                                           upload: .data(try Self.scene(height: 1120)), ownerKeyHash: nil)
        var owner = -1
        try Self.wait(.seconds(60), "the job to run") {
            guard let row = try f.table.get(job.jobID), row.status == "running" else { return false }
            owner = row.leaseOwner == "A" ? 0 : 1
            return true
        }
        guard owner >= 0 else { return }
        let other = f.replicas[1 - owner]
        #expect(try other.dismiss(job.jobID).status == .dismissed)
        #expect(throws: JobError.alreadyDismissed(job.jobID)) { try other.dismiss(job.jobID) }
        // The owner sees it at its next heartbeat or commit and removes the files.
        try Self.wait(.seconds(10), "the owner to stop and remove the files") {
            !FileManager.default.fileExists(atPath: f.replicas[owner].store.jobDirectory(job.jobID).path)
        }
        #expect(try f.replicas[owner].record(job.jobID).status == .dismissed)
        try Self.wait(.seconds(10), "the job's blobs to go") { try f.blobs.list(prefix: "jobs/\(job.jobID)/").isEmpty }
    }
}

/// A store whose puts of keys containing `failing` fail as a full disk does (the others pass through).
struct FailingBlobStore: BlobStore {
    let base: any BlobStore
    let failing: String
    init(_ base: any BlobStore, failing: String) {
        self.base = base
        self.failing = failing
    }

    var location: String { base.location }
    private func check(_ key: String) throws {
        if key.contains(failing) { throw BlobStoreError.io("write \(key): No space left on device") }
    }
    func put(_ key: String, fromFile file: URL, mode: PutMode) throws -> BlobInfo { try check(key); return try base.put(key, fromFile: file, mode: mode) }
    func put(_ key: String, data: Data, mode: PutMode) throws -> BlobInfo { try check(key); return try base.put(key, data: data, mode: mode) }
    func get(_ key: String, range: ByteRange?, ifMatch: String?) throws -> Data { try base.get(key, range: range, ifMatch: ifMatch) }
    func get(_ key: String, range: ByteRange?, ifMatch: String?, toFile file: URL) throws -> BlobInfo {
        try base.get(key, range: range, ifMatch: ifMatch, toFile: file)
    }
    func head(_ key: String) throws -> BlobInfo { try base.head(key) }
    func delete(_ key: String) throws { try base.delete(key) }
    func list(prefix: String) throws -> [BlobInfo] { try base.list(prefix: prefix) }
}
