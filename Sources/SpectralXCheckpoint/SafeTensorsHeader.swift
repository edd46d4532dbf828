/// Element types a safetensors header may declare. The parser accepts all of them so that any
/// well-formed file can be inspected; the model itself only binds F32 (and I64 counters).
public enum SafeTensorsDType: String, Sendable, CaseIterable, Codable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// One tensor as declared in a safetensors header, after validation.
public struct SafeTensorsEntry: Sendable, Hashable {
    /// Name without a leading Lightning `model.` prefix; use this to bind weights.
    public let name: String
    /// Name exactly as stored in the file.
    public let storedName: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    public let elementCount: Int
    /// Byte range relative to the start of the data section (after the header).
    public let byteRange: Range<Int>
}

/// A validated safetensors header: the layout of every tensor, checked against the file size
/// before any tensor byte is touched, so later pointer arithmetic can never leave the file.
public struct SafeTensorsHeader: Sendable {
    /// Default upper bound for the JSON header (the reference implementation uses 100 MB).
    public static let defaultMaxHeaderSize = 100_000_000
    public static let lightningPrefix = "model."

    /// Length of the JSON header in bytes (the value of the 8-byte prefix).
    public let headerLength: Int
    /// Absolute file offset of the data section.
    public var dataStart: Int { 8 + headerLength }
    /// Size of the data section in bytes.
    public let dataSize: Int
    /// Entries in file order (ascending data offset; header order breaks ties of empty tensors).
    public let entries: [SafeTensorsEntry]
    /// The string→string `__metadata__` map (empty if absent).
    public let metadata: [String: String]
    /// `__metadata__` members in header order (for faithful re-serialisation).
    public let metadataPairs: [(key: String, value: String)]
    private let indexByName: [String: Int]

    /// Validates the framing and header of a complete safetensors byte image.
    public init(fileBytes: UnsafeRawBufferPointer, maxHeaderSize: Int = SafeTensorsHeader.defaultMaxHeaderSize)
        throws(CheckpointError)
    {
        let fileSize = fileBytes.count
        guard fileSize >= 8 else { throw .fileTooSmall(size: fileSize) }
        let declared = UInt64(littleEndian: fileBytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        if declared > UInt64(max(0, maxHeaderSize)) {
            throw .headerTooLarge(length: declared, limit: maxHeaderSize)
        }
        if declared > UInt64(fileSize - 8) { throw .headerPastEndOfFile(length: declared, fileSize: fileSize) }
        let n = Int(declared)
        headerLength = n
        dataSize = fileSize - 8 - n
        let headerBytes = UnsafeRawBufferPointer(rebasing: fileBytes[8..<(8 + n)])
        guard strictUTF8String(headerBytes) != nil else { throw .headerNotUTF8 }

        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes)
        } catch {
            throw .headerInvalidJSON(offset: error.offset, reason: error.reason)
        }
        guard case let .object(members) = json else { throw .headerNotObject }

        var seen = Set<String>()
        var parsed: [(entry: SafeTensorsEntry, headerIndex: Int)] = []
        var meta: [String: String] = [:]
        var metaPairs: [(key: String, value: String)] = []
        for (key, value) in members {
            guard seen.insert(key).inserted else { throw .duplicateKey(key) }
            if key == "__metadata__" {
                metaPairs = try Self.parseMetadata(value)
                for (k, v) in metaPairs { meta[k] = v }
                continue
            }
            let entry = try Self.parseEntry(key: key, value: value, dataSize: dataSize)
            parsed.append((entry, parsed.count))
        }

        // Names: accept a leading `model.`, but never two stored names for one tensor.
        var index: [String: Int] = [:]
        for (i, p) in parsed.enumerated() where index.updateValue(i, forKey: p.entry.name) != nil {
            throw .prefixCollision(key: p.entry.name)
        }

        // File order, then overlap check on the non-empty ranges.
        let ordered = parsed.sorted {
            ($0.entry.byteRange.lowerBound, $0.headerIndex) < ($1.entry.byteRange.lowerBound, $1.headerIndex)
        }
        var furthest: (end: Int, key: String)? = nil
        for p in ordered where !p.entry.byteRange.isEmpty {
            if let f = furthest, p.entry.byteRange.lowerBound < f.end {
                throw .overlappingRanges(first: f.key, second: p.entry.storedName)
            }
            if furthest.map({ p.entry.byteRange.upperBound > $0.end }) ?? true {
                furthest = (p.entry.byteRange.upperBound, p.entry.storedName)
            }
        }

