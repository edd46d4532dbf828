import ArgumentParser
import Dispatch
import Foundation
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXModel
import SpectralXRaster
import SpectralXTensor
import Synchronization

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

    @Option(help: "Cores a matrix product is split over (default: all cores; never changes the bits).")
    var threads: Int?

    @Flag(help: "Time every convolution geometry of the model with every algorithm instead of the whole model.")
    var kernels = false

    @Option(help: "With --kernels: only the rows whose label contains this text (e.g. qkv, @56, fpn).")
    var filter: String?

    @Flag(help: "Print one JSON object on stdout (sgemm peak, per-batch medians, stages, peak RSS) instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Precisions to time, comma-separated (fp32, bf16, or fp32,bf16: both in the same run, side by "
                               + "side, with bf16's agreement with fp32 on the bench's own images). bf16 needs AVX512_BF16.",
                               valueName: "fp32|bf16|fp32,bf16"))
    var precision: String = "fp32"

    @Option(help: "Two domains DOMAIN_A,DOMAIN_B: also measure a 50/50 stream of both through the scheduler, with and without cross-domain batching (missing domains are synthesized in the default store).")
    var mixed: String?

    @Option(name: .customLong("raster"), help: "Instead of the model: GeoTIFF decode throughput (MB/s of decoded pixels) for this file; repeatable.")
    var rasters: [String] = []

    /// The frozen linears' path in this process: packed at load or per call, and the kernel's instruction set.
    static var linearsPath: String {
        (PackedWeight.isPreferred ? "packed-" : "mapped-") + (PackedWeight.kernelName ?? "?")
    }

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
                let peak = SgemmPeak.Probe().measure(runs: 7)
                print(String(format: "sgemm 2048³: median %.1f GFLOP/s (OpenBLAS %@ kernels)", peak.median, BLASRuntime.selection.active))
                KernelBench.run(runs: max(runs, 3), filter: filter)
                return
            }
            let precisions = try PrecisionOption.parseList(precision)
            Precision.packedAtLoad = Set(precisions)
            let batches = batch.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
            guard !batches.isEmpty, runs >= 1 else { throw CLIError("--batch needs positive sizes and --runs ≥ 1") }
            let mixedDomains = try mixed.map { spec -> [String] in
                let names = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard names.count == 2, !names[0].isEmpty, !names[1].isEmpty, names[0] != names[1] else {
                    throw CLIError("--mixed takes two different domain names, e.g. --mixed A,B")
                }
                return names
            }
            // Progress goes to stderr when stdout carries the JSON document.
            let note: (String) -> Void = json ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { print($0) }

            let root: URL
            if let models {
                root = URL(fileURLWithPath: models)
            } else {
                root = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-bench-store")
                for name in [domain] + (mixedDomains ?? []) where !FileManager.default.fileExists(atPath: ModelStoreLayout(root: root).adapterURL(name).path) {
                    // The main bench domain is the paper's C=32, K=23; extra --mixed domains are Sentinel-2-like.
                    let (c, k) = name == domain ? (32, 23) : (13, 9)
                    note("creating synthetic benchmark domain \(name) (C=\(c), K=\(k)) in \(root.path) …")
                    _ = try ModelStoreSynthesizer.synthesizeStore(at: root, domainName: name, bands: c, classes: k)
                }
            }
            let net = try SpectralXNetwork.load(store: ModelStoreLayout(root: root), domain: domain)
            let c = net.domain.bands, k = net.domain.classes

            let probe = SgemmPeak.Probe()
            let peak = probe.measure(runs: 7)
            let flop = ModelFLOPs.perImage(bands: c, classes: k, kind: net.backbone.configuration.kind)
            if !json {
                print(String(format: "sgemm 2048³: median %.1f GFLOP/s over %d runs (OpenBLAS %@ kernels, %d threads, %d cores)",
                             peak.median, peak.samples.count, BLASRuntime.selection.active, GEMM.threads, Parallel.cores))
                if let note = BLASRuntime.selection.note { print("blas: \(note)") }
                print("linears: \(Self.linearsPath) (SPECTRALX_GEMM=openblas|packed chooses)"
                      + (precisions.contains(.bf16) ? "; bf16 kernel \(PackedBF16Weight.kernelName)" : ""))
                let held = net.backbone.packedBytes
                print(String(format: "backbone packed linears: fp32 %.2f GB, bf16 %.2f GB", Double(held.fp32) / 1e9, Double(held.bf16) / 1e9))
                print(String(format: "model: %@ backbone, C=%d K=%d, %.1f GFLOP per image (spec §8 count of the direct computation; GFLOP/s below are effective: the network does less arithmetic)",
                             net.backbone.configuration.kind.rawValue, c, k, flop / 1e9))
            }

            var batchObjects: [JSONValue] = [], comparisons: [JSONValue] = []
            for b in batches {
              let x = BenchInput.make(batch: b, bands: c)
              var logits: [Precision: Tensor] = [:], perImage: [Precision: Double] = [:]
              for p in precisions {
                PeakMemory.reset()
                logits[p] = net(x, precision: p)  // warm-up: page in the mapped weights, size caches
                var totals: [Double] = [], cpu: [Double] = [], adjacentPeaks: [Double] = [], faults: [Double] = []
                var computed: [Double] = []
                var stages: [String: [Double]] = [:], stageFlops: [String: Double] = [:]
                var order: [String] = []
                for _ in 0..<runs {
                    adjacentPeaks.append(probe.measure(runs: 3).median)
                    let trace = ForwardTrace()
                    let c0 = ProcessCPU.seconds(), f0 = ProcessCPU.minorFaults()
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let (_, flops) = ArithmeticCount.measure { net(x, trace: trace, precision: p) }
                    totals.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                    computed.append(flops)
                    cpu.append(ProcessCPU.seconds() - c0)
                    faults.append(Double(ProcessCPU.minorFaults() - f0))
                    stageFlops = trace.stageFlops  // the same every run
                    for (s, sec) in trace.stageSeconds {
                        if stages[s] == nil { order.append(s) }
                        stages[s, default: []].append(sec)
                    }
                }
                let rss = PeakMemory.peakBytes().map { $0 - probe.bytes }
                let total = median(totals)
                perImage[p] = total / Double(b)
                let gflops = flop * Double(b) / total / 1e9
                // Each run against the peak measured just before it, then the median of those ratios.
                let adjacentRatio = median(zip(totals, adjacentPeaks).map { flop * Double(b) / $0 / 1e9 / $1 })
                // The arithmetic the network did (its products' multiply-adds, counted), per image, and the
                // rate of that arithmetic against the peak measured just before each run.
                let computedPerImage = median(computed) / Double(b)
                let computedRatio = median(zip(zip(totals, adjacentPeaks), computed).map { $1 / $0.0 / 1e9 / $0.1 })
                if json {
                    batchObjects.append(.object([
                        ("batch", .number("\(b)")),
                        ("precision", .string(p.rawValue)),
                        ("seconds_per_image", .number(JSONNumber.format(total / Double(b)))),
                        ("runs", .array(totals.map { .number(JSONNumber.format($0 / Double(b))) })),
                        ("effective_gflops", .number(JSONNumber.format(gflops))),
                        ("effective_over_peak", .number(JSONNumber.format(gflops / peak.median))),
                        ("adjacent_peaks_gflops", .array(adjacentPeaks.map { .number(JSONNumber.format($0)) })),
                        ("effective_over_adjacent_peak", .number(JSONNumber.format(adjacentRatio))),
                        ("gflop_computed_per_image", .number(JSONNumber.format(computedPerImage / 1e9))),
                        ("computed_over_direct", .number(JSONNumber.format(computedPerImage / flop))),
                        ("computed_over_adjacent_peak", .number(JSONNumber.format(computedRatio))),
                        ("stages", .object(order.map { ($0, .number(JSONNumber.format(median(stages[$0]!)))) })),
                        ("stages_gflop_computed_per_image", .object(order.map {
                            ($0, .number(JSONNumber.format((stageFlops[$0] ?? 0) / Double(b) / 1e9)))
                        })),
                        ("peak_rss_bytes", rss.map { .number("\($0)") } ?? .null),
                        // CPU time of the whole process per image (all threads): robust to a shared machine.
                        ("cpu_seconds_per_image", .number(JSONNumber.format(median(cpu) / Double(b)))),
                        // Pages first touched during a forward (fresh memory the kernel must clear): 0 when
                        // the allocator reuses the previous pass's buffers (AllocatorTuning).
                        ("minor_page_faults_per_image", .number(JSONNumber.format(median(faults) / Double(b)))),
                    ]))
                    continue
                }
                print("")
                print(String(format: "batch %d %@: median %.3f s (%.3f s/image, %.2f images/s) — %.1f GFLOP/s = %.0f%% of sgemm peak [runs: %@]",
                             b, p.rawValue, total, total / Double(b), Double(b) / total, gflops, 100 * gflops / peak.median,
                             totals.map { String(format: "%.3f", $0) }.joined(separator: " ")))
                print(String(format: "  against the sgemm peak measured before each run: median %.0f%% [peaks: %@]", 100 * adjacentRatio,
                             adjacentPeaks.map { String(format: "%.0f", $0) }.joined(separator: " ")))
                print(String(format: "  arithmetic: %.1f GFLOP per image in products = %.1f%% of the direct %.1f; they ran at %.0f%% of the peak before each run",
                             computedPerImage / 1e9, 100 * computedPerImage / flop, flop / 1e9, 100 * computedRatio))
                for s in order {
                    let m = median(stages[s]!)
                    let f = stageFlops[s] ?? 0
                    print("  " + s.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: " %8.3f s  %5.1f%%", m, 100 * m / total)
                          + (f > 0 ? String(format: "  %7.2f GFLOP/image in products, %5.0f GFLOP/s", f / Double(b) / 1e9, f / m / 1e9) : ""))
                }
                if let rss { print(String(format: "  peak RSS %.2f GB", Double(rss) / 1e9)) }
                print(String(format: "  CPU time %.3f s per image (all threads, median), %.0f minor page faults per image",
                             median(cpu) / Double(b), median(faults) / Double(b)))
              }
              // Each further precision against the first, on this batch's images.
              guard let base = precisions.first, let reference = logits[base] else { continue }
              for p in precisions.dropFirst() {
                  guard let other = logits[p], let t0 = perImage[base], let t1 = perImage[p] else { continue }
                  let a = LogitAgreement(reference, other)
                  if json {
                      comparisons.append(.object([
                          ("batch", .number("\(b)")), ("precision", .string(p.rawValue)), ("against", .string(base.rawValue)),
                          ("speedup", .number(JSONNumber.format(t0 / t1))),
                          ("argmax_agreement_percent", .number(JSONNumber.format(a.argmaxAgreementPercent))),
                          ("max_abs_logit_error", .number(JSONNumber.format(a.maxAbsError))),
                          ("mean_abs_logit_error", .number(JSONNumber.format(a.meanAbsError))),
                      ]))
                  } else {
                      print(String(format: "batch %d %@ vs %@: %.2f× the speed; argmax agreement %.3f%%, max abs logit error %.4g, mean %.4g",
                                   b, p.rawValue, base.rawValue, t0 / t1, a.argmaxAgreementPercent, a.maxAbsError, a.meanAbsError))
                  }
              }
            }

            var mixedObject: JSONValue?
            if let names = mixedDomains {
                let maxBatch = batches.max()!
                note("mixed stream \(names[0])/\(names[1]), max batch \(maxBatch) …")
                let r = try MixedStreamBench.run(root: root, domains: names, maxBatch: maxBatch, imagesPerClient: max(2, runs))
                if json {
                    mixedObject = .object([
                        ("domains", .array(names.map { .string($0) })),
                        ("max_batch", .number("\(maxBatch)")),
                        ("images", .number("\(r.images)")),
                        ("images_per_s_mixing", .number(JSONNumber.format(r.mixing))),
                        ("images_per_s_one_domain_per_batch", .number(JSONNumber.format(r.separate))),
                    ])
                } else {
                    print("")
                    print(String(format: "mixed %@+%@ stream (%d images, max batch %d): %.3f images/s mixing, %.3f images/s one domain per batch (%.2f×)",
                                 names[0], names[1], r.images, maxBatch, r.mixing, r.separate, r.mixing / r.separate))
                }
            }
            if json {
                var members: [(String, JSONValue)] = [
                    ("sgemm_peak_gflops", .number(JSONNumber.format(peak.median))),
                    ("blas_core", .string(BLASRuntime.selection.active)),
                    ("blas_core_detected", .string(BLASRuntime.selection.detected)),
                    ("linears", .string(Self.linearsPath)),
                    ("gflop_per_image", .number(JSONNumber.format(flop / 1e9))),
                    ("bands", .number("\(c)")), ("classes", .number("\(k)")),
                    ("threads", .number("\(GEMM.threads)")), ("cores", .number("\(Parallel.cores)")),
                    ("precisions", .array(precisions.map { .string($0.rawValue) })),
                    ("bf16_kernel", .string(PackedBF16Weight.kernelName)),
                    ("backbone_packed_bytes", .object([("fp32", .number("\(net.backbone.packedBytes.fp32)")),
                                                       ("bf16", .number("\(net.backbone.packedBytes.bf16)"))])),
                    ("batches", .array(batchObjects)),
                ]
                if !comparisons.isEmpty { members.append(("comparisons", .array(comparisons))) }
                if let mixedObject { members.append(("mixed", mixedObject)) }
                print(JSONValue.object(members).pythonCompactJSON())
            }
            if !alsoDomains.isEmpty {
                try BenchComparison.run(store: ModelStoreLayout(root: root), first: (domain, net), others: alsoDomains,
                                        batches: batches, runs: runs)
            }
        }
    }
}

