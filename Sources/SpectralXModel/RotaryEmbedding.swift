import Foundation
import SpectralXCheckpoint
import SpectralXTensor

/// DINOv3's axial 2-D RoPE (`RopePositionEmbedding` + `SelfAttention.apply_rope`, spec dinov3 §3.4),
/// including its bfloat16 arithmetic: the tables are computed in bf16 and q and k of every token are
/// rounded to bf16, rotated with three separately rounded bf16 ops and widened back. A float32 RoPE
/// moves the reference logits by ≈1e-2 (fixtures/dinov3 README §3), so the rounding is part of the model.
public struct RotaryEmbedding: Sendable {
    /// `(patchTokens, headDim)` tables exactly as upstream uses them (bf16 values held as float32).
    public let sin: Tensor
    public let cos: Tensor
    public let headDim: Int
    /// bf16 arithmetic (upstream default) or plain float32.
    public let bfloat16: Bool

    /// - Parameters:
    ///   - periods: the checkpoint's `rope_embed.periods` (headDim/4 values, bf16-exact when `bfloat16`).
    ///   - grid: patch grid side (H = W); coordinates are normalised per axis ("separate").
    public init(periods: [Float], grid: Int, bfloat16: Bool = true) {
        let q = periods.count, e = 4 * q
        headDim = e
        self.bfloat16 = bfloat16
        func r(_ v: Float) -> Float { bfloat16 ? BFloat16.round(v) : v }
        // coords_t = 2·((t + 0.5) / H) − 1, every op rounded (torch.arange(0.5, H, dtype=bf16) / H, 2·c − 1).
        let coords = (0..<grid).map { t in r(r(2 * r(r(Float(t) + 0.5) / Float(grid))) - 1) }
        let twoPi = Float(2 * Double.pi)
        let n = grid * grid
        let s = Tensor(zeros: [n, e]), c = Tensor(zeros: [n, e])
        for tok in 0..<n {
            let axes = [coords[tok / grid], coords[tok % grid]]   // row coordinate, then column coordinate
            for j in 0..<(2 * q) {
                let angle = r(r(twoPi * axes[j / q]) / periods[j % q])
                let sv = r(Foundation.sin(angle)), cv = r(Foundation.cos(angle))
                for rep in 0..<2 {                                 // angles.tile(2)
                    s.mutablePointer[tok * e + rep * 2 * q + j] = sv
                    c.mutablePointer[tok * e + rep * 2 * q + j] = cv
                }
            }
        }
        sin = s
        cos = c
    }

    /// Applies RoPE in place to the q and k columns of a fused `(sequences·tokens, 3·width)` QKV matrix
    /// (`[Q | K | V]`, head h at columns h·headDim of each part). The first `tokens − patchTokens` rows of
    /// every sequence are prefix tokens: rounded to bf16 but not rotated, as `apply_rope`.
    public func apply(qkv: UnsafeMutablePointer<Float>, sequences: Int, tokens: Int, width: Int) {
        let patches = sin.shape[0], e = headDim, half = e / 2
        let prefix = tokens - patches
        precondition(prefix >= 0 && width % e == 0, "RoPE: \(tokens) tokens, \(patches) table rows, width \(width)")
        let p = SharedPointer(qkv), sp = SharedPointer(sin.pointer), cp = SharedPointer(cos.pointer)
        let heads = width / e
        let bf = bfloat16
        Parallel.forRanges(sequences * tokens, minChunk: 16) { range in
            var x = [Float](repeating: 0, count: e)
            for row in range {
                let token = row % tokens
                for part in 0..<2 {
                    for h in 0..<heads {
                        let v = p + row * 3 * width + part * width + h * e
                        if bf { for j in 0..<e { x[j] = BFloat16.round(v[j]) } } else { for j in 0..<e { x[j] = v[j] } }
                        guard token >= prefix else {
                            for j in 0..<e { v[j] = x[j] }
                            continue
                        }
                        let s = sp + (token - prefix) * e, c = cp + (token - prefix) * e
                        for j in 0..<e {
                            let rotated = j < half ? -x[j + half] : x[j - half]
                            if bf {
                                v[j] = BFloat16.round(BFloat16.round(x[j] * c[j]) + BFloat16.round(rotated * s[j]))
                            } else {
                                v[j] = x[j] * c[j] + rotated * s[j]
                            }
                        }
                    }
                }
            }
        }
    }
}
