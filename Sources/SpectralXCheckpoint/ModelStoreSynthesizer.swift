import Dispatch
import Foundation
import SpectralXSupport

/// What a synthesis run produced.
public struct SynthesisResult: Sendable {
    public let backboneURL: URL
    public let adapterURL: URL
    public let domainConfigURL: URL
    public let domainConfig: DomainConfig
    /// false when an identical backbone file already existed and was reused.
    public let backboneWritten: Bool
    /// SHA-256 (lower-case hex) of every tensor written in this run, by key. Backbone tensors are
    /// absent when the backbone was reused.
    public let tensorSHA256: [String: String]
    /// Keys whose SHA-256 differs from the manifest (manifest synthesis only; empty = verified).
    public let mismatchedTensors: [String]
    public let seconds: Double
}

/// Writes demo / benchmark model stores from the deterministic generator: the shared backbone
/// file (FROZEN-BACKBONE tensors) and a domain's adapter file (all other tensors) plus its
/// domain.json. With the fixture manifest the files are byte-identical to what
/// `fixtures/make_weights.py` writes (`backbone.safetensors`, `domain.safetensors`).
public enum ModelStoreSynthesizer {
    public static let defaultBackboneName = "sat_mae_pp-synthetic"
    /// The synthetic backbone file name for a variant (`dinov3-synthetic` for DINOv3).
    public static func defaultBackboneName(for variant: BackboneVariant) -> String {
        variant == .dinov3 ? "dinov3-synthetic" : defaultBackboneName
    }
    /// The backbone-level config keys make_weights.py copies into the backbone file's metadata
    /// (so that the file is identical for every domain); the DINOv3 keys exist only in DINOv3 configs.
    public static let backboneConfigKeys = ["backbone", "img_size", "patch_size", "embed_dim", "depth", "num_heads",
                                            "n_storage_tokens", "layerscale", "rope_base", "rope_dtype",
                                            "adapted_blocks"]

    /// Synthesises a domain of any band count C and class count K from `StateDictLayout` (no
    /// manifest needed). The backbone is written only if no identical file exists.
    public static func synthesizeStore(at root: URL, domainName: String, bands: Int, classes: Int,
                                       wavelengths: [Double]? = nil, classNames: [String]? = nil,
                                       backboneName: String? = nil,
                                       backbone: BackboneVariant = .satMAEPP,
                                       seeds: WeightSeeds = .fixture, description: String? = nil,
                                       recordFileDigests: Bool = false) throws -> SynthesisResult
    {
        let layout = try StateDictLayout(bands: bands, classes: classes, backbone: backbone)
        let dino = backbone == .dinov3
        let domain = DomainConfig(name: domainName, backbone: backboneName ?? defaultBackboneName(for: backbone),
                                  backboneVariant: backbone, bands: bands,
                                  classes: classes, classNames: classNames, wavelengths: wavelengths,
                                  description: description ?? "synthetic weights (\(WeightGenerator.name))")
        try domain.validate()
        let dinoKeys: [(String, JSONValue)] = dino
            ? [("n_storage_tokens", .number("4")), ("layerscale", .bool(true)), ("rope_base", .number("100.0")),
               ("rope_dtype", .string("bf16"))]
            : []
        let config = JSONValue.object([
            ("domain", .string(domainName)),
            ("backbone", .string(backbone.rawValue)),
            ("segmentation_model", .string(dino ? "upernetSpectralX-DINOv3" : "upernetSpectralX")),
            ("in_channels", .number(String(bands))),
            ("num_classes", .number(String(classes))),
            ("wavelength", .array(domain.wavelengths.map { .number(pythonFloatRepr($0)) })),
            ("img_size", .number("224")),
            ("patch_size", .number("16")),
            ("embed_dim", .number("1024")),
            ("depth", .number("24")),
            ("num_heads", .number("16")),
        ] + dinoKeys + [
            ("adapted_blocks", .array(StateDictLayout.adaptedBlocks.map { .number(String($0)) })),
            ("feature_map_indices", .array(StateDictLayout.adaptedBlocks.map { .number(String($0)) })),
            ("adapter_hidden_dim", .number("16")),
            ("key_prefix_in_lightning_checkpoint", .string("model.")),
        ])
        let plan = layout.entries.map { (entry: $0, seed: seeds.seed(for: $0.file), expected: String?.none) }
        return try write(root: root, domain: domain, plan: plan, seeds: seeds, config: config,
                         recordFileDigests: recordFileDigests)
    }

