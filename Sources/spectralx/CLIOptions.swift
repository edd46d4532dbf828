import ArgumentParser
import Foundation
import Logging
import SpectralXEngine
import SpectralXTensor

/// Where the model store comes from; shared by `serve` and `predict` (one definition, one default).
struct StoreOptions: ParsableArguments {
    @Option(help: "Model store directory (SPECTRALX_MODELS for serve; default: the demo store in the cache directory).")
    var models: String?
    @Option(help: "Cache directory for the demo store (SPECTRALX_CACHE for serve; default ~/.cache/spectralx).")
    var cache: String?

    func validate() throws {
        if let models {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: models, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("--models \(models): no such directory (a model store has backbones/ and domains/)")
            }
        }
    }

    /// The store root: `models` (or its environment fallback), else the demo store, created on first use.
    func root(environment models: String? = nil, cache envCache: String? = nil) throws -> (URL, demo: Bool) {
        if let m = self.models ?? models {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: m, isDirectory: &isDir), isDir.boolValue else {
                throw CLIError("--models \(m): no such directory (a model store has backbones/ and domains/)")
            }
            return (URL(fileURLWithPath: m), false)
        }
        let dir = DemoStore.cacheDirectory(cache ?? envCache)
        return (try DemoStore.ensure(cache: dir) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }, true)
    }
}

extension InferenceMode: ExpressibleByArgument {}
extension OutputFormat: ExpressibleByArgument {}
extension ScoresEncoding: ExpressibleByArgument {}
extension NodataRule: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

extension Precision: ExpressibleByArgument {}

/// `--precision`: one help text and one check for every command that takes it.
enum PrecisionOption {
    static let help = ArgumentHelp(
        "Arithmetic of the frozen ViT linears: fp32 (default; the reference, bit for bit as before) or bf16 (operands "
            + "rounded to bf16, float32 accumulation; about twice as fast; norms, softmax, gating, Are-adapter, neck, head "
            + "and classifier stay fp32). bf16 needs a CPU with AVX512_BF16 (AMD Zen 4/5, Intel Cooper Lake, Sapphire "
            + "Rapids or later): elsewhere it is refused with an error.",
        valueName: "fp32|bf16")

    /// Throws the reason `precision` cannot run on this machine.
    static func check(_ precision: Precision) throws {
        if let reason = precision.unavailableReason { throw CLIError("--precision \(precision): \(reason)") }
    }

    /// `fp32,bf16` → the precisions in order, each available here.
    static func parseList(_ text: String) throws -> [Precision] {
        var out: [Precision] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let p = Precision(name: item) else { throw CLIError("--precision \(item): expected fp32 or bf16") }
            try check(p)
            if !out.contains(p) { out.append(p) }
        }
        guard !out.isEmpty else { throw CLIError("--precision: expected fp32, bf16 or fp32,bf16") }
        return out
    }
}
