/// Vectorised transcendental functions for the element-wise work between GEMMs (GELU, softmax).
///
/// `exp` is the Cephes single-precision scheme (range reduction by ln 2 in two parts, degree-6
/// polynomial, exponent by bit construction) on 8 lanes; its error is ≤ 2 ulp over the range used,
/// the level of libm's `expf`. Inputs below −87.3 give ≈1e-38 instead of denormals/0, irrelevant
/// where it is used (softmax terms after max subtraction, erf's exp(−x²)); the MMoE, whose
/// semantics depend on exact underflow to 0, keeps libm.
public enum VectorMath {
    public typealias Vector = SIMD8<Float>

    @inline(__always)
    public static func exp(_ v: Vector) -> Vector {
        // Clamp with compares and blends: `clamped` and `rounded` go through generic, per-lane
        // standard-library code on SIMD8 (a fifth of the ViT's element-wise time in a profile).
        let hi = Vector(repeating: 88.3), lo = Vector(repeating: -87.3)
        var x = v.replacing(with: hi, where: v .> hi)
        x.replace(with: lo, where: x .< lo)
        // n = round-to-nearest-even(x·log2 e) by the 1.5·2²³ trick: after the addition the integer sits
        // in the low mantissa bits of t, so 2ⁿ is built from t's bit pattern with integer lane ops.
        let magic = Vector(repeating: 12_582_912)
        let t = x * 1.44269504088896341 + magic
        let n = t - magic
        var r = x - n * 0.693359375
        r = r - n * -2.12194440e-4
        var p = Vector(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * r * r + r + 1
        let bits = (unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
        return p * unsafeBitCast(bits, to: Vector.self)
    }

    /// GELU ½·x·(1 + erf(x/√2)) with PyTorch's erf (see `Activations.erf`), 8 lanes.
    @inline(__always)
    public static func gelu(_ v: Vector) -> Vector {
        let x = v * 0.70710678118654752
        let a = x.replacing(with: -x, where: x .< 0)
        let t = 1 / (a * 0.3275911 + 1)
        var r = Vector(repeating: 1.061405429)
        r = r * t + -1.453152027
        r = r * t + 1.421413741
        r = r * t + -0.284496736
        r = r * t + 0.254829592
        var e = 1 - r * t * exp(-(x * x))
        e.replace(with: -e, where: x .< 0)
        return v * 0.5 * (1 + e)
    }

    /// In place `x[i] = exp(x[i] − shift)`; returns the sum of the results.
    @inline(__always)
    public static func expShifted(_ x: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        let raw = UnsafeMutableRawPointer(x)
        var acc = Vector()
        var i = 0
        while i + 8 <= count {
            let e = exp(raw.loadUnaligned(fromByteOffset: i * 4, as: Vector.self) - shift)
            raw.storeBytes(of: e, toByteOffset: i * 4, as: Vector.self)
            acc += e
            i += 8
        }
        var sum = acc.sum()
        if i < count {
            var tail = Vector(repeating: -Float.infinity)
            for j in i..<count { tail[j - i] = x[j] }
            let e = exp(tail - shift)
            for j in i..<count { x[j] = e[j - i]; sum += e[j - i] }
        }
        return sum
    }
}
