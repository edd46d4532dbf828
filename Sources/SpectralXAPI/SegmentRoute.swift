import Foundation
import Logging
import SpectralXEngine
import SpectralXHTTP
import SpectralXRaster
import SpectralXSupport

/// The accepted request bodies of the segment route.
enum UploadKind: Equatable {
    case tiff, npy, multipart

    init?(contentType: String) {
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch media {
        case "image/tiff", "image/geotiff", "image/tiff-fx": self = .tiff
        case "application/x-npy", "application/npy": self = .npy
        case "multipart/form-data": self = .multipart
        default: return nil
        }
    }

    /// Kind of a multipart file part: its Content-Type, else its file name, else its magic bytes
    /// (the raster layer's one format detector).
    static func sniff(contentType: String?, filename: String?, bytes: Data) -> UploadKind? {
        if let contentType, let k = UploadKind(contentType: contentType), k != .multipart { return k }
        let name = filename?.lowercased() ?? ""
        if name.hasSuffix(".tif") || name.hasSuffix(".tiff") { return .tiff }
        if name.hasSuffix(".npy") { return .npy }
        switch RasterFormat.detect(bytes) {
        case .tiff: return .tiff
        case .npy: return .npy
        case .unknown: return nil
        }
    }
}

/// One `POST /v1/domains/{name}/segment`: decode the upload, run the engine, encode the answer.
struct SegmentRoute {
    let service: SpectralXService
    let domain: String
    let request: HTTPRequest
    let logger: Logger
    /// Set by the server when the client closes or resets its connection; cancels the work.
    var clientGone: HTTPClientGoneSignal? = nil

    func respond() throws -> HTTPResponse {
        do { return try compute() } catch EngineError.cancelled where clientGone?.isGone == true {
            ServiceMetrics.requestsAbandoned.increment()
            logger.info("client gone: request dropped", metadata: ["domain": "\(domain)"])
            throw EngineError.cancelled
        }
    }

