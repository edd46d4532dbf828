import Foundation
import SpectralXModel
import SpectralXRaster

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

/// What a finished (or resumed) run did.
public struct SegmentationReport: Sendable {
    public var width: Int, height: Int, classes: Int
    public var windows: Int
    public var windowsComputed: Int
    public var batchSizes: [Int]
    /// Pixels per class (invalid pixels not counted).
    public var histogram: [Int]
    public var invalidPixels: Int
    public var statistics: BandStatistics
    /// Wall times: statistics, preprocess, queue, inference, postprocess (seconds).
    public var timings: [(name: String, seconds: Double)]

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
/// valid pixel, runs the rest through the shared scheduler in groups of `maxBatchSize`, blends
/// overlapping logits with a linear ramp and hands finished rows to the sink. Memory: one band of
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

    /// Validity of each pixel of a decoded window (1 valid, 0 invalid): nodata rule over the bands'
    /// nodata values and NaN, then the source's mask.
    func validity(_ r: Raster, mask: [UInt8]?) -> [UInt8] {
        let n = r.pixelsPerBand
        let nodata = source.bandNodata
        let useNodata = options.maskNodata
        let canBeNaN = r.sampleType.format == .float
        var valid = [UInt8](repeating: 1, count: n)
        if useNodata && (canBeNaN || nodata.contains { $0 != nil }) {
            // count of nodata bands per pixel
            var hits = [UInt16](repeating: 0, count: n)
            for b in 0..<r.bands {
                let nd = nodata[b]
                if nd == nil && !canBeNaN { continue }
                let v = r.bandFloat64(b)
                for i in 0..<n where v[i].isNaN || (nd != nil && v[i] == nd!) { hits[i] &+= 1 }
            }
            let need = options.nodataRule == .all ? r.bands : 1
            for i in 0..<n where Int(hits[i]) >= need { valid[i] = 0 }
        } else if canBeNaN {
            // NaN samples never take part in the statistics even with the nodata mask off.
            for b in 0..<r.bands {
                let v = r.bandFloat64(b)
                for i in 0..<n where v[i].isNaN { valid[i] = 0 }
            }
        }
        if let mask { for i in 0..<n where mask[i] == 0 { valid[i] = 0 } }
        return valid
    }

