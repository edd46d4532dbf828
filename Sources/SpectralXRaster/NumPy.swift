import Foundation

/// Element type of a `.npy` array: kind, width in bytes and byte order, as in NumPy's `descr`.
public struct NpyDType: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Character, Sendable { case bool = "b", int = "i", uint = "u", float = "f" }
    public var kind: Kind
    public var size: Int
    public var littleEndian: Bool

    public init(kind: Kind, size: Int, littleEndian: Bool = true) {
        self.kind = kind; self.size = size; self.littleEndian = littleEndian
    }

    public static let uint8 = NpyDType(kind: .uint, size: 1)
    public static let int8 = NpyDType(kind: .int, size: 1)
    public static let uint16 = NpyDType(kind: .uint, size: 2)
    public static let int16 = NpyDType(kind: .int, size: 2)
    public static let uint32 = NpyDType(kind: .uint, size: 4)
    public static let int32 = NpyDType(kind: .int, size: 4)
    public static let uint64 = NpyDType(kind: .uint, size: 8)
    public static let int64 = NpyDType(kind: .int, size: 8)
    public static let float32 = NpyDType(kind: .float, size: 4)
    public static let float64 = NpyDType(kind: .float, size: 8)

    /// NumPy `descr` string, e.g. `<f4`, `|u1`.
    public var descr: String { (size == 1 ? "|" : (littleEndian ? "<" : ">")) + String(kind.rawValue) + String(size) }
    public var description: String { descr }

    /// Parses a `descr` string; object, string, structured and complex types are refused.
    public static func parse(_ descr: String) throws -> NpyDType {
        let chars = Array(descr)
        guard chars.count >= 2 else { throw RasterError.malformed("npy descr '\(descr)' too short") }
        var i = 0
        var little = true
        switch chars[0] {
        case "<", "=", "|": i = 1
        case ">": little = false; i = 1
        default: break
        }
        guard i < chars.count else { throw RasterError.malformed("npy descr '\(descr)'") }
        let k = chars[i]
        if k == "O" { throw RasterError.npyObjectArray("descr '\(descr)'") }
        guard let kind = Kind(rawValue: k) else { throw RasterError.unsupported("npy dtype '\(descr)'", kind: .npyDtype) }
        guard let size = Int(String(chars[(i + 1)...])) else { throw RasterError.unsupported("npy dtype '\(descr)'", kind: .npyDtype) }
        let ok: Bool
        switch kind {
        case .bool: ok = size == 1
        case .int, .uint: ok = [1, 2, 4, 8].contains(size)
        case .float: ok = size == 4 || size == 8
        }
        guard ok else { throw RasterError.unsupported("npy dtype '\(descr)'", kind: .npyDtype) }
        return NpyDType(kind: kind, size: size, littleEndian: little || size == 1)
    }
}

/// A decoded `.npy` array: shape, element type, memory order and the raw element bytes exactly as
/// stored (file byte order, C or Fortran order). The `to…` accessors give C-order host values.
public struct NpyArray: Sendable {
    public private(set) var shape: [Int]
    public private(set) var dtype: NpyDType
    public private(set) var fortranOrder: Bool
    /// Raw element bytes as stored in the file.
    public private(set) var data: [UInt8]

    public var count: Int { shape.reduce(1, *) }  // validated by init

