#if canImport(Glibc)
import Glibc
#endif

/// A whole file mapped read-only into memory (PROT_READ, MAP_PRIVATE), unmapped when the last
/// reference goes away.
///
/// Why mmap: the 1.2 GB backbone is shared by every domain and spooled request bodies can be large;
/// mapping lets the kernel page them in lazily (and share the pages between processes), and bytes are
/// used in place without copies.
///
/// `@unchecked Sendable`: the mapping is read-only and neither the pointer nor the size ever
/// changes after `init`, so concurrent reads from any thread are safe; `deinit` runs only once no
/// reference (and hence no reader) is left.
public final class MappedFile: @unchecked Sendable {
    /// Base address of the mapping (nil for an empty file, which cannot be mapped).
    public let baseAddress: UnsafeRawPointer?
    public let size: Int
    public let path: String

    /// Opens and maps `path` (a regular file). The descriptor is closed right away; the mapping stays valid.
    public init(path: String) throws(FileSystemError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FileSystemError(path: path, operation: .open, errno: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw FileSystemError(path: path, operation: .stat, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FileSystemError(path: path, operation: .notRegularFile, errno: EINVAL)
        }
        let size = Int(st.st_size)
        self.size = size
        if size == 0 {
            baseAddress = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw FileSystemError(path: path, operation: .mmap, errno: errno) }
        baseAddress = UnsafeRawPointer(p)
    }

    deinit {
        if let baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: baseAddress), size)
        }
    }

    /// The whole mapping as bytes (empty for an empty file).
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: baseAddress, count: baseAddress == nil ? 0 : size)
    }
}
