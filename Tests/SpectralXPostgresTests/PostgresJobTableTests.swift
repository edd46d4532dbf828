import Foundation
import SpectralXPostgres
import SpectralXTestSupport
import Testing

/// Against a real PostgreSQL: `SPECTRALX_TEST_POSTGRES_URL` (scripts/test.sh starts a throwaway cluster
/// with scripts/postgres/start.sh and sets it). Each test works in a schema of its own.
@Suite("PostgreSQL job table: migrations, leases, fencing", .serialized)
struct PostgresJobTableTests {
    static func freshTable(_ name: String = #function, statementTimeout: Duration = .seconds(10)) throws -> PostgresJobTable? {
        try PostgresTestDatabase.freshTable(name, statementTimeout: statementTimeout)
    }

    /// The error `sql` fails with on `pool`, nil when it succeeds.
    static func failure(_ pool: PostgresPool, _ sql: String) -> PostgresError? {
        do throws(PostgresError) {
            try pool.withConnection { (c: PostgresConnection) throws(PostgresError) in try c.query(sql) }
            return nil
        } catch {
            return error
        }
    }

    static func record(_ id: String, _ note: String = "") -> String { #"{"jobID":"\#(id)","note":"\#(note)"}"# }

    @Test("migrations apply once, also when replicas start together")
    func migrationsOnce() throws {
        guard let table = try Self.freshTable() else { return }
        #expect(try table.migrate().isEmpty, "a second start applies nothing")
        // Eight 'replicas' migrating at once against a schema that is current: none fails.
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do { try table.migrate() } catch { failures.withLock { $0 += 1 } }
        }
        #expect(failures.withLock { $0 } == 0)
    }

    @Test("concurrent claims take each job once, oldest first")
    func claimsAreExclusive() throws {
        guard let table = try Self.freshTable() else { return }
        let base = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<12 { try table.insert(jobID: "job\(i)", created: base + Double(i), ownerKey: nil, record: Self.record("job\(i)")) }
        let claimed = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { replica in
            while let c = try? table.claim(owner: "replica\(replica)", lease: .seconds(30)) {
                claimed.withLock { $0.append(c.lease.jobID) }
                #expect(c.lease.generation == 1 && !c.isTakeover)
            }
        }
        let all = claimed.withLock { $0 }
        #expect(all.count == 12 && Set(all).count == 12, "\(all)")
        #expect(try table.claim(owner: "late", lease: .seconds(30)) == nil)
    }

    @Test("an expired lease is taken over; the stale owner can write nothing; the job finishes exactly once")
    func takeoverAndFencing() throws {
        guard let table = try Self.freshTable() else { return }
        try table.insert(jobID: "j1", created: Date(), ownerKey: "k", record: Self.record("j1"))
        let first = try #require(try table.claim(owner: "A", lease: .milliseconds(300)))
        #expect(try table.commitProgress(first.lease, rows: 1, record: Self.record("j1", "A1"), extend: .milliseconds(300)) == .held)
        // A stops renewing (killed, frozen): its lease runs out and B takes the job over.
        #expect(try table.claim(owner: "B", lease: .seconds(30)) == nil, "not claimable while A's lease holds")
        Thread.sleep(forTimeInterval: 0.5)
        let second = try #require(try table.claim(owner: "B", lease: .seconds(30)))
        #expect(second.isTakeover && second.lease.generation == 2 && second.row.progressRows == 1)
        #expect(second.row.record.contains("A1"), "B resumes from A's last committed progress")
        // A comes back (SIGCONT): every write it attempts is fenced off.
        #expect(try table.renew(first.lease, for: .seconds(30)) == .lost)
        #expect(try table.commitProgress(first.lease, rows: 5, record: Self.record("j1", "stale"), extend: .seconds(30)) == .lost)
        #expect(try table.finish(first.lease, status: "successful", record: Self.record("j1", "stale")) == .lost)
        #expect(try table.release(first.lease, record: Self.record("j1", "stale")) == .lost)
        // B finishes it, once.
        #expect(try table.commitProgress(second.lease, rows: 3, record: Self.record("j1", "B3"), extend: .seconds(30)) == .held)
        #expect(try table.finish(second.lease, status: "successful", record: Self.record("j1", "done")) == .held)
        #expect(try table.finish(second.lease, status: "successful", record: Self.record("j1", "again")) == .lost)
        let row = try #require(try table.get("j1"))
        #expect(row.status == "successful" && row.finishedCount == 1 && row.progressRows == 3 && row.record.contains("done"))
        #expect(row.leaseOwner == nil)
    }