    public init(shape: [Int], dtype: NpyDType, fortranOrder: Bool = false, data: [UInt8]) throws {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw RasterError.invalidArgument("negative dimension \(d)") }
            n = try checkedMul(n, d, "npy element count")
        }
        guard try checkedMul(n, dtype.size, "npy byte count") == data.count else {
            throw RasterError.invalidArgument("npy data has \(data.count) bytes, shape \(shape) × \(dtype.size) needs \(n * dtype.size)")
        }
        self.shape = shape; self.dtype = dtype; self.fortranOrder = fortranOrder; self.data = data
    }

    /// Reads a `.npy` file (versions 1.0, 2.0, 3.0).
    public static func read(path: String, limits: RasterLimits = .default) throws -> NpyArray {
        let d = try readFileData(path)
        return try d.withUnsafeBytes { try decode($0, limits: limits) }
    }

    /// Parses `.npy` bytes. Refuses object arrays without unpickling anything.
    public static func decode(_ bytes: UnsafeRawBufferPointer, limits: RasterLimits = .default) throws -> NpyArray {
        let h = try NpyHeader.parse(bytes, limits: limits)
        let need = try checkedMul(h.count, h.dtype.size, "npy byte count")
        try limits.check("npy data bytes", need, limits.maxDecodedBytes)
        guard bytes.count - h.dataOffset >= need else {
            throw RasterError.truncated("npy data: need \(need) bytes after the header, have \(bytes.count - h.dataOffset)")
        }
        let raw = [UInt8](unsafeUninitializedCapacity: need) { buf, n in
            if need > 0, let src = bytes.baseAddress { buf.baseAddress!.update(from: src.assumingMemoryBound(to: UInt8.self) + h.dataOffset, count: need) }
            n = need
        }
        return try NpyArray(shape: h.shape, dtype: h.dtype, fortranOrder: h.fortranOrder, data: raw)
    }

    /// Values as Float in C order (float64/int64 are rounded). Native little-endian f4 in C order is a bulk copy.
    public func toFloat32() -> [Float] {
        if dtype.kind == .float && dtype.size == 4 && dtype.littleEndian && !fortranOrder {
            return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return cOrder(storageValues(Float.self, fromFloat: { Float($0) }, fromInt: { Float($0) }, fromUInt: { Float($0) }))
    }

    /// Values as Double in C order (64-bit integers beyond 2^53 are rounded).
    public func toFloat64() -> [Double] {
        cOrder(storageValues(Double.self, fromFloat: { $0 }, fromInt: { Double($0) }, fromUInt: { Double($0) }))
    }

    /// Values as Int64 in C order; floats are truncated toward zero and saturated, NaN becomes 0.
    public func toInt64() -> [Int64] {
        cOrder(storageValues(Int64.self, fromFloat: { v in
            if v.isNaN { return 0 }
            if v >= 9.2233720368547758e18 { return .max }
            if v <= -9.2233720368547758e18 { return .min }
            return Int64(v)
        }, fromInt: { $0 }, fromUInt: { $0 > UInt64(Int64.max) ? .max : Int64($0) }))
    }

    /// Raw element values in storage order, converted by the given closures (switch hoisted out of the loop).
    private func storageValues<T>(_: T.Type, fromFloat: (Double) -> T, fromInt: (Int64) -> T, fromUInt: (UInt64) -> T) -> [T] {
        let n = count
        let le = dtype.littleEndian
        return data.withUnsafeBytes { src -> [T] in
            [T](unsafeUninitializedCapacity: n) { out, initialized in
                @inline(__always) func fill(_ f: (Int) -> T) { for i in 0..<n { (out.baseAddress! + i).initialize(to: f(i)) } }
                @inline(__always) func u16(_ i: Int) -> UInt16 { let v = src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self); return le ? UInt16(littleEndian: v) : UInt16(bigEndian: v) }
                @inline(__always) func u32(_ i: Int) -> UInt32 { let v = src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self); return le ? UInt32(littleEndian: v) : UInt32(bigEndian: v) }
                @inline(__always) func u64(_ i: Int) -> UInt64 { let v = src.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self); return le ? UInt64(littleEndian: v) : UInt64(bigEndian: v) }
                switch (dtype.kind, dtype.size) {
                case (.bool, _), (.uint, 1): fill { fromUInt(UInt64(src[$0])) }
                case (.int, 1): fill { fromInt(Int64(Int8(bitPattern: src[$0]))) }
                case (.uint, 2): fill { fromUInt(UInt64(u16($0))) }
                case (.int, 2): fill { fromInt(Int64(Int16(bitPattern: u16($0)))) }
                case (.uint, 4): fill { fromUInt(UInt64(u32($0))) }
                case (.int, 4): fill { fromInt(Int64(Int32(bitPattern: u32($0)))) }
                case (.uint, 8): fill { fromUInt(u64($0)) }
                case (.int, 8): fill { fromInt(Int64(bitPattern: u64($0))) }
                case (.float, 4): fill { fromFloat(Double(Float(bitPattern: u32($0)))) }
                default: fill { fromFloat(Double(bitPattern: u64($0))) }
                }
                initialized = n
            }
        }
    }

    /// Reorders Fortran-order values to C order (identity for C order).
    private func cOrder<T>(_ values: [T]) -> [T] {
        guard fortranOrder, shape.count > 1, !values.isEmpty else { return values }
        return fortranToC(values, shape: shape)
    }
}

