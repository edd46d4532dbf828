import SpectralXCheckpoint
import SpectralXLayers
import SpectralXTensor

/// Everything one domain owns (spec §7 PER-DOMAIN and PER-DOMAIN-FROZEN): HyperT, the low-rank path,
/// the block LayerNorms and AoMoA adapters, the Are-adapter, neck and head. Band count C and class
/// count K are read from the weights.
public struct SpectralXDomain: Sendable {
    public let bands: Int
    public let classes: Int
    public let wavelengths: [Double]
    /// The backbone kind these weights were trained with: a DINOv3 domain carries the final norm
    /// applied to its feature maps (`vit_backbone.norm`) and `local_cls_norm`; a ViT-L domain the
    /// unused `vit_backbone.head`.
    public let backboneKind: BackboneKind
    let tokenizer: HyperTokenizer
    /// `vit_backbone.norm` where it is used (DINOv3, spec dinov3 §3.6).
    let finalNorm: LayerNorm?
    let blocks: [DomainBlock]
    let are: AreAdapter
    let neck: MultiLevelNeck
    let head: UPerHead

    /// Binds a domain from the root scope of its state dict (keys without `model.`).
    public init(_ root: WeightScope, wavelengths: [Double]) throws {
        let pe = root["vit_backbone"]["patch_embed"]["proj"]
        guard let conv1 = pe["proj"]["downsample_module"]["conv1"].shape(of: "weight"), conv1.count == 4 else {
            throw WeightBindingError(problems: [WeightProblem(key: pe["proj"]["downsample_module"]["conv1"].key("weight"),
                                                              kind: .missing(expected: [64, -1, 1, 1]))])
        }
        guard let seg = root["head"]["conv_seg"].shape(of: "weight"), seg.count == 4 else {
            throw WeightBindingError(problems: [WeightProblem(key: root["head"]["conv_seg"].key("weight"),
                                                              kind: .missing(expected: [-1, 512, 1, 1]))])
        }
        bands = conv1[1]
        classes = seg[0]
        // Typed errors for what would otherwise stop the process in a kernel (the position table's
        // precondition, zero-channel convolutions); DomainConfig.validate refuses these earlier.
        guard bands >= 1, classes >= 1 else {
            throw DomainMismatchError(description: "the weights declare \(bands) bands and \(classes) classes; both must be at least 1")
        }
        guard wavelengths.count >= 2, wavelengths.allSatisfy({ $0.isFinite }) else {
            throw DomainMismatchError(description:
                "the spectral position table needs at least two finite wavelengths, got \(wavelengths.count)")
        }
        self.wavelengths = wavelengths
        tokenizer = HyperTokenizer(pe, bands: bands, wavelengths: wavelengths)
        blocks = (0..<ModelShape.depth).map { DomainBlock(root["vit_backbone"]["blocks"][$0], adapted: ModelShape.adaptedBlocks.contains($0)) }
        are = AreAdapter(root["AreApt"])
        neck = MultiLevelNeck(root["neck"])
        head = UPerHead(root["head"], classes: classes)
        let vb = root["vit_backbone"]
        if vb["local_cls_norm"].shape(of: "weight") != nil {
            backboneKind = .dinov3
            finalNorm = LayerNorm(vb["norm"], dim: ModelShape.width, eps: Float(BackboneConfiguration.dinov3.finalNormEps))
            vb.ignore("local_cls_norm")   // training-only (spec dinov3 D7)
        } else {
            backboneKind = .vitL
            finalNorm = nil
            // Present upstream, no influence on inference (spec Q15).
            vb.ignore("norm")
            vb.ignore("head")
        }
        root.ignore("norm")
    }
}

/// The stage-2 segmentation network `UPerNetWrapperSpectralX`: a shared frozen backbone plus one domain.
public struct SpectralXNetwork: Sendable {
    public let backbone: FrozenBackbone
    public let domain: SpectralXDomain

