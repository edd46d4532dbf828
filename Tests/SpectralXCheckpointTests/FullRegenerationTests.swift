import Dispatch
import Foundation
import SpectralXCheckpoint
import Testing

/// Regenerates every tensor of the fixture manifest in memory and checks its SHA-256.
@Suite(.serialized) struct FullRegenerationTests {
    static func regenerateAndCheck(_ manifest: WeightManifest, only file: WeightFile? = nil) -> (mismatches: [String], seconds: Double, elements: Int) {
        let tensors = manifest.tensors.filter { file == nil || $0.entry.file == file }
        let maxBytes = tensors.map(\.entry.byteCount).max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, maxBytes), alignment: 64)
        defer { buffer.deallocate() }
        var bad: [String] = []
        var elements = 0
        let t0 = DispatchTime.now().uptimeNanoseconds
        for t in tensors {
            let e = t.entry
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<e.byteCount])
            WeightGenerator.fillBytes(out, dtype: e.dtype, tensorSeed: WeightGenerator.tensorSeed(key: e.key, seed: t.seed),
                                      lo: e.lo, hi: e.hi, byteOffset: 0)
            if SHA256.hash(UnsafeRawBufferPointer(out)).hex != t.sha256 { bad.append(e.key) }
            elements += e.elementCount
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return (bad, seconds, elements)
    }

    @Test(.enabled(if: Fixtures.available, Fixtures.skipReason))
    func everyTensorOfManifestAMatchesItsSHA256() throws {
        let m = try #require(Fixtures.manifestA)
        let r = Self.regenerateAndCheck(m)
        print("regenerated \(m.tensors.count) tensors, \(r.elements) elements (generate + sha256) in \(String(format: "%.2f", r.seconds)) s")
        #expect(r.mismatches.isEmpty, "SHA-256 mismatches: \(r.mismatches.prefix(10))")
    }

    @Test(.enabled(if: Fixtures.available, Fixtures.skipReason))
    func domainTensorsOfManifestBMatchTheirSHA256() throws {
        let m = try #require(Fixtures.manifestB)
        let r = Self.regenerateAndCheck(m, only: .domain)
        #expect(r.mismatches.isEmpty, "SHA-256 mismatches: \(r.mismatches.prefix(10))")
    }

    @Test func fullModelGenerationSpeed() throws {
        // Generation alone (no hashing, no I/O) for the whole C=32, K=23 model.
        let layout = try StateDictLayout(bands: 32, classes: 23)
        let maxBytes = layout.entries.map(\.byteCount).max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxBytes, alignment: 64)
        defer { buffer.deallocate() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for e in layout.entries {
            WeightGenerator.fillBytes(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<e.byteCount]), dtype: e.dtype,
                                      tensorSeed: WeightGenerator.tensorSeed(key: e.key, seed: 1), lo: e.lo, hi: e.hi,
                                      byteOffset: 0)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        print("generated \(layout.elementCount) elements (\(layout.elementCount * 4 / 1_000_000) MB) in \(String(format: "%.2f", seconds)) s")
        #expect(seconds < 30)
    }
}
