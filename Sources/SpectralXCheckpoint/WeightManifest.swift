import Foundation

/// The per-file seeds of the synthetic generator.
public struct WeightSeeds: Sendable, Hashable, Codable {
    public var backbone: UInt64
    public var domain: UInt64

    public init(backbone: UInt64, domain: UInt64) {
        self.backbone = backbone
        self.domain = domain
    }

    /// The fixture's domain-A seeds (both 2508017310); domain B uses domain seed 2508017313.
    public static let fixture = WeightSeeds(backbone: 2_508_017_310, domain: 2_508_017_310)

    public func seed(for file: WeightFile) -> UInt64 { file == .backbone ? backbone : domain }
}

/// One tensor of a weight manifest: the layout entry plus the seed and the expected contents.
public struct ManifestTensor: Sendable, Hashable {
    public let entry: StateDictEntry
    public let seed: UInt64
    /// Lower-case hex SHA-256 of the tensor's little-endian bytes.
    public let sha256: String
    /// The first values (as JSON doubles; F32 values widen exactly).
    public let first4: [Double]
}

/// A constant of a manifest: a buffer whose contents are defined, not generated.
public struct ManifestConstant: Sendable, Hashable {
    /// Position in the full state dict.
    public let index: Int
    public let entry: StateDictEntry
    public let sha256: String
}

/// A parsed `weights-manifest*.json` (fixtures/README.md §2.1).
///
/// Parsed with the order-preserving JSON reader: lo/hi come out as the correctly rounded IEEE
/// doubles of their literal text, and `config` keeps its key order and number spelling so that it
/// can be re-serialised byte-identically into safetensors metadata.
public struct WeightManifest: Sendable {
    public let format: String
    public let generator: String
    public let globalSeed: UInt64
    public let seeds: WeightSeeds
    /// The `config` object verbatim (key order and number text preserved).
    public let config: JSONValue
    public let tensors: [ManifestTensor]
    /// Non-generated entries (DINOv3 `bias_mask`, `rope_embed.periods`), with their position in the
    /// full state dict; empty for ViT-L manifests.
    public let constants: [ManifestConstant]
    public let declaredElementCount: Int?