    /// Synthesises a domain exactly as a weight manifest describes it (tensors, seeds, metadata),
    /// verifying every tensor's SHA-256 against the manifest on the way.
    public static func synthesizeFromManifest(_ manifestURL: URL, at root: URL, domainName: String? = nil,
                                              backboneName: String? = nil,
                                              classNames: [String]? = nil, description: String? = nil,
                                              recordFileDigests: Bool = false) throws -> SynthesisResult
    {
        let manifest = try WeightManifest(contentsOf: manifestURL)
        guard manifest.generator == WeightGenerator.name else {
            throw CheckpointError.invalidManifest(reason: "generator '\(manifest.generator)' is not \(WeightGenerator.name)")
        }
        guard let bands = manifest.bands, let classes = manifest.classes else {
            throw CheckpointError.invalidManifest(reason: "config lacks in_channels / num_classes")
        }
        let name = domainName ?? manifest.domainName.map { "domain-\($0)" } ?? "domain"
        let variant = manifest.backbone ?? .satMAEPP
        let domain = DomainConfig(name: name, backbone: backboneName ?? defaultBackboneName(for: variant), backboneVariant: variant,
                                  bands: bands, classes: classes, classNames: classNames,
                                  wavelengths: manifest.wavelengths,
                                  description: description ?? "synthetic fixture weights (\(manifestURL.lastPathComponent))")
        try domain.validate()
        let plan = manifest.stateDict.map { (entry: $0.entry, seed: $0.seed ?? 0, expected: Optional($0.sha256)) }
        return try write(root: root, domain: domain, plan: plan, seeds: manifest.seeds, config: manifest.config,
                         recordFileDigests: recordFileDigests)
    }

    // MARK: - internals

    typealias Plan = [(entry: StateDictEntry, seed: UInt64, expected: String?)]

    /// safetensors `__metadata__` as make_weights.py writes it.
    /// A DINOv3 backbone file also records its ``BackboneConfiguration`` (`spectralx_backbone`); ViT-L
    /// files stay byte-identical to make_weights.py's and are recognised from their tensors.
    static func metadata(file: WeightFile, seed: UInt64, config: JSONValue,
                         backbone: BackboneConfiguration? = nil) -> [(key: String, value: String)] {
        var cfg = config
        if file == .backbone, case let .object(members) = config {
            cfg = .object(backboneConfigKeys.compactMap { k in members.first { $0.0 == k } })
        }
        var m: [(key: String, value: String)] = [("format", "pt"), ("generator", WeightGenerator.name), ("file", file.rawValue),
                                                 ("seed", String(seed)), ("config", cfg.pythonCompactJSON())]
        if file == .backbone, let backbone, backbone.kind != .vitL {
            m.append((BackboneConfiguration.metadataKey, backbone.jsonString()))
        }
        return m
    }

