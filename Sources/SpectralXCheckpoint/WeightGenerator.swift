import Dispatch

#if _endian(big)
#error("The synthetic weight writer stores host-order floats; safetensors requires little-endian.")
#endif

/// The deterministic synthetic-weight generator `splitmix64-fnv1a-v1` (fixtures/README.md §2).
///
/// Element i of a tensor depends only on (key, seed, lo, hi, i), so any slice can be produced
/// independently: chunks are generated in parallel straight into the destination buffer, and
/// the whole 413.8M-element model takes seconds instead of minutes.
public enum WeightGenerator {
    public static let name = "splitmix64-fnv1a-v1"
    /// The splitmix64 increment (golden-ratio constant).
    public static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// FNV-1a 64-bit hash of a byte sequence.
    public static func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// Per-tensor stream seed: FNV-1a-64 of the key's UTF-8 bytes XOR the file seed.
    public static func tensorSeed(key: String, seed: UInt64) -> UInt64 {
        fnv1a64(key.utf8) ^ seed
    }

    /// The splitmix64 output function applied to a state.
    @inline(__always)
    public static func mix(_ state: UInt64) -> UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// u_i = top 24 bits of the i-th output / 2^24, in [0, 1), exact in Double.
    @inline(__always)
    public static func uniform(tensorSeed seedK: UInt64, index: Int) -> Double {
        let state = seedK &+ UInt64(truncatingIfNeeded: index &+ 1) &* gamma
        return Double(mix(state) >> 40) * 0x1p-24
    }

    /// float32(lo + (hi − lo)·u): two separately rounded Double operations (multiply, then add;
    /// never fused), then round-to-nearest-even to Float.
    @inline(__always)
    public static func value(lo: Double, span: Double, u: Double) -> Float {
        let scaled = span * u
        let sum = lo + scaled
        return Float(sum)
    }

    /// Writes elements [startIndex, startIndex + out.count) of a tensor's stream, sequentially.
    public static func fill(_ out: UnsafeMutableBufferPointer<Float>, tensorSeed seedK: UInt64,
                            lo: Double, hi: Double, startIndex: Int = 0)
    {
        guard let p = out.baseAddress else { return }
        let span = hi - lo
        var state = seedK &+ UInt64(truncatingIfNeeded: startIndex) &* gamma
        for j in 0..<out.count {
            state &+= gamma
            let u = Double(mix(state) >> 40) * 0x1p-24
            p[j] = value(lo: lo, span: span, u: u)
        }
    }

    /// Same as `fill`, split into independent chunks computed concurrently on all cores.
    public static func fillParallel(_ out: UnsafeMutableBufferPointer<Float>, tensorSeed seedK: UInt64,
                                    lo: Double, hi: Double, startIndex: Int = 0,
                                    chunkElements: Int = 1 << 18)
    {
        let n = out.count
        let chunk = max(1, chunkElements)
        let chunks = (n + chunk - 1) / chunk
        if chunks <= 1 {
            fill(out, tensorSeed: seedK, lo: lo, hi: hi, startIndex: startIndex)
            return
        }
        let shared = DisjointAccess(out)  // each chunk writes its own element range
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let begin = c * chunk
            let end = min(n, begin + chunk)
            fill(UnsafeMutableBufferPointer(rebasing: shared.pointer[begin..<end]), tensorSeed: seedK,
                 lo: lo, hi: hi, startIndex: startIndex + begin)
        }
    }

    /// Fills raw little-endian bytes of a tensor: F32 from the stream, I64 (and any other dtype)
    /// with zeros. `byteOffset` and the buffer length must be multiples of the element size.
    public static func fillBytes(_ out: UnsafeMutableRawBufferPointer, dtype: SafeTensorsDType,
                                 tensorSeed seedK: UInt64, lo: Double, hi: Double, byteOffset: Int,
                                 parallel: Bool = true)
    {
        guard dtype == .f32, let base = out.baseAddress else {
            if out.count > 0 { out.initializeMemory(as: UInt8.self, repeating: 0) }
            return
        }
        let floats = UnsafeMutableBufferPointer(start: base.bindMemory(to: Float.self, capacity: out.count / 4),
                                                count: out.count / 4)
        if parallel {
            fillParallel(floats, tensorSeed: seedK, lo: lo, hi: hi, startIndex: byteOffset / 4)
        } else {
            fill(floats, tensorSeed: seedK, lo: lo, hi: hi, startIndex: byteOffset / 4)
        }
    }

    /// All values of a small F32 tensor (tests, spot checks).
    public static func values(key: String, seed: UInt64, lo: Double, hi: Double, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buf, initialised in
            fillParallel(buf, tensorSeed: tensorSeed(key: key, seed: seed), lo: lo, hi: hi)
            initialised = count
        }
    }
}
