import Dispatch
import Foundation
import SpectralXTensor

/// `spectralx bench --kernels`: every convolution geometry of the model through every algorithm that
/// supports it, so algorithm choices (and future Winograd variants) are decided by measurement.
enum KernelBench {
    /// (label, geometry, input side) for each distinct convolution in SpectralX at C = 32.
    static let geometries: [(String, ConvGeometry, Int)] = [
        ("hypert.module1 3×3 @224", ConvGeometry(inChannels: 64, outChannels: 64, kernel: 3, padding: 1), 224),
        ("hypert.module3 3×3 @112", ConvGeometry(inChannels: 128, outChannels: 128, kernel: 3, padding: 1), 112),
        ("hypert.conv2 3×3/2 @56", ConvGeometry(inChannels: 256, outChannels: 512, kernel: 3, stride: 2, padding: 1), 56),
        ("hypert.module2 2×2/2 @224", ConvGeometry(inChannels: 64, outChannels: 128, kernel: 2, stride: 2), 224),
        ("are.refine_spa.0 3×3/2 @28", ConvGeometry(inChannels: 512, outChannels: 256, kernel: 3, stride: 2, padding: 1), 28),
        ("are.refine 3×3 @14", ConvGeometry(inChannels: 256, outChannels: 256, kernel: 3, padding: 1), 14),
        ("neck.convs.0 3×3 @56", ConvGeometry(inChannels: 1024, outChannels: 1024, kernel: 3, padding: 1), 56),
        ("neck.convs.1 3×3 @28", ConvGeometry(inChannels: 1024, outChannels: 1024, kernel: 3, padding: 1), 28),
        ("neck.convs.3 3×3 @7", ConvGeometry(inChannels: 1024, outChannels: 1024, kernel: 3, padding: 1), 7),
        ("head.fpn 3×3 @56", ConvGeometry(inChannels: 512, outChannels: 512, kernel: 3, padding: 1), 56),
        ("head.bottleneck 3×3 @7", ConvGeometry(inChannels: 3072, outChannels: 512, kernel: 3, padding: 1), 7),
        ("head.fpn_bottleneck 3×3 @56", ConvGeometry(inChannels: 2048, outChannels: 512, kernel: 3, padding: 1), 56),
    ]

