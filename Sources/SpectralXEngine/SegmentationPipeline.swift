import Foundation
import SpectralXModel
import SpectralXRaster
import SpectralXSupport

/// Which pixels are invalid (service.md §2.1). A band sample is nodata when it equals the band's
/// declared nodata value (GDAL_NODATA) or is NaN; a pixel masked by the file's internal mask is
/// always invalid.
public enum NodataRule: String, Sendable, CaseIterable, Codable {
    /// Invalid when every band is nodata (GDAL's convention for a per-dataset nodata value).
    case all
    /// Invalid when any band is nodata.
    case any
}

/// Per-band minimum and maximum over the valid pixels of a scene: the normalisation statistics.
/// Codable so that a job can record them and resume without the first pass.
public struct BandStatistics: Sendable, Codable, Equatable {
    public var minimum: [Double]
    public var maximum: [Double]
    /// Pixels that take part (valid in the sense of `NodataRule`); 0 means the scene is all nodata.
    public var validPixels: Int

    public init(minimum: [Double], maximum: [Double], validPixels: Int) {
        self.minimum = minimum; self.maximum = maximum; self.validPixels = validPixels
    }
}

/// Where the model windows of a scene go: origins along each axis (stride 224 − overlap, the last
/// window flush with the edge). Window row `r` covers scene rows `ys[r] ..< ys[r] + 224`.
public struct WindowPlan: Sendable, Equatable {
    public let width: Int, height: Int
    public let xs: [Int], ys: [Int]
    public var windowsPerRow: Int { xs.count }
    public var rowsOfWindows: Int { ys.count }
    public var total: Int { xs.count * ys.count }
    public static let size = ModelShape.imageSize

    public init(width: Int, height: Int, overlap: Int) {
        self.width = width; self.height = height
        xs = Self.origins(length: width, overlap: overlap)
        ys = Self.origins(length: height, overlap: overlap)
    }

    /// Window origins along one axis.
    public static func origins(length: Int, overlap: Int) -> [Int] {
        guard length > size else { return [0] }
        let stride = size - overlap
        var xs = Array(Swift.stride(from: 0, to: length - size, by: stride))
        xs.append(length - size)
        return xs
    }

    /// The first window row needed to produce scene rows `row...` (every window row that reaches
    /// that row or below), i.e. where a resumed run starts.
    public func firstWindowRow(producing row: Int) -> Int {
        ys.firstIndex { $0 + Self.size > row } ?? ys.count
    }
}

/// How far a scene has got: windows scheduled or skipped (fully invalid) of the total, and the
/// scene rows already handed to the sink (a job records `rowsDone` to resume from there).
public struct SceneProgress: Sendable, Equatable {
    public var windowsDone: Int
    public var windowsTotal: Int
    /// Windows skipped because every pixel in them is invalid (counted in `windowsDone`).
    public var windowsSkipped: Int
    public var rowsDone: Int
    public var height: Int
    /// Windows this run sent through the model (a resumed run does not count the rows it skipped,
    /// nor all-invalid windows): what `spectralx_job_windows_total` adds up.
    public var windowsComputed: Int = 0
    /// Bytes fetched so far for a scene read by reference (set by the jobs executor; nil otherwise).
    public var bytesFetched: Int? = nil
    public var fraction: Double { windowsTotal == 0 ? 1 : Double(windowsDone) / Double(windowsTotal) }
}

/// The consumer of a segmentation, fed scene rows in order, top to bottom, each call a complete
/// band of rows: `labels` (rows.count × width, the output nodata value on invalid pixels) and, when
/// the options ask for scores, `scores` (classes × rows.count × width softmax probabilities,
/// band-sequential, NaN on invalid pixels). `COGLabelSink` streams them into a Cloud-Optimized
/// GeoTIFF; `MemorySink` keeps them.
public protocol SegmentationSink: AnyObject {
    func consume(rows: Range<Int>, labels: [UInt8], scores: [Float]?) throws
}

