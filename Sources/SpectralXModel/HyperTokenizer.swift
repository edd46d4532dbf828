import SpectralXLayers
import SpectralXTensor

/// HyperT's convolutional stem (`DownsampleConv`, spec §4.1.2): 224² × C → 28² × 512.
struct DownsampleStem: Sendable {
    let conv1: Conv2d
    let module1: Conv2d, module2: Conv2d, module3: Conv2d, module4: Conv2d
    let conv2: Conv2d

    init(_ s: WeightScope, bands: Int) {
        conv1 = Conv2d(s["conv1"], ConvGeometry(inChannels: bands, outChannels: 64, kernel: 1))
        func bn(_ m: String, _ c: Int) -> BatchNormParameters { BatchNormParameters(s[m]["1"], channels: c, eps: 1e-5) }
        module1 = Conv2d(s["module1"]["0"], ConvGeometry(inChannels: 64, outChannels: 64, kernel: 3, padding: 1), batchNorm: bn("module1", 64))
        module2 = Conv2d(s["module2"]["0"], ConvGeometry(inChannels: 64, outChannels: 128, kernel: 2, stride: 2), batchNorm: bn("module2", 128))
        module3 = Conv2d(s["module3"]["0"], ConvGeometry(inChannels: 128, outChannels: 128, kernel: 3, padding: 1), batchNorm: bn("module3", 128))
        module4 = Conv2d(s["module4"]["0"], ConvGeometry(inChannels: 128, outChannels: 256, kernel: 2, stride: 2), batchNorm: bn("module4", 256))
        conv2 = Conv2d(s["conv2"], ConvGeometry(inChannels: 256, outChannels: 512, kernel: 3, stride: 2, padding: 1))
    }

    /// `x + GELU(conv(x))`.
    private func residualGELU(_ conv: Conv2d, _ x: Tensor) -> Tensor {
        let t = conv(x)
        Activations.gelu(t.mutablePointer, count: t.count)
        Elementwise.add(x.pointer, into: t.mutablePointer, count: t.count)
        return t
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var a = conv1(x)
        a = residualGELU(module1, a)
        a = module2(a)
        a = residualGELU(module3, a)
        a = module4(a)
        return conv2(a)
    }
}

/// A HyperT `SAM_Block`: pre-norm attention (optionally in 14×14 windows) and MLP, LayerNorm eps 1e-5.
struct SemanticBlock: Sendable {
    let norm1: LayerNorm, norm2: LayerNorm
    let attention: MultiHeadSelfAttention
    let mlp: MLP
    let dim: Int

    init(_ s: WeightScope, dim: Int) {
        self.dim = dim
        norm1 = LayerNorm(s["norm1"], dim: dim, eps: 1e-5)
        norm2 = LayerNorm(s["norm2"], dim: dim, eps: 1e-5)
        attention = MultiHeadSelfAttention(s["attn"], dim: dim, heads: 8)
        mlp = MLP(s["mlp"], dim: dim, hidden: 4 * dim)
    }

    /// Global attention over each image's `tokens` rows; `u` is `(B, tokens, dim)`, updated in place.
    func global(_ u: Tensor, images: Int, tokens: Int) {
        let rows = images * tokens
        let v = norm1(u)
        let a = attention(v, sequences: images, tokens: tokens)
        Elementwise.add(a.pointer, into: u.mutablePointer, count: u.count)
        let w = norm2(u)
        mlp.apply(w.pointer, rows: rows, addingInto: u.mutablePointer)
    }

    /// Window attention on a `side × side` grid (row-major positions) split into `window`² windows.
    /// The grid is always an exact multiple of the window in SpectralX (28 = 2 × 14), so no padding.
    func windowed(_ u: Tensor, images: Int, side: Int, window: Int) {
        precondition(side % window == 0)
        let per = side / window
        let v = norm1(u)
        let rows = images * side * side
        let windows = WindowPartition.partition(v, images: images, side: side, window: window)
        let a = attention(windows, sequences: images * per * per, tokens: window * window)
        WindowPartition.unpartitionAdding(a, images: images, side: side, window: window, into: u)
        let w = norm2(u)
        mlp.apply(w.pointer, rows: rows, addingInto: u.mutablePointer)
    }
}

/// Side features HyperT hands to every Are-adapter call.
public struct SideFeatures: Sendable {
    /// `(B, 784, 512)`: spatial semantics + 2-D position table.
    public let spatial: Tensor
    /// `(B, 512, 784)`: spectral semantics + spectral position table.
    public let spectral: Tensor
}

/// The Hyper Tokenizer patch embedding (spec §4.1): the frozen HyperT core plus the trainable low-rank
/// conv path and per-channel `scaler`. Produces the 196 ViT tokens and the side features.
public struct HyperTokenizer: Sendable {
    public let bands: Int
    let down: Conv2d, up: Conv2d
    let scaler: Tensor
    let stem: DownsampleStem
    let spatialBlock: SemanticBlock, spectralBlock: SemanticBlock
    let spatialTable: Tensor, spectralTable: Tensor
    let spatialQuery: Tensor, spectralQuery: Tensor
    let spatialMatch: PerceiverAttention, spectralMatch: PerceiverAttention
    let matchNorm: LayerNorm, matchFC1: Linear, matchFC2: Linear

