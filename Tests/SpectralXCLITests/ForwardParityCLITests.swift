import Foundation
import SpectralXRaster
import SpectralXTestSupport
import Testing

/// `spectralx forward` through the real executable: parity with upstream, and the same bytes whatever the
/// instruction set, the thread count, the OpenBLAS kernels or whether weights are packed at load.
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

    /// Settings that must not change a single bit of the logits: SIMD capped at AVX2 (against AVX-512 where
    /// the CPU has it), one thread (GEMM slices and the loop pool), another OpenBLAS kernel family (OpenBLAS
    /// is not on the forward path), and the linears packed per call instead of at load.
    static let settings: [(String, [String: String?])] = [
        ("default", [:]),
        ("SPECTRALX_SIMD=avx2", ["SPECTRALX_SIMD": "avx2"]),
        ("one thread", ["SPECTRALX_THREADS": "1", "SPECTRALX_POOL_THREADS": "1"]),
        ("OPENBLAS_CORETYPE=Prescott", ["OPENBLAS_CORETYPE": "Prescott"]),
        ("SPECTRALX_GEMM=mapped", ["SPECTRALX_GEMM": "mapped"]),
    ]

    /// Runs `spectralx forward` under every setting; expects byte-identical output files.
    func expectSameBytes(domain: String, input: String, tag: String, extra: [String] = [],
                         settings: [(String, [String: String?])] = Self.settings) throws {
        var first: (String, Data)?
        for (name, env) in settings {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("forward-\(tag)-\(getpid()).npy")
            defer { try? FileManager.default.removeItem(at: out) }
            let r = try CLI.run(["forward", "--models", SharedTestStore.root.path, "--domain", domain, input, "-o", out.path] + extra,
                                environment: env)
            #expect(r.status == 0, "\(name): stderr: \(r.stderr)")
            guard r.status == 0 else { return }
            let bytes = try Data(contentsOf: out)
            if let (firstName, firstBytes) = first {
                #expect(bytes == firstBytes, "domain \(domain): logits under \(name) differ from \(firstName)")
            } else {
                first = (name, bytes)
            }
        }
    }

    @Test("spectralx forward gives the same bytes under every SIMD level, thread count, OpenBLAS kernel and weight packing")
    func sameBytesEverywhere() throws {
        let dir = try CLI.temporaryDirectory("invariance")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The synthetic domain `syn` (4 bands) is always in the test store: two images, values in [0, 1).
        let input = dir.appendingPathComponent("syn.npy").path
        try NpyWriter.write(TestRandom.values(count: 2 * 4 * 224 * 224, seed: 2026).map { abs($0) }, shape: [2, 4, 224, 224], to: input)
        try expectSameBytes(domain: "syn", input: input, tag: "syn")
        // The DINOv3 fixture domain D (its bf16 q/k and MMoE near-tie make it the sensitive one).
        if SharedTestStore.dinov3Synthesis != nil, let fixtures = SharedTestStore.fixturesDirectory {
            try expectSameBytes(domain: "D", input: fixtures.appendingPathComponent("inputB.npy").path, tag: "D")
        }
    }

    /// bf16 keeps the promise on a CPU with AVX512_BF16 (thread count, weight packing, OpenBLAS kernels),
    /// and where the kernels are capped below AVX-512 it is refused with the reason instead of running.
    @Test("spectralx forward --precision bf16: the same bytes under every thread count and weight packing; refused below AVX-512")
    func bf16SameBytes() throws {
        let dir = try CLI.temporaryDirectory("bf16-invariance")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("syn.npy").path
        try NpyWriter.write(TestRandom.values(count: 2 * 4 * 224 * 224, seed: 2027).map { abs($0) }, shape: [2, 4, 224, 224], to: input)
        let capped = try CLI.run(["forward", "--models", SharedTestStore.root.path, "--domain", "syn", input, "-o",
                                  dir.appendingPathComponent("capped.npy").path, "--precision", "bf16"],
                                 environment: ["SPECTRALX_SIMD": "avx2"])
        #expect(capped.status != 0 && capped.stderr.contains("AVX512_BF16"), "stderr: \(capped.stderr)")
        let probe = try CLI.run(["forward", "--models", SharedTestStore.root.path, "--domain", "syn", input, "-o",
                                 dir.appendingPathComponent("probe.npy").path, "--precision", "bf16"])
        guard probe.status == 0 else {
            #expect(probe.stderr.contains("AVX512_BF16"), "stderr: \(probe.stderr)")
            print("SKIP: no AVX512_BF16 on this CPU: \(probe.stderr)")
            return
        }
        try expectSameBytes(domain: "syn", input: input, tag: "syn-bf16", extra: ["--precision", "bf16"],
                            settings: Self.settings.filter { $0.0 != "SPECTRALX_SIMD=avx2" })
    }
}
