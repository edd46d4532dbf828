import SpectralXCheckpoint
import SpectralXLayers
import SpectralXTensor

extension WeightBinder {
    /// A binder over one or more safetensors files (keys with or without `model.`). F32 tensors are
    /// used in place in the memory mapping; the files stay alive as long as any bound tensor does.
    public convenience init(files: [SafeTensorsFile]) {
        var keys: [String: [Int]] = [:]
        var owner: [String: SafeTensorsFile] = [:]
        for f in files {
            for e in f.entries {
                keys[e.name] = e.shape
                owner[e.name] = f
            }
        }
        self.init(keys: keys) { key in
            guard let f = owner[key], let e = f.entry(named: key) else { return nil }
            guard e.dtype == .f32, let p = f.float32Pointer(key) else {
                return NamedTensor(shape: e.shape, tensor: nil, dtype: e.dtype.rawValue)
            }
            let storage = FloatStorage(borrowing: p, count: max(e.elementCount, 1), owner: f)
            return NamedTensor(shape: e.shape, tensor: Tensor(shape: e.shape, storage: storage), dtype: "F32")
        }
    }
}

/// Reasons a domain cannot be served even though its tensors fit the network.
public struct DomainMismatchError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

extension FrozenBackbone {
    /// The configuration a backbone file describes: read off its tensors, with heads / RoPE dtype from
    /// its recorded `spectralx_backbone` metadata when present.
    public static func configuration(of file: SafeTensorsFile) throws -> BackboneConfiguration {
        var shapes: [String: [Int]] = [:]
        for e in file.entries { shapes[e.name] = e.shape }
        return try BackboneConfiguration(inferringFrom: shapes, metadata: file.metadata)
    }

    /// Binds the shared backbone from its own file (either kind); any other tensor in that file is an error.
    public static func load(_ file: SafeTensorsFile) throws -> FrozenBackbone {
        let config = try configuration(of: file)
        let binder = WeightBinder(files: [file])
        let backbone: FrozenBackbone
        switch config.kind {
        case .vitL:
            guard config == .vitL else {
                throw DomainMismatchError(description: "unsupported ViT-L backbone shape: \(config.jsonString())")
            }
            backbone = FrozenBackbone(binder.root["vit_backbone"])
        case .dinov3:
            guard config.width == ModelShape.width, config.grid == ModelShape.grid, config.storageTokens >= 0,
                  config.layerScale, config.rope != nil else {
                throw DomainMismatchError(description: "unsupported DINOv3 backbone shape: \(config.jsonString())")
            }
            backbone = FrozenBackbone(dinov3: binder.root["vit_backbone"], configuration: config,
                                      periods: try ropePeriods(file, count: config.headDim / 4))
        }
        try binder.finish()
        return backbone
    }

    /// `vit_backbone.rope_embed.periods`, BF16 (as upstream stores it) or F32, widened exactly.
    static func ropePeriods(_ file: SafeTensorsFile, count: Int) throws -> [Float] {
        let key = "vit_backbone.rope_embed.periods"
        guard let e = file.entry(named: key), e.shape == [count] else {
            throw WeightBindingError(problems: [WeightProblem(key: key, kind: .missing(expected: [count]))])
        }
        let raw = file.rawBytes(of: e)
        let values: [Float]
        switch e.dtype {
        case .bf16: values = (0..<count).map { BFloat16.float(bits: UInt16(raw[2 * $0]) | UInt16(raw[2 * $0 + 1]) << 8) }
        case .f32: values = (0..<count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        default: throw WeightBindingError(problems: [WeightProblem(key: key, kind: .unsupportedType(e.dtype.rawValue))])
        }
        guard values.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw DomainMismatchError(description: "\(key) holds non-positive or non-finite periods \(values)")
        }
        return values
    }
}

extension SpectralXDomain {
    /// Binds a domain from its adapter file. `expectedBands`/`expectedClasses` (from `domain.json`)
    /// are checked against the shapes the weights carry.
    public static func load(_ file: SafeTensorsFile, wavelengths: [Double],
                            expectedBands: Int? = nil, expectedClasses: Int? = nil) throws -> SpectralXDomain {
        let binder = WeightBinder(files: [file])
        let domain = try SpectralXDomain(binder.root, wavelengths: wavelengths)
        try binder.finish()
        if let expectedBands, expectedBands != domain.bands {
            throw DomainMismatchError(description:
                "band count mismatch: the domain declares \(expectedBands) bands but its weights take \(domain.bands) "
                + "(vit_backbone.patch_embed.proj.proj.downsample_module.conv1.weight)")
        }
        if let expectedClasses, expectedClasses != domain.classes {
            throw DomainMismatchError(description:
                "class count mismatch: the domain declares \(expectedClasses) classes but head.conv_seg has \(domain.classes)")
        }
        return domain
    }
}

extension SpectralXNetwork {
    /// Throws when a domain's weights were trained for the other backbone kind.
    public static func checkCompatible(backbone: FrozenBackbone, domain: SpectralXDomain, backboneName: String = "the backbone") throws {
        guard backbone.configuration.kind == domain.backboneKind else {
            throw DomainMismatchError(description:
                "backbone kind mismatch: the domain's weights are for a \(domain.backboneKind.rawValue) backbone "
                + "but \(backboneName) is \(backbone.configuration.kind.rawValue)")
        }
    }

    /// Loads one domain of a model store together with the backbone its `domain.json` names,
    /// verifying the declared band and class counts against the weights.
    public static func load(store: ModelStoreLayout, domain name: String) throws -> SpectralXNetwork {
        let config = try store.loadDomainConfig(name)
        let backbone = try FrozenBackbone.load(SafeTensorsFile(url: store.backboneURL(config.backbone)))
        let domain = try SpectralXDomain.load(SafeTensorsFile(url: store.adapterURL(name)), wavelengths: config.wavelengths,
                                              expectedBands: config.bands, expectedClasses: config.classes)
        try checkCompatible(backbone: backbone, domain: domain, backboneName: "backbone '\(config.backbone)'")
        return SpectralXNetwork(backbone: backbone, domain: domain)
    }
}
