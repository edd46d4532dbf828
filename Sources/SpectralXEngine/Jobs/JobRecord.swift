import Foundation
import SpectralXTensor

/// A job's state, named as in OGC API – Processes – Part 1 (`statusCode`).
public enum JobStatus: String, Codable, Sendable, CaseIterable {
    /// Spooled and checked, waiting for a free job slot.
    case accepted
    /// Its windows are being computed.
    case running
    /// The result file is complete.
    case successful
    /// Stopped by an error (the message says which); no result.
    case failed
    /// Cancelled or removed by `DELETE`; its files are gone.
    case dismissed

    /// Finished states: nothing more will happen to the job.
    public var isFinal: Bool { self == .successful || self == .failed || self == .dismissed }
}

/// The format of a job's spooled input file.
public enum JobInputFormat: String, Codable, Sendable {
    case tiff, npy
    /// A `SceneReference` (JSON): the scene is read in place from URLs.
    case reference

    /// File name of the spooled input inside the job directory.
    public var fileName: String {
        switch self {
        case .tiff: return "input.tif"
        case .npy: return "input.npy"
        case .reference: return "input.json"
        }
    }
}

/// The request options a job runs with (the query of `POST …/jobs`), stored with it so a restart
/// runs it the same way.
public struct JobOptions: Codable, Sendable, Equatable {
    public var mode: InferenceMode
    public var overlap: Int
    public var scores: Bool
    public var scoresEncoding: ScoresEncoding
    public var maskNodata: Bool
    public var nodataRule: NodataRule
    public var outputNodata: UInt8
    /// The frozen linears' arithmetic; recorded only when not fp32, so earlier records read back unchanged.
    public var precision: Precision = .fp32

    enum CodingKeys: String, CodingKey {
        case mode, overlap, scores, scoresEncoding = "scores_dtype", maskNodata = "nodata_mask", nodataRule = "nodata_rule"
        case outputNodata = "output_nodata", precision
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decode(InferenceMode.self, forKey: .mode)
        overlap = try c.decode(Int.self, forKey: .overlap)
        scores = try c.decode(Bool.self, forKey: .scores)
        scoresEncoding = try c.decode(ScoresEncoding.self, forKey: .scoresEncoding)
        maskNodata = try c.decode(Bool.self, forKey: .maskNodata)
        nodataRule = try c.decode(NodataRule.self, forKey: .nodataRule)
        outputNodata = try c.decode(UInt8.self, forKey: .outputNodata)
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode)
        try c.encode(overlap, forKey: .overlap)
        try c.encode(scores, forKey: .scores)
        try c.encode(scoresEncoding, forKey: .scoresEncoding)
        try c.encode(maskNodata, forKey: .maskNodata)
        try c.encode(nodataRule, forKey: .nodataRule)
        try c.encode(outputNodata, forKey: .outputNodata)
        if precision != .fp32 { try c.encode(precision, forKey: .precision) }
    }

    public init(mode: InferenceMode = .tile, overlap: Int = 32, scores: Bool = false, scoresEncoding: ScoresEncoding = .float32,
                maskNodata: Bool = true, nodataRule: NodataRule = .all,
                outputNodata: UInt8 = SegmentationOptions.defaultOutputNodata) {
        self.mode = mode
        self.overlap = overlap
        self.scores = scores
        self.scoresEncoding = scoresEncoding
        self.maskNodata = maskNodata
        self.nodataRule = nodataRule
        self.outputNodata = outputNodata
    }

    /// The options of a request (`…/jobs?mode=…`), with the job's own defaults.
    public init(_ o: SegmentationOptions, scoresEncoding: ScoresEncoding) {
        self.init(mode: o.mode, overlap: o.overlap, scores: o.scores, scoresEncoding: scoresEncoding, maskNodata: o.maskNodata,
                  nodataRule: o.nodataRule, outputNodata: o.outputNodata)
        precision = o.precision
    }

    /// The engine options of a background run: batch priority `.background` (interactive requests go
    /// first) and no queue deadline (a job waits behind interactive work as long as it takes).
    public var segmentation: SegmentationOptions {
        var o = SegmentationOptions(mode: mode, overlap: overlap, scores: scores, timeout: .seconds(7 * 24 * 3600),
                                    maskNodata: maskNodata, nodataRule: nodataRule, outputNodata: outputNodata)
        o.priority = .background
        o.precision = precision
        return o
    }
}

extension InferenceMode: Codable {}

