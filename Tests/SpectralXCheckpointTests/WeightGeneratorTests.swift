import Foundation
import SpectralXCheckpoint
import SpectralXSupport
import Testing

/// A handful of manifest entries copied into the test so the generator is always checked,
/// even without the fixture directory.
private struct Known {
    let key: String, shape: [Int], dtype: SafeTensorsDType, lo: Double, hi: Double, seed: UInt64
    let sha256: String, first4: [Double]
}

private let known: [Known] = [
    Known(key: "vit_backbone.cls_token", shape: [1, 1, 1024], dtype: .f32, lo: -0.1, hi: 0.1, seed: 2508017310,
          sha256: "132ca4f0c27120dc53f72f10564324c1ffbffed96d453abc1281750556435a75",
          first4: [0.08945530652999878, 0.0348123200237751, 0.06437060981988907, 0.06804440915584564]),
    Known(key: "vit_backbone.patch_embed.proj.scaler", shape: [1024], dtype: .f32, lo: 0.9, hi: 1.1, seed: 2508017310,
          sha256: "f60ddea5b5f321d02f0c057145ad22cb902c5a8206e7f2d59bf2fa79d8ceebe7",
          first4: [1.0789902210235596, 1.0792778730392456, 1.0660388469696045, 0.9864733815193176]),
    Known(key: "vit_backbone.patch_embed.proj.proj.downsample_module.conv1.weight", shape: [64, 32, 1, 1], dtype: .f32,
          lo: -0.30618621784789724, hi: 0.30618621784789724, seed: 2508017310,
          sha256: "6e21310605660ad15deab1c28e67f879a45f557f44ccb0e281498d5e6f3a6cee",
          first4: [-0.2880023717880249, 0.21213853359222412, 0.24131733179092407, -0.23268269002437592]),
    Known(key: "vit_backbone.patch_embed.proj.proj.downsample_module.module1.1.num_batches_tracked", shape: [],
          dtype: .i64, lo: 0, hi: 0, seed: 2508017310,
          sha256: "af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc", first4: [0]),
    Known(key: "vit_backbone.blocks.5.mlp.fc1.blocks_MoA.MoA.w_gate", shape: [2, 128, 4], dtype: .f32,
          lo: -0.15, hi: 0.15, seed: 2508017310,
          sha256: "5bf8adca5cde2fd869a5679f0c2d361b3be836e85740065995b6e6e1654b9e27",
          first4: [0.0013160526286810637, -0.07382218539714813, 0.05324086546897888, -0.09648673236370087]),
    Known(key: "vit_backbone.blocks.5.mlp.fc1.blocks_MoA.MoA.std", shape: [1], dtype: .f32, lo: 1, hi: 1,
          seed: 2508017310, sha256: "e00e5eb9444182f352323374ef4e08ebcb784725fdd4fd612d7730540b3e0c8c", first4: [1.0]),
    Known(key: "head.conv_seg.bias", shape: [23], dtype: .f32, lo: -0.05, hi: 0.05, seed: 2508017310,
          sha256: "73c31bebe53af40538cdf5bcced701d2653c457f394ad2a2ade184d4873c81ec",
          first4: [0.03891995549201965, 0.04852963238954544, 0.011467653326690197, 0.0014871895546093583]),
    Known(key: "AreApt.scale", shape: [], dtype: .f32, lo: 0.2, hi: 0.3, seed: 2508017310,
          sha256: "94238af9ba09d27cfcdf0e7d8a9593733153c343f9c5e75895e187021d282920", first4: [0.20639535784721375]),
    Known(key: "AreApt.spe_match_attn.to_kv.weight", shape: [784, 784], dtype: .f32,
          lo: -0.15464739353293547, hi: 0.15464739353293547, seed: 2508017310,
          sha256: "adf572a6f1a1260c396de17a49df8a4a82bce00f3db5fa855d6e610f9922019d",
          first4: [-0.020530441775918007, -0.10092376172542572, -0.15258008241653442, -0.10293170809745789]),
    Known(key: "norm.bias", shape: [1024], dtype: .f32, lo: -0.1, hi: 0.1, seed: 2508017310,
          sha256: "38f5c377984b376b92bab8ae1f3480a7ed705b64ff8d0b898efd75241dd28bb3",
          first4: [0.044925905764102936, -0.0600404366850853, 0.05663499981164932, -0.059671975672245026]),
    // Domain B (domain seed 2508017313).
    Known(key: "head.conv_seg.bias", shape: [9], dtype: .f32, lo: -0.05, hi: 0.05, seed: 2508017313,
          sha256: "5fd76e3d47dd1853d0bcb3d343a8e3e7fd9be4a53f4834a5b1d677b0399a06f9",
          first4: [-0.010730165056884289, -0.03702641278505325, 0.022259313613176346, 0.03648797422647476]),
    Known(key: "vit_backbone.patch_embed.proj.down.bias", shape: [16], dtype: .f32, lo: -0.05, hi: 0.05,
          seed: 2508017313, sha256: "f6cc690c5725a8ce9a7671df119dc30f2e0c02fd3a55098a23b1642e4df6cf21",
          first4: [0.02860966883599758, 0.03986963629722595, 0.02281537652015686, 0.045242566615343094]),
]