/// Collects the whole output in memory (tiles, previews, NumPy answers; bounded by the engine's limits).
public final class MemorySink: SegmentationSink {
    public let width: Int, height: Int, classes: Int
    public private(set) var labels: [UInt8]
    public private(set) var scores: [Float]?

    public init(width: Int, height: Int, classes: Int, scores: Bool) {
        self.width = width; self.height = height; self.classes = classes
        labels = [UInt8](repeating: 0, count: width * height)
        self.scores = scores ? [Float](repeating: .nan, count: classes * width * height) : nil
    }

    public func consume(rows: Range<Int>, labels l: [UInt8], scores s: [Float]?) throws {
        let n = rows.count * width
        labels.replaceSubrange((rows.lowerBound * width)..<(rows.upperBound * width), with: l)
        if let s, scores != nil {
            for k in 0..<classes {
                let dst = k * width * height + rows.lowerBound * width
                scores!.replaceSubrange(dst..<(dst + n), with: s[(k * n)..<((k + 1) * n)])
            }
        }
    }
}

/// What a segmentation did and, for an answer kept in memory, the answer: the one result of the
/// pipeline and of `Segmenter` (the API, scene jobs and `spectralx predict` all read it).
public struct SegmentationResult: Sendable {
    public var width: Int, height: Int, classes: Int
    /// 224² model inputs the scene needs (1 in resize mode).
    public var windows: Int
    /// Windows this run sent through the model (not those a resume skipped, nor all-invalid ones).
    public var windowsComputed: Int
    /// Size of the batch each computed window ran in.
    public var batchSizes: [Int]
    /// Pixels per class (invalid pixels not counted).
    public var histogram: [Int]
    public var invalidPixels: Int
    public var statistics: BandStatistics
    /// Wall times: statistics, preprocess, queue, inference, postprocess (seconds).
    public var timings: [(name: String, seconds: Double)]
    /// The first row this run produced (`resumeFromRow`): 0 unless it continued an interrupted run.
    public var resumedFromRow: Int = 0
    /// `SegmentationOutput.memory`: the label plane (height × width, the output nodata value on invalid pixels)…
    public var labels: [UInt8]?
    /// …the class probabilities (classes × height × width) when the options ask for scores…
    public var scores: [Float]?
    /// …and the encoded file when a format was asked for.
    public var encoded: Data?

    public init(width: Int, height: Int, classes: Int, windows: Int, windowsComputed: Int, batchSizes: [Int], histogram: [Int],
                invalidPixels: Int, statistics: BandStatistics, timings: [(name: String, seconds: Double)]) {
        self.width = width; self.height = height; self.classes = classes; self.windows = windows
        self.windowsComputed = windowsComputed; self.batchSizes = batchSizes; self.histogram = histogram
        self.invalidPixels = invalidPixels; self.statistics = statistics; self.timings = timings
    }
}

/// The one segmentation pipeline (service.md §2, §2.1), used by `POST …/segment`, `spectralx
/// predict` and scene jobs: read → validity mask → normalise → resize (`mode=resize`, the
/// upstream pipeline) or 224² windows (`mode=tile`) → blend → argmax/softmax → nodata → sink.
///
/// **Scene mode** makes two streaming passes over the source: `statistics()` reads it in row
/// bands for the per-band min and max over valid pixels; `run` then reads one band of window rows
/// at a time, normalises it with those statistics (invalid samples become 0), cuts 224² windows
/// (stride 224 − overlap; scenes smaller than a window replicate their edge), skips windows with no
/// valid pixel, runs the rest through the shared scheduler in groups of `maxBatchSize`, averages
/// overlapping logits (`WindowBlend`: mmseg's `slide_inference`, the same window grid and the sum of
/// the windows' logits divided by how many cover the pixel) and hands finished rows to the sink. Memory: one band of
/// window rows (C × 224 × W samples, native and float32) plus the K × 224 × W accumulators,
/// whatever the scene height; the sink decides what it keeps.
///
/// **Resize mode** (one tile up to `InferenceLimits.maxResizePixels`) is the upstream pipeline;
/// with no invalid pixel it is bit-identical to it (same statistics, same float64 formula).
///
/// **Jobs**: `run` takes a `CancellationToken` (checked before each group of windows, and by the
/// scheduler when it forms a batch), reports `SceneProgress` after each group, and resumes with
/// `resumeFromRow`: only window rows reaching that row are computed again, and only rows from it
/// on are handed to the sink, so a sink that persisted rows `0 ..< r` (see `COGLabelSink`)
/// continues exactly where it stopped, with output identical to an uninterrupted run. Pass the
/// recorded `BandStatistics` to skip the first pass.
public final class SegmentationPipeline: Sendable {
    public let engine: InferenceEngine
    public let domain: LoadedDomain
    public let source: any RasterSource
    public let options: SegmentationOptions
    public let plan: WindowPlan

