import SpectralXLayers
import SpectralXTensor

/// Everything one domain owns (spec §7 PER-DOMAIN and PER-DOMAIN-FROZEN): HyperT, the low-rank path,
/// the block LayerNorms and AoMoA adapters, the Are-adapter, neck and head. Band count C and class
/// count K are read from the weights.
public struct SpectralXDomain: Sendable {
    public let bands: Int
    public let classes: Int
    public let wavelengths: [Double]
    let tokenizer: HyperTokenizer
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
        // Present upstream, no influence on inference (spec Q15).
        root["vit_backbone"].ignore("norm")
        root["vit_backbone"].ignore("head")
        root.ignore("norm")
    }
}

/// The stage-2 segmentation network `UPerNetWrapperSpectralX`: a shared frozen backbone plus one domain.
public struct SpectralXNetwork: Sendable {
    public let backbone: FrozenBackbone
    public let domain: SpectralXDomain

    public init(backbone: FrozenBackbone, domain: SpectralXDomain) {
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
        let b = x.shape[0], t = ModelShape.tokens + 1, n = ModelShape.tokens, d = ModelShape.width
        let (tokens, side) = trace.time("hypert") { domain.tokenizer(x, trace: trace) }

        let stream = Tensor(zeros: [b * t, d])
        trace.time("vit") {
            for i in 0..<b {
                let row0 = stream.mutablePointer + i * t * d
                for f in 0..<d { row0[f] = backbone.classToken.pointer[f] + backbone.positions.pointer[f] }
                for k in 0..<n {
                    let dst = row0 + (k + 1) * d, src = tokens.pointer + (i * n + k) * d, pos = backbone.positions.pointer + (k + 1) * d
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
                domain.are.apply(stream, images: b, context: context, call: call, trace: trace, overrideIndices: areOverride)
            }
            trace?.record(String(format: "stream.b%02d.post", i), stream.reshaped([b, t, d]))
            let map = Tensor(zeros: [b, d, ModelShape.grid, ModelShape.grid])
            for k in 0..<b {
                Elementwise.transpose(stream.pointer + (k * t + 1) * d, rows: n, cols: d, into: map.mutablePointer + k * d * n)
            }
            features.append(map)
        }
        // N0…N2 exist only on the reference path: the fast path composes them into the head's laterals.
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
