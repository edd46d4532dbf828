import SpectralXLayers
import SpectralXTensor

/// The Attribute-refined Adapter (`Attribute_refinedAdapters`, spec §4.4), one set of weights shared by
/// the four calls after blocks 5/11/17/23.
///
/// Its Perceivers are used only through an argmax over the 196 latents per media position (their
/// outputs are discarded upstream, Q6), so only the probabilities are computed. The argmax is taken per
/// sample for every batch size — upstream's B = 1 crash (Q1) is not reproduced.
struct AreAdapter: Sendable {
    let scale: Float
    let norm: LayerNorm
    let spatialMatch: PerceiverAttention, spectralMatch: PerceiverAttention
    let refineSpatial1: Conv2d, refineSpatial2: Conv2d
    let refineSpectral: Conv2d   // Conv1d k1 as a 1×1 convolution over a 512×1 "image"

    init(_ s: WeightScope) {
        let h = ModelShape.hyperWidth, p = ModelShape.hyperPositions
        scale = s.tensor("scale", []).pointer[0]
        norm = LayerNorm(s["norm"], dim: h, eps: 1e-5)
        spatialMatch = PerceiverAttention(s["spa_match_attn"], inputDim: h, outDim: h, dimHead: 256, needsOutput: false)
        spectralMatch = PerceiverAttention(s["spe_match_attn"], inputDim: p, outDim: h, dimHead: 392, needsOutput: false)
        refineSpatial1 = Conv2d(s["refine_spa"]["0"], ConvGeometry(inChannels: h, outChannels: 256, kernel: 3, stride: 2, padding: 1),
                                bias: false, batchNorm: BatchNormParameters(s["refine_spa"]["1"], channels: 256, eps: 1e-5))
        refineSpatial2 = Conv2d(s["refine_spa"]["3"], ConvGeometry(inChannels: 256, outChannels: 256, kernel: 3, padding: 1),
                                bias: false, batchNorm: BatchNormParameters(s["refine_spa"]["4"], channels: 256, eps: 1e-5))
        let w = s["refine_spe"]["0"].tensor("weight", [ModelShape.tokens, h, 1]).reshaped([ModelShape.tokens, h, 1, 1])
        refineSpectral = Conv2d(geometry: ConvGeometry(inChannels: h, outChannels: ModelShape.tokens, kernel: 1), weight: w, bias: nil,
                                batchNorm: BatchNormParameters(s["refine_spe"]["1"], channels: ModelShape.tokens, eps: 1e-5))
        s.ignore("spa_mlp"); s.ignore("spe_mlp")
    }

    /// Keys of both Perceivers for each image: the side features do not change between the four calls.
    struct Context {
        let spatialKeys: [Tensor]
        let spectralKeys: [Tensor]
    }

    func prepare(_ side: SideFeatures) -> Context {
        let b = side.spatial.shape[0], h = ModelShape.hyperWidth, p = ModelShape.hyperPositions
        return Context(
            spatialKeys: (0..<b).map { spatialMatch.keysValues(media: side.spatial.pointer + $0 * p * h, rows: p) },
            spectralKeys: (0..<b).map { spectralMatch.keysValues(media: side.spectral.pointer + $0 * h * p, rows: h) })
    }

    /// argmax over the latent axis (rows) for every media column; first maximum wins, as `torch.argmax`.
    static func argmaxOverLatents(_ a: Tensor) -> [Int] {
        let nl = a.shape[0], nm = a.shape[1]
        var best = [Int](repeating: 0, count: nm)
        var value = Array(UnsafeBufferPointer(start: a.pointer, count: nm))
        for i in 1..<nl {
            let row = a.pointer + i * nm
            for j in 0..<nm where row[j] > value[j] { value[j] = row[j]; best[j] = i }
        }
        return best
    }

    /// Refines the patch tokens of the stream `x` (`B·T × 1024`, T = `prefix` + 196 rows per image) in
    /// place; the `prefix` tokens (class, storage) pass unchanged. `call` is 0…3 (after blocks 5, 11, 17, 23).
    func apply(_ x: Tensor, images: Int, prefix: Int = 1, context: Context, call: Int, trace: ForwardTrace?,
               overrideIndices: ((_ call: Int, _ image: Int) -> (spatial: [Int], spectral: [Int])?)? = nil) {
        let n = ModelShape.tokens, t = prefix + n, d = ModelShape.width, h = ModelShape.hyperWidth
        let p = ModelShape.hyperPositions
        for b in 0..<images {
            let z = x.mutablePointer + (b * t + prefix) * d     // 196 patch rows, stride 1024
            var idxS = Self.argmaxOverLatents(spatialMatch.probabilities(
                queries: spatialMatch.queries(latents: z, rows: n, stride: d), keysValues: context.spatialKeys[b]))
            var idxP = Self.argmaxOverLatents(spectralMatch.probabilities(
                queries: spectralMatch.queries(latents: z + h, rows: n, stride: d), keysValues: context.spectralKeys[b]))
            if let o = overrideIndices?(call, b) { idxS = o.spatial; idxP = o.spectral }
            trace?.record("are.\(call).idx_s.\(b)", indices: idxS)
            trace?.record("are.\(call).idx_p.\(b)", indices: idxP)

            // Spatial: gather the spatial halves by idx_s onto the 28×28 grid, LN, two conv-BN-ReLU.
            let gs = Tensor(zeros: [p, h])
            for j in 0..<p { (gs.mutablePointer + j * h).update(from: z + idxS[j] * d, count: h) }
            let gsn = norm(gs)
            let grid = Tensor(zeros: [1, h, ModelShape.hyperGrid, ModelShape.hyperGrid])
            Elementwise.transpose(gsn.pointer, rows: p, cols: h, into: grid.mutablePointer)
            let r1 = refineSpatial1(grid)
            Activations.relu(r1.mutablePointer, count: r1.count)
            let r2 = refineSpatial2(r1)                          // (1, 256, 14, 14)
            Activations.relu(r2.mutablePointer, count: r2.count)
            let gateS = Reduction.columnMeans(r2.pointer, rows: 256, cols: n)   // mean over channels per position

            // Spectral: gather the spectral halves by idx_p (512 rows), LN, Conv1d k1 512→196 + BN + ReLU.
            let gp = Tensor(zeros: [h, h])
            for j in 0..<h { (gp.mutablePointer + j * h).update(from: z + h + idxP[j] * d, count: h) }
            let gpn = norm(gp).reshaped([1, h, h, 1])
            let rp = refineSpectral(gpn)                         // (1, 196, 512, 1)
            Activations.relu(rp.mutablePointer, count: rp.count)
            let gateP = Reduction.rowMeans(rp.pointer, rows: n, cols: h)        // mean over the 512 features

            // Z' = Z + scale · (g ⊙ Z) per half.
            for k in 0..<n {
                let row = z + k * d
                for f in 0..<h { row[f] = row[f] + scale * (gateS[k] * row[f]) }
                for f in h..<d { row[f] = row[f] + scale * (gateP[k] * row[f]) }
            }
        }
    }
}
