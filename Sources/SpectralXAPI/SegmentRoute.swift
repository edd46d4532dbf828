import Foundation
import Logging
import SpectralXEngine
import SpectralXHTTP
import SpectralXRaster

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

    /// Kind of a multipart file part: its Content-Type, else its file name, else its magic bytes.
    static func sniff(contentType: String?, filename: String?, bytes: Data) -> UploadKind? {
        if let contentType, let k = UploadKind(contentType: contentType), k != .multipart { return k }
        let name = filename?.lowercased() ?? ""
        if name.hasSuffix(".tif") || name.hasSuffix(".tiff") { return .tiff }
        if name.hasSuffix(".npy") { return .npy }
        let head = [UInt8](bytes.prefix(6))
        if head.starts(with: [0x49, 0x49]) || head.starts(with: [0x4D, 0x4D]) { return .tiff }
        if head.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) { return .npy }
        return nil
    }
}

/// Output formats of the segment route (`output=`).
enum OutputFormat: String, CaseIterable {
    case geotiff, npy, png, json
}

/// One `POST /v1/domains/{name}/segment`: decode the upload, run the engine, encode the answer.
struct SegmentRoute {
    let service: SpectralXService
    let domain: String
    let request: HTTPRequest
    let logger: Logger

    func respond() throws -> HTTPResponse {
        let clock = ContinuousClock()
        let t0 = clock.now
        let lease = try service.engine.store.lease(domain)
        defer { lease.release() }
        let (raster, kind) = try decode()
        let decodeSeconds = InferenceEngine.seconds(t0.duration(to: clock.now))
        let q = request.target
        let output = try parseOutput(q.queryValue("output"), default: kind == .npy ? .npy : .geotiff)
        let options = try parseOptions()
        let maskNodata = try parseBool("nodata_mask", q.queryValue("nodata_mask"), default: true)

        var result = try service.engine.segment(lease.domain, raster: raster, options: options)
        if maskNodata, var labels = result.labels, let nd = raster.geo.nodataValue {
            NodataMask.apply(nodata: nd, raster: raster, labels: &labels)
            result.labels = labels
        }
        let t1 = clock.now
        var response = try encode(result, raster: raster, output: output, options: options)
        let encodeSeconds = InferenceEngine.seconds(t1.duration(to: clock.now))

        var timing = [("decode", decodeSeconds)] + result.timings + [("encode", encodeSeconds)]
        timing.append(("total", InferenceEngine.seconds(t0.duration(to: clock.now))))
        response.headers.replaceOrAdd(name: "Server-Timing",
                                      value: timing.map { String(format: "%@;dur=%.1f", $0.0, $0.1 * 1000) }.joined(separator: ", "))
        response.headers.replaceOrAdd(name: "X-SpectralX-Batch-Size", value: String(result.batchSizes.max() ?? 1))
        response.headers.replaceOrAdd(name: "X-SpectralX-Windows", value: String(result.windows))
        response.headers.replaceOrAdd(name: "X-SpectralX-Domain", value: domain)
        response.headers.replaceOrAdd(name: "X-SpectralX-Mode", value: options.mode.rawValue)
        logger.info("segmented", metadata: [
            "domain": "\(domain)", "width": "\(raster.width)", "height": "\(raster.height)", "mode": "\(options.mode.rawValue)",
            "output": "\(output.rawValue)", "batch": "\(result.batchSizes.max() ?? 1)", "windows": "\(result.windows)",
        ])
        return response
    }

    // MARK: - input