    /// Checks the source against the domain and the engine's limits (nothing is read yet).
    public init(engine: InferenceEngine, domain: LoadedDomain, source: any RasterSource, options: SegmentationOptions) throws {
        try engine.validate(width: source.width, height: source.height, bands: source.bands, for: domain, options: options)
        self.engine = engine; self.domain = domain; self.source = source; self.options = options
        plan = options.mode == .tile ? WindowPlan(width: source.width, height: source.height, overlap: options.overlap)
            : WindowPlan(width: min(source.width, WindowPlan.size), height: min(source.height, WindowPlan.size), overlap: 0)
    }

    // MARK: validity and statistics

    /// Working buffers of a pass over a scene, reused from one row band to the next so that a scene
    /// costs the same few allocations whatever its height: decoded samples, one float64 band, the
    /// nodata counts, validity, the normalised band and the window inputs.
    struct Scratch {
        var native: [UInt8] = []
        var band: [Double] = []
        var hits: [UInt16] = []
        var valid: [UInt8] = []
        var normalized: [Float] = []
        var windows: [[Float]] = []

        /// `a` with exactly `n` elements (reallocated only when the size changes), every one `value`.
        static func fill<T>(_ a: inout [T], _ n: Int, _ value: T) {
            if a.count != n { a = [T](repeating: value, count: n) } else { a.withUnsafeMutableBufferPointer { $0.update(repeating: value) } }
        }
        /// `band` converted from band `b` of `r`.
        mutating func load(_ r: Raster, band b: Int) {
            if band.count < r.pixelsPerBand { band = [Double](repeating: 0, count: r.pixelsPerBand) }
            band.withUnsafeMutableBufferPointer { r.bandFloat64(b, into: $0) }
        }
    }

    /// Validity of each pixel of a decoded window (1 valid, 0 invalid): nodata rule over the bands'
    /// nodata values and NaN, then the source's mask.
    func validity(_ r: Raster, mask: [UInt8]?) -> [UInt8] {
        var scratch = Scratch()
        validity(r, mask: mask, scratch: &scratch)
        return scratch.valid
    }

    /// The same into `scratch.valid`.
    func validity(_ r: Raster, mask: [UInt8]?, scratch: inout Scratch) {
        let n = r.pixelsPerBand
        let nodata = source.bandNodata
        let useNodata = options.maskNodata
        let canBeNaN = r.sampleType.format == .float
        Scratch.fill(&scratch.valid, n, 1)
        if useNodata && (canBeNaN || nodata.contains { $0 != nil }) {
            // count of nodata bands per pixel
            Scratch.fill(&scratch.hits, n, 0)
            for b in 0..<r.bands {
                let nd = nodata[b]
                if nd == nil && !canBeNaN { continue }
                scratch.load(r, band: b)
                scratch.band.withUnsafeBufferPointer { v in
                    scratch.hits.withUnsafeMutableBufferPointer { hits in
                        for i in 0..<n where v[i].isNaN || (nd != nil && v[i] == nd!) { hits[i] &+= 1 }
                    }
                }
            }
            let need = options.nodataRule == .all ? r.bands : 1
            scratch.hits.withUnsafeBufferPointer { hits in
                scratch.valid.withUnsafeMutableBufferPointer { valid in for i in 0..<n where Int(hits[i]) >= need { valid[i] = 0 } }
            }
        } else if canBeNaN {
            // NaN samples never take part in the statistics even with the nodata mask off.
            for b in 0..<r.bands {
                scratch.load(r, band: b)
                scratch.band.withUnsafeBufferPointer { v in
                    scratch.valid.withUnsafeMutableBufferPointer { valid in for i in 0..<n where v[i].isNaN { valid[i] = 0 } }
                }
            }
        }
        if let mask {
            scratch.valid.withUnsafeMutableBufferPointer { valid in for i in 0..<n where mask[i] == 0 { valid[i] = 0 } }
        }
    }