/// Generates a whole tensor's little-endian bytes.
func generateTensorBytes(key: String, shape: [Int], dtype: SafeTensorsDType, lo: Double, hi: Double,
                         seed: UInt64) -> [UInt8]
{
    let n = shape.reduce(1, *) * dtype.byteSize
    var bytes = [UInt8](repeating: 0, count: n)
    bytes.withUnsafeMutableBytes { raw in
        WeightGenerator.fillBytes(raw, dtype: dtype, tensorSeed: WeightGenerator.tensorSeed(key: key, seed: seed),
                                  lo: lo, hi: hi, byteOffset: 0)
    }
    return bytes
}

@Suite struct WeightGeneratorTests {
    @Test func fnv1aKnownValues() {
        #expect(WeightGenerator.fnv1a64([UInt8]()) == 0xCBF2_9CE4_8422_2325)
        #expect(WeightGenerator.fnv1a64(Array("a".utf8)) == 0xAF63_DC4C_8601_EC8C)
        #expect(WeightGenerator.fnv1a64(Array("foobar".utf8)) == 0x8594_4171_F739_67E8)
    }

    @Test func splitmix64KnownValues() {
        // The reference splitmix64 sequence for seed 0.
        #expect(WeightGenerator.mix(WeightGenerator.gamma) == 0xE220_A839_7B1D_CDAF)
        #expect(WeightGenerator.mix(WeightGenerator.gamma &* 2) == 0x6E78_9E6A_A1B9_65F4)
        #expect(WeightGenerator.mix(WeightGenerator.gamma &* 3) == 0x06C4_5D18_8009_454F)
        #expect(WeightGenerator.uniform(tensorSeed: 0, index: 0) == Double(0xE220_A8 as UInt64) / 16_777_216)
    }

    @Test func valueRoundsOnceInDoubleThenToFloat() {
        // lo + (hi - lo) * u with u = 1 - 2^-24 must equal the two-step Double computation.
        let lo = -0.30618621784789724, hi = 0.30618621784789724
        let u = 1.0 - 0x1p-24
        let expected = Float(lo + ((hi - lo) * u))
        #expect(WeightGenerator.value(lo: lo, span: hi - lo, u: u) == expected)
        #expect(WeightGenerator.value(lo: 1, span: 0, u: 0.7) == 1)
    }

    @Test(arguments: known.indices)
    func manifestEntriesReproduce(_ i: Int) {
        let k = known[i]
        let bytes = generateTensorBytes(key: k.key, shape: k.shape, dtype: k.dtype, lo: k.lo, hi: k.hi, seed: k.seed)
        #expect(SHA256.hash(bytes).hex == k.sha256, "\(k.key)")
        if k.dtype == .f32 {
            let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            for (j, f) in k.first4.enumerated() { #expect(Double(values[j]) == f, "\(k.key)[\(j)]") }
        }
    }

    @Test func parallelFillEqualsSequentialAtAnyOffset() {
        let seedK = WeightGenerator.tensorSeed(key: "x.weight", seed: 42)
        var seq = [Float](repeating: 0, count: 100_003)
        seq.withUnsafeMutableBufferPointer { WeightGenerator.fill($0, tensorSeed: seedK, lo: -1, hi: 1) }
        var par = [Float](repeating: 0, count: 100_003)
        par.withUnsafeMutableBufferPointer {
            WeightGenerator.fillParallel($0, tensorSeed: seedK, lo: -1, hi: 1, chunkElements: 4097)
        }
        #expect(seq == par)
        var tail = [Float](repeating: 0, count: 1000)
        tail.withUnsafeMutableBufferPointer {
            WeightGenerator.fill($0, tensorSeed: seedK, lo: -1, hi: 1, startIndex: 50_000)
        }
        #expect(Array(seq[50_000..<51_000]) == tail)
    }
}
