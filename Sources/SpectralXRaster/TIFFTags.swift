/// TIFF 6.0 / BigTIFF / GeoTIFF 1.1 / GDAL tag numbers used by the reader and writer.
public enum TIFFTag {
    public static let newSubfileType: UInt16 = 254
    public static let subfileType: UInt16 = 255
    public static let imageWidth: UInt16 = 256
    public static let imageLength: UInt16 = 257
    public static let bitsPerSample: UInt16 = 258
    public static let compression: UInt16 = 259
    public static let photometric: UInt16 = 262
    public static let fillOrder: UInt16 = 266
    public static let stripOffsets: UInt16 = 273
    public static let samplesPerPixel: UInt16 = 277
    public static let rowsPerStrip: UInt16 = 278
    public static let stripByteCounts: UInt16 = 279
    public static let planarConfiguration: UInt16 = 284
    public static let predictor: UInt16 = 317
    public static let colorMap: UInt16 = 320
    public static let tileWidth: UInt16 = 322
    public static let tileLength: UInt16 = 323
    public static let tileOffsets: UInt16 = 324
    public static let tileByteCounts: UInt16 = 325
    public static let extraSamples: UInt16 = 338
    public static let sampleFormat: UInt16 = 339
    public static let jpegTables: UInt16 = 347
    public static let modelPixelScale: UInt16 = 33550
    public static let modelTiepoint: UInt16 = 33922
    public static let modelTransformation: UInt16 = 34264
    public static let geoKeyDirectory: UInt16 = 34735
    public static let geoDoubleParams: UInt16 = 34736
    public static let geoAsciiParams: UInt16 = 34737
    public static let gdalMetadata: UInt16 = 42112
    public static let gdalNodata: UInt16 = 42113

    /// Tags whose values the reader decodes; other tags are only bounds-checked and skipped.
    static let decoded: Set<UInt16> = [
        newSubfileType, subfileType, imageWidth, imageLength, bitsPerSample, compression, photometric,
        fillOrder, stripOffsets, samplesPerPixel, rowsPerStrip, stripByteCounts, planarConfiguration,
        predictor, tileWidth, tileLength, tileOffsets, tileByteCounts, sampleFormat, modelPixelScale,
        modelTiepoint, modelTransformation, geoKeyDirectory, geoDoubleParams, geoAsciiParams,
        gdalMetadata, gdalNodata,
    ]
}

/// TIFF field types (TIFF 6.0 §2 plus BigTIFF's LONG8/SLONG8/IFD8).
enum TIFFFieldType: UInt16 {
    case byte = 1, ascii = 2, short = 3, long = 4, rational = 5, sbyte = 6, undefined = 7, sshort = 8
    case slong = 9, srational = 10, float = 11, double = 12, ifd = 13, long8 = 16, slong8 = 17, ifd8 = 18

    var size: Int {
        switch self {
        case .byte, .ascii, .sbyte, .undefined: return 1
        case .short, .sshort: return 2
        case .long, .slong, .float, .ifd: return 4
        case .rational, .srational, .double, .long8, .slong8, .ifd8: return 8
        }
    }
}

/// Compression schemes, by TIFF code.
public enum TIFFCompression: UInt16, Sendable, CaseIterable {
    case none = 1
    case lzw = 5
    case deflate = 8
    case packBits = 32773
    case adobeDeflate = 32946

    /// Names of well-known codes that are valid TIFF but deliberately not decoded.
    static func unsupportedName(_ code: UInt64) -> String {
        switch code {
        case 2: return "CCITT RLE compression (2)"
        case 3: return "CCITT Group 3 fax compression (3)"
        case 4: return "CCITT Group 4 fax compression (4)"
        case 6: return "old-style JPEG compression (6)"
        case 7: return "JPEG compression (7)"
        case 34661: return "JBIG compression (34661)"
        case 34676, 34677: return "SGI LogLuv compression (\(code))"
        case 34712: return "JPEG 2000 compression (34712)"
        case 34887: return "LERC compression (34887)"
        case 34925: return "LZMA compression (34925)"
        case 50000: return "ZSTD compression (50000)"
        case 50001: return "WebP compression (50001)"
        case 50002: return "JPEG XL compression (50002)"
        default: return "compression code \(code)"
        }
    }
}
