import COpenSSL
import Foundation

/// SHA-256 and HMAC-SHA256 through libcrypto (already linked for TLS; its assembly SHA-256 is what
/// hashing multi-megabyte upload parts needs).
public enum Digest {
    /// SHA-256 of the empty string, the payload hash of body-less requests.
    public static let emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public static func sha256(_ bytes: some ContiguousBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        bytes.withUnsafeBytes { raw in
            _ = EVP_Digest(raw.baseAddress, raw.count, &out, &length, EVP_sha256(), nil)
        }
        return out
    }

    public static func sha256Hex(_ bytes: some ContiguousBytes) -> String { hex(sha256(bytes)) }
    public static func sha256Hex(_ string: String) -> String { hex(sha256(Array(string.utf8))) }

    /// SHA-256 of `length` bytes of the file at `path` from `offset`, read in 1 MiB chunks.
    public static func sha256Hex(file path: String, offset: UInt64 = 0, length: UInt64? = nil) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FetchError.localIO("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard let ctx = EVP_MD_CTX_new() else { throw FetchError.localIO("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(ctx) }
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position = offset
        var remaining = length ?? UInt64.max
        while remaining > 0 {
            let want = Int(min(UInt64(buffer.count), remaining))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FetchError.localIO("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                guard length == nil else { throw FetchError.localIO("\(path) is shorter than expected") }
                break
            }
            buffer.withUnsafeBytes { _ = EVP_DigestUpdate(ctx, $0.baseAddress, n) }
            position += UInt64(n)
            remaining -= UInt64(n)
        }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var outLength: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &out, &outLength)
        return hex(out.prefix(Int(outLength)))
    }

    public static func hmacSHA256(key: some ContiguousBytes, data: some ContiguousBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self),
                         d.count, &out, &length)
            }
        }
        return Array(out.prefix(Int(length)))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        for b in bytes { out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
