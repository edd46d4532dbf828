/// Bounds-checked, byte-order-aware access to the raw bytes of a TIFF file: the whole file, or
/// (a file read by range) the pieces of it fetched so far, packed one after another in `b`.
struct TIFFBytes {
    let b: UnsafeRawBufferPointer
    let bigEndian: Bool
    /// Size of the file (offsets are checked against it).
    let fileSize: Int
    /// The pieces `b` holds when it is not the whole file: file offset, offset in `b`, length.
    /// The first piece starts at file offset 0 (the header is read in place).
    let pieces: [TIFFPiece]?

    init(b: UnsafeRawBufferPointer, bigEndian: Bool, fileSize: Int? = nil, pieces: [TIFFPiece]? = nil) {
        self.b = b
        self.bigEndian = bigEndian
        self.fileSize = fileSize ?? b.count
        self.pieces = pieces
    }

    var size: Int { fileSize }

    /// Checks that `length` bytes at `offset` lie inside the file and returns where they are in `b`;
    /// for a partial file, bytes not fetched yet throw `TIFFMissingBytes` (the caller fetches them and parses again).
    func range(_ what: @autoclosure () -> String, _ offset: UInt64, _ length: Int) throws -> Int {
        try check(what(), offset, length)
        guard let pieces else { return Int(offset) }
        let o = Int(offset)
        for p in pieces where p.file <= o && o + length <= p.file + p.count { return p.at + o - p.file }
        throw TIFFMissingBytes(range: o..<(o + length))
    }

    /// Checks that `length` bytes at `offset` lie inside the file (without reading them: block extents).
    func check(_ what: @autoclosure () -> String, _ offset: UInt64, _ length: Int) throws {
        guard length >= 0, offset <= UInt64(Int.max), Int(offset) <= fileSize, length <= fileSize - Int(offset) else {
            throw RasterError.offsetOutOfRange(what: what(), offset: offset, length: UInt64(max(length, 0)), fileSize: UInt64(fileSize))
        }
    }
    func u8(_ o: Int) -> UInt8 { b[o] }
    func u16(_ o: Int) -> UInt16 { let v = b.loadUnaligned(fromByteOffset: o, as: UInt16.self); return bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v) }
    func u32(_ o: Int) -> UInt32 { let v = b.loadUnaligned(fromByteOffset: o, as: UInt32.self); return bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v) }
    func u64(_ o: Int) -> UInt64 { let v = b.loadUnaligned(fromByteOffset: o, as: UInt64.self); return bigEndian ? UInt64(bigEndian: v) : UInt64(littleEndian: v) }
}

/// A fetched piece of a file read by range (see `TIFFBytes.pieces`).
struct TIFFPiece: Sendable {
    var file: Int, at: Int, count: Int
}

/// Parsing a partially fetched TIFF reached bytes not fetched yet.
struct TIFFMissingBytes: Error {
    let range: Range<Int>
}

/// A decoded tag value. Only tags in `TIFFTag.decoded` are decoded; others are `.skipped`.
enum TIFFValue: Equatable {
    case unsigned([UInt64])
    case signed([Int64])
    case reals([Double])
    case ascii(String)
    case skipped
}

/// One image file directory: its tags and the offset of the next IFD.
struct TIFFDirectory {
    var fields: [UInt16: TIFFValue] = [:]
    var next: UInt64 = 0

    func uints(_ tag: UInt16) throws -> [UInt64]? {
        switch fields[tag] {
        case nil: return nil
        case .unsigned(let v)?: return v
        case .signed(let v)?:
            guard v.allSatisfy({ $0 >= 0 }) else { throw RasterError.malformed("tag \(tag) has negative values") }
            return v.map { UInt64($0) }
        default: throw RasterError.malformed("tag \(tag) has a non-integer type")
        }
    }

    /// First value of an integer tag, required to fit in Int.
    func int(_ tag: UInt16, _ name: String) throws -> Int? {
        guard let v = try uints(tag) else { return nil }
        guard let f = v.first else { throw RasterError.malformed("tag \(name) has no value") }
        guard f <= UInt64(Int.max) else { throw RasterError.malformed("tag \(name) value \(f) too large") }
        return Int(f)
    }

    func doubles(_ tag: UInt16) -> [Double]? {
        switch fields[tag] {
        case .unsigned(let v)?: return v.map { Double($0) }
        case .signed(let v)?: return v.map { Double($0) }
        case .reals(let v)?: return v
        default: return nil
        }
    }

