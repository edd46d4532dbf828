import ArgumentParser
import Dispatch
import Foundation
import SpectralXCheckpoint
import SpectralXModel
import SpectralXRaster
import SpectralXTensor

/// `spectralx bench`: per-stage times, model GFLOP/s and its ratio to the sgemm peak measured in the
/// same run. Medians over `--runs` runs after one warm-up. Meaningful only in a release build.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the forward pass: per-stage times, GFLOP/s, % of measured sgemm peak.")

    @Option(help: "Model store; default: a synthetic C=32, K=23 store created in a cache directory.")
    var models: String?

    @Option(help: "Domain name in the store.")
    var domain: String = "bench"

    @Option(name: .customLong("also"), help: "Another domain of the same store to time in the same run (e.g. a DINOv3 next to a ViT-L domain); repeatable.")
    var alsoDomains: [String] = []

    @Option(help: "Comma-separated batch sizes.")
    var batch: String = "1,2"

    @Option(help: "Timed runs per batch size (after one warm-up).")
    var runs: Int = 3

    @Option(help: "Threads for OpenBLAS (default: all cores).")
    var threads: Int?

    @Flag(help: "Time every convolution geometry of the model with every algorithm instead of the whole model.")
    var kernels = false

    @Option(name: .customLong("raster"), help: "Instead of the model: GeoTIFF decode throughput (MB/s of decoded pixels) for this file; repeatable.")
    var rasters: [String] = []

    func run() throws {
        try reportingFailures {
            #if DEBUG
            print("warning: debug build — build with `swift build -c release` for meaningful numbers")
            #endif
            if let threads { GEMM.threads = threads }
            if !rasters.isEmpty {
                for path in rasters {
                    for threads in Set([1, Parallel.cores]).sorted() {
                        let r = try RasterBenchmark.decode(path: path, iterations: max(runs, 3), threads: threads)
                        print("\((path as NSString).lastPathComponent): \(r)")
                    }
                }
                return
            }
            if kernels {
                let peak = SgemmPeak.measure()
                print(String(format: "sgemm 2048³: median %.1f GFLOP/s", peak.median))
                KernelBench.run(runs: max(runs, 3))
                return
            }
            let batches = batch.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
            guard !batches.isEmpty, runs >= 1 else { throw CLIError("--batch needs positive sizes and --runs ≥ 1") }

            let root: URL
            if let models {
                root = URL(fileURLWithPath: models)
            } else {
                root = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-bench-store")
                if !FileManager.default.fileExists(atPath: ModelStoreLayout(root: root).adapterURL(domain).path) {
                    print("creating synthetic benchmark store at \(root.path) …")
                    _ = try ModelStoreSynthesizer.synthesizeStore(at: root, domainName: domain, bands: 32, classes: 23)
                }
            }
            let net = try SpectralXNetwork.load(store: ModelStoreLayout(root: root), domain: domain)
            let c = net.domain.bands, k = net.domain.classes

            let peak = SgemmPeak.measure()
            print(String(format: "sgemm 2048³: median %.1f GFLOP/s over %d runs (OpenBLAS, %d threads, %d cores)",
                         peak.median, peak.samples.count, GEMM.threads, Parallel.cores))
            let flop = ModelFLOPs.perImage(bands: c, classes: k, kind: net.backbone.configuration.kind)
            print(String(format: "model: %@ backbone, C=%d K=%d, %.1f GFLOP per image (spec §8 count of the direct computation; GFLOP/s below are effective: the Winograd 3×3 convolutions do fewer)",
                         net.backbone.configuration.kind.rawValue, c, k, flop / 1e9))

            for b in batches {
                let x = BenchInput.make(batch: b, bands: c)
                _ = net(x)  // warm-up: page in the mapped weights, size caches
                var totals: [Double] = []
                var stages: [String: [Double]] = [:]
                var order: [String] = []
                for _ in 0..<runs {
                    let trace = ForwardTrace()
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = net(x, trace: trace)
                    totals.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                    for (s, sec) in trace.stageSeconds {
                        if stages[s] == nil { order.append(s) }
                        stages[s, default: []].append(sec)
                    }
                }
                let total = median(totals)
                let gflops = flop * Double(b) / total / 1e9
                print("")
                print(String(format: "batch %d: median %.3f s (%.3f s/image, %.2f images/s) — %.1f GFLOP/s = %.0f%% of sgemm peak [runs: %@]",
                             b, total, total / Double(b), Double(b) / total, gflops, 100 * gflops / peak.median,
                             totals.map { String(format: "%.3f", $0) }.joined(separator: " ")))
                for s in order {
                    let m = median(stages[s]!)
                    print("  " + s.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: " %8.3f s  %5.1f%%", m, 100 * m / total))
                }
            }
            if !alsoDomains.isEmpty {
                try BenchComparison.run(store: ModelStoreLayout(root: root), first: (domain, net), others: alsoDomains,
                                        batches: batches, runs: runs)
            }
        }
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The machine's float32 GEMM throughput, measured in the same process as the model.
enum SgemmPeak {
    static func measure(n: Int = 2048, runs: Int = 7) -> (median: Double, samples: [Double]) {
        let a = Tensor(zeros: [n, n]), b = Tensor(zeros: [n, n]), c = Tensor(zeros: [n, n])
        for i in 0..<(n * n) {
            a.mutablePointer[i] = Float(i % 7) * 0.1
            b.mutablePointer[i] = Float(i % 5) * 0.1
        }
        GEMM.multiply(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.mutablePointer, ldc: n)
        var samples: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            GEMM.multiply(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.mutablePointer, ldc: n)
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(2 * Double(n) * Double(n) * Double(n) / s / 1e9)
        }
        return (median(samples), samples)
    }
}

/// FLOPs per image from the spec's multiply-add count (§8.1: 166.27 GMAC at C = 32, K = 23), adjusted
/// for the terms that depend on C (HyperT conv1 and the low-rank `down` conv) and K (`conv_seg`).
enum ModelFLOPs {
    /// DINOv3 runs 201 instead of 197 tokens through the ViT and AoMoA: +1.35 GMAC (spec dinov3 §7).
    static func perImage(bands c: Int, classes k: Int, kind: BackboneKind = .vitL) -> Double {
        var macs = 166.27e9 + Double(c - 32) * (50176 * 64 + 3136 * 16 * 16) + Double(k - 23) * (3136 * 512)
        if kind == .dinov3 { macs += 1.35e9 }
        return 2 * macs
    }
}

/// A deterministic smooth input in [0, 1], like a min–max normalised tile.
enum BenchInput {
    static func make(batch: Int, bands: Int) -> Tensor {
        let s = ModelShape.imageSize
        let x = Tensor(zeros: [batch, bands, s, s])
        let p = x.mutablePointer
        for i in 0..<x.count {
            let v = sin(Double(i % (s * s)) * 0.0007 + Double(i / (s * s)) * 0.37)
            p[i] = Float(0.5 + 0.5 * v)
        }
        return x
    }
}
