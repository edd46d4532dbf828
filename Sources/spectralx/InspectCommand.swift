import ArgumentParser
import Foundation
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXLayers
import SpectralXModel
import SpectralXSupport

/// `spectralx inspect`: lists and validates a safetensors file, a domain directory or a whole store.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List and validate a safetensors file, a domain directory or a model store.")

    @Argument(help: "A .safetensors file, a domain directory (with domain.json) or a model store root.")
    var path: String

    @Flag(help: "List every tensor (name, dtype, shape).")
    var tensors = false

    @Flag(help: "Print the STAC MLM Item of a domain directory (a FeatureCollection for a store), as GET /v1/domains/{name}/stac.")
    var stac = false

    func run() throws {
        if stac { return try printSTAC() }
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

    private func printSTAC() throws {
        try reportingFailures {
            let url = URL(fileURLWithPath: path)
            let isDomain = FileManager.default.fileExists(atPath: url.appendingPathComponent("domain.json").path)
            let store = ModelStoreLayout(root: isDomain ? url.deletingLastPathComponent().deletingLastPathComponent() : url)
            let names = isDomain ? [url.lastPathComponent] : store.domainNames()
            guard !names.isEmpty else { throw CLIError("\(path): neither a domain directory nor a model store") }
            let items = try names.map { try Self.stacItem(store, $0) }
            if isDomain {
                print(String(decoding: items[0], as: UTF8.self))
            } else {
                let objects = try items.map { try JSONSerialization.jsonObject(with: $0) }
                let fc: [String: Any] = ["type": "FeatureCollection", "features": objects]
                let data = try JSONSerialization.data(withJSONObject: fc, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
            }
        }
    }

    /// The card of a domain on disk: sizes and parameter counts from the safetensors headers, digests
    /// from domain.json when recorded, else hashed here (as the server does when it loads the domain).
    static func stacItem(_ store: ModelStoreLayout, _ name: String) throws -> Data {
        let config = try store.loadDomainConfig(name)
        let adapter = try SafeTensorsFile(url: store.adapterURL(name))
        let backbone = try SafeTensorsFile(url: store.backboneURL(config.backbone))
        let weights = WeightFacts(
            backboneParameters: backbone.entries.reduce(0) { $0 + $1.elementCount }, backboneBytes: backbone.fileSize,
            backboneSHA256: try config.backboneSHA256 ?? SHA256.hash(fileAtPath: store.backboneURL(config.backbone).path).hex,
            adapterParameters: adapter.entries.reduce(0) { $0 + $1.elementCount }, adapterBytes: adapter.fileSize,
            adapterSHA256: try config.adapterSHA256 ?? SHA256.hash(fileAtPath: store.adapterURL(name).path).hex)
        return STACModelCard.item(config: config, weights: weights, backboneKind: (config.backboneVariant ?? .satMAEPP).kind,
                                  colors: classColors(of: config))
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
