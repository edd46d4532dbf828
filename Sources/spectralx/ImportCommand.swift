import ArgumentParser
import Foundation
import SpectralXCheckpointImport

/// `spectralx import CKPT`: an upstream Lightning checkpoint (torch.save zip) → backbone file +
/// domain directory, read with the safe unpickler (no Python, no code execution).
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert an upstream training checkpoint (.ckpt) into a model-store backbone + domain.",
        discussion: """
            FROZEN-BACKBONE tensors go to models/backbones/<backbone>.safetensors (an existing file with identical \
            tensors is reused, a different one is never overwritten); every other tensor goes to \
            models/domains/<domain>/adapter.safetensors, described by domain.json. Wavelengths come from the \
            checkpoint's hyper_parameters ('wavelengths'/'wavelength') unless --wavelengths is given. \
            With --dump, nothing is written: every state-dict tensor is listed with dtype, shape and the \
            sha256 of its C-order little-endian bytes.
            """)

    @Argument(help: "The checkpoint file (torch.save zip archive).")
    var checkpoint: String

    @Flag(name: [.customLong("dump"), .customLong("list")], help: "List every tensor (key, dtype, shape, sha256) and exit.")
    var dump = false

    @Option(help: "Model store directory (created if needed).")
    var models: String?

    @Option(help: "Domain name (default: the checkpoint file name without extension).")
    var domain: String?

    @Option(help: "Backbone file name (default: the backbone variant, e.g. sat_mae_pp).")
    var backboneName: String?

    @Option(help: "Comma-separated band centre wavelengths in µm (overrides the checkpoint's hyper_parameters).")
    var wavelengths: String?

    @Option(help: "Comma-separated class names (default: the checkpoint's 'class_names', else class_0, class_1, …).")
    var classNames: String?

    @Flag(help: "Replace an existing domain of the same name.")
    var force = false

    @Flag(help: "Record the sha256 of both weight files in domain.json.")
    var recordDigests = false

    func validate() throws {
        if !dump, models == nil { throw ValidationError("--models DIR is required (or use --dump to only list tensors)") }
    }

    func run() throws {
        try reportingFailures {
            let ckpt = try TorchCheckpoint(path: checkpoint)
            if dump {
                try printListing(ckpt)
                return
            }
            let name = domain ?? URL(fileURLWithPath: checkpoint).deletingPathExtension().lastPathComponent
            var options = ImportOptions(storeRoot: URL(fileURLWithPath: models!), domainName: name)
            options.backboneName = backboneName
            options.replaceDomain = force
            options.recordFileDigests = recordDigests
            if let wavelengths {
                let parsed = wavelengths.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else { throw CLIError("--wavelengths: not a list of numbers") }
                options.wavelengths = parsed.map { $0! }
            }
            if let classNames {
                options.classNames = classNames.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            }
            let r = try CheckpointImporter.importCheckpoint(ckpt, options: options)
            let c = r.domainConfig
            print("domain \(c.name): \(c.bands) bands, \(c.classes) classes, \(c.wavelengths.count) wavelengths, "
                + "\(r.adapterTensorCount) tensors → \(r.adapterURL.path)")
            print("backbone \(c.backbone) (\(c.backboneVariant?.rawValue ?? "sat_mae_pp")): \(r.backboneTensorCount) tensors, "
                + (r.backboneWritten ? "written" : "identical file already present") + " → \(r.backboneURL.path)")
            if !r.convertedKeys.isEmpty { print("converted to the store dtype: \(r.convertedKeys.count) tensors") }
            print(String(format: "%.1f s", r.seconds))
        }
    }

    private func printListing(_ ckpt: TorchCheckpoint) throws {
        var header = ["checkpoint \(ckpt.path)"]
        if let e = ckpt.epoch { header.append("epoch \(e)") }
        if let s = ckpt.globalStep { header.append("global_step \(s)") }
        print(header.joined(separator: ", "))
        if !ckpt.topLevelKeys.isEmpty { print("top-level keys: \(ckpt.topLevelKeys.joined(separator: ", "))") }
        let list = try ckpt.listTensors()
        let shared = Set(list.map(\.storageKey)).count
        print("\(list.count) tensors in \(shared) storages (\(ckpt.storages.count) storages referenced by the pickle)")
        for t in list {
            let shape = "[" + t.shape.map(String.init).joined(separator: ",") + "]"
            print("\(t.key)\t\(t.dtype.rawValue)\t\(shape)\t\(t.sha256)" + (t.contiguous ? "" : "\t(strided)"))
        }
    }
}
