import Foundation

/// bfloat16 as a storage dtype and as PyTorch's bf16 arithmetic: every bf16 element-wise op
/// computes in float32 and rounds the result to bf16, round-to-nearest-even (c10 `BFloat16`).
/// The one place of this rounding: the safetensors BF16 codec and the DINOv3 RoPE both use it.
public enum BFloat16 {
    /// The bf16 bit pattern nearest to `x` (ties to even; NaN stays a quiet NaN).
    @inlinable
    public static func bits(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: (b >> 16) | 0x0040) }
        let rounded = b &+ (0x7FFF &+ ((b >> 16) & 1))
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// The float32 value of a bf16 bit pattern (exact).
    @inlinable
    public static func float(bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// `x` rounded to bf16 and widened back to float32: PyTorch's `x.to(bfloat16).float()`.
    @inlinable
    public static func round(_ x: Float) -> Float { float(bits: bits(x)) }
}

/// The non-generated buffers of the DINOv3 backbone (fixtures/dinov3 README §1, spec dinov3 §5.1).
public enum DINOv3Constants {
    /// `RopePositionEmbedding._init_weights` with dtype bfloat16: `periods[k] = base ** (2k / (headDim/2))`
    /// for k < headDim/4, each operation (the exponent, the power) rounded to bf16.
    public static func ropePeriodBits(base: Double = 100, headDim: Int = 64) -> [UInt16] {
        (0..<(headDim / 4)).map { k in
            let exponent = BFloat16.round(BFloat16.round(Float(2 * k)) / Float(headDim / 2))
            return BFloat16.bits(powf(BFloat16.round(Float(base)), exponent))
        }
    }

    /// `LinearKMaskedBias.bias_mask` as `init_weights_vit` sets it: 1 on the q and v thirds, 0 on k.
    public static func keyBiasMask(width: Int) -> [Float] {
        (0..<(3 * width)).map { (width..<(2 * width)).contains($0) ? 0 : 1 }
    }

    /// Little-endian bytes of a constant entry's contents, by its layout rule (nil: not a constant).
    public static func bytes(rule: String, shape: [Int]) -> [UInt8]? {
        switch rule {
        case WeightRule.constRopePeriods.rawValue:
            let n = shape.first ?? 0
            return ropePeriodBits(headDim: 4 * n).flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        case WeightRule.constKBiasMask.rawValue:
            let n = shape.first ?? 0
            return keyBiasMask(width: n / 3).flatMap { v -> [UInt8] in
                let b = v.bitPattern
                return [UInt8(truncatingIfNeeded: b), UInt8(truncatingIfNeeded: b >> 8),
                        UInt8(truncatingIfNeeded: b >> 16), UInt8(truncatingIfNeeded: b >> 24)]
            }
        default:
            return nil
        }
    }
}
