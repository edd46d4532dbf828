import SpectralXEngine
import Testing

/// The scene mode's window grid and blend against a direct transcription of upstream mmseg's
/// `EncoderDecoder.slide_inference` (whole-scene `preds` and `count_mat`, windows in row-major
/// order, `preds / count_mat`). No model: the logits are pseudo-random.
@Suite struct WindowBlendTests {
    static let S = 224

    /// mmseg's crop origins along one axis: `grids = max(L - crop + stride - 1, 0) // stride + 1`,
    /// `y1 = max(min(i * stride + crop, L) - crop, 0)`.
    static func mmsegOrigins(length L: Int, overlap: Int) -> [Int] {
        let stride = S - overlap
        let grids = max(L - S + stride - 1, 0) / stride + 1
        return (0..<grids).map { max(min($0 * stride + S, L) - S, 0) }
    }

    @Test func windowGridIsMmsegs() {
        for L in [1, 100, 223, 224, 225, 415, 416, 417, 448, 512, 608, 4096] {
            for overlap in [0, 1, 32, 112, 223] {
                #expect(WindowPlan.origins(length: L, overlap: overlap) == Self.mmsegOrigins(length: L, overlap: overlap),
                        "length \(L) overlap \(overlap)")
            }
        }
    }

    /// Band-by-band blending, as the pipeline drives it (emit the rows above the next window row,
    /// then advance), equals the whole-scene sum / count bit for bit.
    @Test(arguments: [(300, 500, 32), (224, 420, 32), (130, 300, 100), (450, 230, 0)])
    func blendIsSlideInferenceAverage(width W: Int, height H: Int, overlap: Int) throws {
        let K = 3
        let plan = WindowPlan(width: W, height: H, overlap: overlap)
        var rng = SplitMix(seed: UInt64(W * 1000 + H))
        // logits[window] (K, 224, 224)
        var logits: [[Float]] = []
        for _ in 0..<plan.total { logits.append((0..<(K * Self.S * Self.S)).map { _ in rng.nextFloat() }) }

        // Direct definition: whole-scene preds and count_mat.
        var preds = [Float](repeating: 0, count: K * H * W), countMat = [Float](repeating: 0, count: H * W)
        for (ri, y1) in plan.ys.enumerated() {
            for (ci, x1) in plan.xs.enumerated() {
                let l = logits[ri * plan.xs.count + ci]
                for y in y1..<min(y1 + Self.S, H) { for x in x1..<min(x1 + Self.S, W) {
                    for k in 0..<K { preds[(k * H + y) * W + x] += l[(k * Self.S + y - y1) * Self.S + x - x1] }
                    countMat[y * W + x] += 1
                } }
            }
        }
        #expect(!countMat.contains(0))
        var expected = preds
        for k in 0..<K { for p in 0..<(H * W) { expected[k * H * W + p] = preds[k * H * W + p] / countMat[p] } }

        // The blend, band by band.
        var got = [Float](repeating: .nan, count: K * H * W)
        var blend = WindowBlend(width: W, classes: K, top: 0)
        func emit(_ rows: Range<Int>) {
            guard !rows.isEmpty else { return }
            let m = blend.mean(rows: rows)
            let n = rows.count * W
            for k in 0..<K { for j in 0..<n { got[k * H * W + rows.lowerBound * W + j] = m[k * n + j] } }
        }
        for (ri, y0) in plan.ys.enumerated() {
            if y0 > blend.top { emit(blend.top..<y0); blend.advance(to: y0) }
            for (ci, x0) in plan.xs.enumerated() {
                try logits[ri * plan.xs.count + ci].withUnsafeBufferPointer {
                    try blend.add($0, x0: x0, y0: y0, rows: min(Self.S, H - y0))
                }
            }
        }
        emit(blend.top..<H)
        #expect(got == expected)
    }

    /// A window outside the held band is refused, not written past the buffers.
    @Test func outOfBandWindowIsRefused() {
        var blend = WindowBlend(width: 300, classes: 2, top: 100)
        let l = [Float](repeating: 1, count: 2 * Self.S * Self.S)
        #expect(throws: EngineError.self) { try l.withUnsafeBufferPointer { try blend.add($0, x0: 0, y0: 50, rows: 224) } }
        #expect(throws: EngineError.self) { try l.withUnsafeBufferPointer { try blend.add($0, x0: 0, y0: 101, rows: 224) } }
        #expect(throws: EngineError.self) { try l.withUnsafeBufferPointer { try blend.add($0, x0: 300, y0: 100, rows: 224) } }
        #expect(throws: EngineError.self) { try l.dropLast().withUnsafeBufferPointer { try blend.add($0, x0: 0, y0: 100, rows: 224) } }
    }
}

/// splitmix64, for reproducible pseudo-random logits.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) * 8 - 4 }
}
