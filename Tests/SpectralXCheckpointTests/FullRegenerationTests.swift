import Dispatch
import Foundation
import SpectralXCheckpoint
import SpectralXSupport
import Testing

/// The tests that generate the full 1.65 GB model; serialized (also across the nested suites)
/// so that they do not fight over the two cores and the memory.
@Suite(.serialized) enum HeavyTests {}

/// Regenerates every tensor of the fixture manifest in memory and checks its SHA-256.
extension HeavyTests { @Suite struct FullRegenerationTests {
    static func regenerateAndCheck(_ manifest: WeightManifest, only file: WeightFile? = nil) -> (mismatches: [String], seconds: Double, elements: Int) {
        let tensors = manifest.tensors.filter { file == nil || $0.entry.file == file }
        let t0 = DispatchTime.now().uptimeNanoseconds
        // One tensor per iteration (generate sequentially, then hash): hashing dominates, and it
        // is sequential within a tensor, so parallelism comes from doing tensors concurrently.
        let ok = Flags(count: tensors.count)
        DispatchQueue.concurrentPerform(iterations: tensors.count) { i in
            let t = tensors[i], e = t.entry
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, e.byteCount), alignment: 64)
            defer { buffer.deallocate() }
            let out = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<e.byteCount])
            WeightGenerator.fillBytes(out, dtype: e.dtype, tensorSeed: WeightGenerator.tensorSeed(key: e.key, seed: t.seed),
                                      lo: e.lo, hi: e.hi, byteOffset: 0, parallel: false)
            let match = SHA256.hash(UnsafeRawBufferPointer(out)).hex == t.sha256
            ok.set(i, match)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let flags = ok.values
        let bad = zip(tensors, flags).filter { !$0.1 }.map(\.0.entry.key)
        return (bad, seconds, tensors.reduce(0) { $0 + $1.entry.elementCount })
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
}

/// Per-tensor results written from concurrent iterations. `@unchecked Sendable`: every access
/// goes through the lock.
final class Flags: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Bool]
    init(count: Int) { storage = [Bool](repeating: false, count: count) }
    func set(_ i: Int, _ v: Bool) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [Bool] { lock.lock(); defer { lock.unlock() }; return storage }
}