    /// Per-band min/max over the valid pixels (`scratch.valid`) of `r` merged into `s`.
    private func accumulateStatistics(_ r: Raster, scratch: inout Scratch, into s: inout BandStatistics) {
        let n = r.pixelsPerBand
        var count = 0
        scratch.valid.withUnsafeBufferPointer { valid in for i in 0..<n where valid[i] != 0 { count += 1 } }
        s.validPixels += count
        guard count > 0 else { return }
        for b in 0..<r.bands {
            scratch.load(r, band: b)
            var m = s.minimum[b], M = s.maximum[b]
            scratch.band.withUnsafeBufferPointer { v in
                scratch.valid.withUnsafeBufferPointer { valid in
                    for i in 0..<n where valid[i] != 0 {
                        let x = v[i]
                        if x.isNaN { continue }
                        if x < m { m = x }
                        if x > M { M = x }
                    }
                }
            }
            s.minimum[b] = m; s.maximum[b] = M
        }
    }

    private func emptyStatistics() -> BandStatistics {
        BandStatistics(minimum: [Double](repeating: .infinity, count: source.bands),
                       maximum: [Double](repeating: -.infinity, count: source.bands), validPixels: 0)
    }

    /// First pass: per-band min/max over the scene's valid pixels, read in row bands.
    public func statistics(cancel: CancellationToken? = nil) throws -> BandStatistics {
        var s = emptyStatistics()
        var scratch = Scratch()
        let rows = max(256, min(1024, (source as? TIFFScene)?.info.blockHeight ?? 256))
        var y = 0
        while y < source.height {
            try cancel?.check()
            let w = PixelWindow(x: 0, y: y, width: source.width, height: min(rows, source.height - y))
            let r = try source.read(w, reusing: &scratch.native)
            validity(r, mask: try source.readMask(w), scratch: &scratch)
            accumulateStatistics(r, scratch: &scratch, into: &s)
            y += rows
        }
        return s
    }

    /// Normalised float32 bands (C × pixels) of `r` with the scene statistics into
    /// `scratch.normalized`; invalid samples (`scratch.valid` 0) → 0.
    private func normalize(_ r: Raster, stats: BandStatistics, scratch: inout Scratch) {
        let n = r.pixelsPerBand
        Scratch.fill(&scratch.normalized, n * r.bands, 0)
        let anyInvalid = scratch.valid.prefix(n).contains(0)
        for b in 0..<r.bands {
            scratch.load(r, band: b)
            scratch.band.withUnsafeBufferPointer { v in
                scratch.normalized.withUnsafeMutableBufferPointer { dst in
                    let o = dst.baseAddress! + b * n
                    Preprocessing.normalize(UnsafeBufferPointer(rebasing: v[0..<n]), min: stats.minimum[b], max: stats.maximum[b], into: o)
                    if anyInvalid { scratch.valid.withUnsafeBufferPointer { valid in for i in 0..<n where valid[i] == 0 { o[i] = 0 } } }
                }
            }
        }
    }

    // MARK: running

