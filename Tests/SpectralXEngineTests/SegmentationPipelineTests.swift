import Foundation
import SpectralXEngine
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// The scene pipeline on the small synthetic domain `syn` (C=4, K=3): nodata, skipped windows,
/// resume, cancellation, and tiled vs whole-tile agreement. Scenes are a few windows each
/// (a forward is ~2 s per window on the CI machine).
@Suite(.serialized) struct SegmentationPipelineTests {
    static let engine: InferenceEngine = {
        let store = ModelStore(root: SharedTestStore.root)
        _ = try! store.load("syn")
        return InferenceEngine(store: store, scheduler: SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(1)))
    }()

    static func scene(width w: Int, height h: Int, nodata: (x: Range<Int>, y: Range<Int>)? = nil) throws -> Raster {
        var v = [UInt16](repeating: 0, count: 4 * w * h)
        for b in 0..<4 { for y in 0..<h { for x in 0..<w {
            let inBlock = nodata.map { $0.x.contains(x) && $0.y.contains(y) } ?? false
            v[(b * h + y) * w + x] = inBlock ? 0 : UInt16(1000 + 300 * sin(Double(x + 7 * b) * 0.05) + 200 * cos(Double(y) * 0.03))
        } } }
        var geo = GeoReference()
        geo.nodata = "0"
        return try Raster(width: w, height: h, bands: 4, values: v, geo: geo)
    }

    /// Nodata pixels (all bands = GDAL_NODATA) are 255 and no other pixel is; a window that is all
    /// nodata is never computed; the statistics ignore the fill value.
    @Test func nodataIsMaskedAndEmptyWindowsAreSkipped() throws {
        let domain = try Self.engine.store.lease("syn").domain
        // 300×250: windows at x 0, 76 and y 0, 26; the block covers the whole window (0, 0) region.
        let r = try Self.scene(width: 300, height: 250, nodata: (0..<230, 0..<240))
        let p = try SegmentationPipeline(engine: Self.engine, domain: domain, source: r,
                                         options: SegmentationOptions(mode: .tile, overlap: 32))
        let stats = try p.statistics()
        #expect(stats.validPixels == 300 * 250 - 230 * 240)
        #expect(stats.minimum.allSatisfy { $0 > 100 }, "the nodata fill took part in the statistics: \(stats.minimum)")
        let sink = MemorySink(width: 300, height: 250, classes: 3, scores: false)
        var seen: [SceneProgress] = []
        let report = try p.run(into: sink, statistics: stats) { seen.append($0) }
        #expect(report.windows == 4)
        #expect(report.windowsComputed == 3)
        #expect(seen.last?.windowsDone == 4 && seen.last?.windowsSkipped == 1 && seen.last?.rowsDone == 250)
        #expect(seen.last?.windowsComputed == 3, "the skipped window is not counted as computed")
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.windowsDone <= $1.windowsDone })
        for y in 0..<250 { for x in 0..<300 {
            let nodata = x < 230 && y < 240
            #expect((sink.labels[y * 300 + x] == 255) == nodata)
            if !nodata { #expect(sink.labels[y * 300 + x] < 3) }
        } }
        #expect(report.invalidPixels == 230 * 240)
        // An output nodata value that is a class index is refused.
        #expect(throws: EngineError.self) {
            try SegmentationPipeline(engine: Self.engine, domain: domain, source: r, options: SegmentationOptions(outputNodata: 2))
        }
    }

    /// Resuming from a row gives exactly the rows of an uninterrupted run; a cancelled token stops
    /// before any window is scheduled.
    @Test func resumeAndCancel() throws {
        let domain = try Self.engine.store.lease("syn").domain
        let r = try Self.scene(width: 224, height: 420)   // one column of windows at y 0, 192, 196
        let p = try SegmentationPipeline(engine: Self.engine, domain: domain, source: r,
                                         options: SegmentationOptions(mode: .tile, overlap: 32))
        let stats = try p.statistics()
        let full = MemorySink(width: 224, height: 420, classes: 3, scores: false)
        _ = try p.run(into: full, statistics: stats)
        let resumed = MemorySink(width: 224, height: 420, classes: 3, scores: false)
        var resumedProgress: [SceneProgress] = []
        let report = try p.run(into: resumed, statistics: stats, resumeFromRow: 400) { resumedProgress.append($0) }
        #expect(report.windowsComputed == 2)   // windows at 192 and 196 reach row 400
        #expect(resumedProgress.map(\.windowsComputed).last == 2 && resumedProgress.first?.windowsDone == 2,
                "the resumed run reports the skipped row as done but not as computed: \(resumedProgress)")
        #expect(Array(resumed.labels[(400 * 224)...]) == Array(full.labels[(400 * 224)...]))

        let token = CancellationToken()
        token.cancel()
        #expect(throws: EngineError.cancelled) { try p.run(into: MemorySink(width: 224, height: 420, classes: 3, scores: false),
                                                              statistics: stats, cancel: token) }
    }

    /// `spectralx predict --mode tile` resume, through the engine call the CLI makes: a resumable
    /// run stopped after its first 512-row tile row is durable (cancelled here; a killed process
    /// leaves the same spool behind) continues from that row — computing only the windows that
    /// reach it — and writes a file byte-identical to an uninterrupted run's; the spool and its
    /// `resume.json` are gone afterwards. A checkpoint of another identity (e.g. a changed input) does not match.
    @Test func resumedSceneFileIsByteIdentical() throws {
        let domain = try Self.engine.store.lease("syn").domain
        // 224×800: one column of windows at y 0, 192, 384, 576.
        let r = try Self.scene(width: 224, height: 800)
        let options = SegmentationOptions(mode: .tile, overlap: 32)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let whole = dir.appendingPathComponent("whole.tif").path, resumed = dir.appendingPathComponent("resumed.tif").path
        let segmenter = Self.engine.segmenter
        _ = try segmenter.segment(domain, source: r, options: options, output: .file(path: whole, format: .geotiff))
        let identity = ResumeIdentity(input: "scene v1")

        // Interrupted: cancelled once three window rows are done; the fourth row's emit first makes
        // rows 0..<512 durable, then the cancellation stops it.
        let token = CancellationToken()
        #expect(throws: EngineError.cancelled) {
            try segmenter.segment(domain, source: r, options: options, output: .resumableFile(path: resumed, identity: identity),
                                  cancel: token) { e in if case .progress(let p) = e, p.windowsDone >= 3 { token.cancel() } }
        }
        #expect(!FileManager.default.fileExists(atPath: resumed))
        #expect(FileManager.default.fileExists(atPath: SceneCheckpoint.path(forOutput: resumed)))
        let resumedCopy = dir.appendingPathComponent("copy.tif").path
        try FileManager.default.createDirectory(atPath: COGWriter.spoolDirectory(for: resumedCopy), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: SceneCheckpoint.path(forOutput: resumed), toPath: SceneCheckpoint.path(forOutput: resumedCopy))

        let report = try segmenter.segment(domain, source: r, options: options, output: .resumableFile(path: resumed, identity: identity))
        #expect(report.resumedFromRow == 512)
        #expect(report.windowsComputed == 2)   // the windows at 384 and 576 reach row 512
        #expect(try Data(contentsOf: URL(fileURLWithPath: resumed)) == Data(contentsOf: URL(fileURLWithPath: whole)))
        #expect(!FileManager.default.fileExists(atPath: COGWriter.spoolDirectory(for: resumed)))

        // The checkpoint names the run: the caller's input plus the model digest and options the
        // segmenter adds; a different identity (another input, model or option) does not match it.
        let data = try Data(contentsOf: URL(fileURLWithPath: SceneCheckpoint.path(forOutput: resumedCopy)))
        let saved = try JSONDecoder().decode(SceneCheckpoint.self, from: data)
        #expect(saved.identity.hasPrefix("input scene v1\n") && saved.identity.contains("overlap=32")
                && saved.identity.contains("model=\(domain.modelDigest)"))
        #expect(SceneCheckpoint.load(forOutput: resumedCopy, identity: saved.identity) == saved)
        #expect(SceneCheckpoint.load(forOutput: resumedCopy, identity: saved.identity.replacingOccurrences(of: "scene v1", with: "scene v2")) == nil)
    }

    /// 448×448 where both modes apply: the share of equal labels between the blended windows and the
    /// one-forward resize pipeline (reported; they are different pipelines, so no bound is asserted
    /// beyond "mostly the same classes").
    @Test func tiledVersusWholeTileAgreement() throws {
        let domain = try Self.engine.store.lease("syn").domain
        let r = try Self.scene(width: 448, height: 448)
        let tiled = try Self.engine.segmenter.segment(domain, source: r, options: SegmentationOptions(mode: .tile, overlap: 32))
        let whole = try Self.engine.segmenter.segment(domain, source: r, options: SegmentationOptions(mode: .resize))
        let a = try #require(tiled.labels), b = try #require(whole.labels)
        let same = zip(a, b).filter { $0 == $1 }.count
        let pct = 100 * Double(same) / Double(a.count)
        print(String(format: "448×448 tiled (9 windows, overlap 32) vs whole-tile resize: %.2f %% of labels agree", pct))
        #expect(tiled.windows == 9)
        #expect(pct > 50)
    }
}
