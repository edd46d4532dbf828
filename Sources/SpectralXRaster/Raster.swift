/// Numeric interpretation of raster samples.
public enum SampleFormat: UInt16, Sendable, CaseIterable {
    case uint = 1, int = 2, float = 3
}

/// Native sample type of a raster: format and width (8/16/32/64 bits; float is 32 or 64).
public struct SampleType: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var format: SampleFormat
    public var bits: Int
    public var bytes: Int { bits / 8 }

    public init(format: SampleFormat, bits: Int) { self.format = format; self.bits = bits }

    public static let uint8 = SampleType(format: .uint, bits: 8)
    public static let int8 = SampleType(format: .int, bits: 8)
    public static let uint16 = SampleType(format: .uint, bits: 16)
    public static let int16 = SampleType(format: .int, bits: 16)
    public static let uint32 = SampleType(format: .uint, bits: 32)
    public static let int32 = SampleType(format: .int, bits: 32)
    public static let uint64 = SampleType(format: .uint, bits: 64)
    public static let int64 = SampleType(format: .int, bits: 64)
    public static let float32 = SampleType(format: .float, bits: 32)
    public static let float64 = SampleType(format: .float, bits: 64)
    /// Every supported combination.
    public static let all: [SampleType] = [.uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64, .float32, .float64]

    public var description: String {
        switch format { case .uint: return "uint\(bits)"; case .int: return "int\(bits)"; case .float: return "float\(bits)" }
    }
}

/// A decoded raster: `bands` planes of `height`×`width` samples, band-sequential (band, row,
/// column), stored in the native sample type in host byte order. Memory use is exactly
/// width·height·bands·bytesPerSample; the float views allocate a second buffer of 4 or 8 bytes
/// per sample, so for very large scenes convert one band at a time with `band…(_:)`.
public struct Raster: Sendable {
    public private(set) var width: Int
    public private(set) var height: Int
    public private(set) var bands: Int
    public private(set) var sampleType: SampleType
    /// Band-sequential host-order samples.
    public private(set) var data: [UInt8]
    /// Georeferencing tags of the source (empty for non-georeferenced data).
    public var geo: GeoReference

    public init(width: Int, height: Int, bands: Int, sampleType: SampleType, data: [UInt8], geo: GeoReference = GeoReference()) throws {
        let n = try checkedMul(try checkedMul(try checkedMul(width, height, "raster size"), bands, "raster size"), sampleType.bytes, "raster size")
        guard width >= 0, height >= 0, bands >= 0, n == data.count else {
            throw RasterError.invalidArgument("raster data has \(data.count) bytes, \(width)×\(height)×\(bands) \(sampleType) needs \(n)")
        }
        self.width = width; self.height = height; self.bands = bands; self.sampleType = sampleType; self.data = data; self.geo = geo
    }

    /// Builds a raster from typed band-sequential values.
    public init<T: RasterScalar>(width: Int, height: Int, bands: Int, values: [T], geo: GeoReference = GeoReference()) throws {
        try self.init(width: width, height: height, bands: bands, sampleType: T.sampleType, data: values.withUnsafeBytes { [UInt8]($0) }, geo: geo)
    }

    public var pixelsPerBand: Int { width * height }

    /// All samples as Float64, band-sequential (the precision the upstream preprocessing uses).
    public func toFloat64() -> [Double] { convert(Double.self, band: nil) }
    /// All samples as Float32, band-sequential.
    public func toFloat32() -> [Float] { convert(Float.self, band: nil) }
    /// One band as Float64.
    public func bandFloat64(_ b: Int) -> [Double] { convert(Double.self, band: b) }
    /// One band as Float32.
    public func bandFloat32(_ b: Int) -> [Float] { convert(Float.self, band: b) }

    /// One band as Float64 into `out` (at least `pixelsPerBand` values; the rest is left alone):
    /// `bandFloat64(_:)` without the allocation, for loops over many windows.
    public func bandFloat64(_ b: Int, into out: UnsafeMutableBufferPointer<Double>) {
        precondition(b >= 0 && b < bands && out.count >= pixelsPerBand, "band \(b) of \(bands) into \(out.count) values")
        data.withUnsafeBytes { raw in Self.convert(raw, sampleType, first: b * pixelsPerBand, count: pixelsPerBand, into: out.baseAddress!) }
    }

    private func convert<T: BinaryFloatingPoint>(_: T.Type, band: Int?) -> [T] {
        let per = pixelsPerBand
        let first = band.map { max(0, min($0, bands)) * per } ?? 0
        let n = band == nil ? per * bands : (band! >= 0 && band! < bands ? per : 0)
        let st = sampleType
        return data.withUnsafeBytes { raw in
            [T](unsafeUninitializedCapacity: n) { out, done in
                if n > 0 { Self.convert(raw, st, first: first, count: n, into: out.baseAddress!) }
                done = n
            }
        }
    }

    /// Samples `first ..< first + n` of `raw` (type `st`) converted into `o` (trivial type: assignment initialises).
    private static func convert<T: BinaryFloatingPoint>(_ raw: UnsafeRawBufferPointer, _ st: SampleType, first: Int, count n: Int,
                                                        into o: UnsafeMutablePointer<T>) {
        func run<S>(_: S.Type, _ f: (S) -> T) {
            let p = raw.baseAddress!.assumingMemoryBound(to: S.self) + first
            for i in 0..<n { (o + i).initialize(to: f(p[i])) }
        }
        switch (st.format, st.bits) {
        case (.uint, 8): run(UInt8.self) { T($0) }
        case (.int, 8): run(Int8.self) { T($0) }
        case (.uint, 16): run(UInt16.self) { T($0) }
        case (.int, 16): run(Int16.self) { T($0) }
        case (.uint, 32): run(UInt32.self) { T($0) }
        case (.int, 32): run(Int32.self) { T($0) }
        case (.uint, 64): run(UInt64.self) { T($0) }
        case (.int, 64): run(Int64.self) { T($0) }
        case (.float, 32): run(Float.self) { T($0) }
        default: run(Double.self) { T($0) }
        }
    }

    /// Typed copy of the samples; nil when `T` is not the native sample type.
    public func values<T: RasterScalar>(as: T.Type) -> [T]? {
        guard T.sampleType == sampleType else { return nil }
        return data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }
}

/// Swift types that map one-to-one onto a raster sample type.
public protocol RasterScalar: Sendable { static var sampleType: SampleType { get } }
extension UInt8: RasterScalar { public static var sampleType: SampleType { .uint8 } }
extension Int8: RasterScalar { public static var sampleType: SampleType { .int8 } }
extension UInt16: RasterScalar { public static var sampleType: SampleType { .uint16 } }
extension Int16: RasterScalar { public static var sampleType: SampleType { .int16 } }
extension UInt32: RasterScalar { public static var sampleType: SampleType { .uint32 } }
extension Int32: RasterScalar { public static var sampleType: SampleType { .int32 } }
extension UInt64: RasterScalar { public static var sampleType: SampleType { .uint64 } }
extension Int64: RasterScalar { public static var sampleType: SampleType { .int64 } }
extension Float: RasterScalar { public static var sampleType: SampleType { .float32 } }
extension Double: RasterScalar { public static var sampleType: SampleType { .float64 } }
