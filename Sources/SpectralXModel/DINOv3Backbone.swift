import SpectralXCheckpoint
import SpectralXLayers
import SpectralXTensor

/// What a DINOv3 backbone has beyond the ViT-L blocks (spec dinov3 §1, §3): the storage (register)
/// tokens, the RoPE tables and every block's LayerScale γ1/γ2. The qkv bias of each block is bound
/// already multiplied by its stored `bias_mask` (`LinearKMaskedBias`).
struct DINOv3Parts: Sendable {
    let storageTokens: Tensor            // (R, D)
    let rotary: RotaryEmbedding
    let layerScales: [(attention: Tensor, mlp: Tensor)]
}

extension FrozenBackbone {
    /// Binds a DINOv3 backbone from the `vit_backbone` scope. `periods` is `rope_embed.periods`
    /// widened from bf16 (read by the caller: the binder holds float32 tensors only).
    init(dinov3 s: WeightScope, configuration c: BackboneConfiguration, periods: [Float]) {
        configuration = c
        let d = c.width
        classToken = s.tensor("cls_token", [1, 1, d]).reshaped([d])
        positions = Tensor(zeros: [0])
        // `mask_token` enters only as cls + 0·mask (spec D4): no influence for finite values.
        s.ignore("mask_token")
        s.ignore("rope_embed")
        let storage = s.tensor("storage_tokens", [1, c.storageTokens, d]).reshaped([c.storageTokens, d])
        var scales: [(attention: Tensor, mlp: Tensor)] = []
        blocks = (0..<c.depth).map { i in
            let b = s["blocks"][i]
            let adapted = c.adaptedBlocks.contains(i)
            let mlp = b["mlp"], attn = b["attn"]
            let qkvWeight = attn["qkv"].tensor("weight", [3 * d, d])
            var qkvBias = attn["qkv"].tensor("bias", [3 * d])
            if c.maskedKeyBias {
                let mask = attn["qkv"].tensor("bias_mask", [3 * d])
                let masked = Tensor(zeros: [3 * d])
                for j in 0..<(3 * d) { masked.mutablePointer[j] = qkvBias.pointer[j] * mask.pointer[j] }
                qkvBias = masked
            }
            if c.layerScale {
                scales.append((b["ls1"].tensor("gamma", [d]), b["ls2"].tensor("gamma", [d])))
            }
            return Block(
                attention: MultiHeadSelfAttention(qkv: Linear(weight: qkvWeight, bias: qkvBias),
                                                  proj: Linear(attn["proj"], in: d, out: d), heads: c.heads),
                fc1: Linear(adapted ? mlp["fc1"]["linear"] : mlp["fc1"], in: d, out: c.mlpHidden),
                fc2: Linear(adapted ? mlp["fc2"]["linear"] : mlp["fc2"], in: c.mlpHidden, out: d),
                packed: c.rope?.dtype == "f32", bf16: i >= Self.firstBF16Block)
        }
        dinov3 = DINOv3Parts(storageTokens: storage,
                             rotary: RotaryEmbedding(periods: periods, grid: c.grid, bfloat16: c.rope?.dtype != "f32"),
                             layerScales: scales)
    }

    /// The RoPE tables of a DINOv3 backbone (nil for ViT-L), for parity tests.
    public var rotary: RotaryEmbedding? { dinov3?.rotary }
}

/// `y[r, :] ⊙= γ` over `rows` rows of width `γ.count` (LayerScale).
private func scaleColumns(_ y: Tensor, rows: Int, by gamma: Tensor) {
    let d = gamma.count
    let p = SharedPointer(y.mutablePointer), g = SharedPointer(gamma.pointer)
    Parallel.forRanges(rows, minChunk: 64) { range in
        for r in range {
            let row = p + r * d
            for i in 0..<d { row[i] *= g[i] }
        }
    }
}

