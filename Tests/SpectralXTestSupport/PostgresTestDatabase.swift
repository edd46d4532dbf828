import Foundation
import SpectralXPostgres

/// The PostgreSQL the tests may use: `SPECTRALX_TEST_POSTGRES_URL` (scripts/test.sh starts a throwaway
/// cluster on 127.0.0.1 with scripts/postgres/start.sh and sets it). Each caller gets a schema of its
/// own, so tests never see each other's rows.
public enum PostgresTestDatabase {
    public static let url = ProcessInfo.processInfo.environment["SPECTRALX_TEST_POSTGRES_URL"]
    public static let skipReason =
        "SPECTRALX_TEST_POSTGRES_URL is not set (scripts/test.sh starts PostgreSQL with scripts/postgres/start.sh)"

    /// A migrated job table in a new schema named after `name`; nil (after printing why) without a database.
    public static func freshTable(_ name: String, size: Int = 4, statementTimeout: Duration = .seconds(10)) throws -> PostgresJobTable? {
        guard let url else { print("SKIP: \(skipReason)"); return nil }
        let schema = "t_" + String(name.filter { $0.isLetter || $0.isNumber }.prefix(40)).lowercased() + "_\(getpid())"
        let admin = PostgresPool(.init(url: url, size: 1))
        try admin.withConnection { (c: PostgresConnection) throws(PostgresError) in
            try c.query("DROP SCHEMA IF EXISTS \(schema) CASCADE")
            try c.query("CREATE SCHEMA \(schema)")
        }
        let scoped = url + (url.contains("?") ? "&" : "?") + "options=-csearch_path%3D\(schema)"
        let table = PostgresJobTable(pool: PostgresPool(.init(url: scoped, size: size, statementTimeout: statementTimeout)))
        try table.migrate()
        return table
    }
}
