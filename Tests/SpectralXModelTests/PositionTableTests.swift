import Foundation
import SpectralXModel
import SpectralXTensor
import Testing

@Suite("HyperT position tables")
struct PositionTableTests {
    @Test("PE2D equals upstream's table")
    func spatialTable() throws {
        guard Fixtures.root != nil else { print("SKIP: \(Fixtures.skipReason)"); return }
        let c = Comparison(PositionTables.spatial(), try NpyFixture.tensor("pe2d.npy"))
        print("pe2d: \(c)")
        #expect(c.maxAbs <= 2e-7)
    }

    @Test("spectral table for the WHU-OHS wavelengths equals upstream's")
    func spectralTable() throws {
        guard Fixtures.root != nil else { print("SKIP: \(Fixtures.skipReason)"); return }
        let c = Comparison(PositionTables.spectral(wavelengths: whuOHSWavelengths), try NpyFixture.tensor("pespec_whuohs.npy"))
        print("pespec: \(c)")
        #expect(c.maxAbs <= 2e-7)
    }

    /// Any other list: the float32 sin/cos of float32 arguments, interpolated in float64 over the
    /// band index, checked against an independent float64 evaluation of the same definition.
    @Test("spectral table for another wavelength list", arguments: [
        [0.443, 0.49, 0.56, 0.665, 0.705, 0.74, 0.783, 0.833, 0.865, 0.943, 1.38, 1.61, 2.19],
        [0.49, 0.56, 0.665, 0.842, 1.61, 2.19, 0.49, 0.56, 0.665, 0.842, 1.61, 2.19],
        [0.5, 2.0],
    ])
    func otherLists(_ wavelengths: [Double]) {
        let t = PositionTables.spectral(wavelengths: wavelengths)
        #expect(t.shape == [512, 784])
        let omega = PositionTables.omegaSpectral
        let c = wavelengths.count
        var worst = 0.0
        for m in stride(from: 0, to: 512, by: 7) {
            let x = Double(m) / 511 * Double(c - 1)
            let lo = min(Int(x), c - 2)
            let frac = x - Double(lo)
            for f in stride(from: 0, to: 784, by: 5) {
                func value(_ band: Int) -> Double {
                    let arg = Double(Float(Float(wavelengths[band]) * 1000) * omega[f % 392])
                    return f < 392 ? sin(arg) : cos(arg)
                }
                let ref = value(lo) + (value(lo + 1) - value(lo)) * frac
                worst = max(worst, abs(Double(t.pointer[m * 784 + f]) - ref))
            }
        }
        #expect(worst <= 3e-7, "max deviation \(worst)")
    }

    @Test("bundled frequencies are PyTorch's float32 values")
    func frequencies() {
        #expect(PositionTables.omega2D.count == 128 && PositionTables.omegaSpectral.count == 392)
        #expect(PositionTables.omega2D[0] == 1 && PositionTables.omegaSpectral[0] == 1)
        // ω_k within a few ulps of 1/10000^(k/n) (PyTorch's float32 pow is off by several ulps), strictly decreasing.
        for (n, table) in [(128, PositionTables.omega2D), (392, PositionTables.omegaSpectral)] {
            for k in 0..<n {
                let exact = Float(1 / pow(10000.0, Double(k) / Double(n)))
                #expect(abs(table[k] - exact) <= 1e-6 * exact)
                if k > 0 { #expect(table[k] < table[k - 1]) }
            }
        }
    }
}
