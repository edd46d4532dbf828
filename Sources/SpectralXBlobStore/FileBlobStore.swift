import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blob store in a directory (a ReadWriteMany volume shared by the replicas). Writes go to a
/// hidden temp file in the target's directory, are fsynced, then renamed (overwrite) or linked
/// (if absent) into place and the directory is fsynced, so a crash or a concurrent reader never
/// sees half an object. A key cannot be both an object and the directory of other keys ("a" and
/// "a/b"), which S3 allows; such a put fails with `io`. Put-if-absent needs hard links (ext4, xfs
/// and NFS have them); on a volume without them it fails with `io` rather than risk overwriting.
public struct FileBlobStore: BlobStore {
    public let root: URL

    /// `createIfMissing: false` refuses a missing directory (an unmounted volume should fail loudly
    /// rather than fill the container's own disk).
    public init(directory: URL, createIfMissing: Bool = true) throws {
        root = directory.standardizedFileURL
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw BlobStoreError.configuration("\(root.path) is not a directory") }
        } else if createIfMissing {
            do { try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true) } catch {
                throw BlobStoreError.configuration("cannot create \(root.path): \(error.localizedDescription)")
            }
        } else {
            throw BlobStoreError.configuration("directory \(root.path) does not exist (is the shared volume mounted?)")
        }
    }

    public var location: String { "file://\(root.path)" }

    private func path(_ key: String) throws -> String {
        try BlobKey.validate(key)
        return root.path + "/" + key
    }

    private static func errno(_ what: String, _ path: String) -> BlobStoreError {
        .io("\(what) \(path): \(String(cString: strerror(Glibc.errno)))")
    }

    // MARK: - Writing

    public func put(_ key: String, fromFile file: URL, mode: PutMode) throws -> BlobInfo {
        let src = open(file.path, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw Self.errno("cannot open", file.path) }
        defer { close(src) }
        return try write(key, mode: mode) { dst, tmp in
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
                if n < 0 { if Glibc.errno == EINTR { continue }; throw Self.errno("cannot read", file.path) }
                if n == 0 { break }
                try buffer.withUnsafeBytes { try Self.writeAll(dst, UnsafeRawBufferPointer(rebasing: $0[0..<n]), tmp) }
            }
        }
    }

    public func put(_ key: String, data: Data, mode: PutMode) throws -> BlobInfo {
        try write(key, mode: mode) { dst, tmp in try data.withUnsafeBytes { try Self.writeAll(dst, $0, tmp) } }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 { if Glibc.errno == EINTR { continue }; throw errno("cannot write", path) }
            offset += n
        }
    }

    /// Temp file → `fill` → fsync → rename or link → fsync of the directory.
    private func write(_ key: String, mode: PutMode, fill: (Int32, String) throws -> Void) throws -> BlobInfo {
        let final = try path(key)
        let dir = (final as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw BlobStoreError.io("cannot create \(dir): \(error.localizedDescription)")
        }
        let tmp = dir + "/" + BlobKey.tempPrefix + UUID().uuidString
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.errno("cannot create", tmp) }
        var placed = false
        defer { if !placed { unlink(tmp) } }
        do {
            try fill(fd, tmp)
            guard fsync(fd) == 0 else { throw Self.errno("cannot fsync", tmp) }
        } catch { close(fd); throw error }
        close(fd)
        switch mode {
        case .overwrite:
            guard rename(tmp, final) == 0 else { throw Self.errno("cannot rename into", final) }
            placed = true
        case .ifAbsent:
            if link(tmp, final) != 0 {
                if Glibc.errno == EEXIST { throw BlobStoreError.alreadyExists(key: key) }
                throw Self.errno("cannot link into", final)
            }
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        return try head(key)
    }

    // MARK: - Reading

    public func head(_ key: String) throws -> BlobInfo {
        let p = try path(key)
        var st = stat()
        guard stat(p, &st) == 0 else {
            if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR { throw BlobStoreError.notFound(key: key) }
            throw Self.errno("cannot stat", p)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw BlobStoreError.notFound(key: key) }
        return Self.info(key, st)
    }

    /// The ETag is the inode, size and modification time: a replaced file (a new inode) gets a new one.
    private static func info(_ key: String, _ st: stat) -> BlobInfo {
        let mtimeNs = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        let etag = "\"\(String(UInt64(st.st_ino), radix: 16))-\(String(st.st_size, radix: 16))-\(String(mtimeNs, radix: 16))\""
        return BlobInfo(key: key, size: Int64(st.st_size), etag: etag,
                        lastModified: Date(timeIntervalSince1970: Double(mtimeNs) / 1e9))
    }

    /// Opens the object and resolves the range to (offset, count) within it.
    /// The ETag is checked on the opened descriptor, so it describes exactly the bytes read.
    private func openForRead(_ key: String, range: ByteRange?, ifMatch: String?) throws -> (fd: Int32, info: BlobInfo, offset: Int64, count: Int64) {
        let p = try path(key)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR || Glibc.errno == EISDIR { throw BlobStoreError.notFound(key: key) }
            throw Self.errno("cannot open", p)
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { close(fd); throw BlobStoreError.notFound(key: key) }
        let info = Self.info(key, st)
        if let ifMatch, ifMatch != info.etag { close(fd); throw BlobStoreError.changed(key: key) }
        guard let range else { return (fd, info, 0, info.size) }
        guard range.offset < info.size else { close(fd); throw BlobStoreError.invalidRange(key: key, range: range) }
        return (fd, info, range.offset, min(range.length, info.size - range.offset))
    }

    public func get(_ key: String, range: ByteRange?, ifMatch: String?) throws -> Data {
        let (fd, _, offset, count) = try openForRead(key, range: range, ifMatch: ifMatch)
        defer { close(fd) }
        var data = Data(count: Int(count))
        var done = 0
        try data.withUnsafeMutableBytes { buf in
            while done < Int(count) {
                let n = pread(fd, buf.baseAddress! + done, Int(count) - done, off_t(offset) + off_t(done))
                if n < 0 { if Glibc.errno == EINTR { continue }; throw Self.errno("cannot read", key) }
                if n == 0 { throw BlobStoreError.io("blob '\(key)' shrank while being read") }
                done += n
            }
        }
        return data
    }

    public func get(_ key: String, range: ByteRange?, ifMatch: String?, toFile file: URL) throws -> BlobInfo {
        let (fd, info, offset, count) = try openForRead(key, range: range, ifMatch: ifMatch)
        defer { close(fd) }
        try LocalFile.replace(file) { out, tmp in
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var position = offset
            var remaining = count
            while remaining > 0 {
                let want = Int(min(Int64(buffer.count), remaining))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
                if n < 0 { if Glibc.errno == EINTR { continue }; throw Self.errno("cannot read", key) }
                if n == 0 { throw BlobStoreError.io("blob '\(key)' shrank while being read") }
                try buffer.withUnsafeBytes { try Self.writeAll(out, UnsafeRawBufferPointer(rebasing: $0[0..<n]), tmp) }
                position += Int64(n)
                remaining -= Int64(n)
            }
        }
        return info
    }

    // MARK: - Deleting and listing

    public func delete(_ key: String) throws {
        let p = try path(key)
        if unlink(p) != 0 && Glibc.errno != ENOENT && Glibc.errno != ENOTDIR { throw Self.errno("cannot delete", p) }
    }

    public func list(prefix: String) throws -> [BlobInfo] {
        try BlobKey.validate(prefix, isPrefix: true)
        // Walk only the deepest directory the prefix names completely.
        let dirPart = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        let start = dirPart.isEmpty ? root.path : root.path + "/" + dirPart
        var out: [BlobInfo] = []
        guard let walker = FileManager.default.enumerator(atPath: start) else { return [] }
        while let rel = walker.nextObject() as? String {
            let key = dirPart.isEmpty ? rel : dirPart + "/" + rel
            guard key.hasPrefix(prefix), !(rel as NSString).lastPathComponent.hasPrefix(BlobKey.tempPrefix) else { continue }
            var st = stat()
            guard lstat(start + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            out.append(Self.info(key, st))
        }
        return out.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }
}

