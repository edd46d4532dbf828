/// Several safetensors files seen as one state dict — typically a domain's shared backbone plus
/// its adapter — so the model binds every tensor by its upstream name without caring which file
/// holds it. Keeps the files (and hence every pointer handed out) alive.
///
/// Immutable after `init`, and `SafeTensorsFile` is Sendable, so this is Sendable too.
public final class WeightBundle: Sendable {
    public let files: [SafeTensorsFile]
    private let location: [String: Int]

    /// Fails with `duplicateKey` if a (normalised) name occurs in more than one file.
    public init(files: [SafeTensorsFile]) throws(CheckpointError) {
        var location: [String: Int] = [:]
        for (i, f) in files.enumerated() {
            for e in f.entries where location.updateValue(i, forKey: e.name) != nil {
                throw .duplicateKey(e.name)
            }
        }
        self.files = files
        self.location = location
    }

    /// Opens a domain of a model store: its backbone file and its adapter file.
    public convenience init(store: ModelStoreLayout, domain: String) throws(CheckpointError) {
        let opened = try store.openDomain(domain)
        try self.init(files: [opened.backbone, opened.adapter])
    }

    /// Every tensor name (without `model.`), file by file in file order.
    public var names: [String] { files.flatMap(\.names) }

    public func file(containing name: String) -> SafeTensorsFile? {
        location[SafeTensorsHeader.normalisedName(name)].map { files[$0] }
    }

    public func entry(named name: String) -> SafeTensorsEntry? { file(containing: name)?.entry(named: name) }

    public func rawBytes(_ name: String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard let f = file(containing: name) else { throw .tensorNotFound(name) }
        return try f.rawBytes(name)
    }

    public func float32Pointer(_ name: String) -> UnsafePointer<Float>? { file(containing: name)?.float32Pointer(name) }

    public func float32Buffer(_ name: String) throws(CheckpointError) -> UnsafeBufferPointer<Float> {
        guard let f = file(containing: name) else { throw .tensorNotFound(name) }
        return try f.float32Buffer(name)
    }

    /// The F32 tensor after checking its shape — what a layer uses to bind a weight.
    public func float32Buffer(_ name: String, shape: [Int]) throws(CheckpointError) -> UnsafeBufferPointer<Float> {
        guard let f = file(containing: name) else { throw .tensorNotFound(name) }
        return try f.float32Buffer(name, shape: shape)
    }

    /// Checks that every tensor the layout needs for inference (all roles but UNUSED) is present
    /// with the right dtype and shape; throws the first problem. Extra tensors are allowed.
    public func validate(against layout: StateDictLayout) throws(CheckpointError) {
        for want in layout.entries where want.role != .unused {
            guard let have = entry(named: want.key) else { throw .tensorNotFound(want.key) }
            guard have.dtype == want.dtype else {
                throw .dtypeMismatch(key: want.key, expected: want.dtype.rawValue, actual: have.dtype.rawValue)
            }
            guard have.shape == want.shape else { throw .shapeMismatch(key: want.key, expected: want.shape, actual: have.shape) }
        }
    }

    /// Reads the band count C and class count K off the tensor shapes
    /// (`patch_embed.proj.down.weight` is (16, C, 4, 4), `head.conv_seg.weight` is (K, 512, 1, 1)).
    public func inferredBandsAndClasses() -> (bands: Int, classes: Int)? {
        guard let down = entry(named: "vit_backbone.patch_embed.proj.down.weight"), down.shape.count == 4,
              let seg = entry(named: "head.conv_seg.weight"), seg.shape.count == 4 else { return nil }
        return (down.shape[1], seg.shape[0])
    }
}
