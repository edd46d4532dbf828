import Foundation
import SpectralXSupport

/// The shared job state of a fleet in PostgreSQL: one row per job holding its record (JSON, as the jobs
/// layer encodes it), its status, and the lease of the replica running it.
///
/// Leases: a replica claims the oldest accepted job (or a running one whose lease expired: its replica
/// died, froze or lost the network) with `FOR UPDATE SKIP LOCKED`, so two replicas never claim the same
/// row; each claim increments the job's lease generation. Every later write by the owner (heartbeat,
/// progress, finish, release) names that generation and changes nothing once another replica has claimed
/// the job since (fencing), so a replica that comes back after losing its lease can never overwrite the
/// new owner's work, and a job is finished exactly once. Lease times are the database's clock (`now()`),
/// never a replica's.
public struct PostgresJobTable: Sendable {
    public let pool: PostgresPool

    /// The schema, as versioned migrations.
    public static let migrations: [(version: Int, sql: String)] = [
        (1, """
            CREATE TABLE spectralx_jobs (
                job_id text PRIMARY KEY,
                status text NOT NULL CHECK (status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')),
                created timestamptz NOT NULL,
                updated timestamptz NOT NULL DEFAULT now(),
                owner_key text,
                record jsonb NOT NULL,
                lease_owner text,
                lease_generation bigint NOT NULL DEFAULT 0,
                lease_expires timestamptz,
                progress_rows integer NOT NULL DEFAULT 0,
                finished_count integer NOT NULL DEFAULT 0);
            CREATE INDEX spectralx_jobs_claimable ON spectralx_jobs (status, created);
            """),
    ]

    /// A job row as stored.
    public struct Row: Sendable, Equatable {
        public var jobID: String
        public var status: String
        public var ownerKey: String?
        public var record: String
        public var leaseOwner: String?
        public var leaseGeneration: Int64
        public var progressRows: Int
        public var finishedCount: Int
    }

    /// The right to write a claimed job: who holds it and under which generation.
    public struct Lease: Sendable, Equatable {
        public let jobID: String
        public let owner: String
        public let generation: Int64
    }

    /// A claimed job: its lease, the row as claimed, and whether another replica held it before (a takeover).
    public struct Claim: Sendable {
        public let lease: Lease
        public let row: Row
        public var isTakeover: Bool { lease.generation > 1 }
    }

    /// What a heartbeat found.
    public enum LeaseState: Sendable, Equatable {
        /// Renewed: keep going.
        case held
        /// Another replica claimed the job (this one was too slow to renew): stop without writing.
        case lost
        /// The job was dismissed (`DELETE`): stop and discard the work.
        case dismissed
    }

    public init(pool: PostgresPool) { self.pool = pool }

    /// Creates or upgrades the schema (idempotent; safe when replicas start together).
    @discardableResult
    public func migrate() throws(PostgresError) -> [Int] { try PostgresMigrations.apply(Self.migrations, pool: pool) }

    private static let columns = "job_id, status, owner_key, record::text AS record, lease_owner, lease_generation, progress_rows, finished_count"

    static func row(_ r: PostgresRows, _ i: Int) -> Row {
        Row(jobID: r.value(i, "job_id") ?? "", status: r.value(i, "status") ?? "", ownerKey: r.value(i, "owner_key"),
            record: r.value(i, "record") ?? "{}", leaseOwner: r.value(i, "lease_owner"),
            leaseGeneration: Int64(r.value(i, "lease_generation") ?? "0") ?? 0,
            progressRows: Int(r.value(i, "progress_rows") ?? "0") ?? 0, finishedCount: Int(r.value(i, "finished_count") ?? "0") ?? 0)
    }

