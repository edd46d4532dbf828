import Foundation
import SpectralXSupport

/// The jobs directory: one sub-directory per job, every state change written atomically (temporary
/// file, fsync, rename, fsync of the directory), so a crash or `kill -9` at any point leaves either
/// the old or the new state, never a half-written one.
///
/// ```
/// <jobs-dir>/<id>/job.json             metadata (JobRecord)
/// <jobs-dir>/<id>/input.tif|input.npy  the spooled upload (removed once the job finished)
/// <jobs-dir>/<id>/result.partial.tif.cog-spool/  the result's tiles while it is being written (resumable)
/// <jobs-dir>/<id>/result.tif           the finished result (renamed into place)
/// <jobs-dir>/.incoming-<id>/           a submission being assembled (becomes <id>/ by one rename)
/// <jobs-dir>/.trash-<id>/              a job being removed (renamed away first, then deleted)
/// ```
/// Directories starting with `.` are leftovers of an interrupted submission or removal and are
/// deleted on start.
public struct JobStore: Sendable {
    public let directory: URL

    public init(directory: URL) throws {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw JobError.storage("cannot create the jobs directory \(directory.path): \(error.localizedDescription)")
        }
    }

    public func jobDirectory(_ id: String) -> URL { directory.appendingPathComponent(id, isDirectory: true) }
    func incomingDirectory(_ id: String) -> URL { directory.appendingPathComponent(".incoming-\(id)", isDirectory: true) }
    public func recordURL(_ id: String) -> URL { jobDirectory(id).appendingPathComponent("job.json") }
    public func inputURL(_ id: String, format: JobInputFormat) -> URL { jobDirectory(id).appendingPathComponent(format.fileName) }
    public func partialResultURL(_ id: String) -> URL { jobDirectory(id).appendingPathComponent("result.partial.tif") }
    public func resultURL(_ id: String) -> URL { jobDirectory(id).appendingPathComponent("result.tif") }
    /// The result of a finished job as its record names it (fleet jobs name theirs by lease generation).
    public func resultURL(_ record: JobRecord) -> URL {
        jobDirectory(record.jobID).appendingPathComponent(record.resultFile ?? "result.tif")
    }

    /// Writes `job.json` atomically.
    public func write(_ record: JobRecord) throws {
        let data = try JobRecord.encoder.encode(record)
        try Self.durableWrite(data, to: recordURL(record.jobID))
    }

    /// Creates a job from an input file and its record with one final rename, so the job either
    /// exists completely or not at all. `place` puts the input at the URL it is given.
    public func create(_ record: JobRecord, place: (URL) throws -> Void, check: (URL) throws -> JobRecord) throws -> JobRecord {
        let fm = FileManager.default
        let incoming = incomingDirectory(record.jobID)
        try? fm.removeItem(at: incoming)
        do {
            try fm.createDirectory(at: incoming, withIntermediateDirectories: false)
        } catch {
            throw JobError.storage("cannot create \(incoming.path): \(error.localizedDescription)")
        }
        do {
            let input = incoming.appendingPathComponent(record.inputFormat.fileName)
            try place(input)
            try Self.storage { () throws(FileSystemError) in try AtomicFile.synchronize(path: input.path) }
            let checked = try check(input)
            try Self.durableWrite(try JobRecord.encoder.encode(checked), to: incoming.appendingPathComponent("job.json"))
            try Self.durableRename(incoming, to: jobDirectory(record.jobID))
            return checked
        } catch {
            try? fm.removeItem(at: incoming)
            throw error
        }
    }

    /// Removes a job's directory: renamed away first (atomic), then deleted.
    public func remove(_ id: String) {
        let fm = FileManager.default
        let trash = directory.appendingPathComponent(".trash-\(id)-\(UUID().uuidString.prefix(8))", isDirectory: true)
        if (try? AtomicFile.rename(jobDirectory(id).path, to: trash.path, durable: false)) != nil {
            try? AtomicFile.synchronize(path: directory.path)
            try? fm.removeItem(at: trash)
        } else {
            try? fm.removeItem(at: jobDirectory(id))
        }
    }

    /// Every job on disk; leftovers of interrupted submissions and removals are deleted, and a job
    /// directory whose `job.json` is unreadable is reported in `unreadable` (kept for inspection).
    public func loadAll() -> (records: [JobRecord], unreadable: [String]) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else { return ([], []) }
        var records: [JobRecord] = [], unreadable: [String] = []
        for name in names.sorted() {
            if name.hasPrefix(".incoming-") || name.hasPrefix(".trash-") {
                try? fm.removeItem(at: directory.appendingPathComponent(name))
                continue
            }
            guard JobRecord.isValidID(name) else { continue }
            if let data = try? Data(contentsOf: recordURL(name)),
               let r = try? JobRecord.decoder.decode(JobRecord.self, from: data), r.jobID == name {
                records.append(r)
            } else {
                unreadable.append(name)
            }
        }
        return (records, unreadable)
    }

    /// Bytes used by one job's files.
    public func bytes(of id: String) -> Int64 { Self.treeBytes(jobDirectory(id)) }

    static func treeBytes(_ url: URL) -> Int64 {
        guard let files = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey]) else { return 0 }
        var total: Int64 = 0
        for case let f as URL in files {
            total += Int64((try? f.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
        }
        return total
    }

    // MARK: - durable file operations

    /// Replaces `url` with `data` durably (`AtomicFile`: temporary file, fsync, rename, fsync of the directory).
    public static func durableWrite(_ data: Data, to url: URL) throws(JobError) {
        try storage { () throws(FileSystemError) in try AtomicFile.write(data, to: url.path, durable: true, permissions: 0o600) }
    }

    /// Renames `from` over `to` and makes the rename durable.
    public static func durableRename(_ from: URL, to: URL) throws(JobError) {
        try storage { () throws(FileSystemError) in try AtomicFile.rename(from.path, to: to.path, durable: true) }
    }

    /// The jobs layer's form of a failed file operation.
    private static func storage(_ body: () throws(FileSystemError) -> Void) throws(JobError) {
        do { try body() } catch { throw .storage("\(error)") }
    }
}
