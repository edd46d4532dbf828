/// Deterministic test values in [-1, 1) from a xorshift64 stream (the same sequence for a seed on every
/// machine), for kernel and layer tests that compare against float64 definitions.
public enum TestRandom {
    public static func values(count: Int, seed: UInt64) -> [Float] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return Float(Double(s >> 40) / Double(1 << 23) - 1)
        }
    }
}