    /// `domain.backboneKind` must equal `backbone.configuration.kind` (checked by the loaders, which
    /// report it as an error; see ``checkCompatible(backbone:domain:)``).
    public init(backbone: FrozenBackbone, domain: SpectralXDomain) {
        precondition(backbone.configuration.kind == domain.backboneKind,
                     "a \(domain.backboneKind.rawValue) domain cannot run on a \(backbone.configuration.kind.rawValue) backbone")
        self.backbone = backbone
        self.domain = domain
    }

    /// Reference Are indices to substitute at documented near-ties (spec §12 step 3); tests only.
    public typealias AreIndexOverride = @Sendable (_ call: Int, _ image: Int) -> (spatial: [Int], spectral: [Int])?

    /// `(B, C, 224, 224)` preprocessed input → logits `(B, K, 224, 224)`. Images are independent.
    public func callAsFunction(_ x: Tensor, trace: ForwardTrace? = nil, areOverride: AreIndexOverride? = nil) -> Tensor {
        let size = ModelShape.imageSize
        precondition(x.shape.count == 4 && x.shape[1] == domain.bands && x.shape[2] == size && x.shape[3] == size,
                     "input \(x.shape) does not match (B, \(domain.bands), \(size), \(size))")
        if let parts = backbone.dinov3 { return forwardDINOv3(x, parts: parts, trace: trace, areOverride: areOverride) }
        let b = x.shape[0], t = backbone.configuration.tokensPerImage, n = ModelShape.tokens, d = ModelShape.width
        let prefix = backbone.configuration.prefixTokens
        let (tokens, side) = trace.time("hypert") { domain.tokenizer(x, trace: trace) }

        let stream = Tensor(zeros: [b * t, d])
        trace.time("vit") {
            for i in 0..<b {
                let row0 = stream.mutablePointer + i * t * d
                for f in 0..<d { row0[f] = backbone.classToken.pointer[f] + backbone.positions.pointer[f] }
                for k in 0..<n {
                    let dst = row0 + (k + prefix) * d, src = tokens.pointer + (i * n + k) * d, pos = backbone.positions.pointer + (k + 1) * d
                    for f in 0..<d { dst[f] = src[f] + pos[f] }
                }
            }
        }
        let context = trace.time("are") { domain.are.prepare(side) }
        var features: [Tensor] = []
        for i in 0..<ModelShape.depth {
            trace.time("vit") {
                backbone.blocks[i].forward(stream, images: b, segments: [StreamSegment(images: 0..<b, block: domain.blocks[i])],
                                           trace: trace, index: i)
            }
            if i == 4 { trace?.record("stream.b04", stream.reshaped([b, t, d])) }
            guard let call = ModelShape.adaptedBlocks.firstIndex(of: i) else { continue }
            trace?.record(String(format: "stream.b%02d.pre", i), stream.reshaped([b, t, d]))
            trace.time("are") {
                domain.are.apply(stream, images: b, prefix: prefix, context: context, call: call, trace: trace, overrideIndices: areOverride)
            }
            trace?.record(String(format: "stream.b%02d.post", i), stream.reshaped([b, t, d]))
            let map = Tensor(zeros: [b, d, ModelShape.grid, ModelShape.grid])
            for k in 0..<b {
                Elementwise.transpose(stream.pointer + (k * t + prefix) * d, rows: n, cols: d, into: map.mutablePointer + k * d * n)
            }
            features.append(map)
        }
        return decode(features, trace: trace)
    }

    /// Neck, head and the final resize to the input size (spec §4.6–§4.8), shared by both backbones.
    func decode(_ features: [Tensor], trace: ForwardTrace?) -> Tensor {
        let size = ModelShape.imageSize
        let levels = trace.time("neck") { domain.neck(features) }
        for (k, level) in levels.enumerated() { trace?.record("neck.N\(k)", level) }
        let out = trace.time("head") { domain.head(levels, trace: trace) }
        trace?.record("head.out", out)
        return trace.time("output") { BilinearResize.resize(out, height: size, width: size) }
    }
}