    @Test("release hands the job to another replica at once; dismissal reaches the owner at its next heartbeat")
    func releaseAndDismiss() throws {
        guard let table = try Self.freshTable() else { return }
        try table.insert(jobID: "r1", created: Date(), ownerKey: nil, record: Self.record("r1"))
        try table.insert(jobID: "d1", created: Date() + 1, ownerKey: nil, record: Self.record("d1"))
        let a = try #require(try table.claim(owner: "A", lease: .seconds(30)))
        #expect(a.lease.jobID == "r1")
        #expect(try table.release(a.lease, record: Self.record("r1", "released")) == .held)
        let b = try #require(try table.claim(owner: "B", lease: .seconds(30)))
        #expect(b.lease.jobID == "r1" && b.lease.generation == 2, "claimable at once, no lease timeout")
        let c = try #require(try table.claim(owner: "C", lease: .seconds(30)))
        #expect(c.lease.jobID == "d1")
        let dismissed = try table.dismiss("d1") { _ in Self.record("d1", "dismissed") }
        #expect(dismissed?.status == "running")
        #expect(try table.dismiss("d1") { _ in "{}" } == nil, "a second DELETE finds nothing to dismiss")
        #expect(try table.renew(c.lease, for: .seconds(30)) == .dismissed)
        #expect(try table.finish(c.lease, status: "successful", record: "{}") == .dismissed)
        #expect(try table.list(statuses: ["dismissed"]).map(\.jobID) == ["d1"])
        #expect(try table.list(statuses: ["running", "accepted"]).map(\.jobID) == ["r1"])
        #expect(try table.claim(owner: "D", lease: .seconds(30)) == nil, "a dismissed job is never claimed")
    }

    @Test("owner keys filter the list")
    func ownerKeys() throws {
        guard let table = try Self.freshTable() else { return }
        try table.insert(jobID: "a", created: Date(), ownerKey: "alice", record: Self.record("a"))
        try table.insert(jobID: "b", created: Date() + 1, ownerKey: "bob", record: Self.record("b"))
        #expect(try table.list(ownerKey: "alice").map(\.jobID) == ["a"])
        #expect(try table.list().count == 2)
        #expect(try table.count(statuses: ["accepted"]) == 2 && table.count(statuses: ["running"]) == 0)
    }

    @Test("a statement past the timeout is a typed timeout; the connection stays usable")
    func statementTimeout() throws {
        guard let table = try Self.freshTable(statementTimeout: .milliseconds(200)) else { return }
        let error = Self.failure(table.pool, "SELECT pg_sleep(2)")
        #expect(error?.kind == .timeout && error?.sqlState == "57014", "\(String(describing: error))")
        #expect(try table.list().isEmpty)
    }

    @Test("an unreachable server is a quick typed connection error that never shows the password")
    func unreachable() throws {
        // A loopback port nothing listens on (the address check is what matters, not the network).
        let pool = PostgresPool(.init(url: "postgres://spectralx:secret-password@127.0.0.1:9/none", size: 1,
                                      connectTimeout: .seconds(1)))
        for attempt in 0..<2 {
            let t0 = ContinuousClock.now
            let error = Self.failure(pool, "SELECT 1")
            #expect(error?.kind == .connection)
            #expect(error.map { !$0.description.contains("secret-password") } ?? false)
            // The second attempt inside the backoff window fails without trying again.
            if attempt == 1 { #expect(ContinuousClock.now - t0 < .milliseconds(50)) }
        }
        #expect(pool.retryAfter >= .seconds(1))
        #expect(redactedDatabaseURL("postgres://u:pw@h:5/db") == "postgres://u:***@h:5/db")
    }
}

import Synchronization
