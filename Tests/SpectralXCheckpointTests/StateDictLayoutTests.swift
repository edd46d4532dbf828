import Foundation
import SpectralXCheckpoint
import Testing

@Suite struct StateDictLayoutTests {
    @Test func paperConfigurationCounts() throws {
        let layout = try StateDictLayout(bands: 32, classes: 23)
        #expect(layout.entries.count == 722)
        #expect(layout.elementCount == 413_789_595)
        let backbone = layout.entries(in: .backbone)
        #expect(backbone.count == 194)
        #expect(backbone.reduce(0) { $0 + $1.elementCount } == 302_413_824)
        #expect(layout.entries(in: .domain).count == 528)
        func stats(_ r: TensorRole) -> (Int, Int) {
            let e = layout.entries.filter { $0.role == r }
            return (e.count, e.reduce(0) { $0 + $1.elementCount })
        }
        #expect(stats(.perDomain) == (416, 87_531_879))
        #expect(stats(.perDomainFrozen) == (76, 22_208_116))
        #expect(stats(.unused) == (36, 1_635_776))
        #expect(Set(layout.entries.map(\.key)).count == 722)
    }

    @Test func otherBandAndClassCounts() throws {
        // spec §7.3: K = 25 → 413,775,730 parameters (+ 14,891 buffers); C changes two tensors only.
        let k25 = try StateDictLayout(bands: 32, classes: 25)
        #expect(k25.elementCount == 413_789_595 + 2 * 513)
        let dfc = try StateDictLayout(bands: 13, classes: 9)
        #expect(dfc.elementCount == 413_776_333)
        let scale = try StateDictLayout(bands: 32, classes: 23, backbone: .scaleMAE)
        #expect(scale.entries.first { $0.key == "vit_backbone.head.weight" }?.shape == [23, 1024])
        #expect(throws: CheckpointError.self) { try StateDictLayout(bands: 0, classes: 3) }
    }

    @Test func ruleRangesMatchManifestBits() {
        // Literal manifest values, compared bit for bit.
        #expect(WeightRule.linearWeight.range(shape: [64, 32, 1, 1]).hi.bitPattern == 0x3FD3_988E_1409_212E)
        #expect(WeightRule.areAttnWeight.range(shape: [784, 784]).hi.bitPattern == 0x3FC3_CB7C_5CD1_5B55)
        #expect(WeightRule.hypertQuery.range(shape: [196, 512]).hi.bitPattern == 0x3FFB_B67A_E858_4CAA)
        #expect(WeightRule.linearWeight.range(shape: [512, 3072, 3, 3]).hi == 0.010416666666666666)
        #expect(WeightRule.linearBias.range(shape: [5]).lo.bitPattern == 0xBFA9_9999_9999_999A)
    }

    static func compare(_ layout: StateDictLayout, _ manifest: WeightManifest) {
        #expect(layout.entries.count == manifest.tensors.count)
        for (a, m) in zip(layout.entries, manifest.entries) {
            #expect(a.key == m.key)
            guard a.key == m.key else { return }
            #expect(a.shape == m.shape, "\(a.key)")
            #expect(a.dtype == m.dtype, "\(a.key)")
            #expect(a.role == m.role, "\(a.key)")
            #expect(a.file == m.file, "\(a.key)")
            #expect(a.rule == m.rule, "\(a.key)")
            #expect(a.lo.bitPattern == m.lo.bitPattern, "\(a.key) lo \(a.lo) vs \(m.lo)")
            #expect(a.hi.bitPattern == m.hi.bitPattern, "\(a.key) hi \(a.hi) vs \(m.hi)")
        }
    }

    @Test(.enabled(if: Fixtures.available, Fixtures.skipReason))
    func equalsManifestA() throws {
        let m = try #require(Fixtures.manifestA)
        #expect(m.bands == 32 && m.classes == 23 && m.backbone == .satMAEPP)
        Self.compare(try StateDictLayout(bands: 32, classes: 23), m)
    }

    @Test(.enabled(if: Fixtures.available, Fixtures.skipReason))
    func equalsManifestB() throws {
        let m = try #require(Fixtures.manifestB)
        #expect(m.bands == 13 && m.classes == 9)
        Self.compare(try StateDictLayout(bands: 13, classes: 9), m)
    }
}

@Suite struct WeightManifestTests {
    @Test(.enabled(if: Fixtures.available, Fixtures.skipReason))
    func parsesFixtureManifest() throws {
        let m = try #require(Fixtures.manifestA)
        #expect(m.generator == WeightGenerator.name)
        #expect(m.seeds == WeightSeeds.fixture)
        #expect(m.tensors.count == 722)
        #expect(m.declaredElementCount == 413_789_595)
        #expect(m.tensors.reduce(0) { $0 + $1.entry.elementCount } == 413_789_595)
        let conv1 = try #require(m.tensors.first { $0.entry.key.hasSuffix("downsample_module.conv1.weight") })
        #expect(conv1.entry.lo.bitPattern == 0xBFD3_988E_1409_212E)
        #expect(conv1.entry.hi.bitPattern == 0x3FD3_988E_1409_212E)
        #expect(m.tensors[2].entry.lo.bitPattern == 0x3FEC_CCCC_CCCC_CCCD)  // scaler lo 0.9
        #expect(m.tensors[2].entry.hi.bitPattern == 0x3FF1_9999_9999_999A)  // scaler hi 1.1
        #expect(m.wavelengths?.count == 32)
        let b = try #require(Fixtures.manifestB)
        #expect(b.seeds == WeightSeeds(backbone: 2_508_017_310, domain: 2_508_017_313))
    }

    @Test func rejectsMalformedManifest() {
        #expect(throws: CheckpointError.self) { try WeightManifest(jsonBytes: Array("{\"format\":1}".utf8)) }
        #expect(throws: CheckpointError.self) { try WeightManifest(jsonBytes: Array("[".utf8)) }
    }
}