    public init(contentsOf url: URL) throws(CheckpointError) {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .invalidManifest(reason: "cannot read \(url.path): \(error.localizedDescription)")
        }
        try self.init(jsonBytes: [UInt8](data))
    }

    public init(jsonBytes: [UInt8]) throws(CheckpointError) {
        let root: JSONValue
        do {
            root = try JSONValue.parse(jsonBytes)
        } catch {
            throw .invalidManifest(reason: error.description)
        }
        func req(_ v: JSONValue?, _ what: String) throws(CheckpointError) -> JSONValue {
            guard let v else { throw .invalidManifest(reason: "missing \(what)") }
            return v
        }
        guard case .object = root else { throw .invalidManifest(reason: "top level is not an object") }
        guard let format = root["format"]?.stringValue else { throw .invalidManifest(reason: "missing format") }
        guard let generator = root["generator"]?.stringValue else { throw .invalidManifest(reason: "missing generator") }
        guard let global = root["global_seed"]?.uint64Value else { throw .invalidManifest(reason: "missing global_seed") }
        guard let bs = root["seeds"]?["backbone"]?.uint64Value, let dsd = root["seeds"]?["domain"]?.uint64Value else {
            throw .invalidManifest(reason: "missing seeds.backbone / seeds.domain")
        }
        self.format = format
        self.generator = generator
        globalSeed = global
        seeds = WeightSeeds(backbone: bs, domain: dsd)
        config = try req(root["config"], "config")
        declaredElementCount = root["n_elements"]?.intValue
        guard let list = root["tensors"]?.arrayValue else { throw .invalidManifest(reason: "missing tensors") }

        var out: [ManifestTensor] = []
        out.reserveCapacity(list.count)
        for (i, t) in list.enumerated() {
            guard let key = t["key"]?.stringValue else { throw .invalidManifest(reason: "tensor \(i): missing key") }
            func bad(_ what: String) -> CheckpointError { .invalidManifest(reason: "tensor '\(key)': \(what)") }
            guard let dims = t["shape"]?.arrayValue else { throw bad("missing shape") }
            var shape: [Int] = []
            for d in dims {
                guard let v = d.intValue, v >= 0 else { throw bad("invalid shape") }
                shape.append(v)
            }
            guard let dt = t["dtype"]?.stringValue, let dtype = SafeTensorsDType(rawValue: dt) else { throw bad("invalid dtype") }
            guard let lo = t["lo"]?.doubleValue, let hi = t["hi"]?.doubleValue else { throw bad("invalid lo/hi") }
            guard let rule = t["rule"]?.stringValue else { throw bad("missing rule") }
            guard let r = t["role"]?.stringValue, let role = TensorRole(rawValue: r) else { throw bad("invalid role") }
            guard let fl = t["file"]?.stringValue, let file = WeightFile(rawValue: fl) else { throw bad("invalid file") }
            guard let seed = t["seed"]?.uint64Value else { throw bad("invalid seed") }
            guard let sha = t["sha256"]?.stringValue else { throw bad("missing sha256") }
            let first4 = (t["first4"]?.arrayValue ?? []).compactMap(\.doubleValue)
            let entry = StateDictEntry(key: key, shape: shape, dtype: dtype, role: role, file: file, rule: rule,
                                       lo: lo, hi: hi)
            out.append(ManifestTensor(entry: entry, seed: seed, sha256: sha, first4: first4))
        }
        tensors = out

        var consts: [ManifestConstant] = []
        for (i, t) in (root["constants"]?.arrayValue ?? []).enumerated() {
            guard let key = t["key"]?.stringValue else { throw .invalidManifest(reason: "constant \(i): missing key") }
            func bad(_ what: String) -> CheckpointError { .invalidManifest(reason: "constant '\(key)': \(what)") }
            guard let index = t["index"]?.intValue, index >= 0 else { throw bad("invalid index") }
            guard let shape = t["shape"]?.arrayValue?.compactMap(\.intValue) else { throw bad("missing shape") }
            guard let dt = t["dtype"]?.stringValue, let dtype = SafeTensorsDType(rawValue: dt) else { throw bad("invalid dtype") }
            guard let rule = t["rule"]?.stringValue, WeightRule(rawValue: rule)?.isConstant == true else { throw bad("unknown constant rule") }
            guard let r = t["role"]?.stringValue, let role = TensorRole(rawValue: r) else { throw bad("invalid role") }
            guard let sha = t["sha256"]?.stringValue else { throw bad("missing sha256") }
            let entry = StateDictEntry(key: key, shape: shape, dtype: dtype, role: role, file: role.file, rule: rule, lo: 0, hi: 0)
            consts.append(ManifestConstant(index: index, entry: entry, sha256: sha))
        }
        constants = consts
    }

    /// Generated tensors and constants merged in full state-dict order (constants at their `index`).
    public var stateDict: [(entry: StateDictEntry, seed: UInt64?, sha256: String)] {
        var out: [(entry: StateDictEntry, seed: UInt64?, sha256: String)] = tensors.map { ($0.entry, $0.seed, $0.sha256) }
        for c in constants.sorted(by: { $0.index < $1.index }) {
            out.insert((c.entry, nil, c.sha256), at: min(c.index, out.count))
        }
        return out
    }

    /// The state-dict entries in manifest (= state-dict) order.
    public var entries: [StateDictEntry] { tensors.map(\.entry) }

    /// `config.in_channels` / `config.num_classes` / `config.backbone` when present.
    public var bands: Int? { config["in_channels"]?.intValue }
    public var classes: Int? { config["num_classes"]?.intValue }
    public var backbone: BackboneVariant? { config["backbone"]?.stringValue.flatMap(BackboneVariant.init(rawValue:)) }
    public var wavelengths: [Double]? { config["wavelength"]?.arrayValue?.compactMap(\.doubleValue) }
    public var domainName: String? { config["domain"]?.stringValue }
}
