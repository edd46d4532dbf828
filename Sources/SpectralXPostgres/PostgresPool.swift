import Foundation
import Synchronization

/// A small pool of PostgreSQL connections shared by a replica's threads.
///
/// Connections are made on demand (at most `size`), handed to one thread at a time and put back; a broken
/// one is dropped. When connecting fails, further attempts fail fast with the same `.connection` error
/// until a backoff delay has passed (doubling from 100 ms to 5 s, reset by the next success), so that a
/// database outage answers requests at once (503 + Retry-After) instead of making each wait for a timeout.
public final class PostgresPool: Sendable {
    public struct Configuration: Sendable {
        public var url: String
        public var size: Int
        public var connectTimeout: Duration
        public var statementTimeout: Duration
        public var maxBackoff: Duration

        public init(url: String, size: Int = 4, connectTimeout: Duration = .seconds(3), statementTimeout: Duration = .seconds(10),
                    maxBackoff: Duration = .seconds(5)) {
            self.url = url
            self.size = size
            self.connectTimeout = connectTimeout
            self.statementTimeout = statementTimeout
            self.maxBackoff = maxBackoff
        }
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var backoff: Duration = .zero
        var retryAt: ContinuousClock.Instant?
        var lastError: PostgresError?
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    private let available = NSCondition()

    public init(_ configuration: Configuration) {
        self.configuration = configuration
    }

    /// How long callers should wait before retrying after a connection failure (for `Retry-After`).
    public var retryAfter: Duration {
        state.withLock { s in
            guard let at = s.retryAt else { return .seconds(1) }
            return max(.seconds(1), at - ContinuousClock.now)
        }
    }

    /// Runs `body` on a connection of the pool. A `.connection` error drops the connection; the caller
    /// decides whether to retry.
    public func withConnection<T>(_ body: (PostgresConnection) throws(PostgresError) -> T) throws(PostgresError) -> T {
        let connection = try checkOut()
        do throws(PostgresError) {
            let value = try body(connection)
            checkIn(connection)
            return value
        } catch {
            checkIn(connection)
            throw error
        }
    }

    /// Runs `body` inside `BEGIN … COMMIT` (ROLLBACK when it throws).
    public func transaction<T>(_ body: (PostgresConnection) throws(PostgresError) -> T) throws(PostgresError) -> T {
        try withConnection { (c: PostgresConnection) throws(PostgresError) -> T in
            try c.query("BEGIN")
            do throws(PostgresError) {
                let value = try body(c)
                try c.query("COMMIT")
                return value
            } catch {
                if c.isHealthy { _ = try? c.query("ROLLBACK") }
                throw error
            }
        }
    }

    private func checkOut() throws(PostgresError) -> PostgresConnection {
        enum Next { case use(PostgresConnection), connect, wait, fail(PostgresError) }
        while true {
            let next: Next = state.withLock { s in
                if let c = s.idle.popLast() { return .use(c) }
                if let at = s.retryAt, ContinuousClock.now < at, let e = s.lastError { return .fail(e) }
                if s.open < max(1, configuration.size) { s.open += 1; return .connect }
                return .wait
            }
            switch next {
            case .use(let c):
                return c
            case .fail(let e):
                throw e
            case .wait:
                available.lock()
                _ = available.wait(until: Date(timeIntervalSinceNow: 0.05))
                available.unlock()
            case .connect:
                do throws(PostgresError) {
                    let c = try PostgresConnection(url: configuration.url, connectTimeout: configuration.connectTimeout,
                                                   statementTimeout: configuration.statementTimeout)
                    state.withLock { s in s.backoff = .zero; s.retryAt = nil; s.lastError = nil }
                    return c
                } catch {
                    state.withLock { s in
                        s.open -= 1
                        s.backoff = s.backoff == .zero ? .milliseconds(100) : min(configuration.maxBackoff, s.backoff * 2)
                        s.retryAt = ContinuousClock.now + s.backoff
                        s.lastError = error
                    }
                    throw error
                }
            }
        }
    }

    private func checkIn(_ connection: PostgresConnection) {
        state.withLock { s in
            if connection.isHealthy { s.idle.append(connection) } else { s.open -= 1 }
        }
        available.lock()
        available.signal()
        available.unlock()
    }
}

/// Versioned schema changes applied at start, in order, each once. Replicas starting together take a
/// transaction-scoped advisory lock first, so one applies what is missing while the others wait and
/// then find nothing left to do.
public enum PostgresMigrations {
    /// The advisory lock key (any constant unique to spectralx's schema).
    public static let lockKey: Int64 = 0x5350_4543_5452_4158  // "SPECTRAX"

    /// Applies the migrations not yet recorded in `spectralx_schema_migrations`; returns the versions
    /// applied now (empty when the schema was current).
    @discardableResult
    public static func apply(_ migrations: [(version: Int, sql: String)], pool: PostgresPool) throws(PostgresError) -> [Int] {
        try pool.transaction { (c: PostgresConnection) throws(PostgresError) -> [Int] in
            try c.query("SELECT pg_advisory_xact_lock($1)", [String(lockKey)])
            try c.query("""
                CREATE TABLE IF NOT EXISTS spectralx_schema_migrations (
                    version integer PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let done = Set(try c.query("SELECT version FROM spectralx_schema_migrations").rows.compactMap { $0[0].flatMap(Int.init) })
            var applied: [Int] = []
            for m in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(m.version) {
                try c.query(m.sql)
                try c.query("INSERT INTO spectralx_schema_migrations (version) VALUES ($1)", [String(m.version)])
                applied.append(m.version)
            }
            return applied
        }
    }
}