    /// Per-band min/max over valid pixels of `r` merged into `s`.
    private func accumulateStatistics(_ r: Raster, valid: [UInt8], into s: inout BandStatistics) {
        let n = r.pixelsPerBand
        var count = 0
        for i in 0..<n where valid[i] != 0 { count += 1 }
        s.validPixels += count
        guard count > 0 else { return }
        for b in 0..<r.bands {
            let v = r.bandFloat64(b)
            var m = s.minimum[b], M = s.maximum[b]
            for i in 0..<n where valid[i] != 0 {
                let x = v[i]
                if x.isNaN { continue }
                if x < m { m = x }
                if x > M { M = x }
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
        let rows = max(256, min(1024, (source as? TIFFScene)?.info.blockHeight ?? 256))
        var y = 0
        while y < source.height {
            try cancel?.check()
            let w = PixelWindow(x: 0, y: y, width: source.width, height: min(rows, source.height - y))
            let r = try source.read(w)
            accumulateStatistics(r, valid: validity(r, mask: try source.readMask(w)), into: &s)
            y += rows
        }
        return s
    }

    /// Normalised float32 bands (C × pixels) of `r` with the scene statistics; invalid samples → 0.
    private func normalized(_ r: Raster, valid: [UInt8], stats: BandStatistics) -> [Float] {
        let n = r.pixelsPerBand
        var out = [Float](repeating: 0, count: n * r.bands)
        let anyInvalid = valid.contains(0)
        out.withUnsafeMutableBufferPointer { dst in
            for b in 0..<r.bands {
                let v = r.bandFloat64(b)
                let o = dst.baseAddress! + b * n
                v.withUnsafeBufferPointer { Preprocessing.normalize($0, min: stats.minimum[b], max: stats.maximum[b], into: o) }
                if anyInvalid { for i in 0..<n where valid[i] == 0 { o[i] = 0 } }
            }
        }
        return out
    }

    // MARK: running

    /// Runs the segmentation into `sink`. See the type's documentation for resuming and cancelling.
    public func run(into sink: any SegmentationSink, statistics given: BandStatistics? = nil, resumeFromRow: Int = 0,
                    cancel: CancellationToken? = nil, progress: ((SceneProgress) -> Void)? = nil) throws -> SegmentationReport {
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
                            progress: ((SceneProgress) -> Void)?) throws -> SegmentationReport {
        let clock = ContinuousClock()
        let t0 = clock.now
        let W = source.width, H = source.height, K = domain.classes, S = WindowPlan.size
        let whole = PixelWindow(x: 0, y: 0, width: W, height: H)
        let raster = try source.read(whole)
        let valid = validity(raster, mask: try source.readMask(whole))
        var stats = emptyStatistics()
        if let given { stats = given } else { accumulateStatistics(raster, valid: valid, into: &stats) }
        var histogram = [Int](repeating: 0, count: K), invalid = 0
        var report = SegmentationReport(width: W, height: H, classes: K, windows: 1, windowsComputed: 0, batchSizes: [],
                                        histogram: histogram, invalidPixels: 0, statistics: stats, timings: [])
        if stats.validPixels == 0 {
            try sink.consume(rows: 0..<H, labels: [UInt8](repeating: nodataLabel, count: W * H),
                             scores: options.scores ? [Float](repeating: .nan, count: K * W * H) : nil)
            report.invalidPixels = W * H
            progress?(SceneProgress(windowsDone: 1, windowsTotal: 1, windowsSkipped: 1, rowsDone: H, height: H))
            return report
        }
        let norm = normalized(raster, valid: valid, stats: stats)
        var input: [Float] = []
        input.reserveCapacity(raster.bands * S * S)
        for b in 0..<raster.bands {
            input += try Preprocessing.resizeAntialiased(Array(norm[(b * W * H)..<((b + 1) * W * H)]), channels: 1, inHeight: H,
                                                         inWidth: W, outHeight: S, outWidth: S)
        }
        let t1 = clock.now
        try cancel?.check()
        let out = try engine.scheduler.submit(model: domain, inputs: [input], timeout: options.timeout, cancel: cancel,
                                              priority: options.priority)[0]
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
        report.timings = [("preprocess", InferenceEngine.seconds(t0.duration(to: t1))), ("queue", out.queueSeconds),
                          ("inference", out.runSeconds), ("postprocess", InferenceEngine.seconds(t2.duration(to: clock.now)))]
        return report
    }

    private func runTiled(into sink: any SegmentationSink, statistics given: BandStatistics?, resumeFromRow: Int,
                          cancel: CancellationToken?, progress: ((SceneProgress) -> Void)?) throws -> SegmentationReport {
        let clock = ContinuousClock()
        let t0 = clock.now
        let W = source.width, H = source.height, C = source.bands, K = domain.classes, S = WindowPlan.size
        let stats = try given ?? statistics(cancel: cancel)
        let statSeconds = InferenceEngine.seconds(t0.duration(to: clock.now))
        let xs = plan.xs, ys = plan.ys
        let ramp = Self.ramp(overlap: options.overlap)
        let firstRow = plan.firstWindowRow(producing: resumeFromRow)
        var state = SceneProgress(windowsDone: firstRow * xs.count, windowsTotal: plan.total, windowsSkipped: 0,
                                  rowsDone: min(resumeFromRow, H), height: H)
        var histogram = [Int](repeating: 0, count: K), invalid = 0
        var batchSizes: [Int] = []
        var computed = 0
        var preprocess = 0.0, queueSeconds = 0.0, runSeconds = 0.0, postprocess = 0.0
        // Accumulators for scene rows [accTop, accTop + S): logits (K, S, W), weights and validity (S, W).
        var acc = [Float](repeating: 0, count: K * S * W)
        var weight = [Float](repeating: 0, count: S * W)
        var valid = [UInt8](repeating: 0, count: S * W)
        var accTop = firstRow < ys.count ? ys[firstRow] : H
        let group = max(1, engine.scheduler.configuration.maxBatchSize)
        var admitted = false

        func emit(_ rows: Range<Int>) throws {
            // Rows before the resume row were delivered by the interrupted run.
            let first = max(rows.lowerBound, resumeFromRow)
            guard first < rows.upperBound else { return }
            let rows = first..<rows.upperBound
            let tp = clock.now
            let n = rows.count * W
            var plane = [Float](repeating: 0, count: K * n)
            for k in 0..<K {
                for (j, y) in rows.enumerated() {
                    let r = y - accTop
                    for x in 0..<W {
                        let wsum = weight[r * W + x]
                        plane[k * n + j * W + x] = wsum > 0 ? acc[(k * S + r) * W + x] / wsum : 0
                    }
                }
            }
            let r0 = (rows.lowerBound - accTop) * W
            let (labels, scores) = try valid.withUnsafeBufferPointer {
                try finish(&plane, n: n, valid: UnsafeBufferPointer(rebasing: $0[r0..<(r0 + n)]), histogram: &histogram, invalid: &invalid)
            }
            try sink.consume(rows: rows, labels: labels, scores: scores)
            state.rowsDone = rows.upperBound
            postprocess += InferenceEngine.seconds(tp.duration(to: clock.now))
        }

        for ri in firstRow..<ys.count {
            let y0 = ys[ri]
            if y0 > accTop {
                try emit(accTop..<y0)
                shift(by: y0 - accTop, W: W, K: K, acc: &acc, weight: &weight, valid: &valid)
                accTop = y0
            }
            let tr = clock.now
            let bandH = min(S, H - y0)
            let bandWindow = PixelWindow(x: 0, y: y0, width: W, height: bandH)
            let band = try source.read(bandWindow)
            let bandValid = validity(band, mask: try source.readMask(bandWindow))
            valid.replaceSubrange(0..<(bandH * W), with: bandValid)
            let scene = stats.validPixels > 0 ? normalized(band, valid: bandValid, stats: stats) : []
            // Windows with at least one valid pixel; the others are never computed.
            let todo = xs.filter { x0 in
                let cols = min(S, W - x0)
                for r in 0..<bandH { for i in 0..<cols where bandValid[r * W + x0 + i] != 0 { return true } }
                return false
            }
            let skipped = xs.count - todo.count
            state.windowsSkipped += skipped
            state.windowsDone += skipped
            preprocess += InferenceEngine.seconds(tr.duration(to: clock.now))
            var start = 0
            while start < todo.count {
                try cancel?.check()
                let chunk = Array(todo[start..<min(todo.count, start + group)])
                let tw = clock.now
                let inputs = chunk.map { window(scene, x0: $0, rows: bandH, C: C, W: W) }
                preprocess += InferenceEngine.seconds(tw.duration(to: clock.now))
                // The first group is admitted like any request (may be refused when the queue is
                // full); later groups of an admitted scene wait for room instead.
                let outs = try engine.scheduler.submit(model: domain, inputs: inputs, timeout: options.timeout,
                                                       waitForRoom: admitted, cancel: cancel, priority: options.priority)
                admitted = true
                let tp = clock.now
                for (i, x0) in chunk.enumerated() {
                    batchSizes.append(outs[i].batchSize)
                    queueSeconds = max(queueSeconds, outs[i].queueSeconds)
                    accumulate(outs[i].value, x0: x0, rows: bandH, ramp: ramp, W: W, K: K, acc: &acc, weight: &weight)
                }
                runSeconds += outs.first?.runSeconds ?? 0
                postprocess += InferenceEngine.seconds(tp.duration(to: clock.now))
                computed += chunk.count
                state.windowsDone += chunk.count
                state.windowsComputed = computed
                start += group
                progress?(state)
            }
            if todo.isEmpty { progress?(state) }
        }
        try emit(accTop..<H)
        state.rowsDone = H
        progress?(state)
        return SegmentationReport(width: W, height: H, classes: K, windows: plan.total, windowsComputed: computed,
                                  batchSizes: batchSizes, histogram: histogram, invalidPixels: invalid, statistics: stats,
                                  timings: [("statistics", statSeconds), ("preprocess", preprocess), ("queue", queueSeconds),
                                            ("inference", runSeconds), ("postprocess", postprocess)])
    }

    /// Blend weight of a window position along one axis: 1 in the middle, falling linearly over
    /// `overlap` pixels at each edge; never 0, so edge pixels covered by one window keep their value.
    static func ramp(overlap: Int) -> [Float] {
        let size = WindowPlan.size
        return (0..<size).map { i in
            let d = Float(min(i, size - 1 - i) + 1)
            return overlap == 0 ? 1 : min(1, d / Float(overlap + 1))
        }
    }

    /// One (C, 224, 224) window of the normalised band of rows (C, rows, W); positions past the
    /// scene edge replicate the last row/column.
    private func window(_ scene: [Float], x0: Int, rows: Int, C: Int, W: Int) -> [Float] {
        let S = WindowPlan.size
        var w = [Float](repeating: 0, count: C * S * S)
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
        return w
    }

    private func accumulate(_ logits: [Float], x0: Int, rows: Int, ramp: [Float], W: Int, K: Int,
                            acc: inout [Float], weight: inout [Float]) {
        let S = WindowPlan.size
        let cols = min(S, W - x0)
        logits.withUnsafeBufferPointer { lg in
            acc.withUnsafeMutableBufferPointer { a in
                weight.withUnsafeMutableBufferPointer { wt in
                    for r in 0..<rows {
                        let wy = ramp[r]
                        let wrow = wt.baseAddress! + r * W + x0
                        for i in 0..<cols { wrow[i] += wy * ramp[i] }
                        for k in 0..<K {
                            let src = lg.baseAddress! + (k * S + r) * S
                            let dst = a.baseAddress! + (k * S + r) * W + x0
                            for i in 0..<cols { dst[i] += wy * ramp[i] * src[i] }
                        }
                    }
                }
            }
        }
    }

    /// Moves accumulator rows [d, S) to [0, S − d) and clears the rest.
    private func shift(by d: Int, W: Int, K: Int, acc: inout [Float], weight: inout [Float], valid: inout [UInt8]) {
        let S = WindowPlan.size
        guard d > 0 else { return }
        let keep = max(0, S - d)
        for k in 0..<K {
            let base = k * S * W
            if keep > 0 { for i in 0..<(keep * W) { acc[base + i] = acc[base + d * W + i] } }
            for i in (keep * W)..<(S * W) { acc[base + i] = 0 }
        }
        if keep > 0 {
            for i in 0..<(keep * W) { weight[i] = weight[d * W + i]; valid[i] = valid[d * W + i] }
        }
        for i in (keep * W)..<(S * W) { weight[i] = 0; valid[i] = 0 }
    }
}
