#if canImport(Glibc)
import Glibc
#endif

/// A failed system call on a file, with the path and `errno`. Each layer converts it at the call
/// site into its own typed error (`CheckpointError.ioFailure`, `RasterError.io`, …) by switching on
/// `operation`, never by reading `description`.
public struct FileSystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The step that failed.
    public enum Operation: String, Sendable {
        case open, mmap, read, write, fsync, close, rename
        case stat = "fstat"
        /// `open` of something that is not a regular file (a directory, a FIFO, …).
        case notRegularFile = "open (not a regular file)"
    }

    public let path: String
    public let operation: Operation
    public let errno: Int32

    public init(path: String, operation: Operation, errno: Int32) {
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation.rawValue) \(path): \(String(cString: strerror(errno)))"
    }
}