    /// Runs the segmentation into `sink`. See the type's documentation for resuming and cancelling.
    public func run(into sink: any SegmentationSink, statistics given: BandStatistics? = nil, resumeFromRow: Int = 0,
                    cancel: CancellationToken? = nil, progress: ((SceneProgress) -> Void)? = nil) throws -> SegmentationResult {
        switch options.mode {
        case .resize: return try runResized(into: sink, statistics: given, cancel: cancel, progress: progress)
        case .tile: return try runTiled(into: sink, statistics: given, resumeFromRow: resumeFromRow, cancel: cancel, progress: progress)
        }
    }

    private var nodataLabel: UInt8 { options.outputNodata }

    /// Labels and (optionally) scores of blended logits `plane` (K × n), invalid pixels → nodata.
    private func finish(_ plane: inout [Float], n: Int, valid: UnsafeBufferPointer<UInt8>, histogram: inout [Int],
                        invalid: inout Int) throws -> ([UInt8], [Float]?) {
        let K = domain.classes
        var labels = try Preprocessing.argmax(plane, classes: K, pixels: n)
        var scores: [Float]? = nil
        if options.scores {
            ClassScores.softmax(&plane, classes: K, pixels: n)
            scores = plane
        }
        for i in 0..<n {
            if valid[i] == 0 {
                labels[i] = nodataLabel
                invalid += 1
                if scores != nil { for k in 0..<K { scores![k * n + i] = .nan } }
            } else {
                histogram[Int(labels[i])] += 1
            }
        }
        return (labels, scores)
    }

    private func runResized(into sink: any SegmentationSink, statistics given: BandStatistics?, cancel: CancellationToken?,
                            progress: ((SceneProgress) -> Void)?) throws -> SegmentationResult {
        let clock = ContinuousClock()
        let t0 = clock.now
        let W = source.width, H = source.height, K = domain.classes, S = WindowPlan.size
        let whole = PixelWindow(x: 0, y: 0, width: W, height: H)
        let raster = try source.read(whole)
        var scratch = Scratch()
        validity(raster, mask: try source.readMask(whole), scratch: &scratch)
        let valid = scratch.valid
        var stats = emptyStatistics()
        if let given { stats = given } else { accumulateStatistics(raster, scratch: &scratch, into: &stats) }
        var histogram = [Int](repeating: 0, count: K), invalid = 0
        var report = SegmentationResult(width: W, height: H, classes: K, windows: 1, windowsComputed: 0, batchSizes: [],
                                        histogram: histogram, invalidPixels: 0, statistics: stats, timings: [])
        if stats.validPixels == 0 {
            try sink.consume(rows: 0..<H, labels: [UInt8](repeating: nodataLabel, count: W * H),
                             scores: options.scores ? [Float](repeating: .nan, count: K * W * H) : nil)
            report.invalidPixels = W * H
            progress?(SceneProgress(windowsDone: 1, windowsTotal: 1, windowsSkipped: 1, rowsDone: H, height: H))
            return report
        }
        normalize(raster, stats: stats, scratch: &scratch)
        let norm = scratch.normalized
        var input: [Float] = []
        input.reserveCapacity(raster.bands * S * S)
        for b in 0..<raster.bands {
            input += try Preprocessing.resizeAntialiased(Array(norm[(b * W * H)..<((b + 1) * W * H)]), channels: 1, inHeight: H,
                                                         inWidth: W, outHeight: S, outWidth: S)
        }
        let t1 = clock.now
        try cancel?.check()
        let out = try engine.scheduler.submit(model: DomainRun(domain, precision: options.precision), inputs: [input], timeout: options.timeout, waitForRoom: false,
                                              cancel: cancel, priority: options.priority)[0]
        let t2 = clock.now
        var plane = (H == S && W == S) ? out.value
            : try Preprocessing.resizeBilinear(out.value, channels: K, inHeight: S, inWidth: S, outHeight: H, outWidth: W)
        let (labels, scores) = try valid.withUnsafeBufferPointer {
            try finish(&plane, n: W * H, valid: $0, histogram: &histogram, invalid: &invalid)
        }
        try sink.consume(rows: 0..<H, labels: labels, scores: scores)
        progress?(SceneProgress(windowsDone: 1, windowsTotal: 1, windowsSkipped: 0, rowsDone: H, height: H, windowsComputed: 1))
        report.windowsComputed = 1
        report.batchSizes = [out.batchSize]
        report.histogram = histogram
        report.invalidPixels = invalid
        report.timings = [("preprocess", t0.duration(to: t1).inSeconds), ("queue", out.queueSeconds),
                          ("inference", out.runSeconds), ("postprocess", t2.duration(to: clock.now).inSeconds)]
        return report
    }

