import Foundation

/// What the job routes need from a job manager: ``JobManager`` (one replica, its jobs directory) or
/// ``FleetJobManager`` (a fleet: job state in PostgreSQL, files on a shared volume).
public protocol JobService: AnyObject, Sendable {
    /// Where jobs' files live (the shared volume in a fleet).
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
}

extension JobService {
    /// The finished result's file.
    public func resultURL(_ record: JobRecord) -> URL { store.resultURL(record) }
}

extension JobManager: JobService {
    public func jobs(statuses: Set<JobStatus>?) throws -> [JobRecord] { list(statuses: statuses) }
    public func unavailableReason() -> String? { nil }
}
