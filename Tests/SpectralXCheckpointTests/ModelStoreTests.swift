import Foundation
import SpectralXCheckpoint
import SpectralXSupport
import Testing

/// Full-size store synthesis (the ViT-L backbone is 1.2 GB whatever C and K are), so these run
/// one after another in one temporary store. Set SPECTRALX_STORE_OUT to keep the store.
extension HeavyTests { @Suite struct ModelStoreTests {
    static func storeRoot(_ tag: String) -> (URL, keep: Bool) {
        if let out = ProcessInfo.processInfo.environment["SPECTRALX_STORE_OUT"], !out.isEmpty {
            return (URL(fileURLWithPath: out).appendingPathComponent(tag), true)
        }
        return (Fixtures.temporaryDirectory(tag).appendingPathComponent("models"), false)
    }

    @Test(.enabled(if: Fixtures.available, Fixtures.skipReason))
    func fixtureStoreMatchesManifestsAndSharesBackbone() throws {
        let (root, keep) = Self.storeRoot("fixture-store")
        defer { if !keep { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) } }
        let a = try #require(Fixtures.manifestA), urlA = try #require(Fixtures.manifestURL("weights-manifest.json"))
        let urlB = try #require(Fixtures.manifestURL("weights-manifest-B.json"))

        let ra = try ModelStoreSynthesizer.synthesizeFromManifest(urlA, at: root, domainName: "whuohs-A")
        print("domain A store written in \(String(format: "%.2f", ra.seconds)) s")
        #expect(ra.backboneWritten)
        #expect(ra.mismatchedTensors.isEmpty, "\(ra.mismatchedTensors.prefix(5))")
        #expect(ra.tensorSHA256.count == 722)
        for t in a.tensors { #expect(ra.tensorSHA256[t.entry.key] == t.sha256, "\(t.entry.key)") }

        // Read back through the public reader.
        let store = ModelStoreLayout(root: root)
        let opened = try store.openDomain("whuohs-A")
        #expect(opened.config.bands == 32 && opened.config.classes == 23)
        #expect(opened.backbone.entries.count == 194 && opened.adapter.entries.count == 528)
        #expect(opened.backbone.metadata["file"] == "backbone")
        #expect(opened.backbone.metadata["config"]
            == #"{"backbone":"sat_mae_pp","img_size":224,"patch_size":16,"embed_dim":1024,"depth":24,"num_heads":16,"adapted_blocks":[5,11,17,23]}"#)
        #expect(opened.adapter.metadata["seed"] == "2508017310")
        #expect(opened.backbone.names == a.tensors.filter { $0.entry.file == .backbone }.map(\.entry.key))
        for t in a.tensors.filter({ $0.entry.byteCount <= 1 << 16 || $0.entry.key.hasSuffix("blocks.7.attn.qkv.weight") }) {
            let file = t.entry.file == .backbone ? opened.backbone : opened.adapter
            #expect(SHA256.hash(try file.rawBytes(t.entry.key)).hex == t.sha256, "\(t.entry.key)")
            if t.entry.dtype == .f32 {
                let p = try #require(file.float32Pointer("model." + t.entry.key))
                for (j, v) in t.first4.enumerated() { #expect(Double(p[j]) == v) }
            }
        }

        // Domain B reuses the byte-identical backbone.
        let rb = try ModelStoreSynthesizer.synthesizeFromManifest(urlB, at: root, domainName: "dfc-B")
        #expect(!rb.backboneWritten)
        #expect(rb.mismatchedTensors.isEmpty)
        #expect(rb.tensorSHA256.count == 528)

        // A demo domain of another C and K with the fixture seeds also shares it: the
        // manifest-free layout writes the very same backbone header.
        let rd = try ModelStoreSynthesizer.synthesizeStore(at: root, domainName: "demo", bands: 4, classes: 3)
        #expect(!rd.backboneWritten)
        #expect(store.domainNames() == ["demo", "dfc-B", "whuohs-A"])
        #expect(store.backboneNames() == [ModelStoreSynthesizer.defaultBackboneName])
        let demo = try store.openDomain("demo")
        #expect(demo.config.classNames == ["class_0", "class_1", "class_2"])
        #expect(demo.config.wavelengths == [0.4, 1.1, 1.8, 2.5])
        #expect(try demo.adapter.float32Buffer("head.conv_seg.weight").count == 3 * 512)
        #expect(demo.adapter.entry(named: "vit_backbone.patch_embed.proj.down.weight")?.shape == [16, 4, 4, 4])
        let bundle = try WeightBundle(store: store, domain: "demo")
        try bundle.validate(against: try StateDictLayout(bands: 4, classes: 3))
        #expect(bundle.inferredBandsAndClasses()! == (4, 3))
        #expect(bundle.names.count == 722)
        #expect(try bundle.float32Buffer("model.vit_backbone.blocks.0.attn.qkv.weight", shape: [3072, 1024]).count == 3072 * 1024)
        #expect(throws: CheckpointError.shapeMismatch(key: "head.conv_seg.weight", expected: [23, 512, 1, 1], actual: [3, 512, 1, 1])) {
            try bundle.validate(against: try StateDictLayout(bands: 4, classes: 23))
        }

        // A different backbone under the same name is refused instead of overwritten.
        #expect(throws: CheckpointError.self) {
            try ModelStoreSynthesizer.synthesizeStore(at: root, domainName: "other", bands: 4, classes: 3,
                                                      seeds: WeightSeeds(backbone: 1, domain: 1))
        }
        let backboneDir = store.backboneURL(ModelStoreSynthesizer.defaultBackboneName).deletingLastPathComponent().path
        #expect(try FileManager.default.contentsOfDirectory(atPath: backboneDir).allSatisfy { !$0.contains(".tmp-") })  // no temporary file left
    }

}
}

@Suite struct DomainConfigTests {
    @Test func domainConfigRoundTripAndValidation() throws {
        let dir = Fixtures.temporaryDirectory("domaincfg")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cfg = DomainConfig(name: "x", backbone: "bb", bands: 13, classes: 2, classNames: ["a", "b"],
                               wavelengths: [0.49, 0.56], adapterSHA256: String(repeating: "0", count: 64))
        let url = dir.appendingPathComponent("domain.json")
        try cfg.write(to: url)
        #expect(try DomainConfig.load(from: url) == cfg)
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.contains("\"wavelengths_um\""))
        #expect(text.contains("\"schema_version\" : 1"))
        var bad = cfg
        bad.classNames = ["only one"]
        #expect(throws: CheckpointError.self) { try bad.validate() }
        #expect(throws: CheckpointError.self) { try ModelStoreLayout.validateName("../etc") }
        #expect(throws: CheckpointError.self) { try ModelStoreLayout.validateName("") }
        try ModelStoreLayout.validateName("sat_mae_pp-synthetic.v1")
        let minimal = #"{"schema_version":1,"name":"m","backbone":"bb","bands":3,"classes":2,"wavelengths_um":[0.5,0.6,0.7]}"#
        try Data(minimal.utf8).write(to: url)
        let m = try DomainConfig.load(from: url)
        #expect(m.classNames == ["class_0", "class_1"] && m.inputSize == 224 && m.preprocessing == DomainConfig.defaultPreprocessing)
        try Data(#"{"schema_version":1,"name":"m"}"#.utf8).write(to: url)
        #expect(throws: CheckpointError.self) { try DomainConfig.load(from: url) }
        #expect(DomainConfig.defaultWavelengths(1) == [0.4])
        #expect(DomainConfig.defaultWavelengths(32).count == 32)
    }
}