    /// `s` is the `vit_backbone.patch_embed.proj` scope.
    init(_ s: WeightScope, bands: Int, wavelengths: [Double]) {
        self.bands = bands
        let d = ModelShape.width, h = ModelShape.hyperWidth, p = ModelShape.hyperPositions
        down = Conv2d(s["down"], ConvGeometry(inChannels: bands, outChannels: ModelShape.lowRank, kernel: 4, stride: 4))
        up = Conv2d(s["up"], ConvGeometry(inChannels: ModelShape.lowRank, outChannels: d, kernel: 4, stride: 4))
        scaler = s.tensor("scaler", [d])
        let core = s["proj"]
        stem = DownsampleStem(core["downsample_module"], bands: bands)
        spatialBlock = SemanticBlock(core["spa_semantic_module"]["0"], dim: h)
        spectralBlock = SemanticBlock(core["spe_semantic_module"]["0"], dim: p)
        spatialQuery = core.tensor("spa_query", [ModelShape.tokens, h])
        spectralQuery = core.tensor("spe_query", [ModelShape.tokens, h])
        spatialMatch = PerceiverAttention(core["spa_match_attn"], inputDim: h, outDim: h, dimHead: 256, needsOutput: true)
        spectralMatch = PerceiverAttention(core["spe_match_attn"], inputDim: p, outDim: h, dimHead: 392, needsOutput: true)
        matchNorm = LayerNorm(core["match_ff"]["0"], dim: d, eps: 1e-5)
        matchFC1 = Linear(core["match_ff"]["1"], in: d, out: 4 * d, bias: false).packedForInference()
        matchFC2 = Linear(core["match_ff"]["3"], in: 4 * d, out: d, bias: false).packedForInference()
        spatialTable = PositionTables.spatial()
        spectralTable = PositionTables.spectral(wavelengths: wavelengths)
    }

    /// `x` `(B, C, 224, 224)` → tokens `(B, 196, 1024)` and the side features.
    func callAsFunction(_ x: Tensor, trace: ForwardTrace?) -> (tokens: Tensor, side: SideFeatures) {
        let b = x.shape[0]
        let d = ModelShape.width, h = ModelShape.hyperWidth, p = ModelShape.hyperPositions, n = ModelShape.tokens
        let xlr = up(down(x))                                    // (B, 1024, 14, 14)
        trace?.record("hypert.x_lr", xlr)

        let z = stem(x)                                          // (B, 512, 28, 28)
        // Spatial branch: channels-last (B, 784, 512), windowed SAM block, + PE2D.
        let spa = Tensor(zeros: [b, p, h])
        for i in 0..<b { Elementwise.transpose(z.pointer + i * h * p, rows: h, cols: p, into: spa.mutablePointer + i * p * h) }
        spatialBlock.windowed(spa, images: b, side: ModelShape.hyperGrid, window: 14)
        // Spectral branch: the conv output read as (B, 512 tokens, 784 features) — no transpose (Q20).
        let spe = z.copy().reshaped([b, h, p])
        spectralBlock.global(spe, images: b, tokens: h)
        for i in 0..<b {
            Elementwise.add(spatialTable.pointer, into: spa.mutablePointer + i * p * h, count: p * h)
            Elementwise.add(spectralTable.pointer, into: spe.mutablePointer + i * h * p, count: h * p)
        }
        trace?.record("hypert.spa_fea", spa)
        trace?.record("hypert.spe_fea", spe)

        // Attribute matching: the latents are the learned queries, identical for every image.
        let qSpa = spatialMatch.queries(latents: spatialQuery.pointer, rows: n)
        let qSpe = spectralMatch.queries(latents: spectralQuery.pointer, rows: n)
        let fused = Tensor(zeros: [b, n, d])
        for i in 0..<b {
            let kvSpa = spatialMatch.keysValues(media: spa.pointer + i * p * h, rows: p)
            let tokSpa = spatialMatch.output(probabilities: spatialMatch.probabilities(queries: qSpa, keysValues: kvSpa), keysValues: kvSpa)
            let kvSpe = spectralMatch.keysValues(media: spe.pointer + i * h * p, rows: h)
            let tokSpe = spectralMatch.output(probabilities: spectralMatch.probabilities(queries: qSpe, keysValues: kvSpe), keysValues: kvSpe)
            let out = fused.mutablePointer + i * n * d
            for t in 0..<n {
                for f in 0..<h {
                    out[t * d + f] = tokSpa.pointer[t * h + f] + spatialQuery.pointer[t * h + f]
                    out[t * d + h + f] = tokSpe.pointer[t * h + f] + spectralQuery.pointer[t * h + f]
                }
            }
        }
        // match_ff: LN → Linear → GELU → Linear, no residual.
        let normed = matchNorm(fused)
        let hidden = matchFC1(normed)
        Activations.gelu(hidden.mutablePointer, count: hidden.count)
        let core = matchFC2(hidden)                              // (B, 196, 1024)
        trace?.record("hypert.core_tokens", core)

        // tokens[b, n, d] = (T[b, n, d] + x_lr[b, d, n]) · scaler[d]
        let tokens = Tensor(zeros: [b, n, d])
        for i in 0..<b {
            let t = core.pointer + i * n * d, l = xlr.pointer + i * d * n, o = tokens.mutablePointer + i * n * d
            for tok in 0..<n { for c in 0..<d { o[tok * d + c] = (t[tok * d + c] + l[c * n + tok]) * scaler.pointer[c] } }
        }
        trace?.record("hypert.tokens", tokens)
        return (tokens, SideFeatures(spatial: spa, spectral: spe))
    }
}
