import CLibPQ
import Foundation
import SpectralXSupport

/// What went wrong talking to PostgreSQL, typed so callers decide (503 and retry, fail a job) without
/// reading message text. Messages never contain the connection URL's password.
public struct PostgresError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No connection could be made, or it broke: the server is unreachable, down or restarting.
        case connection
        /// The statement ran past the statement timeout (SQLSTATE 57014).
        case timeout
        /// The server refused the statement (constraint, syntax, serialization: see `sqlState`).
        case statement
    }
    public let kind: Kind
    /// The five-character SQLSTATE code when the server sent one.
    public let sqlState: String?
    public let message: String

    public var description: String { "PostgreSQL \(kind)\(sqlState.map { " (\($0))" } ?? ""): \(message)" }
}

/// One result: column names and rows of text values (libpq's text format; nil for SQL NULL).
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows an INSERT/UPDATE/DELETE touched (0 for a SELECT that returned none).
    public let affected: Int

    public var isEmpty: Bool { rows.isEmpty }

    /// The value of `column` in row `row` (nil when NULL or when there is no such column).
    public func value(_ row: Int, _ column: String) -> String? {
        guard let c = columns.firstIndex(of: column) else { return nil }
        return rows[row][c]
    }
}

/// One libpq connection. Not for concurrent use: ``PostgresPool`` hands a connection to one thread at a
/// time.
///
/// `@unchecked Sendable`: the libpq handle is only ever used by the thread the pool lent it to, under the
/// pool's lock discipline (taken out, used, put back), never by two threads at once.
public final class PostgresConnection: @unchecked Sendable {
    private let handle: OpaquePointer

    /// Connects to `url` (`postgres://user:password@host:port/db?…`, libpq's URI syntax) and sets the
    /// session's statement timeout, so no statement can hang a request or a job.
    public init(url: String, connectTimeout: Duration = .seconds(5), statementTimeout: Duration = .seconds(10)) throws(PostgresError) {
        let seconds = max(1, Int(connectTimeout.inSeconds.rounded(.up)))
        let keys = ["dbname", "connect_timeout", "application_name"]
        let values = [url, String(seconds), "spectralx"]
        let handle: OpaquePointer? = keys.withCStrings { k in
            values.withCStrings { v in PQconnectdbParams(k, v, 1) }
        }
        guard let handle else { throw PostgresError(kind: .connection, sqlState: nil, message: "out of memory") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = Self.clean(PQerrorMessage(handle))
            PQfinish(handle)
            throw PostgresError(kind: .connection, sqlState: nil, message: message)
        }
        self.handle = handle
        let ms = max(1, Int(statementTimeout.inNanoseconds / 1_000_000))
        _ = try query("SET statement_timeout = \(ms)")
    }

    deinit { PQfinish(handle) }

    /// false once the connection broke (the pool then drops it).
    public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

    /// Runs a statement with `$1…$n` parameters sent separately from the text (never interpolated); without
    /// parameters `sql` may hold several statements.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresRows {
        // Without parameters, PQexec (which also runs a migration's several statements); with them,
        // PQexecParams: the values travel apart from the SQL text, never spliced into it.
        let result: OpaquePointer? = parameters.isEmpty ? PQexec(handle, sql) : parameters.withOptionalCStrings { values in
            PQexecParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        guard let result else {
            throw PostgresError(kind: isHealthy ? .statement : .connection, sqlState: nil, message: Self.clean(PQerrorMessage(handle)))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            break
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = Self.clean(PQresultErrorMessage(result))
            let kind: PostgresError.Kind = !isHealthy || state?.hasPrefix("08") == true ? .connection
                : state == "57014" ? .timeout : .statement
            throw PostgresError(kind: kind, sqlState: state, message: message)
        }
        let fields = Int(PQnfields(result)), count = Int(PQntuples(result))
        let columns = (0..<fields).map { String(cString: PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(count)
        for r in 0..<count {
            rows.append((0..<fields).map { c in
                PQgetisnull(result, Int32(r), Int32(c)) == 1 ? nil : String(cString: PQgetvalue(result, Int32(r), Int32(c)))
            })
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? count
        return PostgresRows(columns: columns, rows: rows, affected: affected)
    }

    /// libpq's message without the trailing newline.
    static func clean(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Array where Element == String {
    /// A NULL-terminated array of C strings valid inside `body`.
    fileprivate func withCStrings<R>(_ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let copies = map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) } + [nil]
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

extension Array where Element == String? {
    /// C strings (NULL for nil) valid inside `body`.
    fileprivate func withOptionalCStrings<R>(_ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let copies = map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { $0.map { UnsafePointer($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}

/// `url` with its password replaced by `***`, for logs and errors.
public func redactedDatabaseURL(_ url: String) -> String {
    guard var c = URLComponents(string: url) else { return "(unparsable URL)" }
    if c.password != nil { c.password = "***" }
    return c.string ?? "(unparsable URL)"
}
