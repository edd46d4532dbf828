import SpectralXCheckpoint
import SpectralXLayers
import SpectralXTensor

/// The frozen, shareable part of the ViT-L/16: class token, absolute position table and every block's
/// attention and MLP linears. One instance serves every domain (it lives in the backbone file).
/// A DINOv3 backbone (`configuration.kind == .dinov3`) has the same blocks plus the parts in
/// ``DINOv3Parts`` and runs its own forward (DINOv3Backbone.swift).
public struct FrozenBackbone: Sendable {
    public struct Block: Sendable {
        let attention: MultiHeadSelfAttention
        let fc1: Linear, fc2: Linear

        /// The four frozen linears are packed for the float32 kernel where that is faster (see
        /// ``Linear/packedForInference()``; they are most of the ViT's arithmetic) and carry their bf16 copy
        /// (``Linear/frozenForInference(packFloat32:)``). `packed` false keeps the float32 products on the
        /// per-call path: a DINOv3 backbone with bf16 RoPE, whose parity with upstream (≤ 1e-4, at upstream's
        /// own 8.8e-5 thread-count spread) was validated on OpenBLAS's summation order. `bf16` false: a block
        /// that stays float32 in every precision (``FrozenBackbone/firstBF16Block``), with no bf16 copy.
        init(attention: MultiHeadSelfAttention, fc1: Linear, fc2: Linear, packed: Bool = true, bf16: Bool = true) {
            self.attention = MultiHeadSelfAttention(qkv: attention.qkv.frozenForInference(packFloat32: packed, bf16: bf16),
                                                    proj: attention.proj.frozenForInference(packFloat32: packed, bf16: bf16),
                                                    heads: attention.heads)
            self.fc1 = fc1.frozenForInference(packFloat32: packed, bf16: bf16)
            self.fc2 = fc2.frozenForInference(packFloat32: packed, bf16: bf16)
        }

        /// Bytes of the packed copies the four linears hold now.
        var packedBytes: (fp32: Int, bf16: Int) {
            [attention.qkv, attention.proj, fc1, fc2].reduce((0, 0)) { ($0.0 + $1.packedBytes.fp32, $0.1 + $1.packedBytes.bf16) }
        }
    }
    /// Token layout, kind and block structure, read from the weights.
    public let configuration: BackboneConfiguration
    let classToken: Tensor   // (1024)
    let positions: Tensor    // (197, 1024); empty for DINOv3 (no absolute positions)
    let blocks: [Block]
    /// Storage tokens, RoPE and LayerScale of a DINOv3 backbone; nil for ViT-L.
    let dinov3: DINOv3Parts?

    /// Identity of this loaded backbone: the storage of its weights, new for every load. Domains bound
    /// to the same instance may share a forward pass (cross-domain batching); domains on another
    /// backbone file, another backbone architecture or a reloaded copy never do.
    public var identity: ObjectIdentifier { ObjectIdentifier(classToken.storage) }

    /// The first block whose linears follow the forward's precision; blocks before it always compute in
    /// float32. Why: on fixture A (2 images, 100 352 pixels) all 24 blocks in bf16 kept 99.45 % of fp32's
    /// argmax (mean abs logit error 0.0126); blocks 0–2 in fp32 99.67 % (0.0076), 0–4 99.76 % (0.0061),
    /// whereas keeping one kind of linear (qkv, proj, fc1 or fc2) in fp32 in every block gave only
    /// 99.48–99.55 % for 8–33 % of the arithmetic. The early blocks' rounding reaches the first discrete
    /// decisions (block 5's MMoE top-2 routing, the Are-adapter's argmax) amplified by every later block.
    /// Costs 3/24 of the linears' arithmetic. (Domains B and D: 99.95 % with or without.)
    public static let firstBF16Block = 3

    /// The precision block `index` computes in during a forward pass at `precision`.
    static func precision(_ precision: Precision, block index: Int) -> Precision {
        index < firstBF16Block ? .fp32 : precision
    }

    /// Bytes of the frozen linears' packed copies held now, per precision (a copy not yet made counts 0;
    /// float32 products of unpacked linears read the mapped weights instead).
    public var packedBytes: (fp32: Int, bf16: Int) {
        blocks.reduce((0, 0)) { ($0.0 + $1.packedBytes.fp32, $0.1 + $1.packedBytes.bf16) }
    }

    /// `s` is the `vit_backbone` scope.
    public init(_ s: WeightScope) {
        configuration = .vitL
        dinov3 = nil
        let d = ModelShape.width
        classToken = s.tensor("cls_token", [1, 1, d]).reshaped([d])
        positions = s.tensor("pos_embed", [1, ModelShape.tokens + 1, d]).reshaped([ModelShape.tokens + 1, d])
        blocks = (0..<ModelShape.depth).map { i in
            let b = s["blocks"][i]
            let adapted = ModelShape.adaptedBlocks.contains(i)
            let mlp = b["mlp"]
            return Block(
                attention: MultiHeadSelfAttention(qkv: Linear(b["attn"]["qkv"], in: d, out: 3 * d),
                                                  proj: Linear(b["attn"]["proj"], in: d, out: d), heads: ModelShape.heads),
                fc1: Linear(adapted ? mlp["fc1"]["linear"] : mlp["fc1"], in: d, out: ModelShape.mlpHidden),
                fc2: Linear(adapted ? mlp["fc2"]["linear"] : mlp["fc2"], in: ModelShape.mlpHidden, out: d),
                bf16: i >= Self.firstBF16Block)
        }
    }
}

