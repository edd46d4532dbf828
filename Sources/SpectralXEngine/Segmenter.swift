import Foundation
import SpectralXRaster
import SpectralXTensor

/// Where a segmentation goes.
public enum SegmentationOutput: Sendable {
    /// Kept in memory and returned in the result: the label plane (and scores), encoded as `format`
    /// when one is given (a GeoTIFF is built as an in-memory COG). No file, no fsync: the API's answers.
    case memory(format: OutputFormat? = nil, scoresEncoding: ScoresEncoding = .float32)
    /// Written to `path` atomically: a GeoTIFF streams through a COG spool beside it (not synced per
    /// row, redone if interrupted); NumPy and PNG are encoded in memory and written at once.
    case file(path: String, format: OutputFormat, scoresEncoding: ScoresEncoding = .float32)
    /// A Cloud-Optimized GeoTIFF at `path` that survives being killed or cancelled: its spool is
    /// durable after every tile row, and a later call with an equal `ResumeIdentity` key continues
    /// at the first tile row not yet durable (tile mode; a resize-mode run is one window and starts over).
    case resumableFile(path: String, scoresEncoding: ScoresEncoding = .float32, identity: ResumeIdentity)
}

/// What a resumed output must share with the run that started it: the input as the caller names it
/// (file paths and versions, a job id), and — added by `Segmenter` — the domain's model digest, the
/// options, the encoding and the scene's size. One rule for scene jobs and `spectralx predict`.
public struct ResumeIdentity: Sendable, Equatable {
    public var input: String
    public init(input: String) { self.input = input }

    /// The full identity `SceneCheckpoint` compares.
    /// `precision` enters only when it is not fp32, so spools written before precisions existed still resume.
    func key(domain: LoadedDomain, source: any RasterSource, options o: SegmentationOptions, scoresEncoding: ScoresEncoding,
             precision: Precision) -> String {
        (["input " + input, "model=\(domain.modelDigest)", "domain=\(domain.name)", "classes=\(domain.classes)",
         "scene=\(source.width)x\(source.height)x\(source.bands)", "sample=\(source.sampleType)", "mode=\(o.mode.rawValue)",
         "overlap=\(o.overlap)", "scores=\(o.scores)", "scoresEncoding=\(scoresEncoding.rawValue)", "maskNodata=\(o.maskNodata)",
         "nodataRule=\(o.nodataRule.rawValue)", "outputNodata=\(o.outputNodata)", "blend=mmseg-slide-mean"]
         + (precision == .fp32 ? [] : ["precision=\(precision.rawValue)"])).joined(separator: "\n")
    }
}

/// What a running segmentation reports.
public enum SegmentationEvent: Sendable {
    /// The normalisation statistics, computed by this run (a job records them).
    case statistics(BandStatistics)
    /// Windows done (computed or skipped as all-nodata) of the total, scene rows handed to the output.
    case progress(SceneProgress)
}

/// The one segmentation use-case — statistics → `SegmentationPipeline` → sink → answer — behind
/// `POST …/segment`, scene jobs and `spectralx predict`, which only adapt their inputs and outputs
/// to it. It runs on the engine's `BatchScheduling`, so it works the same on the network and on a
/// test's fake runner.
public struct Segmenter: Sendable {
    public let engine: InferenceEngine

    public init(engine: InferenceEngine) { self.engine = engine }

    /// Checks `source` against the domain and the engine's limits without reading pixels.
    public func check(_ domain: LoadedDomain, source: any RasterSource, options: SegmentationOptions) throws {
        _ = try SegmentationPipeline(engine: engine, domain: domain, source: source, options: options)
    }

    /// Model windows a scene of this size needs with these options.
    public static func windowCount(width: Int, height: Int, options: SegmentationOptions) -> Int {
        options.mode == .tile ? WindowPlan(width: width, height: height, overlap: options.overlap).total : 1
    }

    /// Segments `source` into `output`. A cancelled resumable run keeps its spool for the next call;
    /// any other failure leaves no output behind.
    public func segment(_ domain: LoadedDomain, source: any RasterSource, options: SegmentationOptions,
                        output: SegmentationOutput = .memory(), cancel: CancellationToken? = nil,
                        events: ((SegmentationEvent) -> Void)? = nil) throws -> SegmentationResult {
        let progress: ((SceneProgress) -> Void)? = events.map { e in { e(.progress($0)) } }
        switch output {
        case let .memory(format, encoding):
            return try inMemory(domain, source: source, options: options, format: format, scoresEncoding: encoding,
                                cancel: cancel, progress: progress)
        case let .file(path, .geotiff, encoding):
            return try toCOG(domain, source: source, options: options, path: path, scoresEncoding: encoding, identity: nil,
                             cancel: cancel, events: events)
        case let .file(path, format, encoding):
            var r = try inMemory(domain, source: source, options: options, format: format, scoresEncoding: encoding,
                                 cancel: cancel, progress: progress)
            try writeAtomically(r.encoded ?? Data(), to: path)
            (r.labels, r.scores, r.encoded) = (nil, nil, nil)
            return r
        case let .resumableFile(path, encoding, identity):
            return try toCOG(domain, source: source, options: options, path: path, scoresEncoding: encoding, identity: identity,
                             cancel: cancel, events: events)
        }
    }

