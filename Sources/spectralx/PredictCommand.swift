import ArgumentParser
import Dispatch
import Foundation
import Logging
import SpectralXAPI
import SpectralXEngine
import SpectralXFetch
import SpectralXRaster
import SpectralXTensor
import SpectralXRemote
import Synchronization

/// `spectralx predict`: the service's segmentation pipeline, offline. Tiles or whole scenes (files,
/// or directories of .tif/.tiff/.npy; `--stack` for bands spread over several files) in, label
/// rasters out. `--mode tile` streams a scene of any size (windowed reading, row bands of windows,
/// a Cloud-Optimized GeoTIFF written row band by row band), showing windows done/total and an ETA.
/// Outputs appear atomically; outputs that already exist are skipped (`--overwrite` redoes them), so
/// an interrupted batch is resumed by running the same command again — and an interrupted scene
/// (GeoTIFF output, `--mode tile`) continues from the tile rows its COG spool had made durable
/// (`OUT.cog-spool/`, with `resume.json`: see `SceneCheckpoint`) instead of from scratch; `--shard
/// I/N` takes every N-th input for a fleet of workers (see deploy/k8s/batch-predict.yaml).
/// Inputs may be URLs (`http(s)://`, `s3://bucket/key`): COGs read in place by range; `--stac-item`
/// takes the bands of a STAC item, by the domain's wavelengths or `--assets`.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Segment tiles and scenes offline into label rasters.",
        discussion: """
            With one input (or --stack), -o is the output file (or a directory). With several inputs or a directory, -o is a
            directory and each output is named after its input (scene.tif → scene.labels.tif). GeoTIFF outputs are
            Cloud-Optimized (512² tiles, Deflate, overviews, colour table, GDAL_NODATA) with the class names in a
            .aux.xml sidecar. Progress goes to stderr.
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: "Domain name.") var domain: String
    @Argument(help: "Input tiles or scenes (.tif, .tiff, .npy) or directories of them.") var inputs: [String] = []
    @Option(help: "Comma-separated files whose bands form one scene, in order (same CRS and extent; coarser integer-multiple grids are resampled bilinearly to the finest).")
    var stack: String?
    @Option(name: [.customShort("o"), .long], help: "Output file (one input) or directory.") var output: String
    @Option(help: "geotiff, npy or png (default: geotiff for TIFF input, npy for NPY input).") var format: OutputFormat?
    @Option(help: "resize (the upstream pipeline, one tile) or tile (224² windows over the full-resolution scene).")
    var mode: InferenceMode = SegmentationOptions().mode
    @Option(help: "Window overlap in tile mode (0-223).") var overlap: Int = SegmentationOptions().overlap
    @Flag(help: "Write per-class probabilities instead of labels.") var scores = false
    @Option(help: "Probability encoding with --scores: float32 or uint8 (round(p·254), 255 = nodata).")
    var scoresDtype: ScoresEncoding = .float32
    @Option(help: "Label of invalid (nodata) pixels; must not be a class index.")
    var outputNodata: UInt8 = SegmentationOptions.defaultOutputNodata
    @Option(help: "A pixel is invalid when all (default) or any of its bands are nodata.")
    var nodataRule: NodataRule = SegmentationOptions().nodataRule
    @Flag(inversion: .prefixedNo, help: "Treat the input's GDAL_NODATA value as invalid (NaN and internal masks always are).")
    var nodataMask = SegmentationOptions().maskNodata
    @Option(help: PrecisionOption.help) var precision: Precision = .fp32
    @Option(help: "Largest batch per forward pass.") var maxBatch: Int = SchedulerConfiguration().maxBatchSize
    @Option(help: "Process only every N-th input, starting at the I-th (I/N, 0-based), e.g. $JOB_COMPLETION_INDEX/8.")
    var shard: String?
    @Flag(name: [.long, .customLong("force")], help: "Redo outputs that already exist (default: skip them).") var overwrite = false
    @Option(help: "Decoded blocks kept per input for windowed reading, in MiB.") var blockCacheMb: Int = 32
    @Option(help: "A STAC item URL: its assets paired with the domain's wavelengths (or --assets) form the scene.")
    var stacItem: String?
    @Option(help: "Comma-separated asset names of --stac-item, in band order (default: by wavelength).") var assets: String?
    @Option(help: "URL prefixes or hosts that may be fetched besides the URLs given (e.g. the hosts of a STAC item's assets); repeatable.")
    var fetchAllow: [String] = []

    func validate() throws {
        if inputs.isEmpty && stack == nil && stacItem == nil { throw ValidationError("give input files, a directory, --stack or --stac-item") }
        if [!inputs.isEmpty, stack != nil, stacItem != nil].filter({ $0 }).count > 1 {
            throw ValidationError("positional inputs, --stack and --stac-item are exclusive")
        }
        if assets != nil && stacItem == nil { throw ValidationError("--assets goes with --stac-item") }
        guard (0..<224).contains(overlap) else { throw ValidationError("--overlap must be between 0 and 223") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch must be at least 1") }
        guard blockCacheMb >= 1 else { throw ValidationError("--block-cache-mb must be at least 1") }
        if format == .json { throw ValidationError("--format must be geotiff, npy or png") }
        if let shard { _ = try Self.parseShard(shard) }
        if let stack, stack.split(separator: ",").count < 1 { throw ValidationError("--stack needs comma-separated files") }
    }

    static func parseShard(_ s: String) throws -> (index: Int, count: Int) {
        let p = s.split(separator: "/")
        guard p.count == 2, let i = Int(p[0]), let n = Int(p[1]), n >= 1, (0..<n).contains(i) else {
            throw ValidationError("--shard must be I/N with 0 ≤ I < N, got '\(s)'")
        }
        return (i, n)
    }

    /// Bounds for reading scenes: windowed reading never decodes a whole image, so the decoded-size
    /// bound is far above the service's; block and header bounds stay.
    static let sceneLimits = RasterLimits(maxDimension: 1 << 20, maxPixels: 1 << 36, maxBands: 1024, maxBlockBytes: 256 << 20,
                                          maxDecodedBytes: 1 << 42)

    /// One unit of work: a file, or the files of a stack (paths or URLs), or a STAC item.
    struct Job { var paths: [String]; var name: String; var stacItem: String? = nil }

    static func isURL(_ s: String) -> Bool {
        let l = s.lowercased()
        return l.hasPrefix("http://") || l.hasPrefix("https://") || l.hasPrefix("s3://")
    }

    /// The fetcher of this run: `--fetch-allow` plus the URLs given on the command line, each
    /// allowed as itself (the CLI's user names them; a STAC item's asset hosts need --fetch-allow
    /// unless they are the item's own origin, which is added too).
    private func makeFetcher() throws -> Fetcher {
        var given = inputs.filter(Self.isURL) + (stack ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter(Self.isURL)
        if let stacItem {
            given.append(stacItem)
            if let u = URL(string: stacItem), var c = URLComponents(url: u, resolvingAgainstBaseURL: false) {
                c.path = "/"; c.query = nil; c.fragment = nil
                if let origin = c.string { given.append(origin) }
            }
        }
        let policy = try FetchPolicy(allow: fetchAllow + given)
        return Fetcher(configuration: Fetcher.Configuration(policy: policy))
    }

    func run() throws {
        try reportingFailures {
            var jobs: [Job]
            if let stack {
                let paths = stack.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                for p in paths where !Self.isURL(p) && !FileManager.default.fileExists(atPath: p) { throw CLIError("\(p): no such file") }
                jobs = [Job(paths: paths, name: paths[0])]
            } else if let stacItem {
                jobs = [Job(paths: [], name: stacItem, stacItem: stacItem)]
            } else {
                jobs = try collectInputs().map { Job(paths: [$0], name: $0) }
                guard !jobs.isEmpty else { throw CLIError("no .tif/.tiff/.npy inputs found") }
            }
            if let shard {
                let (i, n) = try Self.parseShard(shard)
                jobs = jobs.enumerated().filter { $0.offset % n == i }.map(\.element)
                if jobs.isEmpty { FileHandle.standardError.write(Data("spectralx: shard \(i)/\(n) has no inputs\n".utf8)); return }
            }
            let single = jobs.count == 1 && (stack != nil || stacItem != nil) || (jobs.count == 1 && inputs.count == 1 && !isDirectory(inputs[0]))
            let fetcher = try makeFetcher()
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: output, isDirectory: &isDir)
            let outDir: URL?
            if single && !(exists && isDir.boolValue) && !output.hasSuffix("/") {
                outDir = nil
            } else {
                try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
                outDir = URL(fileURLWithPath: output)
            }

            let (root, _) = try store.root()
            try PrecisionOption.check(precision)
            Precision.packedAtLoad = [precision]
            let modelStore = ModelStore(root: root, logger: Logger(label: "spectralx.store"))
            try modelStore.load(domain)
            let engine = InferenceEngine(store: modelStore, scheduler: SchedulerConfiguration(
                maxBatchSize: maxBatch, maxQueueDelay: .milliseconds(50), maxQueueLength: max(64, maxBatch * 4),
                defaultTimeout: .seconds(7 * 86400)))
            defer { engine.scheduler.shutdown() }
            let lease = try modelStore.lease(domain)
            defer { lease.release() }
            var asked = SegmentationOptions(mode: mode, overlap: overlap, scores: scores, maskNodata: nodataMask,
                                              nodataRule: nodataRule, outputNodata: outputNodata)
            asked.precision = precision
            let options = asked

            // Open every input (headers only) to know the work: skipped outputs, windows in total.
            var todo: [(Job, any RasterSource, URL)] = []
            var failures: [String] = []
            for job in jobs {
                let target = outDir.map { $0.appendingPathComponent(outputName(for: job.name)) } ?? URL(fileURLWithPath: output)
                if FileManager.default.fileExists(atPath: target.path) && !overwrite {
                    FileHandle.standardError.write(Data("spectralx: \(target.path) exists, skipped (--overwrite to redo)\n".utf8))
                    continue
                }
                do {
                    let source = try open(job, fetcher: fetcher, wavelengths: lease.domain.config.wavelengths)
                    try engine.segmenter.check(lease.domain, source: source, options: options)
                    todo.append((job, source, target))
                } catch {
                    failures.append("\(job.name): \(error)")
                }
            }
            let total = todo.reduce(0) { $0 + Segmenter.windowCount(width: $1.1.width, height: $1.1.height, options: options) }
            let progress = Progress(total: total, unit: "windows", files: todo.count)
            let failed = Mutex(failures)
            let next = Mutex(0)
            let group = DispatchGroup()
            let work = todo
            // Several files in flight keep the scheduler's batches full; one scene batches its own windows.
            for _ in 0..<max(1, min(maxBatch, work.count)) {
                group.enter()
                Thread.detachNewThread { [self] in
                    defer { group.leave() }
                    while true {
                        let i = next.withLock { n -> Int in defer { n += 1 }; return n }
                        guard i < work.count else { return }
                        let (job, source, target) = work[i]
                        var last = 0
                        do {
                            let f = format ?? (job.name.lowercased().hasSuffix(".npy") ? .npy : .geotiff)
                            // GeoTIFFs resume (unless --overwrite) under the one rule: same input files, same model digest.
                            let output: SegmentationOutput = f == .geotiff && !overwrite
                                ? .resumableFile(path: target.path, scoresEncoding: scoresDtype, identity: resumeIdentity(job))
                                : .file(path: target.path, format: f, scoresEncoding: scoresDtype)
                            let report = try engine.segmenter.segment(lease.domain, source: source, options: options, output: output) { e in
                                if case .progress(let p) = e { progress.advance(by: p.windowsDone - last); last = p.windowsDone }
                            }
                            if report.resumedFromRow > 0 {
                                FileHandle.standardError.write(Data("spectralx: \(target.path): resumed at row \(report.resumedFromRow) of \(report.height) (rows above from the interrupted run)\n".utf8))
                            }
                            if f == .geotiff && !scores {
                                let aux = GDALMetadataXML.auxXML(classNames: lease.domain.config.classNames)
                                try writeAtomically(Data(aux.utf8), to: target.path + ".aux.xml")
                            }
                            progress.fileDone()
                        } catch {
                            progress.advance(by: Segmenter.windowCount(width: source.width, height: source.height, options: options) - last)
                            failed.withLock { $0.append("\(job.name): \(error)") }
                        }
                    }
                }
            }
            group.wait()
            progress.finish()
            let all = failed.withLock { $0 }
            for f in all { FileHandle.standardError.write(Data("spectralx: \(f)\n".utf8)) }
            if !all.isEmpty { throw CLIError("\(all.count) of \(jobs.count) inputs failed") }
        }
    }

    private func open(_ job: Job, fetcher: Fetcher, wavelengths: [Double]) throws -> any RasterSource {
        let cache = blockCacheMb << 20
        let paths = job.paths
        if let item = job.stacItem {
            // The item's assets named, or its bands paired with the domain's wavelengths (as the API does).
            let names = assets?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let opener = RemoteSceneOpener(configuration: fetcher.configuration)
            let parsed = try STACItem(json: try opener.document(item, limit: 4 << 20), base: URL(string: item))
            let picks = try names.map { try parsed.pick(assets: $0) } ?? parsed.pair(wavelengths: wavelengths)
            return try opener.open(SceneReference(picks: picks, stacItem: item), limits: Self.sceneLimits).source
        }
        func one(_ p: String) throws -> any RasterSource {
            Self.isURL(p) ? try RemoteScene.open(p, fetcher: fetcher, limits: Self.sceneLimits, cacheBytes: cache)
                : try RasterFile.open(path: p, limits: Self.sceneLimits, cacheBytes: cache)
        }
        if paths.count == 1 { return try one(paths[0]) }
        return try StackedRasterSource(try paths.map(one), names: paths.map { Self.isURL($0) ? URL(string: $0).map(FetchPolicy.redacted) ?? "href" : $0 })
    }

    /// The input side of a resumed scene's identity: the input files, each by path, size and
    /// modification time (the segmenter adds the model digest, the options and the scene size).
    private func resumeIdentity(_ job: Job) -> ResumeIdentity {
        func stamp(_ p: String) -> String {
            // A URL by itself (no query: it may hold a signature); its ETag pins it within a run only.
            if Self.isURL(p) { return URL(string: p).map(FetchPolicy.redacted) ?? p }
            let a = try? FileManager.default.attributesOfItem(atPath: p)
            let size = (a?[.size] as? NSNumber)?.int64Value ?? -1
            let mtime = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(URL(fileURLWithPath: p).standardizedFileURL.path) \(size) \(mtime)"
        }
        return ResumeIdentity(input: (job.stacItem.map { [$0] } ?? job.paths).map(stamp).joined(separator: "\n"))
    }

    private func isDirectory(_ p: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
    }

    private func collectInputs() throws -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        for p in inputs {
            if Self.isURL(p) { out.append(p); continue }
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else { throw CLIError("\(p): no such file or directory") }
            if isDir.boolValue {
                let names = try fm.contentsOfDirectory(atPath: p).sorted()
                out += names.filter { ["tif", "tiff", "npy"].contains(($0 as NSString).pathExtension.lowercased()) }
                    .map { URL(fileURLWithPath: p).appendingPathComponent($0).path }
            } else {
                out.append(URL(fileURLWithPath: p).path)
            }
        }
        return out
    }

    private func outputName(for input: String) -> String {
        let f = format ?? (input.lowercased().hasSuffix(".npy") ? .npy : .geotiff)
        let ext = [OutputFormat.geotiff: "tif", .npy: "npy", .png: "png"][f] ?? "tif"
        return URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent + (scores ? ".scores." : ".labels.") + ext
    }
}

/// A one-line progress bar on stderr: windows (or tiles) done/total, rate and ETA; redrawn in place
/// on a terminal, one line per 10 % otherwise.
final class Progress: Sendable {
    let total: Int
    let unit: String
    let files: Int
    private let state = Mutex((done: 0, files: 0, lastDecile: -1))
    private let start = Date()
    private let tty = isatty(STDERR_FILENO) != 0

    init(total: Int, unit: String, files: Int) { self.total = total; self.unit = unit; self.files = files; draw(0, 0) }

    func advance(by n: Int) {
        guard n > 0 else { return }
        let s = state.withLock { s -> (Int, Int)? in
            s.done += n
            let decile = s.done * 10 / max(total, 1)
            if !tty && decile == s.lastDecile { return nil }
            s.lastDecile = decile
            return (s.done, s.files)
        }
        if let s { draw(s.0, s.1) }
    }

    func fileDone() {
        let s = state.withLock { s -> (Int, Int) in s.files += 1; return (s.done, s.files) }
        if tty { draw(s.0, s.1) }
    }

    func finish() { if tty { FileHandle.standardError.write(Data("\n".utf8)) } }

    private func draw(_ n: Int, _ f: Int) {
        let width = 30, filled = total == 0 ? width : min(width, n * width / max(total, 1))
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(n) / elapsed : 0
        let eta = rate > 0 ? Double(total - n) / rate : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "[%@] %d/%d %@  %.2f %@/s  ETA %@  (%d/%d files)", bar, n, total, unit, rate, unit,
                          n == 0 ? "?" : Self.clock(eta), f, files)
        FileHandle.standardError.write(Data((tty ? "\r" + line : line + "\n").utf8))
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
