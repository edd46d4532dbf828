import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 (FIPS 180-4), streaming, on libcrypto's EVP interface: OpenSSL is linked anyway (TLS),
/// and its assembly SHA-256 hashes the 1.2 GB backbone in seconds rather than tens of seconds.
/// Used to verify generated tensors against the manifest, model-store files against domain.json,
/// and to name results (ETags) and API keys.
///
/// A value type like the one it replaces: copies are independent (the EVP context is copied on the
/// first update of a shared copy). A failure of OpenSSL's SHA-256 itself (no provider) is a broken
/// installation, not a condition callers can handle, so it stops the process.
public struct SHA256: Sendable {
    private var context: Context

    public init() { context = Context() }

    /// One-shot digest of a byte buffer.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        var s = SHA256()
        s.update(bytes)
        return s.finalize()
    }

    /// One-shot digest of bytes (`Array("abc".utf8)`, `Data`, …).
    public static func hash<C: Collection>(_ bytes: C) -> SHA256Digest where C.Element == UInt8 {
        var s = SHA256()
        s.update(bytes)
        return s.finalize()
    }

    /// Lowercase-hex-ready digest of the file at `path`, read in 4 MiB chunks (bounded memory).
    public static func hash(fileAtPath path: String) throws(FileSystemError) -> SHA256Digest {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FileSystemError(path: path, operation: .open, errno: errno) }
        defer { close(fd) }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64)
        defer { chunk.deallocate() }
        var s = SHA256()
        while true {
            let n = read(fd, chunk.baseAddress, chunk.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystemError(path: path, operation: .read, errno: errno)
            }
            if n == 0 { break }
            s.update(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
        }
        return s.finalize()
    }

    /// Absorbs more bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        guard EVP_DigestUpdate(context.ctx, base, bytes.count) == 1 else { fatalError("EVP_DigestUpdate failed") }
    }

    /// Absorbs more bytes.
    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// Finishes and returns the digest; the hasher starts afresh afterwards.
    public mutating func finalize() -> SHA256Digest {
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(context.ctx, &out, &length) == 1, length == 32 else { fatalError("EVP_DigestFinal_ex failed") }
        context.reset()
        return SHA256Digest(bytes: Array(out.prefix(32)))
    }

    /// Owns one EVP_MD_CTX. `@unchecked Sendable`: the context is mutated only through `SHA256`'s
    /// mutating methods, which first make the box unique (copy-on-write), so no two threads ever
    /// touch one context unless both only read it (the copy source).
    private final class Context: @unchecked Sendable {
        let ctx: OpaquePointer

        init() {
            guard let c = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
            ctx = c
            reset()
        }

        init(copying other: Context) {
            guard let c = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed") }
            ctx = c
            guard EVP_MD_CTX_copy_ex(c, other.ctx) == 1 else { fatalError("EVP_MD_CTX_copy_ex failed") }
        }

        func reset() {
            guard EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1 else { fatalError("EVP_DigestInit_ex(sha256) failed") }
        }

        deinit { EVP_MD_CTX_free(ctx) }
    }
}

/// A 32-byte SHA-256 digest; `hex` is the lower-case form used by manifests and domain.json.
public struct SHA256Digest: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    public var hex: String {
        let digits: [Character] = Array("0123456789abcdef")
        var s = ""
        s.reserveCapacity(64)
        for b in bytes {
            s.append(digits[Int(b >> 4)])
            s.append(digits[Int(b & 0xF)])
        }
        return s
    }

    public var description: String { hex }
}