/// Transposes a Fortran-order buffer of the given shape to C order.
func fortranToC<T>(_ values: [T], shape: [Int]) -> [T] {
    let nd = shape.count
    // Fortran strides in elements.
    var fstride = [Int](repeating: 1, count: nd)
    for i in 1..<nd { fstride[i] = fstride[i - 1] * shape[i - 1] }
    let n = values.count
    var idx = [Int](repeating: 0, count: nd)
    return values.withUnsafeBufferPointer { src in
        [T](unsafeUninitializedCapacity: n) { out, initialized in
            var f = 0
            let last = shape[nd - 1], lastStride = fstride[nd - 1]
            var c = 0
            while c < n {
                // Innermost C axis is the last one: contiguous run in the output.
                var ff = f
                for _ in 0..<last { (out.baseAddress! + c).initialize(to: src[ff]); ff += lastStride; c += 1 }
                // Increment the multi-index over the leading axes.
                var ax = nd - 2
                while ax >= 0 {
                    idx[ax] += 1
                    f += fstride[ax]
                    if idx[ax] < shape[ax] { break }
                    f -= fstride[ax] * shape[ax]
                    idx[ax] = 0
                    ax -= 1
                }
            }
            initialized = n
        }
    }
}

struct NpyHeader {
    var shape: [Int]
    var dtype: NpyDType
    var fortranOrder: Bool
    var dataOffset: Int
    var count: Int

    static func parse(_ b: UnsafeRawBufferPointer, limits: RasterLimits) throws -> NpyHeader {
        guard b.count >= 10 else { throw RasterError.truncated("npy preamble needs 10 bytes, have \(b.count)") }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        for i in 0..<6 where b[i] != magic[i] { throw RasterError.notRecognized("missing \\x93NUMPY magic") }
        let major = b[6]
        let headerLen: Int, start: Int
        switch major {
        case 1:
            headerLen = Int(b[8]) | Int(b[9]) << 8; start = 10
        case 2, 3:
            guard b.count >= 12 else { throw RasterError.truncated("npy v\(major) preamble") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        default:
            throw RasterError.unsupported("npy format version \(major).\(b[7])", kind: .npyFeature)
        }
        try limits.check("npy header bytes", headerLen, limits.maxNpyHeaderBytes)
        guard b.count - start >= headerLen else { throw RasterError.truncated("npy header: need \(headerLen) bytes, have \(b.count - start)") }
        let hb = UnsafeRawBufferPointer(rebasing: b[start..<(start + headerLen)])
        guard let text = String(bytes: hb, encoding: major == 3 ? .utf8 : .isoLatin1) else { throw RasterError.malformed("npy header is not text") }
        var p = NpyDictParser(Array(text.unicodeScalars))
        let dict = try p.parseDict()
        guard case .string(let descr)? = dict["descr"] else {
            if case .list? = dict["descr"] { throw RasterError.unsupported("npy structured dtype", kind: .npyDtype) }
            throw RasterError.malformed("npy header lacks 'descr'")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw RasterError.malformed("npy header lacks 'fortran_order'") }
        guard case .tuple(let dims)? = dict["shape"] else { throw RasterError.malformed("npy header lacks 'shape'") }
        let dtype = try NpyDType.parse(descr)
        var n = 1
        for d in dims {
            guard d >= 0 else { throw RasterError.malformed("npy negative dimension") }
            n = try checkedMul(n, d, "npy element count")
        }
        return NpyHeader(shape: dims, dtype: dtype, fortranOrder: fortran, dataOffset: start + headerLen, count: n)
    }
}

/// Minimal parser for the Python dict literal of an npy header (strings, booleans, int tuples, lists).
struct NpyDictParser {
    enum Value { case string(String), bool(Bool), tuple([Int]), int(Int), list, none }
    let s: [Unicode.Scalar]
    var i = 0
    init(_ s: [Unicode.Scalar]) { self.s = s }

