import Foundation
import SpectralXCheckpoint
import SpectralXCheckpointImport
import SpectralXSupport
import Testing

/// Full 722-key import: a synthesized store's tensors are written as a torch-format checkpoint
/// (protocol-2 pickle, `model.` keys, `trainer_state` sharing the OrderedDict, one strided and
/// one float64 tensor), imported into a fresh store and compared tensor by tensor.
///
/// The backbone alone is 1.2 GB, so this runs only with SPECTRALX_FULL_IMPORT=1.
@Suite struct ImportEndToEndTests {
    static let enabled = ProcessInfo.processInfo.environment["SPECTRALX_FULL_IMPORT"] == "1"
    static let bands = 4, classes = 3
    static let wavelengths = [0.49, 0.56, 0.665, 0.842]
    static let stridedKey = "AreApt.spa_mlp.weight"  // (196, 784): stored transposed, stride (1, 196)
    static let doubleKey = "AreApt.scale"  // 0-d: stored as a DoubleStorage

    /// Writes the checkpoint for a synthesized store; returns its path.
    static func writeCheckpoint(from store: ModelStoreLayout, domain: String, to path: String) throws {
        let (_, backbone, adapter) = try store.openDomain(domain)
        let layout = try StateDictLayout(bands: bands, classes: classes)
        var p = PickleBuilder()
        p.op(0x7D); p.put()
        p.op(0x28)
        p.string("epoch"); p.int(3)
        p.string("global_step"); p.int(777)
        p.string("state_dict"); p.global("collections", "OrderedDict"); p.op(0x29); p.op(0x52)
        let sdMemo = p.put()
        p.op(0x28)
        var storages: [(key: String, bytes: () -> [UInt8], size: Int)] = []
        for (i, e) in layout.entries.enumerated() {
            let file = e.file == .backbone ? backbone : adapter
            let raw = try file.rawBytes(e.key)
            p.string("model." + e.key)
            if e.key == stridedKey {
                let (r, c) = (e.shape[0], e.shape[1])
                p.tensor(storageClass: "FloatStorage", key: "\(i)", numel: r * c, shape: e.shape, stride: [1, r])
                storages.append(("\(i)", {
                    let f = raw.bindMemory(to: Float.self)
                    var t = [Float](repeating: 0, count: r * c)
                    for a in 0..<r { for b in 0..<c { t[b * r + a] = f[a * c + b] } }
                    return t.withUnsafeBytes { Array($0) }
                }, raw.count))
            } else if e.key == doubleKey {
                p.tensor(storageClass: "DoubleStorage", key: "\(i)", numel: 1, shape: [])
                let d = Double(raw.load(as: Float.self))
                storages.append(("\(i)", { withUnsafeBytes(of: d) { Array($0) } }, 8))
            } else {
                p.tensor(storageClass: e.dtype == .i64 ? "LongStorage" : "FloatStorage", key: "\(i)",
                         numel: e.elementCount, shape: e.shape)
                storages.append(("\(i)", { Array(raw) }, raw.count))
            }
        }
        p.op(0x75)
        p.string("trainer_state"); p.get(sdMemo)
        p.string("hyper_parameters"); p.op(0x7D); p.put(); p.op(0x28)
        p.string("in_channels"); p.int(bands)
        p.string("wavelength"); p.op(0x5D); p.put(); p.op(0x28); for w in wavelengths { p.float(w) }; p.op(0x65)
        p.op(0x75)
        p.op(0x75)
        p.stop()

        let z = try ZipBuilder(path: path, zip64: true)
        try z.add("full/data.pkl", p.bytes)
        try z.add("full/byteorder", Array("little".utf8))
        for s in storages {
            let bytes = s.bytes()
            let crc = bytes.withUnsafeBytes { CRC32.checksum($0) }
            try z.add("full/data/\(s.key)", size: bytes.count, crc: crc) { write in
                var o = 0
                while o < bytes.count {
                    let n = min(64 << 20, bytes.count - o)
                    try write(Array(bytes[o..<(o + n)]))
                    o += n
                }
            }
        }
        try z.finish()
    }

