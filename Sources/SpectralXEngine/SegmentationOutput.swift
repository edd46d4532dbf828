import Foundation
import SpectralXCheckpoint
import SpectralXRaster
import SpectralXSupport

/// File formats of a segmentation answer (the API's `output=` and `spectralx predict --format`).
public enum OutputFormat: String, Sendable, CaseIterable, Codable {
    /// Cloud-Optimized GeoTIFF, streamed (labels: palette, nodata, overviews; scores: K bands).
    case geotiff
    /// NumPy: labels (H, W) uint8 or scores (K, H, W) float32.
    case npy
    /// Indexed-colour preview of the labels.
    case png
    /// Class histogram and timings (the API only).
    case json
}

/// How probabilities are stored in a scores output.
public enum ScoresEncoding: String, Sendable, CaseIterable, Codable {
    /// float32, NaN on invalid pixels.
    case float32
    /// uint8 round(p × 254), 255 on invalid pixels (GDAL_NODATA 255): a quarter of the size.
    case uint8
}

/// The colours of a domain's classes: `class_colors` from domain.json, else the default palette.
public func classColors(of domain: LoadedDomain) -> [(UInt8, UInt8, UInt8)] { classColors(of: domain.config) }

/// Streams a segmentation into a Cloud-Optimized GeoTIFF: the label raster (uint8, 512² tiles —
/// `COGOptions.tileSize(width:height:)` —,
/// Deflate + predictor, overviews by mode, a 256-entry colour map with the domain's class colours,
/// GDAL_NODATA = the output nodata value, class names in GDAL_METADATA) or, with scores, the K-band
/// probability raster (float32 or uint8, overviews by nearest). Memory is one tile row.
///
/// Resuming a job: create the sink with `resume: true`; `resumeRow` is the first row it still
/// needs (0 when nothing usable was spooled), to be passed as `SegmentationPipeline.run(…,
/// resumeFromRow:)`. Rows are durable in whole tile rows (512 rows, or `COGOptions.tileSize`), so at most one tile row of windows
/// is recomputed.
public final class COGSink: SegmentationSink {
    public let path: String
    public let writer: COGWriter
    public let scores: ScoresEncoding?
    private let classes: Int
    private let width: Int

    public init(path: String, domain: LoadedDomain, width: Int, height: Int, geo: GeoReference, options: SegmentationOptions,
                scoresEncoding: ScoresEncoding = .float32, spool: COGWriter.Spool = .resumable, resume: Bool = false) throws {
        self.path = path
        classes = domain.classes
        self.width = width
        var o = COGOptions()
        o.tileSize = COGOptions.tileSize(width: width, height: height)
        var g = geo
        g.nodata = nil
        g.gdalMetadata = nil
        let bands: Int, type: SampleType
        if options.scores {
            scores = scoresEncoding
            bands = domain.classes
            type = scoresEncoding == .float32 ? .float32 : .uint8
            o.resampling = .nearest
            o.nodata = scoresEncoding == .float32 ? .nan : 255
            o.gdalMetadata = GDALMetadataXML.bandDescriptions(domain.config.classNames)
        } else {
            scores = nil
            bands = 1
            type = .uint8
            var cm = classColors(of: domain)
            cm += [(UInt8, UInt8, UInt8)](repeating: (0, 0, 0), count: 256 - cm.count)
            o.colorMap = cm
            o.nodata = Double(options.outputNodata)
            o.gdalMetadata = GDALMetadataXML.classNames(domain.config.classNames)
        }
        if resume, let w = try? COGWriter(resuming: path, width: width, height: height, bands: bands, sampleType: type, geo: g, options: o) {
            writer = w
        } else {
            writer = try COGWriter(path: path, width: width, height: height, bands: bands, sampleType: type, geo: g, options: o,
                                   spool: spool)
        }
    }

    /// The first scene row not yet durable.
    public var resumeRow: Int { writer.rowsWritten }

    public func consume(rows: Range<Int>, labels: [UInt8], scores s: [Float]?) throws {
        // Rows already spooled by an interrupted run are skipped (the pipeline resumes a little earlier).
        let skip = max(0, writer.rowsAppended - rows.lowerBound)
        guard skip < rows.count else { return }
        let n = rows.count - skip
        switch scores {
        case nil:
            try labels.withUnsafeBytes { try writer.append(UnsafeRawBufferPointer(rebasing: $0[(skip * width)...]), rows: n) }
        case .float32?:
            guard let s else { throw EngineError.invalidArgument("the scores sink needs scores") }
            try writer.append(Self.slice(s, classes: classes, rows: rows.count, width: width, skip: skip), rows: n)
        case .uint8?:
            guard let s else { throw EngineError.invalidArgument("the scores sink needs scores") }
            let f = Self.slice(s, classes: classes, rows: rows.count, width: width, skip: skip)
            try writer.append(f.map { $0.isNaN ? UInt8(255) : UInt8(($0 * 254).rounded()) }, rows: n)
        }
    }

