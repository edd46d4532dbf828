import ArgumentParser
import Foundation
import SpectralXCheckpoint
import SpectralXLayers
import SpectralXModel

/// `spectralx inspect`: lists and validates a safetensors file, a domain directory or a whole store.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List and validate a safetensors file, a domain directory or a model store.")

    @Argument(help: "A .safetensors file, a domain directory (with domain.json) or a model store root.")
    var path: String

    @Flag(help: "List every tensor (name, dtype, shape).")
    var tensors = false

    func run() throws {
        try reportingFailures {
            let url = URL(fileURLWithPath: path)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw CLIError("\(path): no such file") }
            if !isDir.boolValue {
                try inspectFile(url)
            } else if FileManager.default.fileExists(atPath: url.appendingPathComponent("domain.json").path) {
                let store = ModelStoreLayout(root: url.deletingLastPathComponent().deletingLastPathComponent())
                try inspectDomain(store, url.lastPathComponent)
            } else {
                let store = ModelStoreLayout(root: url)
                let names = store.domainNames()
                guard !names.isEmpty else { throw CLIError("\(path): neither a safetensors file, a domain directory nor a model store") }
                var failures = 0
                for name in names {
                    do { try inspectDomain(store, name) } catch {
                        print("domain \(name): INVALID: \(error)")
                        failures += 1
                    }
                }
                if failures > 0 { throw CLIError("\(failures) of \(names.count) domains are invalid") }
            }
        }
    }

    private func inspectFile(_ url: URL) throws {
        let file = try SafeTensorsFile(url: url)
        let elements = file.entries.reduce(0) { $0 + $1.elementCount }
        print("\(url.path): \(file.entries.count) tensors, \(elements) elements, \(file.fileSize) bytes — header valid")
        if let backbone = try? FrozenBackbone.configuration(of: file) {
            print("  backbone kind \(backbone.kind.rawValue): depth \(backbone.depth), width \(backbone.width), \(backbone.heads) heads, "
                  + "\(backbone.tokensPerImage) tokens (\(backbone.prefixTokens) prefix + \(backbone.patchTokens) patches)"
                  + (backbone.layerScale ? ", LayerScale" : "") + (backbone.rope.map { ", RoPE \($0.dtype)" } ?? "")
                  + (backbone.finalNormOnFeatures ? ", final norm on features" : ""))
        }
        for (k, v) in file.metadata.sorted(by: { $0.key < $1.key }) where k != "config" && k != BackboneConfiguration.metadataKey {
            print("  metadata \(k) = \(v)")
        }
        if tensors {
            for e in file.entries { print("  \(e.name)  \(e.dtype.rawValue)  \(e.shape)") }
        }
    }

    private func inspectDomain(_ store: ModelStoreLayout, _ name: String) throws {
        let config = try store.loadDomainConfig(name)
        print("domain \(name): backbone \(config.backbone) (\((config.backboneVariant ?? .satMAEPP).kind.rawValue)), \(config.bands) bands, \(config.classes) classes, \(config.wavelengths.count) wavelengths")
        try inspectFile(store.adapterURL(name))
        let net = try SpectralXNetwork.load(store: store, domain: name)
        print("domain \(name): OK — weights bind to the network (C=\(net.domain.bands), K=\(net.domain.classes), "
              + "backbone kind \(net.backbone.configuration.kind.rawValue))")
    }
}
