import ArgumentParser
import Dispatch
import Foundation
import Logging
import SpectralXAPI
import SpectralXEngine
import SpectralXRaster
import Synchronization

/// `spectralx predict`: the service's engine, offline. Tiles (files, or directories of .tif/.tiff/.npy)
/// in, label rasters out; several tiles are in flight at once so they share batches. Outputs are
/// written to a temporary file beside the target and renamed, so a reader never sees half a raster.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Segment tiles offline into label rasters.",
        discussion: """
            With one input file, -o is the output file (or a directory). With several inputs or a directory, -o is a
            directory and each output is named after its input (tile.tif → tile.labels.tif). Progress goes to stderr.
            """)

    @Option(help: "Model store (default: the demo store, as for serve).") var models: String?
    @Option(help: "Cache directory for the demo store.") var cache: String?
    @Option(help: "Domain name.") var domain: String
    @Argument(help: "Input tiles (.tif, .tiff, .npy) or directories of them.") var inputs: [String]
    @Option(name: [.customShort("o"), .long], help: "Output file (one input) or directory.") var output: String
    @Option(help: "geotiff, npy or png (default: geotiff for TIFF input, npy for NPY input).") var format: String?
    @Option(help: "resize or tile.") var mode: String = "resize"
    @Option(help: "Window overlap in tile mode.") var overlap: Int = 32
    @Flag(help: "Write per-class probabilities (float32) instead of labels.") var scores = false
    @Option(help: "Largest batch per forward pass.") var maxBatch: Int = 4
    @Flag(help: "Overwrite existing outputs.") var force = false

    func run() throws {
        try reportingFailures {
            guard let mode = InferenceMode(rawValue: mode) else { throw CLIError("--mode must be resize or tile") }
            if let format, !["geotiff", "npy", "png"].contains(format) { throw CLIError("--format must be geotiff, npy or png") }
            let files = try collectInputs()
            guard !files.isEmpty else { throw CLIError("no .tif/.tiff/.npy inputs found") }
            let outDir: URL?, single: URL?
            var isDir: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: output, isDirectory: &isDir)
            if files.count == 1 && !(exists && isDir.boolValue) && !output.hasSuffix("/") {
                (outDir, single) = (nil, URL(fileURLWithPath: output))
            } else {
                try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
                (outDir, single) = (URL(fileURLWithPath: output), nil)
            }

            let root = try models.map { URL(fileURLWithPath: $0) }
                ?? DemoStore.ensure(cache: DemoStore.cacheDirectory(cache)) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            let store = ModelStore(root: root, logger: Logger(label: "spectralx.store"))
            try store.load(domain)
            let engine = InferenceEngine(store: store, scheduler: SchedulerConfiguration(
                maxBatchSize: maxBatch, maxQueueDelay: .milliseconds(50), maxQueueLength: max(64, maxBatch * 4),
                defaultTimeout: .seconds(86400)))
            defer { engine.scheduler.shutdown() }
            let options = SegmentationOptions(mode: mode, overlap: overlap, scores: scores)

            let progress = Progress(total: files.count)
            let failures = Mutex<[String]>([])
            let next = Mutex(0)
            let group = DispatchGroup()
            // maxBatch workers keep the scheduler's batches full.
            for _ in 0..<max(1, min(maxBatch, files.count)) {
                group.enter()
                Thread.detachNewThread { [self] in
                    defer { group.leave() }
                    while true {
                        let i = next.withLock { n -> Int in defer { n += 1 }; return n }
                        guard i < files.count else { return }
                        let input = files[i]
                        do {
                            let target = single ?? outDir!.appendingPathComponent(outputName(for: input))
                            if FileManager.default.fileExists(atPath: target.path) && !force {
                                throw CLIError("\(target.path) exists (use --force)")
                            }
                            try predictOne(input, to: target, engine: engine, options: options)
                        } catch {
                            failures.withLock { $0.append("\(input.path): \(error)") }
                        }
                        progress.advance()
                    }
                }
            }
            group.wait()
            progress.finish()
            let failed = failures.withLock { $0 }
            for f in failed { FileHandle.standardError.write(Data("spectralx: \(f)\n".utf8)) }
            if !failed.isEmpty { throw CLIError("\(failed.count) of \(files.count) tiles failed") }
        }
    }

    private func collectInputs() throws -> [URL] {
        let fm = FileManager.default
        var out: [URL] = []
        for p in inputs {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else { throw CLIError("\(p): no such file or directory") }
            if isDir.boolValue {
                let names = try fm.contentsOfDirectory(atPath: p).sorted()
                out += names.filter { ["tif", "tiff", "npy"].contains(($0 as NSString).pathExtension.lowercased()) }
                    .map { URL(fileURLWithPath: p).appendingPathComponent($0) }
            } else {
                out.append(URL(fileURLWithPath: p))
            }
        }
        return out
    }

    private func formatFor(_ input: URL) -> String {
        format ?? (input.pathExtension.lowercased() == "npy" ? "npy" : "geotiff")
    }

    private func outputName(for input: URL) -> String {
        let ext = ["geotiff": "tif", "npy": "npy", "png": "png"][formatFor(input)]!
        return input.deletingPathExtension().lastPathComponent + (scores ? ".scores." : ".labels.") + ext
    }

    private func predictOne(_ input: URL, to target: URL, engine: InferenceEngine, options: SegmentationOptions) throws {
        let raster: Raster
        if input.pathExtension.lowercased() == "npy" {
            raster = try RasterInput.raster(from: try NpyArray.read(path: input.path))
        } else {
            raster = try TIFFReader(path: input.path).read()
        }
        let r = try engine.segment(domain: domain, raster: raster, options: options)
        let tmp = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).partial-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: tmp) }
        switch formatFor(input) {
        case "npy":
            if let s = r.scores { try NpyWriter.write(s, shape: [r.classes, r.height, r.width], to: tmp.path) }
            else { try NpyWriter.write(r.labels!, shape: [r.height, r.width], to: tmp.path) }
        case "png":
            let labels = try r.labels ?? Preprocessing.argmax(r.scores!, classes: r.classes, pixels: r.width * r.height)
            try PNGWriter.write(labels, width: r.width, height: r.height, classes: r.classes, to: tmp)
        default:
            if let s = r.scores {
                try GeoTIFFWriter.writeScores(s, bands: r.classes, width: r.width, height: r.height, geo: raster.geo, to: tmp.path)
            } else {
                try GeoTIFFWriter.writeLabels(r.labels!, width: r.width, height: r.height, geo: raster.geo, to: tmp.path)
            }
        }
        if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
        try FileManager.default.moveItem(at: tmp, to: target)
    }
}