extension FileBlobStore {
    /// Removes temp files that writers which died mid-put left behind, once unmodified for
    /// `olderThan` seconds (a live writer keeps touching its file). Returns how many went.
    @discardableResult
    public func removeStaleTemporaryFiles(olderThan age: TimeInterval = 3600) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return 0 }
        let cutoff = Date().addingTimeInterval(-age).timeIntervalSince1970
        var removed = 0
        while let rel = walker.nextObject() as? String {
            guard (rel as NSString).lastPathComponent.hasPrefix(BlobKey.tempPrefix) else { continue }
            let path = root.path + "/" + rel
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Double(st.st_mtim.tv_sec) < cutoff else { continue }
            if unlink(path) == 0 { removed += 1 }
        }
        return removed
    }
}

/// Writing a local destination file atomically (temp file beside it, fsync, rename).
enum LocalFile {
    static func replace(_ file: URL, fill: (Int32, String) throws -> Void) throws {
        let dir = file.deletingLastPathComponent().path
        let tmp = dir + "/" + BlobKey.tempPrefix + UUID().uuidString
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BlobStoreError.io("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var open = true
        do {
            try fill(fd, tmp)
            guard fsync(fd) == 0 else { throw BlobStoreError.io("cannot fsync \(tmp)") }
            close(fd)
            open = false
            guard rename(tmp, file.path) == 0 else { throw BlobStoreError.io("cannot rename into \(file.path): \(String(cString: strerror(errno)))") }
        } catch {
            if open { close(fd) }
            unlink(tmp)
            throw error
        }
    }
}