    /// Everything in memory (bounded by `InferenceLimits`); encoded when `format` is given.
    private func inMemory(_ domain: LoadedDomain, source: any RasterSource, options: SegmentationOptions, format: OutputFormat?,
                          scoresEncoding: ScoresEncoding, cancel: CancellationToken?,
                          progress: ((SceneProgress) -> Void)?) throws -> SegmentationResult {
        var o = options
        if format == .png { o.scores = false }  // a preview of the labels
        switch format {
        case .json?: throw EngineError.invalidArgument("json summaries are made by the API from a result in memory")
        case .geotiff?:
            // Streamed into an in-memory COG: compressed tiles, one tile row of samples at a time.
            let pipeline = try SegmentationPipeline(engine: engine, domain: domain, source: source, options: o)
            let sink = try COGSink(path: "(memory)", domain: domain, width: source.width, height: source.height, geo: source.geo,
                                   options: o, scoresEncoding: scoresEncoding, spool: .memory)
            var r = try pipeline.run(into: sink, cancel: cancel, progress: progress)
            r.encoded = try sink.finishData()
            return r
        case .npy?, .png?, nil:
            let pipeline = try SegmentationPipeline(engine: engine, domain: domain, source: source, options: o)
            try engine.validateInMemoryOutput(width: source.width, height: source.height, for: domain, scores: o.scores)
            let sink = MemorySink(width: source.width, height: source.height, classes: domain.classes, scores: o.scores)
            var r = try pipeline.run(into: sink, cancel: cancel, progress: progress)
            r.labels = sink.labels
            r.scores = sink.scores
            switch format {
            case .npy?:
                r.encoded = Data(try sink.scores.map { try NpyWriter.encode($0, shape: [domain.classes, source.height, source.width]) }
                                 ?? NpyWriter.encode(sink.labels, shape: [source.height, source.width]))
            case .png?:
                var pal = classColors(of: domain)
                pal += [(UInt8, UInt8, UInt8)](repeating: (0, 0, 0), count: max(0, Int(o.outputNodata) + 1 - pal.count))
                r.encoded = Data(PNGEncoder.encodeIndexed(sink.labels, width: source.width, height: source.height, palette: pal))
            default: break
            }
            return r
        }
    }

    /// A COG at `path`, streamed through `COGSink`; resumable when `identity` is given (tile mode).
    private func toCOG(_ domain: LoadedDomain, source: any RasterSource, options: SegmentationOptions, path: String,
                       scoresEncoding: ScoresEncoding, identity: ResumeIdentity?, cancel: CancellationToken?,
                       events: ((SegmentationEvent) -> Void)?) throws -> SegmentationResult {
        let pipeline = try SegmentationPipeline(engine: engine, domain: domain, source: source, options: options)
        let key = options.mode == .tile
            ? identity.map { $0.key(domain: domain, source: source, options: options, scoresEncoding: scoresEncoding,
                                    precision: options.precision) } : nil
        let saved = key.flatMap { SceneCheckpoint.load(forOutput: path, identity: $0) }
        let sink = try COGSink(path: path, domain: domain, width: source.width, height: source.height, geo: source.geo,
                               options: options, scoresEncoding: scoresEncoding, spool: identity != nil ? .resumable : .temporary,
                               resume: saved != nil)
        do {
            var statistics: BandStatistics? = nil
            var resumeRow = 0
            if let key {
                let stats: BandStatistics
                if let s = saved?.statistics { stats = s } else {
                    stats = try pipeline.statistics(cancel: cancel)
                    events?(.statistics(stats))
                }
                // (Re)written after the sink made its spool (a spool it could not reopen was replaced).
                try SceneCheckpoint(identity: key, statistics: stats).save(forOutput: path)
                statistics = stats
                resumeRow = saved != nil ? sink.resumeRow : 0
            }
            let result = try pipeline.run(into: sink, statistics: statistics, resumeFromRow: resumeRow, cancel: cancel,
                                          progress: events.map { e in { e(.progress($0)) } })
            try cancel?.check()
            try sink.finish()
            return result
        } catch {
            let e = error as? EngineError
            let cancelled = e == .cancelled || e == .shuttingDown || cancel?.isCancelled == true
            if !(identity != nil && cancelled) { sink.abort() }
            throw error
        }
    }
}