    private func runTiled(into sink: any SegmentationSink, statistics given: BandStatistics?, resumeFromRow: Int,
                          cancel: CancellationToken?, progress: ((SceneProgress) -> Void)?) throws -> SegmentationResult {
        let clock = ContinuousClock()
        let t0 = clock.now
        let W = source.width, H = source.height, C = source.bands, K = domain.classes, S = WindowPlan.size
        let stats = try given ?? statistics(cancel: cancel)
        let statSeconds = t0.duration(to: clock.now).inSeconds
        let xs = plan.xs, ys = plan.ys
        let firstRow = plan.firstWindowRow(producing: resumeFromRow)
        var state = SceneProgress(windowsDone: firstRow * xs.count, windowsTotal: plan.total, windowsSkipped: 0,
                                  rowsDone: min(resumeFromRow, H), height: H)
        var histogram = [Int](repeating: 0, count: K), invalid = 0
        var batchSizes: [Int] = []
        var computed = 0
        var preprocess = 0.0, queueSeconds = 0.0, runSeconds = 0.0, postprocess = 0.0
        // Logit sums and window counts of scene rows [blend.top, blend.top + S), and their validity (S, W).
        var blend = WindowBlend(width: W, classes: K, top: firstRow < ys.count ? ys[firstRow] : H)
        var valid = [UInt8](repeating: 0, count: S * W)
        var scratch = Scratch()
        let group = max(1, engine.scheduler.configuration.maxBatchSize)
        var admitted = false

        func emit(_ rows: Range<Int>) throws {
            // Rows before the resume row were delivered by the interrupted run.
            let first = max(rows.lowerBound, resumeFromRow)
            guard first < rows.upperBound else { return }
            let rows = first..<rows.upperBound
            let tp = clock.now
            let n = rows.count * W
            var plane = blend.mean(rows: rows)
            let r0 = (rows.lowerBound - blend.top) * W
            let (labels, scores) = try valid.withUnsafeBufferPointer {
                try finish(&plane, n: n, valid: UnsafeBufferPointer(rebasing: $0[r0..<(r0 + n)]), histogram: &histogram, invalid: &invalid)
            }
            try sink.consume(rows: rows, labels: labels, scores: scores)
            state.rowsDone = rows.upperBound
            postprocess += tp.duration(to: clock.now).inSeconds
        }

        for ri in firstRow..<ys.count {
            let y0 = ys[ri]
            if y0 > blend.top {
                try emit(blend.top..<y0)
                let d = y0 - blend.top, keep = max(0, S - d)
                valid.withUnsafeMutableBufferPointer { v in
                    // overlapping move: copyMemory is memmove
                    if keep > 0 { UnsafeMutableRawPointer(v.baseAddress!).copyMemory(from: v.baseAddress! + d * W, byteCount: keep * W) }
                    (v.baseAddress! + keep * W).update(repeating: 0, count: (S - keep) * W)
                }
                blend.advance(to: y0)
            }
            let tr = clock.now
            let bandH = min(S, H - y0)
            let bandWindow = PixelWindow(x: 0, y: y0, width: W, height: bandH)
            let band = try source.read(bandWindow, reusing: &scratch.native)
            validity(band, mask: try source.readMask(bandWindow), scratch: &scratch)
            valid.replaceSubrange(0..<(bandH * W), with: scratch.valid)
            if stats.validPixels > 0 { normalize(band, stats: stats, scratch: &scratch) }
            // Windows with at least one valid pixel; the others are never computed.
            let todo = xs.filter { x0 in
                let cols = min(S, W - x0)
                for r in 0..<bandH { for i in 0..<cols where scratch.valid[r * W + x0 + i] != 0 { return true } }
                return false
            }
            let skipped = xs.count - todo.count
            state.windowsSkipped += skipped
            state.windowsDone += skipped
            preprocess += tr.duration(to: clock.now).inSeconds
            var start = 0
            while start < todo.count {
                try cancel?.check()
                let chunk = Array(todo[start..<min(todo.count, start + group)])
                let tw = clock.now
                // The window inputs are refilled in place (the scheduler has let go of them by now).
                if scratch.windows.count != chunk.count {
                    scratch.windows = [[Float]](repeating: [Float](repeating: 0, count: C * S * S), count: chunk.count)
                }
                for (j, x0) in chunk.enumerated() { window(scratch.normalized, x0: x0, rows: bandH, C: C, W: W, into: &scratch.windows[j]) }
                preprocess += tw.duration(to: clock.now).inSeconds
                // The first group is admitted like any request (may be refused when the queue is
                // full); later groups of an admitted scene wait for room instead.
                let outs = try engine.scheduler.submit(model: DomainRun(domain, precision: options.precision), inputs: scratch.windows, timeout: options.timeout,
                                                       waitForRoom: admitted, cancel: cancel, priority: options.priority)
                admitted = true
                let tp = clock.now
                for (i, x0) in chunk.enumerated() {
                    batchSizes.append(outs[i].batchSize)
                    queueSeconds = max(queueSeconds, outs[i].queueSeconds)
                    try outs[i].value.withUnsafeBufferPointer { try blend.add($0, x0: x0, y0: y0, rows: bandH) }
                }
                runSeconds += outs.first?.runSeconds ?? 0
                postprocess += tp.duration(to: clock.now).inSeconds
                computed += chunk.count
                state.windowsDone += chunk.count
                state.windowsComputed = computed
                start += group
                progress?(state)
            }
            if todo.isEmpty { progress?(state) }
        }
        try emit(blend.top..<H)
        state.rowsDone = H
        progress?(state)
        var report = SegmentationResult(width: W, height: H, classes: K, windows: plan.total, windowsComputed: computed,
                                        batchSizes: batchSizes, histogram: histogram, invalidPixels: invalid, statistics: stats,
                                        timings: [("statistics", statSeconds), ("preprocess", preprocess), ("queue", queueSeconds),
                                                  ("inference", runSeconds), ("postprocess", postprocess)])
        report.resumedFromRow = min(resumeFromRow, H)
        return report
    }