/// A domain's own parts of one ViT block: its LayerNorms (trained per domain) and, in blocks
/// 5/11/17/23, the AoMoA adapters around fc1 and fc2.
struct DomainBlock: Sendable {
    let norm1: LayerNorm, norm2: LayerNorm
    let fc1Adapter: AdaptedLinear?, fc2Adapter: AdaptedLinear?

    init(_ b: WeightScope, adapted: Bool) {
        let d = ModelShape.width
        norm1 = LayerNorm(b["norm1"], dim: d, eps: 1e-6)
        norm2 = LayerNorm(b["norm2"], dim: d, eps: 1e-6)
        if adapted {
            fc1Adapter = AdaptedLinear(b["mlp"]["fc1"], inWidth: d, outWidth: ModelShape.mlpHidden)
            fc2Adapter = AdaptedLinear(b["mlp"]["fc2"], inWidth: ModelShape.mlpHidden, outWidth: d)
        } else {
            fc1Adapter = nil
            fc2Adapter = nil
        }
    }
}

/// Rows of the residual stream that belong to one domain: images `images` of a batch whose rows are
/// laid out image after image (197 rows each). The shared linears run over all rows at once; each
/// domain's norms and adapters run on its own rows — the basis of cross-domain batching.
struct StreamSegment {
    let images: Range<Int>
    let block: DomainBlock
}

extension Array where Element == StreamSegment {
    /// Each domain's AoMoA adapter adds to the shared linear's output on that domain's rows only
    /// (`t` stream rows per image); shared by the ViT-L and DINOv3 blocks.
    func addAdapters(_ adapter: KeyPath<DomainBlock, AdaptedLinear?>, input: Tensor, into output: Tensor, tokens t: Int,
                     trace: ForwardTrace?, name: String) {
        let inWidth = input.shape[1], outWidth = output.shape[1]
        for s in self {
            guard let a = s.block[keyPath: adapter] else { continue }
            let r0 = s.images.lowerBound * t
            a.addAdapter(input: input.pointer + r0 * inWidth, rows: s.images.count * t,
                         into: output.mutablePointer + r0 * outWidth, trace: trace, name: name)
        }
    }
}

/// Activation buffers of a ViT block for `rows` stream rows, allocated once per forward pass and
/// reused by all 24 blocks (instead of fresh zero-filled tensors per block). Only the forward pass
/// that made it writes into it, one block at a time.
final class BlockWorkspace {
    let rows: Int
    let normed: Tensor, hidden: Tensor, output: Tensor
    let attention: MultiHeadSelfAttention.Workspace

    init(rows: Int) {
        let d = ModelShape.width
        self.rows = rows
        normed = Tensor(zeros: [rows, d])
        hidden = Tensor(zeros: [rows, ModelShape.mlpHidden])
        output = Tensor(zeros: [rows, d])
        attention = MultiHeadSelfAttention.Workspace(rows: rows, tokens: ModelShape.tokens + 1, dim: d, heads: ModelShape.heads)
    }
}

extension FrozenBackbone.Block {
    /// One pre-norm transformer block on the stream `x` (`images·197 × 1024`), in place.
    func forward(_ x: Tensor, images: Int, segments: [StreamSegment], workspace ws: BlockWorkspace, trace: ForwardTrace?, index: Int,
                 precision: Precision) {
        let t = x.shape[0] / images, d = ModelShape.width
        let rows = images * t
        precondition(ws.rows == rows)
        let u = ws.normed
        for s in segments {
            let r0 = s.images.lowerBound * t
            s.block.norm1.apply(x.pointer + r0 * d, rows: s.images.count * t, into: u.mutablePointer + r0 * d)
        }
        let a = ws.output
        attention.apply(u.pointer, sequences: images, tokens: t, workspace: ws.attention, into: a.mutablePointer, precision: precision)
        Elementwise.add(a.pointer, into: x.mutablePointer, count: x.count)

        for s in segments {
            let r0 = s.images.lowerBound * t
            s.block.norm2.apply(x.pointer + r0 * d, rows: s.images.count * t, into: u.mutablePointer + r0 * d)
        }
        let h = ws.hidden
        fc1.apply(u.pointer, rows: rows, into: h.mutablePointer, precision: precision)
        segments.addAdapters(\.fc1Adapter, input: u, into: h, tokens: t, trace: trace, name: "mmoe.b\(index).fc1")
        Activations.gelu(h.mutablePointer, count: h.count)
        let y = ws.output
        fc2.apply(h.pointer, rows: rows, into: y.mutablePointer, precision: precision)
        segments.addAdapters(\.fc2Adapter, input: h, into: y, tokens: t, trace: trace, name: "mmoe.b\(index).fc2")
        Elementwise.add(y.pointer, into: x.mutablePointer, count: x.count)
    }
}