    mutating func skipWS() { while i < s.count, s[i] == " " || s[i] == "\n" || s[i] == "\t" || s[i] == "\r" { i += 1 } }
    mutating func expect(_ c: Unicode.Scalar) throws {
        skipWS()
        guard i < s.count, s[i] == c else { throw RasterError.malformed("npy header: expected '\(c)' at \(i)") }
        i += 1
    }
    mutating func peek() -> Unicode.Scalar? { skipWS(); return i < s.count ? s[i] : nil }

    mutating func parseDict() throws -> [String: Value] {
        try expect("{")
        var d: [String: Value] = [:]
        while true {
            if peek() == "}" { i += 1; break }
            guard case .string(let k) = try parseValue(depth: 0) else { throw RasterError.malformed("npy header: non-string key") }
            try expect(":")
            d[k] = try parseValue(depth: 0)
            if peek() == "," { i += 1; continue }
            try expect("}")
            break
        }
        return d
    }

    mutating func parseValue(depth: Int) throws -> Value {
        guard depth < 8 else { throw RasterError.malformed("npy header nested too deeply") }
        guard let c = peek() else { throw RasterError.truncated("npy header value") }
        if c == "'" || c == "\"" {
            i += 1
            var out = ""
            while i < s.count, s[i] != c { out.unicodeScalars.append(s[i]); i += 1 }
            guard i < s.count else { throw RasterError.malformed("npy header: unterminated string") }
            i += 1
            return .string(out)
        }
        if c == "(" {
            i += 1
            var dims: [Int] = []
            while true {
                if peek() == ")" { i += 1; break }
                guard case .int(let v) = try parseValue(depth: depth + 1) else { throw RasterError.malformed("npy header: non-integer in shape") }
                dims.append(v)
                guard dims.count <= 64 else { throw RasterError.malformed("npy shape has too many dimensions") }
                if peek() == "," { i += 1; continue }
                try expect(")")
                break
            }
            return .tuple(dims)
        }
        if c == "[" {
            // Structured dtype descriptions: skip balanced brackets.
            var level = 0
            while i < s.count {
                if s[i] == "[" || s[i] == "(" { level += 1 }
                if s[i] == "]" || s[i] == ")" { level -= 1; if level == 0 { i += 1; return .list } }
                i += 1
            }
            throw RasterError.malformed("npy header: unterminated list")
        }
        var word = ""
        while i < s.count, s[i].properties.isAlphabetic || ("0"..."9").contains(s[i]) || s[i] == "-" || s[i] == "_" || s[i] == "L" {
            word.unicodeScalars.append(s[i]); i += 1
        }
        switch word {
        case "True": return .bool(true)
        case "False": return .bool(false)
        case "None": return .none
        default:
            var w = word
            if w.hasSuffix("L") { w.removeLast() }
            guard let v = Int(w) else { throw RasterError.malformed("npy header: unexpected token '\(word)'") }
            return .int(v)
        }
    }
}

/// Scalar types that `NpyWriter` can store, with their little-endian dtype.
public protocol NpyScalar: Sendable { static var npyDType: NpyDType { get } }
extension Float: NpyScalar { public static var npyDType: NpyDType { .float32 } }
extension Double: NpyScalar { public static var npyDType: NpyDType { .float64 } }
extension UInt8: NpyScalar { public static var npyDType: NpyDType { .uint8 } }
extension Int8: NpyScalar { public static var npyDType: NpyDType { .int8 } }
extension UInt16: NpyScalar { public static var npyDType: NpyDType { .uint16 } }
extension Int16: NpyScalar { public static var npyDType: NpyDType { .int16 } }
extension UInt32: NpyScalar { public static var npyDType: NpyDType { .uint32 } }
extension Int32: NpyScalar { public static var npyDType: NpyDType { .int32 } }
extension UInt64: NpyScalar { public static var npyDType: NpyDType { .uint64 } }
extension Int64: NpyScalar { public static var npyDType: NpyDType { .int64 } }

/// Writes `.npy` files (logits, labels, test data). Values are written little-endian, C order,
/// version 1.0 unless the header needs more room.
public enum NpyWriter {
    /// Encodes typed host values of the given shape (C order) as `.npy` bytes.
    public static func encode<T: NpyScalar>(_ values: [T], shape: [Int]) throws -> [UInt8] {
        let n = shape.reduce(1) { $0 &* $1 }
        guard n == values.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw RasterError.invalidArgument("\(values.count) values do not fill shape \(shape)")
        }
        // Host is little-endian on every platform Swift supports for this service.
        let raw = values.withUnsafeBytes { [UInt8]($0) }
        return try encodeRaw(raw, dtype: T.npyDType, shape: shape)
    }

