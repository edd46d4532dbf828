import Foundation
import SpectralXSupport

/// `models/domains/<domain>/domain.json` (spec service.md §3): everything the engine needs to
/// serve a domain besides the tensors — which backbone it plugs into, the band count and
/// wavelengths the HyperT tokenizer was built for, the classes and the preprocessing contract.
public struct DomainConfig: Codable, Sendable, Equatable {
    public static let currentSchemaVersion = 1
    /// The preprocessing the fixtures use: per-band min–max normalisation, then an antialiased
    /// bilinear resize to 224×224.
    public static let defaultPreprocessing = "minmax-per-band+resize-antialias-224"

    public var schemaVersion: Int
    public var name: String
    /// Name of the backbone file (`models/backbones/<backbone>.safetensors`).
    public var backbone: String
    /// Backbone architecture (`sat_mae_pp` or `scale_mae`); nil means `sat_mae_pp`.
    public var backboneVariant: BackboneVariant?
    /// Input band count C.
    public var bands: Int
    /// Output class count K.
    public var classes: Int
    public var classNames: [String]
    /// Wavelength list for the spectral position table, in µm. Its length need not equal `bands`
    /// (upstream configs pass the 32 WHU-OHS values for 13-band data, quirk Q9).
    public var wavelengths: [Double]
    public var inputSize: Int
    public var preprocessing: String
    /// Lower-case hex SHA-256 of `adapter.safetensors`, if recorded.
    public var adapterSHA256: String?
    /// Lower-case hex SHA-256 of the backbone file, if recorded.
    public var backboneSHA256: String?
    public var description: String?
    /// Optional colour of each class for label rasters and previews, as "#rrggbb" strings
    /// (`class_colors`); nil uses the default palette.
    public var classColors: [String]?

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case name, backbone
        case backboneVariant = "backbone_variant"
        case bands, classes
        case classNames = "class_names"
        case wavelengths = "wavelengths_um"
        case inputSize = "input_size"
        case preprocessing
        case adapterSHA256 = "adapter_sha256"
        case backboneSHA256 = "backbone_sha256"
        case description
        case classColors = "class_colors"
    }

    public init(name: String, backbone: String, backboneVariant: BackboneVariant? = .satMAEPP, bands: Int,
                classes: Int, classNames: [String]? = nil, wavelengths: [Double]? = nil, inputSize: Int = 224,
                preprocessing: String = DomainConfig.defaultPreprocessing, adapterSHA256: String? = nil,
                backboneSHA256: String? = nil, description: String? = nil)
    {
        schemaVersion = Self.currentSchemaVersion
        self.name = name
        self.backbone = backbone
        self.backboneVariant = backboneVariant
        self.bands = bands
        self.classes = classes
        self.classNames = classNames ?? Self.defaultClassNames(classes)
        self.wavelengths = wavelengths ?? Self.defaultWavelengths(bands)
        self.inputSize = inputSize
        self.preprocessing = preprocessing
        self.adapterSHA256 = adapterSHA256
        self.backboneSHA256 = backboneSHA256
        self.description = description
    }

    /// Hand-written files may omit `class_names` (→ class_i), `input_size` (→ 224) and
    /// `preprocessing` (→ the default); everything else is required.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        name = try c.decode(String.self, forKey: .name)
        backbone = try c.decode(String.self, forKey: .backbone)
        backboneVariant = try c.decodeIfPresent(BackboneVariant.self, forKey: .backboneVariant)
        bands = try c.decode(Int.self, forKey: .bands)
        classes = try c.decode(Int.self, forKey: .classes)
        classNames = try c.decodeIfPresent([String].self, forKey: .classNames) ?? Self.defaultClassNames(classes)
        wavelengths = try c.decode([Double].self, forKey: .wavelengths)
        inputSize = try c.decodeIfPresent(Int.self, forKey: .inputSize) ?? 224
        preprocessing = try c.decodeIfPresent(String.self, forKey: .preprocessing) ?? Self.defaultPreprocessing
        adapterSHA256 = try c.decodeIfPresent(String.self, forKey: .adapterSHA256)
        backboneSHA256 = try c.decodeIfPresent(String.self, forKey: .backboneSHA256)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        classColors = try c.decodeIfPresent([String].self, forKey: .classColors)
    }

    /// "#rrggbb" → (r, g, b), nil when malformed.
    public static func parseColor(_ s: String) -> (UInt8, UInt8, UInt8)? {
        let hex = s.hasPrefix("#") ? String(s.dropFirst()) : s
        guard hex.count == 6, let v = UInt32(hex, radix: 16) else { return nil }
        return (UInt8(v >> 16), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF))
    }

    /// "class_0", "class_1", …
    public static func defaultClassNames(_ k: Int) -> [String] { (0..<max(0, k)).map { "class_\($0)" } }

    /// C evenly spaced demo wavelengths covering 0.4–2.5 µm (rounded to 0.1 nm).
    public static func defaultWavelengths(_ c: Int) -> [Double] {
        guard c > 1 else { return c == 1 ? [0.4] : [] }
        let step: Double = 2.1 / Double(c - 1)
        return (0..<c).map { (i: Int) -> Double in
            let x: Double = 0.4 + step * Double(i)
            return (x * 10_000).rounded() / 10_000
        }
    }

    /// Band counts a domain may declare: the spectral table needs two bands to interpolate between,
    /// and uploads are limited to 1024 bands anyway (4096 leaves room for a larger configured limit).
    public static let bandRange = 2...4096
    /// Class counts: labels are uint8 and 255 is the nodata label.
    public static let classRange = 1...255
    /// Band centres in µm that a remote-sensing sensor can have (UV to thermal infrared); anything
    /// else is a unit mistake (nm, m) or garbage.
    public static let plausibleWavelengths = 0.2...20.0

    /// Checks the invariants the engine relies on (the server, `synth` and `import` all call it, so
    /// none of them writes or accepts a domain another would refuse); `path` only labels the error.
    public func validate(path: String = "domain.json") throws(CheckpointError) {
        func bad(_ r: String) -> CheckpointError { .invalidDomainConfig(path: path, reason: r) }
        guard schemaVersion == Self.currentSchemaVersion else { throw bad("unsupported schema_version \(schemaVersion)") }
        do { try ModelStoreLayout.validateName(name) } catch { throw bad("name: \(error)") }
        do { try ModelStoreLayout.validateName(backbone) } catch { throw bad("backbone: \(error)") }
        guard Self.bandRange.contains(bands) else {
            throw bad("bands must be between \(Self.bandRange.lowerBound) and \(Self.bandRange.upperBound), got \(bands)")
        }
        guard Self.classRange.contains(classes) else {
            throw bad("classes must be between 1 and 255 (uint8 labels, 255 is the nodata label), got \(classes)")
        }
        guard classNames.count == classes else { throw bad("\(classNames.count) class names for \(classes) classes") }
        // The spectral position table interpolates between wavelengths: it needs at least two.
        guard wavelengths.count >= 2 else {
            throw bad("wavelengths_um must list at least two wavelengths (the spectral position table interpolates between them), got \(wavelengths.count)")
        }
        if let i = wavelengths.firstIndex(where: { !($0.isFinite && Self.plausibleWavelengths.contains($0)) }) {
            throw bad("wavelengths_um[\(i)] = \(wavelengths[i]) is outside the plausible range "
                + "\(Self.plausibleWavelengths.lowerBound)–\(Self.plausibleWavelengths.upperBound) µm")
        }
        // The list's length need not be `bands` (quirk Q9: upstream's DFC2020/MTS12 configs pass 32
        // wavelengths for 13/24 bands; the table is interpolated from the list alone), so it is not checked.
        if let cc = classColors {
            guard cc.count == classes else { throw bad("\(cc.count) class_colors for \(classes) classes") }
            for c in cc where Self.parseColor(c) == nil { throw bad("class_colors: '\(c)' is not a #rrggbb colour") }
        }
        guard inputSize == 224 else { throw bad("input_size must be 224 (the model is fixed to 224×224)") }
    }

    /// Reads and validates a domain.json.
    public static func load(from url: URL) throws(CheckpointError) -> DomainConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .invalidDomainConfig(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        let config: DomainConfig
        do { config = try JSONDecoder().decode(DomainConfig.self, from: data) } catch {
            throw .invalidDomainConfig(path: url.path, reason: "\(error)")
        }
        try config.validate(path: url.path)
        return config
    }

    /// Writes pretty-printed JSON with sorted keys, atomically.
    public func write(to url: URL) throws {
        try validate(path: url.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        do { try AtomicFile.write(data, to: url.path, durable: false) } catch { throw CheckpointError(error) }
    }
}