/// The metadata of one job, persisted as `job.json` in its directory (written atomically).
/// Field names follow OGC API – Processes – Part 1's status document where one exists.
public struct JobRecord: Codable, Sendable, Equatable {
    public var jobID: String
    public var status: JobStatus
    /// 0–100, from windows done / total.
    public var progress: Int
    public var created: Date
    public var started: Date?
    public var finished: Date?
    public var updated: Date
    public var message: String
    public var windowsDone: Int
    public var windowsTotal: Int
    /// Estimated seconds to completion while running (from this run's window rate).
    public var etaSeconds: Double?
    public var domain: String
    public var options: JobOptions
    public var inputFormat: JobInputFormat
    public var inputBytes: Int64
    /// Scene size, from the input's header at submission.
    public var width: Int
    public var height: Int
    public var bands: Int
    /// Hex SHA-256 of the API key that created the job (nil when no keys are configured).
    public var ownerKeyHash: String?
    /// Size and strong validator of the result once successful.
    public var resultBytes: Int64?
    public var resultETag: String?
    /// How many times the job was started (> 1 after a restart picked it up again).
    public var attempts: Int
    /// Normalisation statistics of the scene once the first pass ran, so a resumed run skips it.
    public var statistics: BandStatistics?
    /// Scene rows already durable in the partial result (a resumed run continues there).
    public var rowsDone: Int?
    /// The domain's `LoadedDomain.modelDigest` at submission: the job runs and resumes only on that
    /// model (nil in records written before digests were recorded: the model at the first run is adopted).
    public var modelDigest: String?
    /// Fleet mode: the result's name under the job's blob prefix (`result-g<generation>.tif`: each lease
    /// generation writes its own, so a replica that lost its lease can never replace the finished one);
    /// nil: `result.tif` in the jobs directory.
    public var resultFile: String?
    /// Fleet mode: the committed row bands of the partial result, in order, as blob objects (a replica
    /// taking the job over rebuilds its spool from them). Only bands whose upload completed are listed.
    public var spoolBands: [SpoolBand]?
    /// Fleet mode: the replica running the job (status documents name it; nil on a single replica).
    public var replica: String?
    /// A scene by reference: bytes fetched by the current run so far (nil for uploads).
    public var bytesFetched: Int64?

    /// One committed row band of a fleet job's partial result: the blob holding the tile bytes that
    /// took the spool from `start` to `end` bytes, with the spool's state at `rows` durable rows.
    public struct SpoolBand: Codable, Sendable, Equatable {
        public var key: String
        public var rows: Int
        public var start: Int64
        public var end: Int64
    }

    enum CodingKeys: String, CodingKey {
        case jobID, status, progress, created, started, finished, updated, message
        case windowsDone = "windows_done", windowsTotal = "windows_total", etaSeconds = "eta_seconds"
        case domain, options, inputFormat = "input_format", inputBytes = "input_bytes"
        case width, height, bands, ownerKeyHash = "owner_key_hash"
        case resultBytes = "result_bytes", resultETag = "result_etag", attempts, statistics, rowsDone = "rows_done"
        case modelDigest = "model_digest", resultFile = "result_file", spoolBands = "spool_bands", replica
        case bytesFetched = "bytes_fetched"
    }

    public init(jobID: String, domain: String, options: JobOptions, inputFormat: JobInputFormat, inputBytes: Int64,
                width: Int, height: Int, bands: Int, windowsTotal: Int, ownerKeyHash: String?, now: Date = Date()) {
        self.jobID = jobID
        status = .accepted
        progress = 0
        created = now
        updated = now
        message = "accepted; waiting for a job slot"
        windowsDone = 0
        self.windowsTotal = windowsTotal
        self.domain = domain
        self.options = options
        self.inputFormat = inputFormat
        self.inputBytes = inputBytes
        self.width = width
        self.height = height
        self.bands = bands
        self.ownerKeyHash = ownerKeyHash
        attempts = 0
    }

    /// Job ids are lowercase UUIDs; anything else is refused before touching the file system.
    public static func isValidID(_ id: String) -> Bool {
        guard id.utf8.count == 36, let u = UUID(uuidString: id) else { return false }
        return u.uuidString.lowercased() == id
    }

    public static func newID() -> String { UUID().uuidString.lowercased() }

    /// JSON as stored on disk: RFC 3339 dates, sorted keys.
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(JobRecord.timestamp(date))
        }
        return e
    }()

    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let s = try decoder.singleValueContainer().decode(String.self)
            guard let date = JobRecord.parseTimestamp(s) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an RFC 3339 date: \(s)"))
            }
            return date
        }
        return d
    }()

    /// RFC 3339 UTC with milliseconds (`2026-12-01T17:03:04.123Z`).
    public static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    static func parseTimestamp(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)
    }
}
