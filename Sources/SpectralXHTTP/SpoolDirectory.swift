import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where one server spools request bodies: `<root>/srv-<pid>-<random>/`, a subdirectory held with
/// an exclusive `flock` on its `.lock` file for the server's lifetime. At start-up every other
/// subdirectory whose lock can be taken belongs to a server that is gone (killed during an upload,
/// say) and is removed with its files; live servers sharing the root keep theirs (the lock works
/// across processes and within one, and does not depend on pid reuse).
final class SpoolDirectory: Sendable {
    /// `<temporary directory>/spectralx-spool-<uid>`.
    static var defaultRoot: URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-spool-\(geteuid())", isDirectory: true)
    }

    let url: URL
    private let lockFD: Int32
    /// Files and bytes removed from stale subdirectories at start-up.
    let sweptFiles: Int
    let sweptBytes: Int64

    /// Creates (or checks) `root`, removes stale subdirectories, takes a fresh one.
    init(root: URL) throws {
        let fm = FileManager.default
        let path = root.path
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            if errno == ENOENT {
                try fm.createDirectory(at: root.deletingLastPathComponent(), withIntermediateDirectories: true)
                guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw SpoolDirectory.error("cannot create \(path)") }
            } else {
                throw SpoolDirectory.error("cannot create \(path)")
            }
        }
        var st = stat()
        guard lstat(path, &st) == 0 else { throw SpoolDirectory.error("cannot stat \(path)") }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw SpoolDirectory.error("spool directory \(path) is not a directory (or is a symlink)")
        }
        guard st.st_uid == geteuid() else {
            throw SpoolDirectory.error("spool directory \(path) belongs to uid \(st.st_uid), not to this process (uid \(geteuid()))")
        }
        _ = chmod(path, 0o700)

        var files = 0
        var bytes: Int64 = 0
        for name in (try? fm.contentsOfDirectory(atPath: path)) ?? [] {
            let entry = root.appendingPathComponent(name)
            if name.hasPrefix("srv-") {
                let lock = open(entry.appendingPathComponent(".lock").path, O_RDWR | O_CLOEXEC)
                if lock >= 0 {
                    let free = flock(lock, LOCK_EX | LOCK_NB) == 0
                    if !free { Glibc.close(lock); continue }  // a live server's
                    Glibc.close(lock)
                }
                // Lock taken (owner gone) or no lock file (died before creating it): stale.
                let counted = SpoolDirectory.count(entry)
                if (try? fm.removeItem(at: entry)) != nil { files += counted.files; bytes += counted.bytes }
            } else if name.hasPrefix("spectralx-body-") {
                let counted = SpoolDirectory.count(entry)
                if (try? fm.removeItem(at: entry)) != nil { files += counted.files; bytes += counted.bytes }
            }
        }
        sweptFiles = files
        sweptBytes = bytes

        var g = SystemRandomNumberGenerator()
        let mine = root.appendingPathComponent("srv-\(getpid())-\(String(g.next() as UInt32, radix: 16))", isDirectory: true)
        guard mkdir(mine.path, 0o700) == 0 else { throw SpoolDirectory.error("cannot create \(mine.path)") }
        let fd = open(mine.appendingPathComponent(".lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if fd >= 0 { Glibc.close(fd) }
            throw SpoolDirectory.error("cannot lock \(mine.path)/.lock")
        }
        url = mine
        lockFD = fd
    }

    /// Removes this server's subdirectory (at a clean stop) and releases the lock.
    func remove() {
        try? FileManager.default.removeItem(at: url)
        Glibc.close(lockFD)
    }

    private static func count(_ url: URL) -> (files: Int, bytes: Int64) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { return (0, 0) }
        if !isDir.boolValue {
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value ?? 0
            return (1, size)
        }
        var files = 0
        var bytes: Int64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] where name != ".lock" {
            let c = count(url.appendingPathComponent(name))
            files += c.files
            bytes += c.bytes
        }
        return (files, bytes)
    }

    private static func error(_ message: String) -> any Error {
        SpoolDirectoryError(description: "\(message): \(String(cString: strerror(errno)))")
    }
}

/// The spool directory cannot be used (wrong owner, not a directory, no permission).
public struct SpoolDirectoryError: Error, CustomStringConvertible {
    public let description: String
}
