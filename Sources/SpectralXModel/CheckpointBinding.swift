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
    /// Binds the shared backbone from its own file; any other tensor in that file is an error.
    public static func load(_ file: SafeTensorsFile) throws -> FrozenBackbone {
        let binder = WeightBinder(files: [file])
        let backbone = FrozenBackbone(binder.root["vit_backbone"])
        try binder.finish()
        return backbone
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
    /// Loads one domain of a model store together with the backbone its `domain.json` names,
    /// verifying the declared band and class counts against the weights.
    public static func load(store: ModelStoreLayout, domain name: String) throws -> SpectralXNetwork {
        let config = try store.loadDomainConfig(name)
        let backbone = try FrozenBackbone.load(SafeTensorsFile(url: store.backboneURL(config.backbone)))
        let domain = try SpectralXDomain.load(SafeTensorsFile(url: store.adapterURL(name)), wavelengths: config.wavelengths,
                                              expectedBands: config.bands, expectedClasses: config.classes)
        return SpectralXNetwork(backbone: backbone, domain: domain)
    }
}