/// A one-line progress bar on stderr (redrawn in place on a terminal, one line per 10 % otherwise).
final class Progress: Sendable {
    let total: Int
    private let state = Mutex((done: 0, lastDecile: -1))
    private let start = Date()
    private let tty = isatty(STDERR_FILENO) != 0

    init(total: Int) { self.total = total; draw(0) }

    func advance() {
        let n = state.withLock { s -> Int? in
            s.done += 1
            let decile = s.done * 10 / max(total, 1)
            if !tty && decile == s.lastDecile { return nil }
            s.lastDecile = decile
            return s.done
        }
        if let n { draw(n) }
    }

    func finish() { if tty { FileHandle.standardError.write(Data("\n".utf8)) } }

    private func draw(_ n: Int) {
        let width = 30, filled = total == 0 ? width : n * width / total
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(n) / elapsed : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "[%@] %d/%d tiles  %.2f tiles/s", bar, n, total, rate)
        FileHandle.standardError.write(Data((tty ? "\r" + line : line + "\n").utf8))
    }
}

/// PNG colour preview through the API's encoder and palette.
enum PNGWriter {
    static func write(_ labels: [UInt8], width: Int, height: Int, classes: Int, to url: URL) throws {
        try PNGEncoder.encodeIndexed(labels, width: width, height: height, palette: ClassPalette.colors(count: classes)).write(to: url)
    }
}
