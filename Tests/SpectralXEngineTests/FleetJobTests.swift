import Foundation
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXPostgres
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// Two replicas in one process (two engines on the fake runner, two `FleetJobManager`s) sharing one job
/// table and one jobs directory: jobs are spread over both, each finished once; a replica shutting down
/// releases its job and the other continues from the last durable row band with the same result; a
/// `DELETE` on one replica stops the job running on the other.
@Suite("Fleet jobs: two replicas on PostgreSQL (fake model)", .serialized)
struct FleetJobTests {
    struct Fleet {
        let table: PostgresJobTable
        let directory: URL
        let replicas: [FleetJobManager]
        let domain: LoadedDomain
    }

    static func fleet(_ name: String = #function, delay: Duration) throws -> Fleet? {
        guard let table = try PostgresTestDatabase.freshTable(name) else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-fleet-\(UUID().uuidString)")
        var replicas: [FleetJobManager] = []
        var domain: LoadedDomain?
        for id in ["A", "B"] {
            let engine = FakeStore.engine(delay: delay, scheduler: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .milliseconds(2)))
            _ = try engine.store.load("syn")
            let lease = try engine.store.lease("syn")
            domain = lease.domain
            lease.release()
            let config = FleetConfiguration(jobs: JobConfiguration(directory: dir, sweepInterval: .seconds(3600)), replicaID: id,
                                            lease: .seconds(3), heartbeat: .milliseconds(300), pollInterval: .milliseconds(100))
            replicas.append(try FleetJobManager(engine: engine, executor: PipelineSceneJobExecutor(engine: engine, limits: .default),
                                                table: table, configuration: config))
        }
        return Fleet(table: table, directory: dir, replicas: replicas, domain: domain!)
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

    @Test("jobs submitted to one replica run on both, each finished exactly once, results identical")
    func spreadAndFinishedOnce() throws {
        guard let f = try Self.fleet(delay: .milliseconds(20)) else { return }
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
            let r = try f.replicas[0].record(id)
            results.insert(try Data(contentsOf: f.replicas[0].resultURL(r)))
        }
        #expect(results.count == 1, "the same scene gives the same result on either replica")
        #expect(try f.replicas[0].jobs(statuses: [.successful]).count == 4)
    }

    @Test("a replica shutting down releases its job; the other continues from the last row band with the same result")
    func releaseAndContinue() throws {
        guard let f = try Self.fleet(delay: .milliseconds(250)) else { return }
        defer { f.replicas.forEach { _ = $0.shutdown(until: nil) }; try? FileManager.default.removeItem(at: f.directory) }
        // The reference: the same scene run without interruption.
        let body = try Self.scene(height: 2240)
        let reference = try f.replicas[0].submit(domain: f.domain, options: JobOptions(overlap: 0), format: .npy, upload: .data(body),
                                                 ownerKeyHash: nil)
        try Self.wait(.seconds(120), "the reference job") { try f.replicas[0].record(reference.jobID).status == .successful }
        let expected = try Data(contentsOf: f.replicas[0].resultURL(try f.replicas[0].record(reference.jobID)))

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
        #expect(try Data(contentsOf: f.replicas[1 - owner].resultURL(r)) == expected, "labels identical to an uninterrupted run")
        print("fleet: released job finished on the other replica \(ContinuousClock.now - stopped) after the shutdown")
    }

    @Test("DELETE on one replica stops the job running on the other")
    func dismissAcrossReplicas() throws {
        guard let f = try Self.fleet(delay: .milliseconds(300)) else { return }
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
    }
}
