/// Every failure of the raster layer. Untrusted input never traps: it ends in one of these cases,
/// whose `description` names the problem so an HTTP layer can pass it on (415 for `.unsupported`,
/// 413/422 for `.limitExceeded`, 422 for the rest).
public enum RasterError: Error, CustomStringConvertible, Sendable, Equatable {
    /// File system failure (path and reason).
    case io(String)
    /// The data ends before a structure that the header promises.
    case truncated(String)
    /// Not a TIFF / not an NPY file (bad magic or version).
    case notRecognized(String)
    /// An offset (and length) points outside the file.
    case offsetOutOfRange(what: String, offset: UInt64, length: UInt64, fileSize: UInt64)
    /// The IFD chain comes back to an IFD already visited.
    case ifdLoop(offset: UInt64)
    /// A configured `RasterLimits` bound would be exceeded; checked before allocating.
    case limitExceeded(what: String, value: UInt64, limit: UInt64)
    /// A valid but unsupported feature (JPEG, palette images, 1-bit, …), named, and of which kind
    /// (the API answers each kind with its own error code).
    case unsupported(String, kind: UnsupportedKind = .tiffFeature)
    /// Structurally invalid input (wrong counts, zero sizes, unknown codes, …).
    case malformed(String)
    /// A required tag is missing.
    case missingTag(String)
    /// A compressed block could not be decoded.
    case decompressionFailed(codec: String, reason: String)
    /// NumPy object arrays need pickle, which is never executed.
    case npyObjectArray(String)
    /// A caller passed inconsistent arguments (e.g. data size does not match the shape).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .io(let s): return "I/O error: \(s)"
        case .truncated(let s): return "truncated input: \(s)"
        case .notRecognized(let s): return "unrecognized format: \(s)"
        case let .offsetOutOfRange(what, offset, length, fileSize):
            return "\(what) at offset \(offset) with length \(length) lies outside the file (\(fileSize) bytes)"
        case .ifdLoop(let o): return "IFD chain loops back to offset \(o)"
        case let .limitExceeded(what, value, limit): return "limit exceeded: \(what) = \(value), limit \(limit)"
        case .unsupported(let s, _): return "unsupported feature: \(s)"
        case .malformed(let s): return "malformed input: \(s)"
        case .missingTag(let s): return "missing required TIFF tag \(s)"
        case let .decompressionFailed(codec, reason): return "\(codec) decompression failed: \(reason)"
        case .npyObjectArray(let s): return "NumPy object arrays (pickled data) are refused: \(s)"
        case .invalidArgument(let s): return "invalid argument: \(s)"
        }
    }
}

/// The kinds of `RasterError.unsupported`.
public enum UnsupportedKind: String, Sendable, Equatable {
    case tiffFeature, tiffCompression, npyDtype, npyFeature
}