    static func write(root: URL, domain: DomainConfig, plan: Plan, seeds: WeightSeeds, config: JSONValue,
                      recordFileDigests: Bool) throws -> SynthesisResult
    {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let store = ModelStoreLayout(root: root)
        let fm = FileManager.default
        try fm.createDirectory(at: store.backbonesDirectory, withIntermediateDirectories: true)
        try fm.createDirectory(at: store.domainDirectory(domain.name), withIntermediateDirectories: true)

        var digests: [String: String] = [:]
        var mismatched: [String] = []
        var backboneWritten = false
        for file in [WeightFile.backbone, .domain] {
            let part = plan.filter { $0.entry.file == file }
            let tensors = try part.map { p throws(CheckpointError) in
                try SafeTensorsWriter.Tensor(name: p.entry.key, dtype: p.entry.dtype, shape: p.entry.shape)
            }
            var shapes: [String: [Int]] = [:]
            for p in part { shapes[p.entry.key] = p.entry.shape }
            let backboneConfig = file == .backbone ? try? BackboneConfiguration(inferringFrom: shapes) : nil
            let writer = try SafeTensorsWriter(tensors: tensors,
                                               metadata: metadata(file: file, seed: seeds.seed(for: file), config: config,
                                                                  backbone: backboneConfig))
            let url = file == .backbone ? store.backboneURL(domain.backbone) : store.adapterURL(domain.name)
            if file == .backbone, fm.fileExists(atPath: url.path) {
                if try existingFile(at: url, matches: writer) { continue }
                throw CheckpointError.invalidArgument(
                    "backbone '\(domain.backbone)' already exists with different contents; choose another backbone name")
            }
            let seedsK = part.map { WeightGenerator.tensorSeed(key: $0.entry.key, seed: $0.seed) }
            let constants = part.map { DINOv3Constants.bytes(rule: $0.entry.rule, shape: $0.entry.shape) }
            let result = try writer.write(to: url) { i, offset, buffer in
                let e = part[i].entry
                if let c = constants[i] {
                    for j in 0..<buffer.count { buffer[j] = c[offset + j] }
                    return
                }
                WeightGenerator.fillBytes(buffer, dtype: e.dtype, tensorSeed: seedsK[i], lo: e.lo, hi: e.hi,
                                          byteOffset: offset)
            }
            for (p, d) in zip(part, result) {
                digests[p.entry.key] = d.hex
                if let expected = p.expected, expected != d.hex { mismatched.append(p.entry.key) }
            }
            if file == .backbone { backboneWritten = true }
        }

        var finalConfig = domain
        if recordFileDigests {
            finalConfig.backboneSHA256 = try ModelStoreLayout.fileSHA256(store.backboneURL(domain.backbone)).hex
            finalConfig.adapterSHA256 = try ModelStoreLayout.fileSHA256(store.adapterURL(domain.name)).hex
        }
        try finalConfig.write(to: store.domainConfigURL(domain.name))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return SynthesisResult(backboneURL: store.backboneURL(domain.backbone), adapterURL: store.adapterURL(domain.name),
                               domainConfigURL: store.domainConfigURL(domain.name), domainConfig: finalConfig,
                               backboneWritten: backboneWritten, tensorSHA256: digests, mismatchedTensors: mismatched,
                               seconds: seconds)
    }

    /// An existing file is "identical" when its header bytes and size equal what would be written
    /// (the generator is deterministic, so the header pins the contents).
    static func existingFile(at url: URL, matches writer: SafeTensorsWriter) throws -> Bool {
        guard let existing = try? SafeTensorsFile(url: url) else { return false }
        let header = writer.headerBytes()
        guard existing.fileSize == 8 + header.count + writer.dataByteCount,
              existing.header.headerLength == header.count else { return false }
        let m: MappedFile
        do { m = try MappedFile(path: url.path) } catch { throw CheckpointError(error) }
        return header.elementsEqual(UnsafeRawBufferPointer(rebasing: m.bytes[8..<(8 + header.count)]))
    }

    /// Python's `repr(float)` for ordinary magnitudes (shortest round-trip digits), which is what
    /// `json.dumps` emits; Swift's description agrees except for the exponent spelling.
    static func pythonFloatRepr(_ x: Double) -> String {
        var s = "\(x)"
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            // Python: mantissa without trailing ".0", exponent with sign and at least two digits.
            var mantissa = String(s[..<e])
            if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
            var exp = String(s[s.index(after: e)...])
            var sign = "+"
            if exp.hasPrefix("-") { sign = "-"; exp.removeFirst() } else if exp.hasPrefix("+") { exp.removeFirst() }
            if exp.count < 2 { exp = "0" + exp }
            s = mantissa + "e" + sign + exp
        }
        return s
    }
}
