import Foundation
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// `spectralx forward` on the fixture domain B, through the real executable (the CLI's GEMM path:
/// OpenBLAS, or the packed-weight linears with `SPECTRALX_GEMM=packed` in the environment).
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