    static func run(runs: Int, filter: String? = nil) {
        let wanted = { (label: String) in filter.map { label.contains($0) } ?? true }
        print("convolution                    algorithm       median ms   GFLOP/s")
        for (label, g, side) in geometries where wanted(label) {
            let x = BenchInput.make(batch: 1, bands: g.inChannels).slice(0..<1)
            let input = side == 224 ? x : BilinearResize.resize(x, height: side, width: side)
            let w = Tensor(zeros: [g.outChannels, g.inChannels, g.kernel.h, g.kernel.w])
            for i in 0..<w.count { w.mutablePointer[i] = Float((i * 7919) % 1000) * 1e-5 - 5e-3 }
            let (ho, wo) = g.outputSize(height: side, width: side)
            let flop = 2.0 * Double(g.outChannels * ho * wo * g.inChannels * g.kernel.h * g.kernel.w)
            for choice in ConvolutionChoice.allCases where choice.supports(g) {
                let conv = Convolution(geometry: g, weight: w.pointer, bias: nil, choice: choice)
                _ = conv(input)
                var times: [Double] = []
                for _ in 0..<runs {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = conv(input)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
                let m = median(times)
                let name = choice == .automatic ? "auto→\(conv.algorithm.name)" : choice.rawValue
                print(label.padding(toLength: 31, withPad: " ", startingAt: 0) + name.padding(toLength: 26, withPad: " ", startingAt: 0) + String(format: "%9.2f %9.1f", m * 1e3, flop / m / 1e9))
            }
        }
        // The convolutions of upsampled maps, computed at the low resolution (ResizedConvolution).
        // GFLOP/s are effective: the direct count of the 3×3 on the upsampled map over the time.
        let resized: [(String, Int, Int, Int, Int)] = [
            ("neck∘head lateral 0 14→56", 1024, 512, 14, 56), ("neck∘head lateral 1 14→28", 1024, 512, 14, 28),
            ("neck∘head lateral 2 14→14", 1024, 512, 14, 14), ("fpn_bottleneck f1 28→56", 512, 512, 28, 56),
            ("fpn_bottleneck f2 14→56", 512, 512, 14, 56), ("fpn_bottleneck f3 7→56", 512, 512, 7, 56),
        ]
        for (label, cin, cout, low, high) in resized where wanted(label) {
            let x = BilinearResize.resize(BenchInput.make(batch: 1, bands: cin), height: low, width: low)
            let w = Tensor(zeros: [cout, cin, 3, 3])
            for i in 0..<w.count { w.mutablePointer[i] = Float((i * 7919) % 1000) * 1e-5 - 5e-3 }
            let conv = ResizedConvolution(outChannels: cout, inChannels: cin, weight: w.pointer)
            let y = Tensor(zeros: [1, cout, high, high])
            conv.accumulate(x, into: y)
            var times: [Double] = []
            for _ in 0..<runs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                conv.accumulate(x, into: y)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let m = median(times)
            let flop = 2.0 * Double(cout * high * high * cin * 9)
            print(label.padding(toLength: 31, withPad: " ", startingAt: 0) + conv.name.padding(toLength: 26, withPad: " ", startingAt: 0)
                  + String(format: "%9.2f %9.1f", m * 1e3, flop / m / 1e9))
        }

        // The ViT-L block's frozen linears at batch 1 and 4 (197 tokens per image): OpenBLAS in our
        // per-core slices, on its own pool and single-threaded, against the packed-weight kernel (what
        // the frozen linears use where PackedWeight.isPreferred) on all cores and on one. The variants
        // of a shape are timed in turn, round after round, so their ratios come from the same moments
        // of a machine whose speed drifts.
        print("\nlinear (M×K→N)                 threading       median ms   GFLOP/s   (* = what the model uses)")
        for images in [1, 4] {
            for (label, k, n) in [("qkv", 1024, 3072), ("proj", 1024, 1024), ("fc1", 1024, 4096), ("fc2", 4096, 1024)] {
                let m = 197 * images
                let title = "\(label) \(m)×\(k)→\(n)"
                guard wanted(title) else { continue }
                let a = Tensor(zeros: [m, k]), w = Tensor(zeros: [n, k]), c = Tensor(zeros: [m, n])
                for i in 0..<a.count { a.mutablePointer[i] = Float((i * 7919) % 1000) * 1e-3 - 0.5 }
                for i in 0..<w.count { w.mutablePointer[i] = Float((i * 104729) % 1000) * 1e-5 - 5e-3 }
                let flop = 2.0 * Double(m * n * k)
                var variants: [(String, () -> Void)] = [
                    ("sx_sgemm slices", { GEMM.multiply(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, c: c.mutablePointer, ldc: n) }),
                    ("openblas-pool", { GEMM.Reference.withPool(threads: Parallel.cores) {
                        GEMM.Reference.serial(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, c: c.mutablePointer, ldc: n) } }),
                    ("openblas 1 thread", { GEMM.Reference.serial(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, c: c.mutablePointer, ldc: n) }),
                ]
                if let packed = PackedWeight(weight: w.pointer, n: n, k: k) {
                    let mark = PackedWeight.isPreferred ? " *" : ""
                    variants.append(("packed" + mark, { packed.multiply(a.pointer, rows: m, lda: k, bias: nil, accumulate: false, into: c.mutablePointer, ldc: n) }))
                    variants.append(("packed, 1 thread", {
                        let before = GEMM.threads
                        GEMM.threads = 1
                        packed.multiply(a.pointer, rows: m, lda: k, bias: nil, accumulate: false, into: c.mutablePointer, ldc: n)
                        GEMM.threads = before
                    }))
                }
                for (_, run) in variants { run() }
                var times = Array(repeating: [Double](), count: variants.count)
                for _ in 0..<max(runs, 7) {
                    for (v, (_, run)) in variants.enumerated() {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        run()
                        times[v].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                    }
                }
                for (v, (name, _)) in variants.enumerated() {
                    let t = median(times[v])
                    print(title.padding(toLength: 31, withPad: " ", startingAt: 0) + name.padding(toLength: 16, withPad: " ", startingAt: 0)
                          + String(format: "%9.2f %9.1f", t * 1e3, flop / t / 1e9))
                }
            }
        }
    }
}