    private func decode() throws -> (Raster, UploadKind) {
        let type = request.headers["Content-Type"] ?? ""
        guard let kind = UploadKind(contentType: type) else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "Content-Type '\(type)' is not accepted")
        }
        guard !request.body.isEmpty else { throw APIError(.badRequest, "empty_body", "the request has no body; send the tile") }
        let limits = service.configuration.rasterLimits
        switch kind {
        case .tiff:
            if let url = request.body.fileURL { return (try TIFFReader(path: url.path, limits: limits).read(), .tiff) }
            return (try TIFFReader(data: try request.body.readData(), limits: limits).read(), .tiff)
        case .npy:
            let data = try request.body.readData()
            let npy = try data.withUnsafeBytes { try NpyArray.decode($0, limits: limits) }
            return (try RasterInput.raster(from: npy), .npy)
        case .multipart:
            let parts = try MultipartFormData.parse(request.body, contentType: type)
            guard let part = parts.first(where: { $0.name == "tile" }) else {
                throw APIError(.badRequest, "missing_tile_part",
                               "multipart body has no part named 'tile' (parts: \(parts.compactMap(\.name)))")
            }
            guard let inner = UploadKind.sniff(contentType: part.contentType, filename: part.filename, bytes: part.body) else {
                throw APIError(.unsupportedMediaType, "unsupported_media_type",
                               "the 'tile' part is neither a TIFF nor a NumPy file")
            }
            if inner == .tiff { return (try TIFFReader(data: part.body, limits: limits).read(), .tiff) }
            let npy = try part.body.withUnsafeBytes { try NpyArray.decode($0, limits: limits) }
            return (try RasterInput.raster(from: npy), .npy)
        }
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
        if let v = q.queryValue("timeout") {
            guard let s = Double(v), s > 0, s <= 3600 else {
                throw APIError(.badRequest, "invalid_parameter", "timeout must be seconds in (0, 3600]; got '\(v)'")
            }
            o.timeout = .milliseconds(Int64(s * 1000))
        }
        return o
    }

    // MARK: - output

    private func encode(_ r: SegmentationResult, raster: Raster, output: OutputFormat, options: SegmentationOptions) throws -> HTTPResponse {
        switch output {
        case .geotiff:
            let bytes: [UInt8]
            if let scores = r.scores {
                let out = try Raster(width: r.width, height: r.height, bands: r.classes, values: scores, geo: raster.geo)
                bytes = try GeoTIFFWriter.encode(out, options: .scores)
            } else {
                let out = try Raster(width: r.width, height: r.height, bands: 1, values: r.labels ?? [], geo: raster.geo)
                bytes = try GeoTIFFWriter.encode(out, options: .labels)
            }
            return HTTPResponse(status: .ok, contentType: "image/tiff; application=geotiff", body: Data(bytes))
        case .npy:
            let bytes = if let scores = r.scores {
                try NpyWriter.encode(scores, shape: [r.classes, r.height, r.width])
            } else {
                try NpyWriter.encode(r.labels ?? [], shape: [r.height, r.width])
            }
            return HTTPResponse(status: .ok, contentType: "application/x-npy", body: Data(bytes))
        case .png:
            let labels = try r.labels ?? Preprocessing.argmax(r.scores ?? [], classes: r.classes, pixels: r.width * r.height)
            let png = PNGEncoder.encodeIndexed(labels, width: r.width, height: r.height,
                                               palette: ClassPalette.colors(count: max(r.classes, 1)))
            return HTTPResponse(status: .ok, contentType: "image/png", body: png)
        case .json:
            let names = service.engine.store.domain(domain)?.config.classNames ?? []
            let hist = r.classHistogram()
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

/// Nodata handling: when the input declares GDAL_NODATA and the value fits a uint8 label, pixels
/// whose every band equals it are labelled with that value, so the carried-over nodata tag masks
/// exactly the pixels that had no data (`nodata_mask=false` turns this off).
enum NodataMask {
    static func apply(nodata: Double, raster: Raster, labels: inout [UInt8]) {
        guard nodata.isFinite, nodata >= 0, nodata <= 255, nodata == nodata.rounded() else { return }
        let per = raster.pixelsPerBand
        guard labels.count == per else { return }
        var isNodata = [Bool](repeating: true, count: per)
        for b in 0..<raster.bands {
            let band = raster.bandFloat64(b)
            for i in 0..<per where isNodata[i] && band[i] != nodata { isNodata[i] = false }
        }
        let v = UInt8(nodata)
        for i in 0..<per where isNodata[i] { labels[i] = v }
    }
}
