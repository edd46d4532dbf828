import Foundation
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// The CLI process opts into the packed-weight linears where the CPU prefers them
/// (`PackedWeight.useWhereFaster()`); test processes keep OpenBLAS (their many loaded models would not
/// fit in RAM as private packed copies). So the model-level parity of the packed path is checked here,
/// through the real `spectralx forward`.
@Suite("spectralx forward parity (the CLI's GEMM path)")
struct ForwardParityCLITests {
    @Test("spectralx forward on domain B within 1e-4 of logitsB.npy (the issue's bound)")
    func domainB() throws {
        guard let fixtures = SharedTestStore.fixturesDirectory else {
            print("SKIP: \(SharedTestStore.skipReason)")
            return
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("forwardB-\(getpid()).npy")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try CLI.run(["forward", "--models", SharedTestStore.root.path, "--domain", "B",
                             fixtures.appendingPathComponent("inputB.npy").path, "-o", out.path])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let ours = try NpyArray.read(path: out.path).toFloat32()
        let reference = try NpyArray.read(path: fixtures.appendingPathComponent("logitsB.npy").path).toFloat32()
        #expect(ours.count == reference.count)
        let worst = zip(ours, reference).map { abs($0 - $1) }.max() ?? .infinity
        print("spectralx forward, domain B: max|Δ| \(worst) against logitsB.npy")
        #expect(worst <= 1e-4, "max|Δ| \(worst)")
    }
}
