import Foundation
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXRaster
import Testing

/// The one segmentation use-case on the fake runner: every output kind gives the same answer, and a
/// resumable output continues only under the same identity, model digest included.
@Suite("Segmenter on a fake runner", .serialized)
struct SegmenterTests {
    /// 224×800 uint16, 4 bands: one column of windows at y 0, 192, 384, 576 (overlap 32).
    static func scene() throws -> Raster {
        let w = 224, h = 800
        var v = [UInt16](repeating: 0, count: 4 * w * h)
        for b in 0..<4 { for y in 0..<h { for x in 0..<w {
            v[(b * h + y) * w + x] = UInt16(1000 + 300 * sin(Double(x + 5 * b) * 0.04) + 200 * cos(Double(y) * 0.02))
        } } }
        let geo = GeoReference(pixelScale: [10, 10, 0], tiepoints: [0, 0, 0, 500000, 4_000_000, 0],
                               geoKeyDirectory: [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32650])
        return try Raster(width: w, height: h, bands: 4, values: v, geo: geo)
    }

    static func engine(_ root: URL) throws -> InferenceEngine {
        let e = FakeStore.engine(root: root, scheduler: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .zero))
        try e.store.load("syn")
        return e
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("segmenter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func memoryFileAndResumableOutputsAreTheSameFile() throws {
        let engine = try Self.engine(FakeStore.shared)
        defer { engine.scheduler.shutdown() }
        let domain = try #require(engine.store.domain("syn"))
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Self.scene(), options = SegmentationOptions(mode: .tile, overlap: 32), s = engine.segmenter

        let planes = try s.segment(domain, source: r, options: options)
        let memory = try s.segment(domain, source: r, options: options, output: .memory(format: .geotiff))
        let file = dir.appendingPathComponent("file.tif").path, resumable = dir.appendingPathComponent("resumable.tif").path
        _ = try s.segment(domain, source: r, options: options, output: .file(path: file, format: .geotiff))
        _ = try s.segment(domain, source: r, options: options,
                          output: .resumableFile(path: resumable, identity: ResumeIdentity(input: "scene")))
        let cog = try #require(memory.encoded)
        #expect(cog == (try Data(contentsOf: URL(fileURLWithPath: file))))
        #expect(cog == (try Data(contentsOf: URL(fileURLWithPath: resumable))))
        #expect(try TIFFReader(data: cog).read().values(as: UInt8.self) == planes.labels)
        #expect(Set(planes.labels ?? []).count > 1, "the fake's labels vary with the input")
        #expect(memory.windows == 4 && memory.windowsComputed == 4 && planes.histogram.reduce(0, +) == 224 * 800)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(leftovers == ["file.tif", "resumable.tif"], "no spool left behind")

        let npy = dir.appendingPathComponent("labels.npy").path
        _ = try s.segment(domain, source: r, options: options, output: .file(path: npy, format: .npy))
        #expect(try s.segment(domain, source: r, options: options, output: .memory(format: .npy)).encoded
                == (try Data(contentsOf: URL(fileURLWithPath: npy))))
    }

    /// Interrupted after the first tile row is durable: the same identity resumes at row 512 with a
    /// byte-identical file; after a reload with other weights (another model digest) it starts over.
    @Test func aResumeNeedsTheSameModel() throws {
        let root = try FakeStore.make()
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root); try? FileManager.default.removeItem(at: dir) }
        let engine = try Self.engine(root)
        defer { engine.scheduler.shutdown() }
        let r = try Self.scene(), options = SegmentationOptions(mode: .tile, overlap: 32), s = engine.segmenter
        let identity = ResumeIdentity(input: "scene v1")
        let whole = dir.appendingPathComponent("whole.tif").path, out = dir.appendingPathComponent("out.tif").path
        let domain = try #require(engine.store.domain("syn"))
        _ = try s.segment(domain, source: r, options: options, output: .file(path: whole, format: .geotiff))

        func interrupt(_ d: LoadedDomain) {
            let token = CancellationToken()
            #expect(throws: EngineError.cancelled) {
                try s.segment(d, source: r, options: options, output: .resumableFile(path: out, identity: identity), cancel: token) { e in
                    if case .progress(let p) = e, p.windowsDone >= 3 { token.cancel() }
                }
            }
            #expect(FileManager.default.fileExists(atPath: SceneCheckpoint.path(forOutput: out)))
        }
        interrupt(domain)
        let resumed = try s.segment(domain, source: r, options: options, output: .resumableFile(path: out, identity: identity))
        #expect(resumed.resumedFromRow == 512 && resumed.windowsComputed == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(contentsOf: URL(fileURLWithPath: whole)))

        interrupt(domain)
        var changed = FakeStore.syn
        changed.description = "other weights"
        try changed.write(to: ModelStoreLayout(root: root).domainConfigURL("syn"))
        let reloaded = try engine.store.load("syn")
        #expect(reloaded.modelDigest != domain.modelDigest)
        let fresh = try s.segment(reloaded, source: r, options: options, output: .resumableFile(path: out, identity: identity))
        #expect(fresh.resumedFromRow == 0 && fresh.windowsComputed == 4)
    }
}
