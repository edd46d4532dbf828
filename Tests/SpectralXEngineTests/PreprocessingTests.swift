import Foundation
import Testing
import SpectralXEngine
import SpectralXRaster
import SpectralXTestSupport

@Suite struct PreprocessingFixtureTests {
    /// Acceptance (spec §3): tile → preprocessing equals the upstream input within 1e-6.
    @Test(arguments: [("A", 0), ("A", 1), ("B", 0), ("B", 1)])
    func matchesUpstreamInput(domain: String, index: Int) throws {
        guard let tif = fixturePath("tile\(domain)-\(index).tif"), let npy = fixturePath("input\(domain).npy") else {
            print("skipping: \(SharedTestStore.skipReason)")
            return
        }
        let t0 = Date()
        let raster = try TIFFReader.read(path: tif)
        let t1 = Date()
        let got = try Preprocessing.preprocess(raster)
        let t2 = Date()
        print(String(format: "tile\(domain)-\(index): decode %.1f ms, preprocess %.1f ms", t1.timeIntervalSince(t0) * 1e3, t2.timeIntervalSince(t1) * 1e3))
        let ref = try NpyArray.read(path: npy)
        #expect(ref.shape.count == 4 && ref.shape[1] == raster.bands && ref.shape[2] == 224)
        let per = raster.bands * 224 * 224
        let all = ref.toFloat32()
        let want = Array(all[(index * per)..<((index + 1) * per)])
        #expect(got.count == want.count)
        var maxErr: Float = 0
        for i in 0..<min(got.count, want.count) { maxErr = max(maxErr, abs(got[i] - want[i])) }
        print("preprocessing tile\(domain)-\(index): max |error| vs input\(domain)[\(index)] = \(maxErr)")
        #expect(maxErr <= 1e-6)
    }
}

/// Path of a shared fixture file, nil when the fixtures are absent.
func fixturePath(_ name: String) -> String? {
    guard let d = SharedTestStore.fixturesDirectory else { return nil }
    let p = d.appendingPathComponent(name).path
    return FileManager.default.fileExists(atPath: p) ? p : nil
}
