import COpenSSL
import Foundation

/// SHA-256 of whole files through libcrypto's EVP interface: the model store verifies adapter and
/// backbone digests from domain.json before binding any weight, and OpenSSL's assembly SHA-256 makes
/// hashing the 1.2 GB backbone take seconds rather than tens of seconds.
public enum FileDigest {
    /// Lowercase hex SHA-256 of the file at `url`, read in 4 MiB chunks (bounded memory).
    public static func sha256Hex(of url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw EngineError.domainLoadFailed(domain: url.deletingLastPathComponent().lastPathComponent,
                                               reason: "cannot open \(url.path)")
        }
        defer { try? handle.close() }
        guard let ctx = EVP_MD_CTX_new() else { throw EngineError.inferenceFailed("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1 else { throw EngineError.inferenceFailed("EVP_DigestInit_ex failed") }
        while true {
            let chunk = try handle.read(upToCount: 4 << 20) ?? Data()
            if chunk.isEmpty { break }
            let ok = chunk.withUnsafeBytes { EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) }
            guard ok == 1 else { throw EngineError.inferenceFailed("EVP_DigestUpdate failed") }
        }
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_DigestFinal_ex(ctx, &out, &length) == 1 else { throw EngineError.inferenceFailed("EVP_DigestFinal_ex failed") }
        return out.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }
}
