import ArgumentParser
import Foundation
import Logging
import SpectralXEngine

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