    /// One (C, 224, 224) window of the normalised band of rows (C, rows, W); positions past the
    /// scene edge replicate the last row/column.
    private func window(_ scene: [Float], x0: Int, rows: Int, C: Int, W: Int, into w: inout [Float]) {
        let S = WindowPlan.size
        precondition(w.count == C * S * S)
        scene.withUnsafeBufferPointer { src in
            w.withUnsafeMutableBufferPointer { dst in
                for c in 0..<C {
                    for r in 0..<S {
                        let srow = src.baseAddress! + (c * rows + min(r, rows - 1)) * W
                        let drow = dst.baseAddress! + (c * S + r) * S
                        if x0 + S <= W {
                            drow.update(from: srow + x0, count: S)
                        } else {
                            for i in 0..<S { drow[i] = srow[min(x0 + i, W - 1)] }
                        }
                    }
                }
            }
        }
    }
}

/// The blend of overlapping windows, as upstream mmseg's `EncoderDecoder.slide_inference` does it:
/// each window's logits are added into a sum plane, a count plane counts the windows covering each
/// pixel, and the blended logits are `sum / count` (float32, windows added in row-major order as
/// upstream). Only the band of scene rows `[top, top + 224)` is held; `advance(to:)` moves it down
/// once the rows above are emitted. Memory: (K + 1) × 224 × width floats, allocated once.
public struct WindowBlend: Sendable {
    public let width: Int, classes: Int
    /// First scene row held.
    public private(set) var top: Int
    private var sum: [Float]
    private var count: [Float]