    /// Inserts an accepted job.
    public func insert(jobID: String, created: Date, ownerKey: String?, record: String) throws(PostgresError) {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) in
            try c.query("""
                INSERT INTO spectralx_jobs (job_id, status, created, owner_key, record)
                VALUES ($1, 'accepted', to_timestamp($2), $3, $4::jsonb)
                """, [jobID, String(created.timeIntervalSince1970), ownerKey, record])
        }
    }

    /// One job, whatever its state.
    public func get(_ jobID: String) throws(PostgresError) -> Row? {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> Row? in
            let r = try c.query("SELECT \(Self.columns) FROM spectralx_jobs WHERE job_id = $1", [jobID])
            return r.isEmpty ? nil : Self.row(r, 0)
        }
    }

    /// Jobs oldest first, optionally only those in `statuses` and of one owner key.
    public func list(statuses: [String]? = nil, ownerKey: String? = nil) throws(PostgresError) -> [Row] {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> [Row] in
            let r = try c.query("""
                SELECT \(Self.columns) FROM spectralx_jobs
                WHERE ($1::text[] IS NULL OR status = ANY($1::text[])) AND ($2::text IS NULL OR owner_key = $2)
                ORDER BY created, job_id
                """, [statuses.map { "{" + $0.joined(separator: ",") + "}" }, ownerKey])
            return (0..<r.rows.count).map { Self.row(r, $0) }
        }
    }

    /// How many jobs are in `statuses` (a count, without reading the records).
    public func count(statuses: [String]) throws(PostgresError) -> Int {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> Int in
            let r = try c.query("SELECT count(*) AS n FROM spectralx_jobs WHERE status = ANY($1::text[])",
                                ["{" + statuses.joined(separator: ",") + "}"])
            return Int(r.value(0, "n") ?? "0") ?? 0
        }
    }

    /// Claims the oldest claimable job for replica `owner`: an accepted one, or a running one whose lease
    /// expired. nil when there is none.
    public func claim(owner: String, lease: Duration) throws(PostgresError) -> Claim? {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> Claim? in
            let r = try c.query("""
                WITH next AS (
                    SELECT job_id FROM spectralx_jobs
                    WHERE status = 'accepted' OR (status = 'running' AND lease_expires < now())
                    ORDER BY created, job_id
                    FOR UPDATE SKIP LOCKED
                    LIMIT 1)
                UPDATE spectralx_jobs j
                SET status = 'running', lease_owner = $1, lease_generation = j.lease_generation + 1,
                    lease_expires = now() + make_interval(secs => $2::double precision), updated = now()
                FROM next WHERE j.job_id = next.job_id
                RETURNING j.job_id, j.status, j.owner_key, j.record::text AS record, j.lease_owner, j.lease_generation,
                          j.progress_rows, j.finished_count
                """, [owner, Self.seconds(lease)])
            guard !r.isEmpty else { return nil }
            let row = Self.row(r, 0)
            return Claim(lease: Lease(jobID: row.jobID, owner: owner, generation: row.leaseGeneration), row: row)
        }
    }

    /// The heartbeat: extends the lease while it is still this replica's.
    public func renew(_ lease: Lease, for duration: Duration) throws(PostgresError) -> LeaseState {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> LeaseState in
            let r = try c.query("""
                UPDATE spectralx_jobs SET lease_expires = now() + make_interval(secs => $4::double precision)
                WHERE job_id = $1 AND lease_owner = $2 AND lease_generation = $3 AND status = 'running'
                """, [lease.jobID, lease.owner, String(lease.generation), Self.seconds(duration)])
            if r.affected == 1 { return .held }
            return try Self.why(c, lease)
        }
    }

    /// Commits progress (completed row bands, and the record as it stands) under the lease, extending it.
    /// `.held` when written; otherwise nothing was written.
    public func commitProgress(_ lease: Lease, rows: Int, record: String, extend duration: Duration) throws(PostgresError) -> LeaseState {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> LeaseState in
            let r = try c.query("""
                UPDATE spectralx_jobs SET progress_rows = $4, record = $5::jsonb, updated = now(),
                    lease_expires = now() + make_interval(secs => $6::double precision)
                WHERE job_id = $1 AND lease_owner = $2 AND lease_generation = $3 AND status = 'running'
                """, [lease.jobID, lease.owner, String(lease.generation), String(rows), record, Self.seconds(duration)])
            if r.affected == 1 { return .held }
            return try Self.why(c, lease)
        }
    }

    /// Finishes the job (`successful` or `failed`) under the lease: exactly once, and only by the replica
    /// holding the current generation. `.held` when this call finished it.
    public func finish(_ lease: Lease, status: String, record: String) throws(PostgresError) -> LeaseState {
        precondition(status == "successful" || status == "failed")
        return try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> LeaseState in
            let r = try c.query("""
                UPDATE spectralx_jobs SET status = $4, record = $5::jsonb, updated = now(), lease_owner = NULL,
                    lease_expires = NULL, finished_count = finished_count + 1
                WHERE job_id = $1 AND lease_owner = $2 AND lease_generation = $3 AND status = 'running'
                """, [lease.jobID, lease.owner, String(lease.generation), status, record])
            if r.affected == 1 { return .held }
            return try Self.why(c, lease)
        }
    }

    /// Gives the job back (graceful shutdown after the current batch): accepted again, claimable at once.
    @discardableResult
    public func release(_ lease: Lease, record: String) throws(PostgresError) -> LeaseState {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) -> LeaseState in
            let r = try c.query("""
                UPDATE spectralx_jobs SET status = 'accepted', record = $4::jsonb, updated = now(), lease_owner = NULL,
                    lease_expires = NULL
                WHERE job_id = $1 AND lease_owner = $2 AND lease_generation = $3 AND status = 'running'
                """, [lease.jobID, lease.owner, String(lease.generation), record])
            if r.affected == 1 { return .held }
            return try Self.why(c, lease)
        }
    }

    /// Marks a job dismissed (its owner sees it at its next heartbeat or commit); the row as it was, nil
    /// when there is no such job or it was dismissed already.
    public func dismiss(_ jobID: String, record: (Row) -> String) throws(PostgresError) -> Row? {
        try pool.transaction { (c: PostgresConnection) throws(PostgresError) -> Row? in
            let r = try c.query("SELECT \(Self.columns) FROM spectralx_jobs WHERE job_id = $1 AND status <> 'dismissed' FOR UPDATE", [jobID])
            guard !r.isEmpty else { return nil }
            let row = Self.row(r, 0)
            try c.query("""
                UPDATE spectralx_jobs SET status = 'dismissed', record = $2::jsonb, updated = now(), lease_owner = NULL,
                    lease_expires = NULL
                WHERE job_id = $1
                """, [jobID, record(row)])
            return row
        }
    }

    /// Deletes a job's row (its expiry).
    public func delete(_ jobID: String) throws(PostgresError) {
        try pool.withConnection { (c: PostgresConnection) throws(PostgresError) in
            try c.query("DELETE FROM spectralx_jobs WHERE job_id = $1", [jobID])
        }
    }

    /// Why a lease-guarded write changed nothing.
    private static func why(_ c: PostgresConnection, _ lease: Lease) throws(PostgresError) -> LeaseState {
        let r = try c.query("SELECT status FROM spectralx_jobs WHERE job_id = $1", [lease.jobID])
        return r.isEmpty || r.value(0, "status") == "dismissed" ? .dismissed : .lost
    }

    static func seconds(_ d: Duration) -> String { String(d.inSeconds) }
}