extension FrozenBackbone.Block {
    /// One DINOv3 `SelfAttentionBlock` (spec dinov3 §3.3) on the stream `x` (`images·T × D`), in place:
    /// `X += γ1 ⊙ Attn(LN1 X)` with RoPE on q/k, then `X += γ2 ⊙ MLP(LN2 X)` (AoMoA inside in adapted
    /// blocks, as ViT-L). Each domain's norms and adapters run on its own rows, as in ``forward``.
    func forwardDINOv3(_ x: Tensor, images: Int, parts: DINOv3Parts, segments: [StreamSegment], trace: ForwardTrace?,
                       index: Int, precision: Precision) {
        let rows = x.shape[0], d = x.shape[1], t = rows / images, f = fc1.outFeatures
        let u = Tensor(zeros: [rows, d])
        for s in segments {
            let r0 = s.images.lowerBound * t
            s.block.norm1.apply(x.pointer + r0 * d, rows: s.images.count * t, into: u.mutablePointer + r0 * d)
        }
        // Attention: fused qkv (k bias masked at load), RoPE on q and k, SDPA per image, proj.
        // With the bf16 RoPE, q and k (columns 0..<2d) are computed with float64 accumulation and rounded
        // once: a q/k entry near a bf16 rounding boundary then rounds as the exact product of our LN
        // output does, instead of by our GEMM's summation order, which added its own whole-step flips to
        // upstream's (spec D2). Logits vs upstream: 1.02e-4 → 7.9e-5 (SkylakeX), 0.76e-4 … 0.93e-4 over
        // other kernels, threading and batch 1 (0.78e-4 … 1.02e-4 before, 1.04e-3 with Are flips on
        // Prescott); the mean error is unchanged. Costs ≈0.13 s per image (≈8 %). v is never rounded
        // and stays on the float32 GEMM.
        // In bf16 precision the operands are rounded to bf16 anyway: the whole qkv on the bf16 kernel.
        let fused = Tensor(zeros: [rows, 3 * d])
        if precision == .bf16 {
            attention.qkv.apply(u.pointer, rows: rows, into: fused.mutablePointer, precision: .bf16)
        } else if parts.rotary.bfloat16 {
            attention.qkv.apply(u.pointer, rows: rows, outputs: 0..<(2 * d), float64Accumulation: true,
                                into: fused.mutablePointer, outStride: 3 * d)
            attention.qkv.apply(u.pointer, rows: rows, outputs: (2 * d)..<(3 * d), into: fused.mutablePointer, outStride: 3 * d)
        } else {
            attention.qkv.apply(u.pointer, rows: rows, into: fused.mutablePointer)
        }
        let e = d / attention.heads
        trace?.record("rope.b\(index).q_in", Self.headMajor(fused, part: 0, tokens: t, width: d, headDim: e))
        trace?.record("rope.b\(index).k_in", Self.headMajor(fused, part: 1, tokens: t, width: d, headDim: e))
        parts.rotary.apply(qkv: fused.mutablePointer, sequences: images, tokens: t, width: d)
        trace?.record("rope.b\(index).q_out", Self.headMajor(fused, part: 0, tokens: t, width: d, headDim: e))
        trace?.record("rope.b\(index).k_out", Self.headMajor(fused, part: 1, tokens: t, width: d, headDim: e))
        let mixed = Tensor(zeros: [rows, d])
        let scores = FloatStorage(count: attention.heads * t * t)   // one score matrix per head (AttentionKernel)
        for s in 0..<images {
            AttentionKernel.selfAttention(qkv: fused.pointer + s * t * 3 * d, tokens: t, dim: d, heads: attention.heads,
                                          scores: scores.base, into: mixed.mutablePointer + s * t * d)
        }
        let a = Tensor(zeros: [rows, d])
        attention.proj.apply(mixed.pointer, rows: rows, into: a.mutablePointer, precision: precision)
        if index < parts.layerScales.count { scaleColumns(a, rows: rows, by: parts.layerScales[index].attention) }
        Elementwise.add(a.pointer, into: x.mutablePointer, count: x.count)

        for s in segments {
            let r0 = s.images.lowerBound * t
            s.block.norm2.apply(x.pointer + r0 * d, rows: s.images.count * t, into: u.mutablePointer + r0 * d)
        }
        let h = Tensor(zeros: [rows, f])
        fc1.apply(u.pointer, rows: rows, into: h.mutablePointer, precision: precision)
        segments.addAdapters(\.fc1Adapter, input: u, into: h, tokens: t, trace: trace, name: "mmoe.b\(index).fc1")
        Activations.gelu(h.mutablePointer, count: h.count)
        let y = Tensor(zeros: [rows, d])
        fc2.apply(h.pointer, rows: rows, into: y.mutablePointer, precision: precision)
        segments.addAdapters(\.fc2Adapter, input: h, into: y, tokens: t, trace: trace, name: "mmoe.b\(index).fc2")
        if index < parts.layerScales.count { scaleColumns(y, rows: rows, by: parts.layerScales[index].mlp) }
        Elementwise.add(y.pointer, into: x.mutablePointer, count: x.count)
    }

