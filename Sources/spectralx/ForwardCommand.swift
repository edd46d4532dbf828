import ArgumentParser
import Foundation
import SpectralXCheckpoint
import SpectralXModel
import SpectralXRaster
import SpectralXTensor

/// `spectralx forward`: the parity entry point — raw logits for an already preprocessed batch.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run the network on a preprocessed float32 .npy batch (B,C,224,224) and write raw logits (B,K,224,224).")

    @Option(help: "Model store directory.")
    var models: String = "models"

    @Option(help: "Domain name in the store.")
    var domain: String

    @Argument(help: "Input .npy, shape (B,C,224,224) or (C,224,224).")
    var input: String

    @Option(name: [.customShort("o"), .long], help: "Output .npy for the logits.")
    var output: String

    @Option(name: .customLong("mmoe-route"),
            help: ArgumentHelp("Parity tooling: use this MMoE expert pair at a documented gate near-tie, as ADAPTER:ROW=E1,E2 "
                               + "(e.g. mmoe.b11.fc2.1:293=3,1 — block 11, fc2, task 1, row image·T+token); repeatable.",
                               valueName: "ADAPTER:ROW=E1,E2"))
    var mmoeRoutes: [String] = []

    @Option(help: PrecisionOption.help)
    var precision: Precision = .fp32

    @Option(help: "Also write every named intermediate (HyperT tokens, streams, feature maps, neck, Are indices, …) as DIR/<name>.npy, for parity debugging.")
    var trace: String?

    func validate() throws {
        do { _ = try Self.parseRoutes(mmoeRoutes) } catch { throw ValidationError("\(error)") }
    }

    /// `ADAPTER:ROW=E1,E2` items → ForwardTrace.routeOverrides.
    static func parseRoutes(_ specs: [String]) throws -> [String: [Int: (Int, Int)]] {
        var out: [String: [Int: (Int, Int)]] = [:]
        for spec in specs {
            let parts = spec.split(separator: ":"), rhs = parts.last?.split(separator: "=") ?? []
            let pair = rhs.last?.split(separator: ",").compactMap { Int($0) } ?? []
            guard parts.count == 2, rhs.count == 2, let row = Int(rhs[0]), row >= 0, pair.count == 2,
                  pair.allSatisfy({ (0..<4).contains($0) }), pair[0] != pair[1] else {
                throw CLIError("--mmoe-route \(spec): expected ADAPTER:ROW=E1,E2 with two different experts 0–3")
            }
            out[String(parts[0]), default: [:]][row] = (pair[0], pair[1])
        }
        return out
    }

    func run() throws {
        try reportingFailures {
            try PrecisionOption.check(precision)
            Precision.packedAtLoad = [precision]
            let net = try SpectralXNetwork.load(store: ModelStoreLayout(root: URL(fileURLWithPath: models)), domain: domain)
            let array: NpyArray
            do { array = try NpyArray.read(path: input) } catch { throw CLIError("\(input): \(error)") }
            var shape = array.shape
            if shape.count == 3 { shape.insert(1, at: 0) }
            let c = net.domain.bands, s = ModelShape.imageSize
            guard shape.count == 4, shape[1] == c, shape[2] == s, shape[3] == s, shape[0] >= 1 else {
                throw CLIError("\(input): shape \(array.shape) does not match (B, \(c), \(s), \(s)) for domain \(domain)")
            }
            guard array.dtype.kind == .float else { throw CLIError("\(input): dtype \(array.dtype) is not a float type") }
            let x = Tensor(shape: shape, values: array.toFloat32())
            var recorder = trace.map { _ in ForwardTrace(keep: { _ in true }) }
            if !mmoeRoutes.isEmpty {
                let r = recorder ?? ForwardTrace()
                r.routeOverrides = try Self.parseRoutes(mmoeRoutes)
                recorder = r
            }
            let logits = net(x, trace: recorder, precision: precision)
            try NpyWriter.write(logits.toArray(), shape: logits.shape, to: output)
            if let trace, let recorder {
                try FileManager.default.createDirectory(atPath: trace, withIntermediateDirectories: true)
                for (name, t) in recorder.tensors {
                    try NpyWriter.write(t.toArray(), shape: t.shape, to: (trace as NSString).appendingPathComponent(name + ".npy"))
                }
                for (name, i) in recorder.indices {
                    try NpyWriter.write(i.map { Int64($0) }, shape: [i.count], to: (trace as NSString).appendingPathComponent(name + ".npy"))
                }
            }
        }
    }
}
