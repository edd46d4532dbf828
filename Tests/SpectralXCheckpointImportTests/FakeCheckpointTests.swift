import Foundation
import SpectralXCheckpoint
import SpectralXCheckpointImport
import Testing

/// Checkpoints written by Python's own pickler (Fixtures/make_fake_ckpts.py, stdlib only, fake
/// torch modules): strided views, storage offsets, shared storages, float16/bfloat16/float64/int32,
/// Parameters, OrderedDict `_metadata`, unknown callback classes, protocols 2 and 5, ZIP64.
@Suite struct FakeCheckpointTests {
    static let files = ["fake-p2.ckpt", "fake-p2-zip64.ckpt", "fake-p5.ckpt"]

    @Test func pythonZip64ArchiveHasZip64Records() throws {
        // zipfile with lowered limits: ZIP64 end record + locator and per-entry ZIP64 extra fields.
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("fake-p2-zip64.ckpt"))))
        let find = { (sig: [UInt8]) in (0..<(bytes.count - 4)).contains { bytes[$0..<($0 + 4)].elementsEqual(sig) } }
        #expect(find([0x50, 0x4B, 0x06, 0x06]) && find([0x50, 0x4B, 0x06, 0x07]))
        let zip = try ZipArchive(path: Fixtures.path("fake-p2-zip64.ckpt"))
        for e in zip.entries { _ = try zip.bytes(of: e, verifyCRC: true) }
    }

    @Test(arguments: files) func listingMatchesPython(file: String) throws {
        let ckpt = try TorchCheckpoint(path: Fixtures.path(file))
        let json = try Fixtures.json("fake.json")
        let expected = json["tensors"] as! [[String: Any]]
        #expect(ckpt.epoch == 7)
        #expect(ckpt.globalStep == 1234)
        let list = try ckpt.listTensors()
        #expect(list.map(\.key) == expected.map { $0["key"] as! String })
        let sd = try ckpt.stateDict()
        for ((t, nt), e) in zip(zip(list, sd), expected) {
            #expect(t.dtype.rawValue == e["dtype"] as? String, "\(t.key)")
            #expect(t.shape == e["shape"] as? [Int], "\(t.key)")
            #expect(t.sha256 == e["sha256"] as? String, "\(t.key)")
            #expect(t.storageKey == e["storage"] as? String, "\(t.key)")
            let values = try ckpt.doubleValues(nt.tensor)
            let want = (e["values"] as! [NSNumber]).map(\.doubleValue)
            if t.dtype == .float16 || t.dtype == .bfloat16 {
                #expect(zip(values, want).allSatisfy { abs($0 - $1) <= 1e-3 * max(1, abs($1)) }, "\(t.key)")
            } else {
                #expect(values == want, "\(t.key)")
            }
        }
        // Five views share storage "0"; the Parameter is its inner tensor.
        #expect(ckpt.storages.count == 6)
        #expect(list.filter { $0.storageKey == "0" }.count == 6)
        #expect(list.first { $0.key == "model.a.transposed" }?.contiguous == false)
    }

    @Test(arguments: files) func unknownObjectsAreTolerated(file: String) throws {
        let ckpt = try TorchCheckpoint(path: Fixtures.path(file))
        let g = ckpt.graph
        let hp = try #require(ckpt.hyperParameters)
        let callbackList = try #require(g.find(key: "callbacks", in: hp))
        let callbacks = try #require(g.sequence(callbackList))
        guard case let .object(o)? = g.node(callbacks[0]) else { Issue.record("callback is not opaque"); return }
        #expect(o.callableName.hasSuffix("ModelCheckpoint"))
        #expect(g.find(key: "blob", in: hp) == .bytes([0, 0xFF] + Array(" raw".utf8)))
        #expect(try CheckpointImporter.wavelengths(ckpt, override: nil) == [0.45, 0.55, 0.65])
        // The state dict's `_metadata` arrived through BUILD.
        guard case let .dict(sd)? = g.node(try ckpt.stateDictValue()) else { Issue.record("no dict"); return }
        #expect(sd.attributes != nil)
    }

    @Test func conversionsToTheStoreDTypes() throws {
        let ckpt = try TorchCheckpoint(path: Fixtures.path("fake-p2.ckpt"))
        let sd = try ckpt.stateDict()
        func converted(_ key: String, _ to: SafeTensorsDType) throws -> [UInt8]? {
            let t = try #require(sd.first { $0.key == key }).tensor
            return TensorGather.convert(try ckpt.contiguousBytes(t), from: t.dtype, to: to)
        }
        let half = try #require(try converted("model.h.half", .f32))
        let floats = half.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(floats == [0.5, -1.25, 3.0, 65504.0, 6.1035156e-05, 0])
        let bf = try #require(try converted("model.h.bf16", .f32))
        #expect(bf.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == [1.0, -2.5, 0.15625, 3.0])
        let ints = try #require(try converted("model.h.int32", .i64))
        #expect(ints.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) } == [-7, 8, 2_147_483_647])
        #expect(try converted("model.h.double", .i64) == nil)
    }

    @Test func halfPrecisionCornerCases() {
        let cases: [(UInt16, Float)] = [(0x0000, 0), (0x8000, -0.0), (0x3C00, 1), (0xC000, -2), (0x7BFF, 65504),
                                        (0x0001, 5.9604645e-08), (0x03FF, 6.097555e-05), (0x7C00, .infinity)]
        for (bits, want) in cases {
            let b: [UInt8] = [UInt8(bits & 0xFF), UInt8(bits >> 8)]
            let out = TensorGather.convert(b, from: .float16, to: .f32)!
            let f = out.withUnsafeBytes { $0.load(as: Float.self) }
            #expect(f == want && f.sign == want.sign, "0x\(String(bits, radix: 16))")
        }
        let nan = TensorGather.convert([0x00, 0x7E], from: .float16, to: .f32)!
        #expect(nan.withUnsafeBytes { $0.load(as: Float.self) }.isNaN)
    }
}