    private static func slice(_ s: [Float], classes: Int, rows: Int, width: Int, skip: Int) -> [Float] {
        guard skip > 0 else { return s }
        var out: [Float] = []
        for k in 0..<classes { out += s[((k * rows + skip) * width)..<((k + 1) * rows * width)] }
        return out
    }

    /// Writes the COG (overviews, IFDs, data) to `path`.
    public func finish() throws { try writer.finish() }

    /// The COG's bytes (an in-memory sink's answer).
    public func finishData() throws -> Data { try writer.finishData() }

    /// Drops the partial output.
    public func abort() { writer.abort() }
}

/// GDAL_METADATA (TIFF tag 42112) documents.
public enum GDALMetadataXML {
    /// Class names of a label band, as band-1 metadata items (`CLASS_i=name`) GDAL and rasterio show.
    public static func classNames(_ names: [String]) -> String {
        var s = "<GDALMetadata>\n"
        for (i, n) in names.enumerated() { s += "  <Item name=\"CLASS_\(i)\" sample=\"0\">\(xmlEscape(n))</Item>\n" }
        return s + "</GDALMetadata>"
    }

    /// One description per band (the class of each probability band).
    public static func bandDescriptions(_ names: [String]) -> String {
        var s = "<GDALMetadata>\n"
        for (i, n) in names.enumerated() { s += "  <Item name=\"DESCRIPTION\" sample=\"\(i)\" role=\"description\">\(xmlEscape(n))</Item>\n" }
        return s + "</GDALMetadata>"
    }

    /// A GDAL PAM sidecar (`OUT.tif.aux.xml`) with the category names of band 1: what QGIS and
    /// `gdalinfo` use as the legend of a paletted label raster.
    public static func auxXML(classNames names: [String]) -> String {
        var s = "<PAMDataset>\n  <PAMRasterBand band=\"1\">\n    <CategoryNames>\n"
        for n in names { s += "      <Category>\(xmlEscape(n))</Category>\n" }
        return s + "    </CategoryNames>\n  </PAMRasterBand>\n</PAMDataset>\n"
    }

    static func xmlEscape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }
}

/// The resume state of an interrupted resumable output (`SegmentationOutput.resumableFile`: scene jobs
/// and `spectralx predict --mode tile`): `<out>.cog-spool/resume.json`, next to the COG's durable tile
/// spool, holding the run's identity (`ResumeIdentity.key`: input, model digest, options, scene) and
/// the scene's normalisation statistics. A later call with the same identity reopens the
/// spool through `COGSink(resume: true)` — the mechanism scene jobs use — and continues at its first
/// tile row not yet durable; a different identity starts afresh. The whole spool directory, this
/// file included, is removed when the output is complete (`COGWriter.finish`) or the run fails.
public struct SceneCheckpoint: Codable, Sendable, Equatable {
    public var identity: String
    public var statistics: BandStatistics

    public static let fileName = "resume.json"

    public static func path(forOutput output: String) -> String {
        COGWriter.spoolDirectory(for: output) + "/" + fileName
    }

    /// The checkpoint of `output`'s spool when it was made by a run with `identity`, else nil.
    public static func load(forOutput output: String, identity: String) -> SceneCheckpoint? {
        guard let data = FileManager.default.contents(atPath: path(forOutput: output)) else { return nil }
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let c = try? d.decode(SceneCheckpoint.self, from: data), c.identity == identity,
              c.statistics.minimum.count == c.statistics.maximum.count else { return nil }
        return c
    }

    /// Writes the checkpoint into `output`'s spool directory (which the sink has created), atomically.
    public func save(forOutput output: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try writeAtomically(try e.encode(self), to: Self.path(forOutput: output))
    }
}

/// Writes beside the target and renames (`AtomicFile`, not durable: a rerun rewrites it), so a
/// reader never sees half a file.
public func writeAtomically(_ data: Data, to path: String) throws(EngineError) {
    do { try AtomicFile.write(data, to: path, durable: false) }
    catch { throw EngineError.inferenceFailed("cannot write \(path): \(error)") }
}
