import SpectralXCheckpoint

/// One state-dict key whose shape or dtype differs from the expected layout.
public struct KeyMismatch: Sendable, Hashable, CustomStringConvertible {
    public let key: String
    public let expected: String
    public let actual: String

    public init(key: String, expected: String, actual: String) {
        self.key = key
        self.expected = expected
        self.actual = actual
    }

    public var description: String { "\(key): expected \(expected), found \(actual)" }
}

/// Every failure of `spectralx import`, typed so tests can assert the precise problem on malformed
/// input, and worded so a user sees which entry, opcode or key is at fault.
public enum ImportError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: ZIP container
    case notAZipArchive(reason: String)
    case zipCorrupt(reason: String)
    case tooManyZipEntries(count: UInt64, limit: Int)
    case unsupportedCompression(entry: String, method: UInt16)
    case encryptedEntry(String)
    case zipEntryNotFound(String)
    case crcMismatch(entry: String, expected: UInt32, actual: UInt32)

    // MARK: pickle
    case pickleTruncated(offset: Int, needed: String)
    case unknownOpcode(opcode: UInt8, offset: Int)
    case unsupportedOpcode(name: String, offset: Int)
    case unsupportedPickleProtocol(Int)
    case stackUnderflow(opcode: String, offset: Int)
    case memoNotFound(index: UInt64, offset: Int)
    case pickleLimitExceeded(what: String, limit: Int, offset: Int)
    case invalidPickle(reason: String, offset: Int)
    case noStopOpcode

    // MARK: torch objects
    case notATorchCheckpoint(reason: String)
    case unsupportedStorageType(String)
    case storageTooSmall(key: String, needed: Int, available: Int)
    case invalidTensor(reason: String)

    // MARK: state dict / store
    case noStateDict(reason: String)
    case cannotInferDimension(what: String, reason: String)
    /// Everything that keeps the checkpoint from matching `StateDictLayout`, reported at once.
    case layoutMismatch(missing: [String], unexpected: [String], mismatched: [KeyMismatch])
    case missingWavelengths
    case backboneConflict(name: String, reason: String)
    case domainExists(String)
    case checkpoint(CheckpointError)
    case io(String)

    public var description: String {
        switch self {
        case let .notAZipArchive(reason): return "not a torch.save zip archive: \(reason)"
        case let .zipCorrupt(reason): return "corrupt zip archive: \(reason)"
        case let .tooManyZipEntries(count, limit): return "zip archive declares \(count) entries (limit \(limit))"
        case let .unsupportedCompression(entry, method):
            return "zip entry '\(entry)' uses compression method \(method)"
                + (method == 8 ? " (deflate)" : "") + "; only stored (0) entries can be read, as torch.save writes them"
        case let .encryptedEntry(e): return "zip entry '\(e)' is encrypted"
        case let .zipEntryNotFound(e): return "zip archive has no entry '\(e)'"
        case let .crcMismatch(e, expected, actual):
            return "zip entry '\(e)' is damaged: CRC-32 \(hex(actual)) but the directory says \(hex(expected))"
        case let .pickleTruncated(offset, needed): return "pickle ends at byte \(offset) while reading \(needed)"
        case let .unknownOpcode(op, offset): return "unknown pickle opcode 0x\(String(op, radix: 16)) at byte \(offset)"
        case let .unsupportedOpcode(name, offset): return "pickle opcode \(name) at byte \(offset) is not supported"
        case let .unsupportedPickleProtocol(p): return "pickle protocol \(p) is not supported (2–5 are)"
        case let .stackUnderflow(op, offset): return "pickle opcode \(op) at byte \(offset) needs more stack than there is"
        case let .memoNotFound(i, offset): return "pickle memo slot \(i) read at byte \(offset) was never written"
        case let .pickleLimitExceeded(what, limit, offset): return "pickle \(what) exceeds the limit of \(limit) at byte \(offset)"
        case let .invalidPickle(reason, offset): return "invalid pickle at byte \(offset): \(reason)"
        case .noStopOpcode: return "pickle has no STOP opcode"
        case let .notATorchCheckpoint(reason): return "not a torch checkpoint: \(reason)"
        case let .unsupportedStorageType(t): return "unsupported torch storage type '\(t)'"
        case let .storageTooSmall(key, needed, available):
            return "storage '\(key)' holds \(available) bytes but a tensor needs \(needed)"
        case let .invalidTensor(reason): return "invalid tensor: \(reason)"
        case let .noStateDict(reason): return "no state dict: \(reason)"
        case let .cannotInferDimension(what, reason): return "cannot infer the \(what): \(reason)"
        case let .layoutMismatch(missing, unexpected, mismatched):
            var lines = ["checkpoint does not match the SpectralX state-dict layout:"]
            if !missing.isEmpty { lines.append("  \(missing.count) missing keys:"); lines += missing.map { "    \($0)" } }
            if !unexpected.isEmpty {
                lines.append("  \(unexpected.count) unexpected keys:"); lines += unexpected.map { "    \($0)" }
            }
            if !mismatched.isEmpty {
                lines.append("  \(mismatched.count) mis-shaped or mistyped keys:")
                lines += mismatched.map { "    \($0)" }
            }
            return lines.joined(separator: "\n")
        case .missingWavelengths:
            return "the checkpoint's hyper_parameters hold no 'wavelengths'/'wavelength' list; pass --wavelengths"
        case let .backboneConflict(name, reason):
            return "backbone '\(name)' already exists with different tensors (\(reason)); choose another --backbone-name"
        case let .domainExists(name): return "domain '\(name)' already exists; pass --force to replace it"
        case let .checkpoint(e): return e.description
        case let .io(m): return m
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