    public init(width: Int, classes: Int, top: Int = 0) {
        self.width = width; self.classes = classes; self.top = top
        sum = [Float](repeating: 0, count: classes * WindowPlan.size * width)
        count = [Float](repeating: 0, count: WindowPlan.size * width)
    }

    /// Adds the (K, 224, 224) logits of the window at scene column `x0`, row `y0`; only its first
    /// `rows` rows and the columns inside the scene count (a window past the scene edge was padded).
    public mutating func add(_ logits: UnsafeBufferPointer<Float>, x0: Int, y0: Int, rows: Int) throws {
        let S = WindowPlan.size, W = width, K = classes
        guard logits.count == K * S * S, x0 >= 0, x0 < W, rows >= 1, rows <= S, y0 >= top, y0 - top + rows <= S else {
            throw EngineError.invalidArgument("window at (\(x0), \(y0)) of \(rows) rows, \(logits.count) logits, outside the blend band at row \(top)")
        }
        let cols = min(S, W - x0), r0 = y0 - top
        sum.withUnsafeMutableBufferPointer { a in
            count.withUnsafeMutableBufferPointer { c in
                for r in 0..<rows {
                    let crow = c.baseAddress! + (r0 + r) * W + x0
                    for i in 0..<cols { crow[i] += 1 }
                    for k in 0..<K {
                        let src = logits.baseAddress! + (k * S + r) * S
                        let dst = a.baseAddress! + (k * S + r0 + r) * W + x0
                        for i in 0..<cols { dst[i] += src[i] }
                    }
                }
            }
        }
    }

    /// Blended logits (K, rows.count, width) of scene rows `rows` (inside the band); 0 where no window reached.
    public func mean(rows: Range<Int>) -> [Float] {
        let S = WindowPlan.size, W = width, K = classes
        precondition(rows.lowerBound >= top && rows.upperBound <= top + S, "rows \(rows) outside the blend band at \(top)")
        let n = rows.count * W
        return [Float](unsafeUninitializedCapacity: K * n) { out, done in
            sum.withUnsafeBufferPointer { a in
                count.withUnsafeBufferPointer { c in
                    for k in 0..<K {
                        for (j, y) in rows.enumerated() {
                            let r = y - top
                            let s = a.baseAddress! + (k * S + r) * W, cr = c.baseAddress! + r * W
                            let o = out.baseAddress! + k * n + j * W
                            for x in 0..<W { o[x] = cr[x] > 0 ? s[x] / cr[x] : 0 }
                        }
                    }
                }
            }
            done = K * n
        }
    }

    /// Moves the band down so that it starts at scene row `newTop`: rows above it are dropped,
    /// rows below the old band start empty.
    public mutating func advance(to newTop: Int) {
        let S = WindowPlan.size, W = width
        let d = newTop - top
        guard d > 0 else { return }
        let keep = max(0, S - d)
        sum.withUnsafeMutableBufferPointer { a in
            for k in 0..<classes {
                let base = a.baseAddress! + k * S * W
                // overlapping moves: copyMemory is memmove
                if keep > 0 { UnsafeMutableRawPointer(base).copyMemory(from: base + d * W, byteCount: keep * W * MemoryLayout<Float>.stride) }
                (base + keep * W).update(repeating: 0, count: (S - keep) * W)
            }
        }
        count.withUnsafeMutableBufferPointer { c in
            if keep > 0 { UnsafeMutableRawPointer(c.baseAddress!).copyMemory(from: c.baseAddress! + d * W, byteCount: keep * W * MemoryLayout<Float>.stride) }
            (c.baseAddress! + keep * W).update(repeating: 0, count: (S - keep) * W)
        }
        top = newTop
    }
}
