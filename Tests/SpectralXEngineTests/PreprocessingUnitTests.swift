import Testing
import SpectralXEngine
import SpectralXRaster
import SpectralXTestSupport

@Suite struct PreprocessingUnitTests {
    @Test func minMaxNormalisation() throws {
        let v: [Double] = [10, 20, 30, 40, /* constant band */ 7, 7, 7, 7]
        let out = try Preprocessing.minMaxNormalize(v, bands: 2, pixelsPerBand: 4)
        #expect(out[0] == 0 && out[3] == Float(30 / (30 + 1e-8)) && out[1] == Float(10 / (30 + 1e-8)))
        #expect(Array(out[4...]) == [7, 7, 7, 7])
        #expect(throws: RasterError.self) { try Preprocessing.minMaxNormalize(v, bands: 3, pixelsPerBand: 4) }
    }

    @Test func antialiasedDownscaleByTwo() throws {
        // Triangle of support 2 at scale 2: weights (3,3,1)/7 and (1,3,3)/7.
        let out = try Preprocessing.resizeAntialiased([0, 7, 14, 21], channels: 1, inHeight: 1, inWidth: 4, outHeight: 1, outWidth: 2)
        #expect(abs(out[0] - 5) < 1e-6 && abs(out[1] - 16) < 1e-6)
        // Same along the vertical axis.
        let outV = try Preprocessing.resizeAntialiased([0, 7, 14, 21], channels: 1, inHeight: 4, inWidth: 1, outHeight: 2, outWidth: 1)
        #expect(outV == out)
        // Identity size is a copy; constant images stay constant (weights sum to 1).
        let c = [Float](repeating: 0.3, count: 2 * 37 * 41)
        #expect(try Preprocessing.resizeAntialiased(c, channels: 2, inHeight: 37, inWidth: 41, outHeight: 37, outWidth: 41) == c)
        let r = try Preprocessing.resizeAntialiased(c, channels: 2, inHeight: 37, inWidth: 41, outHeight: 224, outWidth: 13)
        #expect(r.count == 2 * 224 * 13 && r.allSatisfy { abs($0 - 0.3) < 1e-6 })
    }

    @Test func plainBilinearUpscale() throws {
        // align_corners=False: 2 → 4 gives 0, 0.25, 0.75, 1 (edge clamped).
        let out = try Preprocessing.resizeBilinear([0, 1], channels: 1, inHeight: 1, inWidth: 2, outHeight: 1, outWidth: 4)
        #expect(out == [0, 0.25, 0.75, 1])
        let two = try Preprocessing.resizeBilinear([0, 1, 2, 3], channels: 1, inHeight: 2, inWidth: 2, outHeight: 4, outWidth: 4)
        #expect(two[5] == 0.75 && two[0] == 0 && two[15] == 3)
    }

    @Test func labelsFromLogits() throws {
        // 3 classes on 2×2: class 1 wins left column, class 2 right column, tie on pixel 3 goes to the first.
        let logits: [Float] = [0, 0, 0, 5,
                               1, 0, 1, 5,
                               0, 2, 0, 1]
        #expect(try Preprocessing.argmax(logits, classes: 3, pixels: 4) == [1, 2, 1, 0])
        let up = try Preprocessing.labels(fromLogits: logits, classes: 3, inHeight: 2, inWidth: 2, height: 4, width: 4)
        #expect(up.count == 16 && up[0] == 1)
        #expect(throws: RasterError.self) { try Preprocessing.argmax(logits, classes: 300, pixels: 4) }
    }
}
