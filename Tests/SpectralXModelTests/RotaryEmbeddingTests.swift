import Foundation
import SpectralXCheckpoint
import SpectralXModel
import SpectralXTensor
import Testing

/// DINOv3 RoPE against its direct float64 definition (spec dinov3 §3.4) on a small grid, without
/// fixtures; the bit-exact bf16 checks against upstream are in "DINOv3 parity".
@Suite struct RotaryEmbeddingTests {
    static let periods: [Float] = DINOv3Constants.ropePeriodBits(headDim: 16).map(BFloat16.float(bits:))   // 4 periods

    /// The rotation in float64: pair (d, d + e/2) turns by the row (d < e/4) or column angle.
    static func reference(_ x: [Float], token: Int, grid: Int, e: Int) -> [Double] {
        let q = e / 4
        func coord(_ t: Int) -> Double { 2 * ((Double(t) + 0.5) / Double(grid)) - 1 }
        let axes = [coord(token / grid), coord(token % grid)]
        var out = [Double](repeating: 0, count: e)
        for j in 0..<e {
            let k = j % (e / 2)
            let angle = 2 * Double.pi * axes[k / q] / Double(periods[k % q])
            let rotated = j < e / 2 ? -Double(x[j + e / 2]) : Double(x[j - e / 2])
            out[j] = Double(x[j]) * cos(angle) + rotated * sin(angle)
        }
        return out
    }

    @Test(arguments: [false, true])
    func matchesTheDefinition(bfloat16: Bool) {
        let grid = 3, e = 16, heads = 2, width = heads * e, prefix = 2, tokens = prefix + grid * grid, sequences = 3
        let rope = RotaryEmbedding(periods: Self.periods, grid: grid, bfloat16: bfloat16)
        let qkv = Tensor(zeros: [sequences * tokens, 3 * width])
        for i in 0..<qkv.count { qkv.mutablePointer[i] = Float(sin(Double(i) * 0.37) * 2) }
        let before = qkv.toArray()
        rope.apply(qkv: qkv.mutablePointer, sequences: sequences, tokens: tokens, width: width)
        var worst = 0.0
        for s in 0..<sequences { for t in 0..<tokens { for part in 0..<3 { for h in 0..<heads {
            let at = (s * tokens + t) * 3 * width + part * width + h * e
            let x = Array(before[at..<(at + e)]), y = Array(qkv.toArray()[at..<(at + e)])
            if part == 2 { #expect(y == x, "v must not change"); continue }
            if t < prefix {
                #expect(y == x.map { bfloat16 ? BFloat16.round($0) : $0 }, "prefix tokens are only rounded")
                continue
            }
            let r = Self.reference(x, token: t - prefix, grid: grid, e: e)
            for j in 0..<e { worst = max(worst, abs(Double(y[j]) - r[j])) }
            if bfloat16 { #expect(y.allSatisfy { BFloat16.round($0) == $0 }) }
        } } } }
        // float32: rounding only; bf16: a few bf16 steps at |x| ≤ 2 (2⁻⁷ each) from x, the tables and the ops.
        #expect(worst <= (bfloat16 ? 4 * 0x1p-7 : 1e-5), "max deviation \(worst)")
    }
}
