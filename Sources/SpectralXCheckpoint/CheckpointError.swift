import SpectralXSupport

/// Every failure of the checkpoint layer, typed so callers (CLI, engine, tests) can react to the
/// precise problem, and described in words that name the offending file/key so a user can fix it.
public enum CheckpointError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: I/O
    case cannotOpen(path: String, errno: Int32)
    case ioFailure(path: String, operation: String, errno: Int32)
    case mmapFailed(path: String, errno: Int32)

    // MARK: safetensors framing
    /// The file is shorter than the 8-byte header-length prefix.
    case fileTooSmall(size: Int)
    /// The declared header length exceeds the configured maximum.
    case headerTooLarge(length: UInt64, limit: Int)
    /// The declared header length runs past the end of the file.
    case headerPastEndOfFile(length: UInt64, fileSize: Int)
    case headerNotUTF8
    case headerInvalidJSON(offset: Int, reason: String)
    case headerNotObject
    case duplicateKey(String)

    // MARK: safetensors entries
    case entryNotObject(key: String)
    case missingField(key: String, field: String)
    case unknownField(key: String, field: String)
    case invalidDType(key: String, dtype: String)
    case invalidShape(key: String, reason: String)
    case invalidDataOffsets(key: String, reason: String)
    /// `end - begin` differs from `product(shape) * dtype size`.
    case byteCountMismatch(key: String, expected: Int, actual: Int)
    /// The tensor's byte range lies (partly) outside the data section.
    case rangeOutOfBounds(key: String, end: Int, dataSize: Int)
    case overlappingRanges(first: String, second: String)
    case invalidMetadata(reason: String)
    /// Both `x` and `model.x` are present, so the normalised name is ambiguous.
    case prefixCollision(key: String)

    // MARK: lookups
    case tensorNotFound(String)
    case dtypeMismatch(key: String, expected: String, actual: String)
    case shapeMismatch(key: String, expected: [Int], actual: [Int])

    // MARK: manifest / layout / store
    case invalidManifest(reason: String)
    case invalidArgument(String)
    case invalidDomainConfig(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, e): return "cannot open \(path): \(Self.errnoText(e))"
        case let .ioFailure(path, op, e): return "\(op) failed for \(path): \(Self.errnoText(e))"
        case let .mmapFailed(path, e): return "mmap failed for \(path): \(Self.errnoText(e))"
        case let .fileTooSmall(size):
            return "safetensors file is truncated: \(size) bytes, need at least 8 for the header length"
        case let .headerTooLarge(length, limit):
            return "safetensors header length \(length) exceeds the limit of \(limit) bytes"
        case let .headerPastEndOfFile(length, fileSize):
            return "safetensors header length \(length) runs past the end of the \(fileSize)-byte file"
        case .headerNotUTF8: return "safetensors header is not valid UTF-8"
        case let .headerInvalidJSON(offset, reason):
            return "safetensors header is not valid JSON at byte \(offset): \(reason)"
        case .headerNotObject: return "safetensors header is not a JSON object"
        case let .duplicateKey(key): return "safetensors header has the key '\(key)' twice"
        case let .entryNotObject(key): return "tensor '\(key)': entry is not a JSON object"
        case let .missingField(key, field): return "tensor '\(key)': missing field '\(field)'"
        case let .unknownField(key, field): return "tensor '\(key)': unknown field '\(field)'"
        case let .invalidDType(key, dtype): return "tensor '\(key)': unsupported dtype '\(dtype)'"
        case let .invalidShape(key, reason): return "tensor '\(key)': invalid shape: \(reason)"
        case let .invalidDataOffsets(key, reason): return "tensor '\(key)': invalid data_offsets: \(reason)"
        case let .byteCountMismatch(key, expected, actual):
            return "tensor '\(key)': data_offsets span \(actual) bytes but shape and dtype need \(expected)"
        case let .rangeOutOfBounds(key, end, dataSize):
            return "tensor '\(key)': data ends at byte \(end), past the \(dataSize)-byte data section"
        case let .overlappingRanges(first, second):
            return "tensors '\(first)' and '\(second)' have overlapping data ranges"
        case let .invalidMetadata(reason): return "invalid __metadata__: \(reason)"
        case let .prefixCollision(key):
            return "both '\(key)' and 'model.\(key)' are present; the name without 'model.' is ambiguous"
        case let .tensorNotFound(name): return "no tensor named '\(name)'"
        case let .dtypeMismatch(key, expected, actual):
            return "tensor '\(key)': expected dtype \(expected), found \(actual)"
        case let .shapeMismatch(key, expected, actual):
            return "tensor '\(key)': expected shape \(expected), found \(actual)"
        case let .invalidManifest(reason): return "invalid weight manifest: \(reason)"
        case let .invalidArgument(reason): return "invalid argument: \(reason)"
        case let .invalidDomainConfig(path, reason): return "invalid domain config \(path): \(reason)"
        }
    }

    static func errnoText(_ e: Int32) -> String {
        #if canImport(Glibc)
        if let s = strerror(e) { return String(cString: s) + " (errno \(e))" }
        #endif
        return "errno \(e)"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CheckpointError {
    /// The checkpoint layer's form of a failed file operation of the support module.
    public init(_ error: FileSystemError) {
        switch error.operation {
        case .open: self = .cannotOpen(path: error.path, errno: error.errno)
        case .mmap: self = .mmapFailed(path: error.path, errno: error.errno)
        default: self = .ioFailure(path: error.path, operation: error.operation.rawValue, errno: error.errno)
        }
    }
}