        entries = ordered.map(\.entry)
        var byName: [String: Int] = [:]
        for (i, e) in entries.enumerated() { byName[e.name] = i }
        indexByName = byName
        metadata = meta
        metadataPairs = metaPairs
    }

    /// The entry for `name`, given with or without the `model.` prefix.
    public func entry(named name: String) -> SafeTensorsEntry? {
        if let i = indexByName[name] { return entries[i] }
        if name.hasPrefix(Self.lightningPrefix), let i = indexByName[String(name.dropFirst(Self.lightningPrefix.count))] {
            return entries[i]
        }
        return nil
    }

    /// Strips one leading `model.` (the Lightning module attribute) from a stored key.
    public static func normalisedName(_ key: String) -> String {
        key.hasPrefix(lightningPrefix) ? String(key.dropFirst(lightningPrefix.count)) : key
    }

    private static func parseMetadata(_ value: JSONValue) throws(CheckpointError) -> [(key: String, value: String)] {
        switch value {
        case .null: return []
        case let .object(pairs):
            var out: [(key: String, value: String)] = []
            var keys = Set<String>()
            for (k, v) in pairs {
                guard keys.insert(k).inserted else { throw .invalidMetadata(reason: "duplicate key '\(k)'") }
                guard let s = v.stringValue else { throw .invalidMetadata(reason: "value of '\(k)' is not a string") }
                out.append((k, s))
            }
            return out
        default:
            throw .invalidMetadata(reason: "not an object of strings")
        }
    }

    private static func parseEntry(key: String, value: JSONValue, dataSize: Int) throws(CheckpointError) -> SafeTensorsEntry {
        guard case .object = value else { throw .entryNotObject(key: key) }
        guard let dtypeValue = value["dtype"] else { throw .missingField(key: key, field: "dtype") }
        guard let shapeValue = value["shape"] else { throw .missingField(key: key, field: "shape") }
        guard let offsetsValue = value["data_offsets"] else { throw .missingField(key: key, field: "data_offsets") }

        guard let dtypeText = dtypeValue.stringValue else { throw .invalidDType(key: key, dtype: "\(dtypeValue)") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeText) else { throw .invalidDType(key: key, dtype: dtypeText) }

        guard let dims = shapeValue.arrayValue else { throw .invalidShape(key: key, reason: "not an array") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        var count = 1
        for d in dims {
            guard let v = d.intValue else { throw .invalidShape(key: key, reason: "dimension is not an integer") }
            guard v >= 0 else { throw .invalidShape(key: key, reason: "negative dimension \(v)") }
            let (p, o) = count.multipliedReportingOverflow(by: v)
            if o { throw .invalidShape(key: key, reason: "element count overflows") }
            count = p
            shape.append(v)
        }
        let (byteCount, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
        if o { throw .invalidShape(key: key, reason: "byte count overflows") }

        guard let offs = offsetsValue.arrayValue, offs.count == 2 else {
            throw .invalidDataOffsets(key: key, reason: "expected [begin, end]")
        }
        guard let b64 = offs[0].uint64Value, let e64 = offs[1].uint64Value,
              b64 <= UInt64(Int.max), e64 <= UInt64(Int.max)
        else { throw .invalidDataOffsets(key: key, reason: "offsets must be non-negative integers") }
        let begin = Int(b64), end = Int(e64)
        guard begin <= end else { throw .invalidDataOffsets(key: key, reason: "begin \(begin) > end \(end)") }
        if end - begin != byteCount { throw .byteCountMismatch(key: key, expected: byteCount, actual: end - begin) }
        if end > dataSize { throw .rangeOutOfBounds(key: key, end: end, dataSize: dataSize) }
        return SafeTensorsEntry(name: normalisedName(key), storedName: key, dtype: dtype, shape: shape,
                                elementCount: count, byteRange: begin..<end)
    }
}