    @Test(.enabled(if: enabled, "set SPECTRALX_FULL_IMPORT=1 (writes ~4 GB of temporary files)"))
    func fullImportReproducesTheSynthesizedStore() throws {
        let dir = try Fixtures.temporaryDirectory("full")
        defer { try? FileManager.default.removeItem(at: dir) }
        let rootA = dir.appendingPathComponent("a")
        _ = try ModelStoreSynthesizer.synthesizeStore(at: rootA, domainName: "synth", bands: Self.bands,
                                                      classes: Self.classes, wavelengths: Self.wavelengths)
        let storeA = ModelStoreLayout(root: rootA)
        let ckptPath = dir.appendingPathComponent("full.ckpt").path
        try Self.writeCheckpoint(from: storeA, domain: "synth", to: ckptPath)

        let ckpt = try TorchCheckpoint(path: ckptPath)
        #expect(ckpt.epoch == 3 && ckpt.globalStep == 777)
        let plan = try CheckpointImporter.plan(ckpt)
        #expect(plan.tensors.count == plan.layout.entries.count)
        #expect(plan.convertedKeys == [Self.doubleKey])

        // 1. Fresh store: both files written; every tensor equals the synthesized one.
        let rootB = dir.appendingPathComponent("b")
        let r = try CheckpointImporter.importCheckpoint(ckpt, options: ImportOptions(storeRoot: rootB, domainName: "imported"))
        #expect(r.backboneWritten)
        #expect(r.domainConfig.bands == Self.bands && r.domainConfig.classes == Self.classes)
        #expect(r.domainConfig.wavelengths == Self.wavelengths)
        #expect(r.domainConfig.backbone == "sat_mae_pp")
        let (configB, backboneB, adapterB) = try ModelStoreLayout(root: rootB).openDomain("imported")
        let (_, backboneA, adapterA) = try storeA.openDomain("synth")
        #expect(configB.name == "imported")
        #expect(backboneB.names == backboneA.names)
        #expect(adapterB.names == adapterA.names)
        for (x, y) in [(backboneA, backboneB), (adapterA, adapterB)] {
            for e in x.entries {
                let a = try x.rawBytes(e.name), b = try y.rawBytes(e.name)
                #expect(a.count == b.count && memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0, "\(e.name)")
            }
        }

        // 2. Same domain again: refused unless replacing.
        #expect(throws: ImportError.domainExists("imported")) {
            _ = try CheckpointImporter.importCheckpoint(ckpt, options: ImportOptions(storeRoot: rootB, domainName: "imported"))
        }
        var replace = ImportOptions(storeRoot: rootB, domainName: "imported")
        replace.replaceDomain = true
        #expect(try !CheckpointImporter.importCheckpoint(ckpt, options: replace).backboneWritten)

        // 3. Into the synthesized store under the synthetic backbone's name: identical tensors → reused.
        var intoA = ImportOptions(storeRoot: rootA, domainName: "second")
        intoA.backboneName = ModelStoreSynthesizer.defaultBackboneName
        let ra = try CheckpointImporter.importCheckpoint(ckpt, options: intoA)
        #expect(!ra.backboneWritten)

        // 4. A different file under that backbone name is never overwritten.
        let rootC = dir.appendingPathComponent("c")
        let other = ModelStoreLayout(root: rootC)
        try FileManager.default.createDirectory(at: other.backbonesDirectory, withIntermediateDirectories: true)
        let w = try SafeTensorsWriter(tensors: [SafeTensorsWriter.Tensor(name: "x", dtype: .f32, shape: [1])])
        try w.write(to: other.backboneURL("sat_mae_pp")) { _, _, b in b.initializeMemory(as: UInt8.self, repeating: 0) }
        #expect {
            _ = try CheckpointImporter.importCheckpoint(ckpt, options: ImportOptions(storeRoot: rootC, domainName: "d"))
        } throws: { e in
            if case ImportError.backboneConflict(name: "sat_mae_pp", _) = e { return true }
            return false
        }
        #expect(!FileManager.default.fileExists(atPath: other.domainConfigURL("d").path))
    }

    @Test func missingWavelengthsAndMismatchesAreReported() throws {
        // A checkpoint with two layout keys, one mis-shaped, one unexpected, no wavelengths.
        let dir = try Fixtures.temporaryDirectory("mismatch")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.ckpt").path
        var p = PickleBuilder()
        p.op(0x7D); p.string("state_dict"); p.op(0x7D); p.op(0x28)
        p.string("model.head.conv_seg.weight"); p.tensor(storageClass: "FloatStorage", key: "0", numel: 5 * 512, shape: [5, 512, 1, 1])
        p.string("model.AreApt.scale"); p.tensor(storageClass: "FloatStorage", key: "1", numel: 2, shape: [2])
        p.string("model.extra.thing"); p.tensor(storageClass: "FloatStorage", key: "1", numel: 2, shape: [1])
        p.op(0x75); p.op(0x73)
        p.string("hyper_parameters"); p.op(0x7D); p.string("in_channels"); p.int(7); p.op(0x73)
        p.op(0x73)
        p.stop()
        let z = try ZipBuilder(path: path)
        try z.add("m/data.pkl", p.bytes)
        try z.add("m/data/0", [UInt8](repeating: 0, count: 5 * 512 * 4))
        try z.add("m/data/1", [UInt8](repeating: 0, count: 8))
        try z.finish()
        let ckpt = try TorchCheckpoint(path: path)
        #expect(throws: ImportError.missingWavelengths) { _ = try CheckpointImporter.wavelengths(ckpt, override: nil) }
        #expect(try CheckpointImporter.wavelengths(ckpt, override: [1.0]) == [1.0])
        #expect {
            _ = try CheckpointImporter.plan(ckpt)
        } throws: { e in
            guard case let ImportError.layoutMismatch(missing, unexpected, mismatched) = e else { return false }
            let layout = try! StateDictLayout(bands: 7, classes: 5)
            return missing.count == layout.entries.count - 2 && unexpected == ["extra.thing"]
                && mismatched == [KeyMismatch(key: "AreApt.scale", expected: "F32 []", actual: "float32 [2]")]
        }
    }
}
