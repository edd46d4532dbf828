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
        self.wavelengths = wavelengths
        tokenizer = HyperTokenizer(pe, bands: bands, wavelengths: wavelengths)
        blocks = (0..<ModelShape.depth).map { DomainBlock(root["vit_backbone"]["blocks"][$0], adapted: ModelShape.adaptedBlocks.contains($0)) }
        are = AreAdapter(root["AreApt"])
        neck = MultiLevelNeck(root["neck"])
        head = UPerHead(root["head"], classes: classes, neck: neck)
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

    /// `(B, C, 224, 224)` preprocessed input → logits `(B, K, 224, 224)`. Images are independent. `precision`:
    /// the frozen backbone linears' arithmetic (``Precision``); it must be available here
    /// (``Precision/unavailableReason``, checked by the callers that take it from users).
    public func callAsFunction(_ x: Tensor, trace: ForwardTrace? = nil, areOverride: AreIndexOverride? = nil,
                               precision: Precision = .fp32) -> Tensor {
        if let parts = backbone.dinov3 {
            let size = ModelShape.imageSize
            precondition(x.shape.count == 4 && x.shape[1] == domain.bands && x.shape[2] == size && x.shape[3] == size,
                         "input \(x.shape) does not match (B, \(domain.bands), \(size), \(size))")
            return forwardDINOv3(x, parts: parts, trace: trace, areOverride: areOverride, precision: precision)
        }
        return Self.forward(backbone: backbone, parts: [(domain: domain, input: x)], trace: trace, areOverride: areOverride,
                            precision: precision)[0]
    }

    /// One forward pass over images of several domains that share this backbone (cross-domain
    /// batching): each part's own modules (HyperT, block LayerNorms, AoMoA, Are-adapter, neck, head)
    /// run on its images, the frozen linears of all 24 blocks run once over every image's rows.
    /// Returns each part's logits; an image's logits do not depend on its batch companions.
    public static func mixed(_ parts: [(network: SpectralXNetwork, input: Tensor)], trace: ForwardTrace? = nil,
                             precision: Precision = .fp32) -> [Tensor] {
        guard let first = parts.first else { return [] }
        precondition(parts.allSatisfy { $0.network.backbone.identity == first.network.backbone.identity },
                     "a mixed batch must share one backbone")
        // The DINOv3 blocks have no shared-row path (yet): each part runs alone.
        if first.network.backbone.dinov3 != nil { return parts.map { $0.network($0.input, trace: trace, precision: precision) } }
        return forward(backbone: first.network.backbone, parts: parts.map { (domain: $0.network.domain, input: $0.input) }, trace: trace,
                       areOverride: nil, precision: precision)
    }

    static func forward(backbone: FrozenBackbone, parts: [(domain: SpectralXDomain, input: Tensor)], trace: ForwardTrace?,
                        areOverride: AreIndexOverride?, precision: Precision) -> [Tensor] {
        let size = ModelShape.imageSize
        for (domain, x) in parts {
            precondition(x.shape.count == 4 && x.shape[1] == domain.bands && x.shape[2] == size && x.shape[3] == size,
                         "input \(x.shape) does not match (B, \(domain.bands), \(size), \(size))")
        }
        let t = backbone.configuration.tokensPerImage, d = ModelShape.width
        let prefix = backbone.configuration.prefixTokens
        // Image ranges of the parts in the shared stream.
        var ranges: [Range<Int>] = []
        for (_, x) in parts { ranges.append((ranges.last?.upperBound ?? 0)..<((ranges.last?.upperBound ?? 0) + x.shape[0])) }
        let b = ranges.last!.upperBound

        let hyper = parts.map { part in trace.time("hypert") { part.domain.tokenizer(part.input, trace: trace) } }
        let stream = Tensor(zeros: [b * t, d])
        trace.time("vit") {
            for (p, (tokens, _)) in hyper.enumerated() {
                TokenAssembly.assemble(tokens: tokens.pointer, images: ranges[p].count, tokensPerImage: ModelShape.tokens, dim: d,
                                       classToken: backbone.classToken.pointer,
                                       positions: backbone.positions.pointer, into: stream.mutablePointer + ranges[p].lowerBound * t * d)
            }
        }
        func rows(_ p: Int) -> Tensor { stream.slice((ranges[p].lowerBound * t)..<(ranges[p].upperBound * t)) }
        let contexts = parts.indices.map { p in trace.time("are") { parts[p].domain.are.prepare(hyper[p].side) } }
        var features: [[Tensor]] = Array(repeating: [], count: parts.count)
        let workspace = BlockWorkspace(rows: b * t)
        for i in 0..<ModelShape.depth {
            trace.time("vit") {
                backbone.blocks[i].forward(stream, images: b, segments: parts.indices.map { StreamSegment(images: ranges[$0], block: parts[$0].domain.blocks[i]) },
                                           workspace: workspace, trace: trace, index: i,
                                           precision: FrozenBackbone.precision(precision, block: i))
            }
            if i == 4 { trace?.record("stream.b04", stream.reshaped([b, t, d])) }
            guard let call = ModelShape.adaptedBlocks.firstIndex(of: i) else { continue }
            trace?.record(String(format: "stream.b%02d.pre", i), stream.reshaped([b, t, d]))
            for p in parts.indices {
                trace.time("are") {
                    parts[p].domain.are.apply(rows(p), images: ranges[p].count, prefix: prefix, context: contexts[p], call: call, trace: trace,
                                              overrideIndices: areOverride)
                }
                features[p].append(TokenAssembly.featureMap(rows(p), images: ranges[p].count, side: ModelShape.grid))
            }
            trace?.record(String(format: "stream.b%02d.post", i), stream.reshaped([b, t, d]))
        }
        return parts.indices.map { p in decode(parts[p].domain, features[p], trace: trace) }
    }

    /// Neck, head and the final resize to the input size (spec §4.6–§4.8), shared by both backbones.
    /// N0…N2 exist only on the reference path: the fast path composes them into the head's laterals.
    static func decode(_ domain: SpectralXDomain, _ features: [Tensor], trace: ForwardTrace?) -> Tensor {
        let size = ModelShape.imageSize
        if let keep = trace?.keep, (0..<3).contains(where: { keep("neck.N\($0)") }) {
            for (k, level) in domain.neck.reference(features).enumerated() where k < 3 { trace?.record("neck.N\(k)", level) }
        }
        let n3 = trace.time("neck") { domain.neck.coarsest(features[3]) }
        trace?.record("neck.N3", n3)
        let out = trace.time("head") { domain.head(features: features, n3: n3, trace: trace) }
        trace?.record("head.out", out)
        return trace.time("output") { BilinearResize.resize(out, height: size, width: size) }
    }
}