    /// Writes typed values to a file.
    public static func write<T: NpyScalar>(_ values: [T], shape: [Int], to path: String) throws {
        try writeFileBytes(try encode(values, shape: shape), path)
    }

    /// Encodes raw element bytes that already are in `dtype`'s byte order and the given memory order.
    /// `version` 1, 2 or 3 (1 is upgraded to 2 when the header exceeds 65535 bytes).
    public static func encodeRaw(_ raw: [UInt8], dtype: NpyDType, shape: [Int], fortranOrder: Bool = false, version: Int = 1) throws -> [UInt8] {
        _ = try NpyArray(shape: shape, dtype: dtype, fortranOrder: fortranOrder, data: raw)  // validates sizes
        guard (1...3).contains(version) else { throw RasterError.invalidArgument("npy version \(version)") }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(dtype.descr)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
        var v = version
        let pre = { (v: Int) in v == 1 ? 10 : 12 }
        var total = pre(v) + dict.utf8.count + 1
        if v == 1 && total + (64 - total % 64) % 64 - 10 > 65535 { v = 2; total = pre(v) + dict.utf8.count + 1 }
        dict += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        let hlen = dict.utf8.count
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, UInt8(v), 0]
        if v == 1 { out += [UInt8(hlen & 0xFF), UInt8(hlen >> 8)] } else { out += [UInt8(hlen & 0xFF), UInt8((hlen >> 8) & 0xFF), UInt8((hlen >> 16) & 0xFF), UInt8(hlen >> 24)] }
        out += Array(dict.utf8)
        out += raw
        return out
    }
}

/// Convenience entry points for the common fixture/IO cases.
public enum NumPy {
    /// Reads any numeric `.npy` as (shape, Float values in C order). `<f4` C-order is a bulk copy.
    public static func readFloat32(path: String) throws -> (shape: [Int], values: [Float]) {
        let a = try NpyArray.read(path: path)
        return (a.shape, a.toFloat32())
    }
    /// Reads any numeric `.npy` as (shape, Int64 values in C order), e.g. index fixtures (`<i8`).
    public static func readInt64(path: String) throws -> (shape: [Int], values: [Int64]) {
        let a = try NpyArray.read(path: path)
        return (a.shape, a.toInt64())
    }
}

func readFileData(_ path: String) throws -> Data {
    do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) }
    catch { throw RasterError.io("cannot read \(path): \(error.localizedDescription)") }
}

func writeFileBytes(_ bytes: [UInt8], _ path: String) throws {
    do { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
    catch { throw RasterError.io("cannot write \(path): \(error.localizedDescription)") }
}