    func ascii(_ tag: UInt16) -> String? {
        if case .ascii(let s)? = fields[tag] { return s }
        return nil
    }

    /// Parses the IFD at `offset`.
    static func parse(_ f: TIFFBytes, at offset: UInt64, bigTIFF: Bool, limits: RasterLimits) throws -> TIFFDirectory {
        let countSize = bigTIFF ? 8 : 2, entrySize = bigTIFF ? 20 : 12, inline = bigTIFF ? 8 : 4
        let o = try f.range("IFD header", offset, countSize)
        let rawCount = bigTIFF ? f.u64(o) : UInt64(f.u16(o))
        if rawCount > UInt64(limits.maxTagCount) {
            throw RasterError.limitExceeded(what: "IFD entry count", value: rawCount, limit: UInt64(limits.maxTagCount))
        }
        let n = Int(rawCount)
        guard n > 0 else { throw RasterError.malformed("IFD at \(offset) has no entries") }
        let start = try f.range("IFD entries", offset + UInt64(countSize), n * entrySize + inline)
        var dir = TIFFDirectory()
        for e in 0..<n {
            let p = start + e * entrySize
            let tag = f.u16(p)
            let typeCode = f.u16(p + 2)
            let count = bigTIFF ? f.u64(p + 4) : UInt64(f.u32(p + 4))
            let valueField = p + (bigTIFF ? 12 : 8)
            guard TIFFTag.decoded.contains(tag) else { continue }
            guard let type = TIFFFieldType(rawValue: typeCode) else {
                throw RasterError.malformed("tag \(tag) has unknown field type \(typeCode)")
            }
            if count > UInt64(limits.maxTagValues) {
                throw RasterError.limitExceeded(what: "value count of tag \(tag)", value: count, limit: UInt64(limits.maxTagValues))
            }
            let cnt = Int(count)
            let bytes = cnt * type.size
            let vo: Int
            if bytes <= inline {
                vo = valueField
            } else {
                let off = bigTIFF ? f.u64(valueField) : UInt64(f.u32(valueField))
                vo = try f.range("value of tag \(tag)", off, bytes)
            }
            dir.fields[tag] = decodeValue(f, type: type, count: cnt, at: vo)
        }
        let nextPos = start + n * entrySize
        dir.next = bigTIFF ? f.u64(nextPos) : UInt64(f.u32(nextPos))
        return dir
    }

    private static func decodeValue(_ f: TIFFBytes, type: TIFFFieldType, count n: Int, at o: Int) -> TIFFValue {
        switch type {
        case .byte, .undefined: return .unsigned((0..<n).map { UInt64(f.u8(o + $0)) })
        case .short: return .unsigned((0..<n).map { UInt64(f.u16(o + 2 * $0)) })
        case .long, .ifd: return .unsigned((0..<n).map { UInt64(f.u32(o + 4 * $0)) })
        case .long8, .ifd8: return .unsigned((0..<n).map { f.u64(o + 8 * $0) })
        case .sbyte: return .signed((0..<n).map { Int64(Int8(bitPattern: f.u8(o + $0))) })
        case .sshort: return .signed((0..<n).map { Int64(Int16(bitPattern: f.u16(o + 2 * $0))) })
        case .slong: return .signed((0..<n).map { Int64(Int32(bitPattern: f.u32(o + 4 * $0))) })
        case .slong8: return .signed((0..<n).map { Int64(bitPattern: f.u64(o + 8 * $0)) })
        case .float: return .reals((0..<n).map { Double(Float(bitPattern: f.u32(o + 4 * $0))) })
        case .double: return .reals((0..<n).map { Double(bitPattern: f.u64(o + 8 * $0)) })
        case .rational:
            return .reals((0..<n).map { i in
                let den = f.u32(o + 8 * i + 4)
                return den == 0 ? 0 : Double(f.u32(o + 8 * i)) / Double(den)
            })
        case .srational:
            return .reals((0..<n).map { i in
                let den = Int32(bitPattern: f.u32(o + 8 * i + 4))
                return den == 0 ? 0 : Double(Int32(bitPattern: f.u32(o + 8 * i))) / Double(den)
            })
        case .ascii:
            var bytes = (0..<n).map { f.u8(o + $0) }
            while bytes.last == 0 { bytes.removeLast() }
            return .ascii(String(decoding: bytes, as: UTF8.self))
        }
    }
}