    /// Image 0's q (`part` 0) or k (1) as `(heads, tokens, headDim)`, the layout of the RoPE fixtures.
    static func headMajor(_ fused: Tensor, part: Int, tokens: Int, width: Int, headDim e: Int) -> Tensor {
        let heads = width / e
        let out = Tensor(zeros: [heads, tokens, e])
        for h in 0..<heads {
            for i in 0..<tokens {
                (out.mutablePointer + (h * tokens + i) * e).update(from: fused.pointer + i * 3 * width + part * width + h * e, count: e)
            }
        }
        return out
    }
}

extension SpectralXNetwork {
    /// The forward pass of `UPerNetWrapperSpectralX_DINOv3` (spec dinov3 §3.8): HyperT tokens after
    /// `[cls, storage…]`, 24 DINOv3 blocks, the Are-adapter on the patch tokens only (prefix tokens carried
    /// through), feature maps = final LayerNorm of the Are output; neck and head as ViT-L.
    func forwardDINOv3(_ x: Tensor, parts: DINOv3Parts, trace: ForwardTrace?, areOverride: AreIndexOverride?,
                       precision: Precision) -> Tensor {
        let c = backbone.configuration
        let b = x.shape[0], prefix = c.prefixTokens, t = c.tokensPerImage, n = c.patchTokens, d = c.width
        let (tokens, side) = trace.time("hypert") { domain.tokenizer(x, trace: trace) }
        let stream = Tensor(zeros: [b * t, d])
        trace.time("vit") {
            for i in 0..<b {
                let row0 = stream.mutablePointer + i * t * d
                row0.update(from: backbone.classToken.pointer, count: d)
                (row0 + d).update(from: parts.storageTokens.pointer, count: c.storageTokens * d)
                (row0 + prefix * d).update(from: tokens.pointer + i * n * d, count: n * d)
            }
        }
        guard let finalNorm = domain.finalNorm else {
            preconditionFailure("a DINOv3 backbone needs a domain with vit_backbone.norm (checked at load)")
        }
        let context = trace.time("are") { domain.are.prepare(side) }
        var features: [Tensor] = []
        let segments = { (i: Int) in [StreamSegment(images: 0..<b, block: domain.blocks[i])] }
        for i in 0..<c.depth {
            trace.time("vit") {
                backbone.blocks[i].forwardDINOv3(stream, images: b, parts: parts, segments: segments(i),
                                                 trace: trace, index: i, precision: FrozenBackbone.precision(precision, block: i))
            }
            if i == 4 { trace?.record("stream.b04", stream.reshaped([b, t, d])) }
            guard let call = c.adaptedBlocks.firstIndex(of: i) else { continue }
            trace?.record(String(format: "stream.b%02d.pre", i), stream.reshaped([b, t, d]))
            trace.time("are") {
                domain.are.apply(stream, images: b, prefix: prefix, context: context, call: call, trace: trace,
                                 overrideIndices: areOverride)
            }
            trace?.record(String(format: "stream.b%02d.post", i), stream.reshaped([b, t, d]))
            // feature_k = LN_final(Z'); the stream itself continues un-normalised (spec D6).
            let normed = Tensor(zeros: [b, n, d])
            trace.time("vit") {
                for k in 0..<b {
                    finalNorm.apply(stream.pointer + (k * t + prefix) * d, rows: n, into: normed.mutablePointer + k * n * d)
                }
            }
            trace?.record(String(format: "feat.b%02d", i), normed)
            let map = Tensor(zeros: [b, d, c.grid, c.grid])
            for k in 0..<b {
                Elementwise.transpose(normed.pointer + k * n * d, rows: n, cols: d, into: map.mutablePointer + k * d * n)
            }
            features.append(map)
        }
        return Self.decode(domain, features, trace: trace)
    }
}