    private func compute() throws -> HTTPResponse {
        let clock = ContinuousClock()
        let t0 = clock.now
        let lease = try service.engine.store.lease(domain)
        defer { lease.release() }
        let (source, kind) = try decode(lease.domain)
        let decodeSeconds = t0.duration(to: clock.now).inSeconds
        let q = request.target
        let output = try parseOutput(q.queryValue("output"), default: kind == .npy ? .npy : .geotiff)
        let options = try parseOptions()
        let scoresEncoding = try parseScoresEncoding(q.queryValue("scores_dtype"))
        // Cancelled when the client goes away (wired by the server); checked before each batch of windows.
        let cancel = CancellationToken()
        clientGone?.onGone { cancel.cancel() }

        // Answers are built in memory (no spool file, no fsync); only a GeoTIFF too large for that
        // streams through a temporary COG spool and is sent from the mapped file.
        let segmenter = service.engine.segmenter
        var response: HTTPResponse
        let result: SegmentationResult
        let t1: ContinuousClock.Instant
        if output == .json {
            result = try segmenter.segment(lease.domain, source: source, options: options, output: .memory(), cancel: cancel)
            t1 = clock.now
            response = summary(result, options: options)
        } else {
            let body: Data
            if output == .geotiff && Self.answerBytes(source, classes: lease.domain.classes, options: options,
                                                      scoresEncoding: scoresEncoding) > Self.maxMemoryAnswerBytes {
                let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-answer-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: tmp) }
                result = try segmenter.segment(lease.domain, source: source, options: options,
                                               output: .file(path: tmp, format: .geotiff, scoresEncoding: scoresEncoding), cancel: cancel)
                body = try Data(contentsOf: URL(fileURLWithPath: tmp), options: .alwaysMapped)
            } else {
                result = try segmenter.segment(lease.domain, source: source, options: options,
                                               output: .memory(format: output, scoresEncoding: scoresEncoding), cancel: cancel)
                body = result.encoded ?? Data()
            }
            t1 = clock.now
            let type = switch output {
            case .geotiff: "image/tiff; application=geotiff; profile=cloud-optimized"
            case .npy: "application/x-npy"
            default: "image/png"
            }
            response = HTTPResponse(status: .ok, contentType: type, body: body)
        }
        let encodeSeconds = t1.duration(to: clock.now).inSeconds

        var timing = [("decode", decodeSeconds)] + result.timings + [("encode", encodeSeconds)]
        timing.append(("total", t0.duration(to: clock.now).inSeconds))
        response.headers.replaceOrAdd(name: "Server-Timing",
                                      value: timing.map { String(format: "%@;dur=%.1f", $0.0, $0.1 * 1000) }.joined(separator: ", "))
        response.headers.replaceOrAdd(name: "X-SpectralX-Batch-Size", value: String(result.batchSizes.max() ?? 1))
        response.headers.replaceOrAdd(name: "X-SpectralX-Windows", value: String(result.windows))
        response.headers.replaceOrAdd(name: "X-SpectralX-Domain", value: domain)
        response.headers.replaceOrAdd(name: "X-SpectralX-Mode", value: options.mode.rawValue)
        logger.info("segmented", metadata: [
            "domain": "\(domain)", "width": "\(source.width)", "height": "\(source.height)", "mode": "\(options.mode.rawValue)",
            "output": "\(output.rawValue)", "batch": "\(result.batchSizes.max() ?? 1)", "windows": "\(result.windows)",
            "windows_computed": "\(result.windowsComputed)",
        ])
        return response
    }

    // MARK: - input

    /// The upload as a windowed raster source: a spooled body is read from its file (TIFF blocks
    /// decoded on demand, NPY memory-mapped); several `tile` parts of a multipart body are stacked
    /// as bands, in order.
    private func decode(_ domain: LoadedDomain) throws -> (any RasterSource, UploadKind) {
        let type = request.headers["Content-Type"] ?? ""
        if ReferenceInputs.isJSON(type) {
            // A scene by reference, as a job takes it; read in place window by window.
            let (_, source) = try ReferenceInputs.resolve(body: try ReferenceInputs.body(request), domain: domain,
                                                          configuration: service.configuration)
            return (source, .tiff)
        }
        guard let kind = UploadKind(contentType: type) else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "Content-Type '\(type)' is not accepted")
        }
        guard !request.body.isEmpty else { throw APIError(.badRequest, "empty_body", "the request has no body; send the tile") }
        let limits = service.configuration.rasterLimits
        switch kind {
        case .tiff, .npy:
            let source: any RasterSource
            if let url = request.body.fileURL {
                source = kind == .tiff ? try TIFFScene(path: url.path, limits: limits) : try NpyScene(path: url.path, limits: limits)
            } else {
                let data = try request.body.readData()
                source = kind == .tiff ? try TIFFScene(data: data, limits: limits) : try NpyScene(data: data, limits: limits)
            }
            return (source, kind)
        case .multipart:
            let all = try MultipartFormData.parse(request.body, contentType: type)
            let parts = all.filter { $0.name == "tile" }
            guard !parts.isEmpty else {
                let names = all.compactMap(\.name)
                let listed = names.prefix(8).joined(separator: ", ") + (names.count > 8 ? ", … (\(names.count) parts)" : "")
                throw APIError(.badRequest, .missingTilePart, "multipart body has no part named 'tile' (parts: \(listed))")
            }
            var sources: [any RasterSource] = []
            var names: [String] = []
            var kinds: [UploadKind] = []
            for (i, part) in parts.enumerated() {
                guard let inner = UploadKind.sniff(contentType: part.contentType, filename: part.filename, bytes: part.body) else {
                    throw APIError(.unsupportedMediaType, "unsupported_media_type",
                                   "'tile' part \(i + 1) is neither a TIFF nor a NumPy file")
                }
                sources.append(inner == .tiff ? try TIFFScene(data: part.body, limits: limits) : try NpyScene(data: part.body, limits: limits))
                names.append(part.filename ?? "tile part \(i + 1)")
                kinds.append(inner)
            }
            if sources.count == 1 { return (sources[0], kinds[0]) }
            do {
                return (try StackedRasterSource(sources, names: names), kinds[0])
            } catch let e as RasterError {
                throw APIError(.unprocessableContent, "incompatible_stack", e.description)
            }
        }
    }

    func parseScoresEncoding(_ v: String?) throws -> ScoresEncoding {
        guard let v else { return .float32 }
        guard let e = ScoresEncoding(rawValue: v.lowercased()) else {
            throw APIError(.badRequest, "invalid_parameter", "scores_dtype must be float32 or uint8; got '\(v)'")
        }
        return e
    }

    private func parseOutput(_ v: String?, default d: OutputFormat) throws -> OutputFormat {
        guard let v else { return d }
        guard let f = OutputFormat(rawValue: v.lowercased()) else {
            throw APIError(.badRequest, "invalid_parameter", "output must be one of geotiff, npy, png, json; got '\(v)'")
        }
        return f
    }

    private func parseBool(_ name: String, _ v: String?, default d: Bool) throws -> Bool {
        guard let v else { return d }
        switch v.lowercased() {
        case "true", "1", "yes", "": return true
        case "false", "0", "no": return false
        default: throw APIError(.badRequest, "invalid_parameter", "\(name) must be true or false; got '\(v)'")
        }
    }

    func parseOptions() throws -> SegmentationOptions {
        let q = request.target
        var o = SegmentationOptions()
        o.scores = try parseBool("scores", q.queryValue("scores"), default: false)
        if let m = q.queryValue("mode") {
            guard let mode = InferenceMode(rawValue: m.lowercased()) else {
                throw APIError(.badRequest, "invalid_parameter", "mode must be resize or tile; got '\(m)'")
            }
            o.mode = mode
        }
        if let v = q.queryValue("overlap") {
            guard let n = Int(v), (0..<224).contains(n) else {
                throw APIError(.badRequest, "invalid_parameter", "overlap must be an integer between 0 and 223; got '\(v)'")
            }
            o.overlap = n
        }
        o.maskNodata = try parseBool("nodata_mask", q.queryValue("nodata_mask"), default: true)
        if let v = q.queryValue("nodata_rule") {
            guard let r = NodataRule(rawValue: v.lowercased()) else {
                throw APIError(.badRequest, "invalid_parameter", "nodata_rule must be all or any; got '\(v)'")
            }
            o.nodataRule = r
        }
        if let v = q.queryValue("output_nodata") {
            guard let n = UInt8(v) else {
                throw APIError(.badRequest, "invalid_parameter", "output_nodata must be an integer between 0 and 255; got '\(v)'")
            }
            o.outputNodata = n
        }
        if let v = q.queryValue("timeout") {
            guard let s = Double(v), s > 0, s <= 3600 else {
                throw APIError(.badRequest, "invalid_parameter", "timeout must be seconds in (0, 3600]; got '\(v)'")
            }
            o.timeout = .milliseconds(Int64(s * 1000))
        }
        return o
    }

    // MARK: - output

    /// Uncompressed size of a GeoTIFF answer: above `maxMemoryAnswerBytes` it is spooled to a file.
    static func answerBytes(_ source: any RasterSource, classes: Int, options: SegmentationOptions,
                            scoresEncoding: ScoresEncoding) -> Int {
        let perPixel = options.scores ? classes * (scoresEncoding == .float32 ? 4 : 1) : 1
        return source.width * source.height * perPixel
    }

    /// 256 MiB of samples: what one answer may hold in memory (compressed, it is usually far less).
    static let maxMemoryAnswerBytes = 256 << 20

    private func summary(_ r: SegmentationResult, options: SegmentationOptions) -> HTTPResponse {
        let names = service.engine.store.domain(domain)?.config.classNames ?? []
        let hist = r.histogram
        let total = max(1, r.width * r.height)
        let summary = SegmentSummary(
            domain: domain, width: r.width, height: r.height, mode: options.mode.rawValue,
            windows: r.windows, batchSizes: r.batchSizes,
            classes: hist.enumerated().map { i, n in
                SegmentSummary.ClassCount(index: i, name: i < names.count ? names[i] : "class_\(i)", pixels: n,
                                          fraction: Double(n) / Double(total))
            },
            timingsMs: Dictionary(uniqueKeysWithValues: r.timings.map { ($0.name, ($0.seconds * 1e4).rounded() / 10) }))
        return .json(JSON.encode(summary))
    }
}

/// `output=json`: class histogram and timings.
struct SegmentSummary: Codable {
    struct ClassCount: Codable { var index: Int; var name: String; var pixels: Int; var fraction: Double }
    var domain: String
    var width: Int
    var height: Int
    var mode: String
    var windows: Int
    var batchSizes: [Int]
    var classes: [ClassCount]
    var timingsMs: [String: Double]

    enum CodingKeys: String, CodingKey {
        case domain, width, height, mode, windows, classes
        case batchSizes = "batch_sizes", timingsMs = "timings_ms"
    }
}
