import Foundation
import SpectralXCheckpoint
import SpectralXCheckpointImport
import Testing

/// The upstream-format fixture (written by real torch 2.4): keys, dtypes, shapes, checksums and
/// values must equal tiny-upstream.json.
@Suite struct TinyUpstreamTests {
    let ckpt: TorchCheckpoint
    let expected: [[String: Any]]

    init() throws {
        ckpt = try TorchCheckpoint(path: Fixtures.path("tiny-upstream.ckpt"))
        expected = try Fixtures.json("tiny-upstream.json")["tensors"] as! [[String: Any]]
    }

    @Test func listingMatchesTheFixtureJSON() throws {
        let list = try ckpt.listTensors()
        #expect(list.count == expected.count)
        for (t, e) in zip(list, expected) {
            #expect(t.key == e["key"] as? String)
            #expect(t.shape == e["shape"] as? [Int])
            #expect(t.dtype.rawValue == e["dtype"] as? String)
            #expect(t.sha256 == e["sha256"] as? String, "\(t.key)")
        }
    }

    @Test func valuesMatchForSmallTensorsAndFirst8() throws {
        let sd = try ckpt.stateDict()
        for (nt, e) in zip(sd, expected) {
            // Compared as Float: the tensors are float32 and JSON parsing may be off by an ulp of Double.
            let values = try ckpt.doubleValues(nt.tensor)
            let floats = values.map { Float($0) }
            if let all = e["values"] as? [Double] {
                #expect(floats == all.map { Float($0) }, "\(nt.key)")
            }
            let first8 = e["first8"] as! [Double]
            #expect(Array(floats.prefix(8)) == first8.map { Float($0) }, "\(nt.key)")
            let sum = values.reduce(0, +)
            #expect(abs(sum - (e["sum_f64"] as! Double)) <= 1e-9 * max(1, abs(sum)), "\(nt.key)")
        }
        let counter = try #require(sd.first { $0.key == "model.head.bottleneck.bn.num_batches_tracked" })
        #expect(counter.tensor.dtype == .int64)
        #expect(counter.tensor.shape == [])
        #expect(try ckpt.doubleValues(counter.tensor) == [45000])
    }

    @Test func topLevelFields() throws {
        #expect(ckpt.epoch == 24)
        #expect(ckpt.globalStep == 45000)
        #expect(ckpt.prefix == "tiny-upstream/")
        #expect(ckpt.topLevelKeys == ["epoch", "global_step", "state_dict", "optimizer_state_dict",
                                      "lr_scheduler_state_dict", "trainer_state", "hyper_parameters"])
        #expect(ckpt.topLevel?["lr_scheduler_state_dict"] == PickleValue.none)
        let hp = try #require(ckpt.hyperParameters)
        #expect(ckpt.graph.find(key: "in_channels", in: hp)?.intValue == 32)
        let wl = try CheckpointImporter.wavelengths(ckpt, override: nil)
        #expect(wl.count == 32)
        #expect(wl.first == 0.466 && wl.last == 0.94)
    }

    @Test func twiceReferencedStoragesAreDeduplicated() throws {
        let top = try #require(ckpt.topLevel)
        // trainer_state is the very same OrderedDict node as state_dict …
        #expect(top["trainer_state"] == top["state_dict"])
        guard case let .dict(d)? = ckpt.graph.node(top["state_dict"]!) else { Issue.record("not a dict"); return }
        #expect(d.ordered)
        // … so there is one tensor node and one storage node per key.
        let tensorNodes = ckpt.graph.nodes.filter { if case .tensor = $0 { return true } else { return false } }
        #expect(tensorNodes.count == 8)
        #expect(ckpt.storages.count == 8)
        #expect(Set(ckpt.storages.map(\.key)) == Set((0..<8).map(String.init)))
        #expect(ckpt.graph.storagesByKey.count == 8)
    }

    @Test func partialCheckpointIsRefusedWithTheMissingKeys() throws {
        let store = try Fixtures.temporaryDirectory("partial")
        defer { try? FileManager.default.removeItem(at: store) }
        let options = ImportOptions(storeRoot: store, domainName: "tiny")
        let result = Result { () throws(ImportError) in try CheckpointImporter.importCheckpoint(ckpt, options: options) }
        guard case let .failure(error) = result else { Issue.record("partial checkpoint was imported"); return }
        if case let .layoutMismatch(missing, unexpected, mismatched) = error {
            let layout = try StateDictLayout(bands: 32, classes: 23)
            #expect(missing.count == layout.entries.count - 8)
            #expect(missing.contains("vit_backbone.cls_token"))
            #expect(!missing.contains("head.conv_seg.weight"))
            #expect(unexpected.isEmpty)
            #expect(mismatched.isEmpty)
        } else {
            Issue.record("unexpected error \(error)")
        }
        // Nothing was written.
        #expect(!FileManager.default.fileExists(atPath: store.appendingPathComponent("domains/tiny").path))
    }

    @Test func sharedFixtureCopyIsIdentical() throws {
        guard let shared = Fixtures.sharedFixtures else {
            print("skipping: shared fixtures not found (set SPECTRALX_SHARED)")
            return
        }
        let a = try Data(contentsOf: shared.appendingPathComponent("tiny-upstream.ckpt"))
        let b = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny-upstream.ckpt")))
        #expect(a == b)
    }
}
