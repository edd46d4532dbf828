import Foundation

/// What the job routes need from a job manager: ``JobManager`` (one replica, its jobs directory) or
/// ``FleetJobManager`` (a fleet: job state in PostgreSQL, inputs, row bands and results in a blob store).
public protocol JobService: AnyObject, Sendable {
    /// Where jobs' files live (in a fleet: this replica's working copies).
    var store: JobStore { get }
    /// One job (including a dismissed one until it expires).
    func record(_ id: String) throws -> JobRecord
    /// Every job, oldest first, optionally only those in `statuses`.
    func jobs(statuses: Set<JobStatus>?) throws -> [JobRecord]
    /// The error a submission of `bytes` would get now, or nil (lets the API refuse an upload from its headers).
    func admissionError(bytes: Int64?) -> JobError?
    /// Accepts a job: the input is spooled and checked and the job recorded before this returns.
    func submit(domain: LoadedDomain, options: JobOptions, format: JobInputFormat, upload: JobUpload,
                ownerKeyHash: String?) throws -> JobRecord
    /// `DELETE`: removes the job, or stops it where it runs.
    @discardableResult
    func dismiss(_ id: String) throws -> JobRecord
    /// Stops taking jobs and asks running ones to stop after their batch in flight, without waiting.
    func beginShutdown()
    /// Stops and waits (at most until `deadline`) for the running jobs; whether they all stopped.
    func shutdown(until deadline: Date?) -> Bool
    /// nil when the job service can take requests; otherwise why not (for `/readyz`).
    func unavailableReason() -> String?
    /// Where a successful job's result is read from.
    func result(_ record: JobRecord) throws -> JobResult
}

/// Where a successful job's result is read from (`GET /v1/jobs/{id}/results`).
public enum JobResult: Sendable {
    /// A file on this machine (one replica's jobs directory).
    case file(URL)
    /// An object in the fleet's blob store, read in ranges.
    case stored(StoredResult)
    /// A presigned URL of the object, for a `303` (`serve --blob-presign`).
    case redirect(URL)
}

/// A result object in a blob store: its size and ranged reads pinned to the version that was
/// measured, so a response never mixes bytes of two objects.
public struct StoredResult: Sendable {
    public let size: Int64
    /// `length` bytes from `offset` (inside the object).
    public let read: @Sendable (_ offset: Int64, _ length: Int64) throws -> Data

    public init(size: Int64, read: @escaping @Sendable (_ offset: Int64, _ length: Int64) throws -> Data) {
        self.size = size
        self.read = read
    }
}

extension JobManager: JobService {
    public func jobs(statuses: Set<JobStatus>?) throws -> [JobRecord] { list(statuses: statuses) }
    public func unavailableReason() -> String? { nil }
    public func result(_ record: JobRecord) throws -> JobResult { .file(store.resultURL(record)) }
}
