#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that a reader (or a restart after a crash) sees either the old file or the
/// complete new one, never a half-written one: the bytes go to a temporary file beside the target
/// (same directory, so same file system), which is then renamed over it in one `rename(2)`.
///
/// `durable: true` also makes the result survive a power loss: the temporary file is fsynced before
/// the rename, and the directory after it (job records, model-store files, finished results).
/// `durable: false` is for outputs a rerun simply rewrites (previews, sidecars, spool state).
public enum AtomicFile {
    /// The open temporary file a `write(to:…)` body fills. Sendable so a body may hand writes to
    /// another queue, as long as they finish before the body returns.
    public struct Output: Sendable {
        /// The temporary file's descriptor (open for writing).
        public let fd: Int32
        /// The temporary file's path (for error messages).
        public let path: String

        /// Writes all of `bytes` at the current offset (retrying short writes and EINTR).
        public func write(_ bytes: UnsafeRawBufferPointer) throws(FileSystemError) {
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, base + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { throw FileSystemError(path: path, operation: .write, errno: n < 0 ? errno : EIO) }
                offset += n
            }
        }

        /// Writes all of `bytes` (`Data`, `[UInt8]`, …).
        public func write<C: Collection>(_ bytes: C) throws(FileSystemError) where C.Element == UInt8 {
            var failure: FileSystemError?
            let contiguous: Void? = bytes.withContiguousStorageIfAvailable { buffer in
                do throws(FileSystemError) { try write(UnsafeRawBufferPointer(buffer)) } catch { failure = error }
            }
            if contiguous == nil {
                Array(bytes).withUnsafeBytes { buffer in
                    do throws(FileSystemError) { try write(buffer) } catch { failure = error }
                }
            }
            if let failure { throw failure }
        }
    }

    /// Replaces `path` with `data`.
    public static func write<C: Collection>(_ data: C, to path: String, durable: Bool,
                                            permissions: mode_t = 0o644) throws(FileSystemError) where C.Element == UInt8 {
        let output = try createTemporary(beside: path, permissions: permissions)
        var closed = false
        do {
            try output.write(data)
            try commit(output, to: path, durable: durable, closed: &closed)
        } catch {
            discard(output, closed: closed)
            throw error
        }
    }

    /// Replaces `path` with what `body` writes to the temporary file. If `body` (or any step)
    /// throws, the temporary file is removed, the target is left as it was and the error is rethrown
    /// (a failed step on the file itself as `FileSystemError`).
    public static func write<R>(to path: String, durable: Bool, permissions: mode_t = 0o644,
                                _ body: (Output) throws -> R) throws -> R {
        let output = try createTemporary(beside: path, permissions: permissions)
        var closed = false
        do {
            let result = try body(output)
            try commit(output, to: path, durable: durable, closed: &closed)
            return result
        } catch {
            discard(output, closed: closed)
            throw error
        }
    }

    /// Renames `from` (a file or a directory) over `to`. Durable: `from` is fsynced first and the
    /// target's directory after, so the move survives a power loss.
    public static func rename(_ from: String, to: String, durable: Bool) throws(FileSystemError) {
        if durable { try synchronize(path: from) }
        if Glibc.rename(from, to) != 0 { throw FileSystemError(path: from, operation: .rename, errno: errno) }
        if durable { try synchronize(path: directory(of: to)) }
    }

    /// fsync of a file or a directory by path.
    public static func synchronize(path: String) throws(FileSystemError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FileSystemError(path: path, operation: .open, errno: errno) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw FileSystemError(path: path, operation: .fsync, errno: errno) }
    }

    /// `<path>.tmp-<random>`, created exclusively, so two writers of one target never share a
    /// temporary file. (A crash may leave one behind; its name says what it is.)
    private static func createTemporary(beside path: String, permissions: mode_t) throws(FileSystemError) -> Output {
        while true {
            let temporary = path + ".tmp-" + String(UInt32.random(in: .min ... .max), radix: 36)
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
            if fd >= 0 { return Output(fd: fd, path: temporary) }
            if errno != EEXIST { throw FileSystemError(path: temporary, operation: .open, errno: errno) }
        }
    }

    /// fsync (if durable), close, rename over `path`, fsync of the directory (if durable).
    /// `closed` tells `discard` whether the descriptor is already closed.
    private static func commit(_ output: Output, to path: String, durable: Bool, closed: inout Bool) throws(FileSystemError) {
        if durable, fsync(output.fd) != 0 { throw FileSystemError(path: output.path, operation: .fsync, errno: errno) }
        closed = true
        if close(output.fd) != 0 { throw FileSystemError(path: output.path, operation: .close, errno: errno) }
        if Glibc.rename(output.path, path) != 0 { throw FileSystemError(path: path, operation: .rename, errno: errno) }
        if durable { try synchronize(path: directory(of: path)) }
    }

    /// Removes the temporary file after a failure (a no-op for the name once it was renamed).
    private static func discard(_ output: Output, closed: Bool) {
        if !closed { close(output.fd) }
        unlink(output.path)
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
