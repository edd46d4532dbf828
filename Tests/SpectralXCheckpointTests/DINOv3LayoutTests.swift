import Foundation
import SpectralXCheckpoint
import SpectralXSupport
import Testing

/// The DINOv3 state dict, its 25 constants and the backbone configuration read off the weights
/// (spec dinov3 §5, fixtures/dinov3 README §1). Cheap: no weights are written.
@Suite("DINOv3 layout")
struct DINOv3LayoutTests {
    static let manifestD: WeightManifest? = Fixtures.manifestURL("dinov3/weights-manifest-D.json").flatMap { try? WeightManifest(contentsOf: $0) }

    @Test("RoPE periods and the k-bias mask follow their definitions")
    func constants() {
        // Spec dinov3 §3.4: the bf16 periods listed in the manifest.
        let bits: [UInt16] = [0x3f80, 0x3fab, 0x3fe4, 0x4018, 0x404a, 0x4087, 0x40b4, 0x40f0,
                              0x4120, 0x4155, 0x418e, 0x41be, 0x41fd, 0x4229, 0x4261, 0x4296]
        #expect(DINOv3Constants.ropePeriodBits() == bits)
        #expect(bits.map(BFloat16.float(bits:)) == [1, 1.3359375, 1.78125, 2.375, 3.15625, 4.21875, 5.625, 7.5, 10, 13.3125,
                                                   17.75, 23.75, 31.625, 42.25, 56.25, 75])
        let mask = DINOv3Constants.keyBiasMask(width: 1024)
        #expect(mask.count == 3072 && mask[0..<1024].allSatisfy { $0 == 1 } && mask[1024..<2048].allSatisfy { $0 == 0 }
                && mask[2048...].allSatisfy { $0 == 1 })
    }

    @Test("bf16 rounding is round-to-nearest-even")
    func bfloat16Rounding() {
        #expect(BFloat16.round(1 + 0x1p-8) == 1)                 // tie → even
        #expect(BFloat16.round(1 + 3 * 0x1p-8) == 1 + 0x1p-6)     // tie → even (up)
        #expect(BFloat16.round(1 + 0x1p-8 + 0x1p-20) == 1 + 0x1p-7)
        #expect(BFloat16.round(-2.5) == -2.5)
        #expect(BFloat16.round(.infinity) == .infinity)
        #expect(BFloat16.round(.nan).isNaN)
        #expect(BFloat16.round(Float.greatestFiniteMagnitude) == .infinity)
    }

    @Test("StateDictLayout(.dinov3) is the manifest's 796-entry state dict, constants included", .enabled(if: manifestD != nil))
    func layoutMatchesManifest() throws {
        let manifest = try #require(Self.manifestD)
        let layout = try StateDictLayout(bands: 13, classes: 9, backbone: .dinov3)
        let reference = manifest.stateDict
        #expect(reference.count == 796 && manifest.constants.count == 25)
        #expect(layout.entries.count == reference.count)
        for (mine, ref) in zip(layout.entries, reference.map(\.entry)) {
            #expect(mine == ref, "\(mine.key) vs \(ref.key)")
        }
        #expect(manifest.backbone == .dinov3)
        #expect(layout.entries(in: .backbone).count == 243 + 25)
    }

    @Test("the constants' bytes hash to the manifest's sha256 and equal constants-D.safetensors", .enabled(if: manifestD != nil))
    func constantBytes() throws {
        let manifest = try #require(Self.manifestD)
        let file = try SafeTensorsFile(url: try #require(Fixtures.manifestURL("dinov3/constants-D.safetensors")))
        #expect(file.entries.map(\.name) == manifest.constants.map(\.entry.key))
        for c in manifest.constants {
            let bytes = try #require(DINOv3Constants.bytes(rule: c.entry.rule, shape: c.entry.shape))
            #expect(SHA256.hash(bytes).hex == c.sha256, "\(c.entry.key)")
            #expect(Array(try file.rawBytes(c.entry.key)) == bytes, "\(c.entry.key)")
        }
    }

    @Test("the backbone configuration is read off the tensors")
    func configurationFromWeights() throws {
        func shapes(_ b: BackboneVariant) throws -> [String: [Int]] {
            var s: [String: [Int]] = [:]
            for e in try StateDictLayout(bands: 4, classes: 3, backbone: b).entries(in: .backbone) { s[e.key] = e.shape }
            return s
        }
        let vit = try BackboneConfiguration(inferringFrom: shapes(.satMAEPP))
        #expect(vit == .vitL && vit.tokensPerImage == 197 && vit.prefixTokens == 1)
        let dino = try BackboneConfiguration(inferringFrom: shapes(.dinov3))
        #expect(dino == .dinov3 && dino.tokensPerImage == 201 && dino.prefixTokens == 5)
        // A recorded configuration supplies what shapes cannot show (RoPE dtype, eps), and round-trips.
        var recorded = BackboneConfiguration.dinov3
        recorded.finalNormEps = 1e-5
        recorded.rope?.dtype = "f32"
        let again = try BackboneConfiguration(inferringFrom: shapes(.dinov3),
                                              metadata: [BackboneConfiguration.metadataKey: recorded.jsonString()])
        #expect(again == recorded)
        #expect(throws: CheckpointError.self) { try BackboneConfiguration(inferringFrom: [:]) }
    }
}
