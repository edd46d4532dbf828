import Foundation
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// A smooth 4-band tile in the shared store's `syn` domain layout.
func smallTile(width: Int = 64, height: Int = 48, bands: Int = 4) throws -> Raster {
    var v = [Float](repeating: 0, count: width * height * bands)
    for b in 0..<bands { for y in 0..<height { for x in 0..<width {
        v[(b * height + y) * width + x] = Float(sin(Double(x) * 0.1 + Double(b)) + cos(Double(y) * 0.07))
    } } }
    return try Raster(width: width, height: height, bands: bands, values: v)
}

@Suite("Model store (synthesized weights)", .serialized)
struct ModelStoreTests {
    @Test func loadsValidatesAndServes() throws {
        let store = ModelStore(root: SharedTestStore.root)
        #expect(!store.isReady)
        let d = try store.load("syn")
        #expect(store.isReady)
        #expect(d.bands == 4 && d.classes == 3)
        #expect(d.backboneParameters > 300_000_000)
        #expect(store.domain("syn") === d)
        #expect(throws: EngineError.unknownDomain("nope")) { try store.load("nope") }
        #expect(throws: EngineError.self) { try store.load("../backbones") }
    }

    @Test func brokenDomainsAreRefusedWhileAnotherKeepsAnswering() throws {
        let dir = try SharedTestStore.scratchStore(domains: ["syn"])
        defer { try? FileManager.default.removeItem(at: dir) }
        let layout = ModelStoreLayout(root: dir)
        let fm = FileManager.default
        // truncated: the adapter's first MiB only (header intact, data cut).
        try fm.createDirectory(at: layout.domainDirectory("truncated"), withIntermediateDirectories: true)
        let head = try FileHandle(forReadingFrom: SharedTestStore.root.appendingPathComponent("domains/syn/adapter.safetensors")).read(upToCount: 1 << 20)!
        try head.write(to: layout.adapterURL("truncated"))
        var cfg = try layout.loadDomainConfig("syn")
        cfg.name = "truncated"; cfg.adapterSHA256 = nil; cfg.backboneSHA256 = nil
        try cfg.write(to: layout.domainConfigURL("truncated"))
        // digest: the right file but a wrong sha256 in domain.json.
        try fm.createDirectory(at: layout.domainDirectory("digest"), withIntermediateDirectories: true)
        try fm.linkItem(at: layout.adapterURL("syn"), to: layout.adapterURL("digest"))
        cfg.name = "digest"; cfg.adapterSHA256 = String(repeating: "0", count: 64)
        try cfg.write(to: layout.domainConfigURL("digest"))
        // bands: domain.json declares 5 bands, the weights take 4.
        try fm.createDirectory(at: layout.domainDirectory("bands"), withIntermediateDirectories: true)
        try fm.linkItem(at: layout.adapterURL("syn"), to: layout.adapterURL("bands"))
        cfg.name = "bands"; cfg.adapterSHA256 = nil; cfg.bands = 5; cfg.wavelengths = [0.5, 0.6, 0.7, 0.8, 0.9]
        try cfg.write(to: layout.domainConfigURL("bands"))

        let engine = InferenceEngine(store: ModelStore(root: dir), scheduler: SchedulerConfiguration(maxBatchSize: 2))
        defer { engine.scheduler.shutdown() }
        let results = Dictionary(uniqueKeysWithValues: engine.store.loadAll().map { ($0.name, $0.error) })
        #expect(results["syn"]! == nil)
        func reason(_ name: String) -> String {
            guard case .domainLoadFailed(_, let r)? = results[name]! else { return "not refused" }
            return r
        }
        #expect(reason("truncated").contains("adapter.safetensors"), "\(reason("truncated"))")
        #expect(reason("digest").contains("sha256"), "\(reason("digest"))")
        #expect(reason("bands").contains("band count mismatch"), "\(reason("bands"))")
        #expect(engine.store.domains.map(\.name) == ["syn"])
        #expect(engine.store.failures.map(\.name) == ["bands", "digest", "truncated"])
        // A failed reload of a serving domain leaves the old one in place.
        let before = engine.store.domain("syn")!
        try head.write(to: layout.adapterURL("syn").deletingLastPathComponent().appendingPathComponent("tmp"))
        try fm.removeItem(at: layout.adapterURL("syn"))
        try fm.moveItem(at: layout.adapterURL("syn").deletingLastPathComponent().appendingPathComponent("tmp"), to: layout.adapterURL("syn"))
        #expect(throws: EngineError.self) { try engine.store.load("syn") }
        #expect(engine.store.domain("syn") === before)
        // …and it still answers.
        let r = try engine.segment(domain: "syn", raster: try smallTile())
        #expect(r.labels?.count == 64 * 48 && r.labels!.allSatisfy { $0 < 3 })
    }

    @Test func unloadWaitsForInFlightRequestsAndFreesTheDomain() throws {
        let store = ModelStore(root: SharedTestStore.root)
        weak var weakDomain: LoadedDomain?
        do {
            let d = try store.load("syn")
            weakDomain = d
            let lease = try store.lease("syn")
            let released = Date().addingTimeInterval(0.3)
            Thread.detachNewThread { Thread.sleep(until: released); lease.release() }
            try store.unload("syn")
            #expect(Date() >= released, "unload returned before the in-flight request finished")
            #expect(store.domain("syn") == nil)
            #expect(!store.isReady)
            #expect(throws: EngineError.self) { try store.lease("syn") }
        }
        #expect(weakDomain == nil, "the unloaded domain is still referenced")
        #expect(throws: EngineError.unknownDomain("syn")) { try store.unload("syn") }
    }

    @Test func reloadMakesANewDomainObject() throws {
        let store = ModelStore(root: SharedTestStore.root)
        let a = try store.load("syn")
        let b = try store.load("syn")
        #expect(a !== b)
        #expect(store.domain("syn") === b)
    }

    @Test func tileModeCoversScenesOfAnySizeAndRejectsWrongBands() throws {
        let store = ModelStore(root: SharedTestStore.root)
        try store.load("syn")
        let engine = InferenceEngine(store: store, scheduler: SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(1)))
        defer { engine.scheduler.shutdown() }
        // 300×100: two windows across (origins 0 and 76), one row shorter than 224 (edge replicated).
        let r = try engine.segment(domain: "syn", raster: try smallTile(width: 300, height: 100),
                                   options: SegmentationOptions(mode: .tile, overlap: 64, scores: true))
        #expect(r.windows == 2)
        #expect(r.batchSizes == [2, 2])
        let scores = try #require(r.scores)
        #expect(scores.count == 3 * 300 * 100)
        for p in stride(from: 0, to: 300 * 100, by: 997) {
            let s = scores[p] + scores[30000 + p] + scores[60000 + p]
            #expect(abs(s - 1) < 1e-4)
        }
        #expect(throws: EngineError.self) { try engine.segment(domain: "syn", raster: try smallTile(bands: 3)) }
    }
}