/// JSON number text for a finite double (non-finite values, which JSON cannot carry, become 0).
enum JSONNumber {
    static func format(_ v: Double) -> String { v.isFinite ? String(format: "%.6g", v) : "0" }
}

/// User + system CPU time of this process (all threads).
enum ProcessCPU {
    static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Minor page faults of this process so far (all threads).
    static func minorFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt
    }
}

/// Peak resident memory of this process (Linux: VmHWM, reset through /proc/self/clear_refs).
enum PeakMemory {
    /// Starts a new peak at the current resident size (Linux ≥ 4.0; elsewhere a no-op).
    static func reset() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    static func peakBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}

/// Throughput of a 50/50 stream of two domains through the real scheduler: `maxBatch` closed-loop
/// clients (half per domain), each submitting `imagesPerClient` images one after another, so that a
/// domain alone never fills a batch — once with cross-domain batching, once without.
enum MixedStreamBench {
    static func run(root: URL, domains: [String], maxBatch: Int, imagesPerClient: Int) throws
        -> (mixing: Double, separate: Double, images: Int)
    {
        let store = ModelStore(root: root)
        for name in domains { _ = try store.load(name) }
        let leases = try domains.map { try store.lease($0) }
        defer { leases.forEach { $0.release() } }
        let clients = max(2, maxBatch)
        let inputs = leases.map { l in BenchInput.make(batch: 1, bands: l.domain.bands).toArray() }
        func rate(mixing: Bool) throws -> Double {
            let scheduler = BatchScheduler(runner: NetworkBatchRunner(), configuration: SchedulerConfiguration(
                maxBatchSize: maxBatch, maxQueueDelay: .milliseconds(50), maxQueueLength: 4 * clients,
                defaultTimeout: .seconds(3600), mixModels: mixing))
            defer { scheduler.shutdown() }
            // Warm-up: one image per domain.
            for (i, l) in leases.enumerated() { _ = try scheduler.submit(model: DomainRun(l.domain), input: inputs[i]) }
            let failures = Mutex(0)
            let group = DispatchGroup()
            let t0 = DispatchTime.now().uptimeNanoseconds
            for client in 0..<clients {
                group.enter()
                let which = client % 2
                let lease = leases[which], input = inputs[which]
                Thread.detachNewThread {
                    for _ in 0..<imagesPerClient {
                        if (try? scheduler.submit(model: DomainRun(lease.domain), input: input)) == nil { failures.withLock { $0 += 1 } }
                    }
                    group.leave()
                }
            }
            group.wait()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if failures.withLock({ $0 }) > 0 { throw CLIError("mixed stream: \(failures.withLock { $0 }) images failed") }
            return Double(clients * imagesPerClient) / seconds
        }
        let separate = try rate(mixing: false)
        let mixing = try rate(mixing: true)
        return (mixing, separate, clients * imagesPerClient)
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The machine's float32 GEMM throughput, measured in the same process as the model.
enum SgemmPeak {
    /// The 2048³ sgemm with its three matrices allocated once, so that it can be measured again next to
    /// every timed run of the model: this machine's speed drifts by tens of percent within minutes, and
    /// a ratio against a peak taken a minute earlier carries that drift. Its matrices are resident while
    /// the model runs; `bytes` is what the bench subtracts from its peak RSS figures.
    final class Probe {
        let n: Int
        private let a: Tensor, b: Tensor, c: Tensor
        var bytes: Int { 3 * n * n * MemoryLayout<Float>.stride }

        init(n: Int = 2048) {
            self.n = n
            a = Tensor(zeros: [n, n])
            b = Tensor(zeros: [n, n])
            c = Tensor(zeros: [n, n])
            for i in 0..<(n * n) {
                a.mutablePointer[i] = Float(i % 7) * 0.1
                b.mutablePointer[i] = Float(i % 5) * 0.1
            }
        }

        /// One untimed product, then the median GFLOP/s of `runs` timed ones.
        func measure(runs: Int) -> (median: Double, samples: [Double]) {
            GEMM.Reference.multiply(m: n, n: n, k: n, a: a.pointer, b: b.pointer, c: c.mutablePointer)
            var samples: [Double] = []
            for _ in 0..<runs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                GEMM.Reference.multiply(m: n, n: n, k: n, a: a.pointer, b: b.pointer, c: c.mutablePointer)
                let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                samples.append(2 * Double(n) * Double(n) * Double(n) / s / 1e9)
            }
            return (median(samples), samples)
        }
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

