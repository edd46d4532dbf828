import SpectralXLayers
import SpectralXTensor
import Testing
import SpectralXTestSupport

/// `Linear.apply(_:rows:outputs:float64Accumulation:into:outStride:)` (DINOv3's q/k columns of the fused
/// qkv): the selected outputs of `x·Wᵀ + b` in their own columns, against a direct float64 evaluation.
@Suite("Linear output range")
struct LinearOutputRangeTests {
    @Test("both accumulations against float64, other columns untouched", arguments: [(1, false), (3, false), (1, true), (3, true)])
    func outputRange(_ images: Int, _ float64: Bool) {
        let tokens = 7, inFeatures = 45, outFeatures = 3 * 41, rows = images * tokens
        let linear = Linear(weight: randomValues([outFeatures, inFeatures], seed: 21), bias: randomValues([outFeatures], seed: 22))
        let x = randomValues([rows, inFeatures], seed: 23)
        let sentinel: Float = -777
        let y = Tensor(shape: [rows, outFeatures], values: [Float](repeating: sentinel, count: rows * outFeatures))
        let range = 41..<123   // the last two thirds, an odd offset
        linear.apply(x.pointer, rows: rows, outputs: range, float64Accumulation: float64, into: y.mutablePointer, outStride: outFeatures)
        for r in 0..<rows {
            for o in 0..<outFeatures {
                let got = y.pointer[r * outFeatures + o]
                guard range.contains(o) else { #expect(got == sentinel); continue }
                var s = Double(linear.bias!.pointer[o])
                for i in 0..<inFeatures { s += Double(x.pointer[r * inFeatures + i]) * Double(linear.weight.pointer[o * inFeatures + i]) }
                // float64: the correctly rounded value, within half an ulp of the exact sum (plus float64
                // error at a rounding midpoint); float32: sgemm noise of 45-term sums.
                let bound = float64 ? 0.5001 * Double(Float(s).ulp) : 1e-5
                #expect(abs(Double(got) - s) <= bound, "row \(r) output \(o): \(got) vs \(s)")
            }
        }
    }

    func randomValues(_ shape: [Int], seed: UInt64) -> Tensor {
        Tensor(shape: shape, values: TestRandom.values(count: shape.reduce(1, *), seed: seed))
    }
}
