import Foundation

/// The ViT family a backbone file belongs to. Domains of different kinds never share a GEMM.
public enum BackboneKind: String, Sendable, Codable, CaseIterable {
    /// timm ViT-L/16 of SatMAE++ / Scale-MAE (spec `spectralx-model.md`): class token + absolute
    /// position table, 197 tokens.
    case vitL = "vit-l"
    /// DINOv3 ViT-L/16 (spec `spectralx-dinov3.md`): class + 4 storage tokens (201), masked k bias,
    /// LayerScale, axial RoPE in bfloat16, final LayerNorm on every feature map.
    case dinov3 = "dinov3"
}

/// Axial 2-D rotary position embedding of the DINOv3 attention (spec dinov3 §3.4).
public struct RotaryConfiguration: Sendable, Codable, Hashable {
    /// `base` of `periods[k] = base^(2k/(headDim/2))`; informative — the periods are read from the weights.
    public var base: Double
    /// Arithmetic of the tables and the rotation: `bf16` (upstream default) or `f32`.
    public var dtype: String
    /// Number of periods (headDim / 4).
    public var periods: Int

    public init(base: Double = 100, dtype: String = "bf16", periods: Int = 16) {
        self.base = base
        self.dtype = dtype
        self.periods = periods
    }
}

/// The shape of the backbone network as configuration instead of constants (MLX-style Codable
/// configuration): read off the weights (``init(inferringFrom:metadata:)``) and recorded in the
/// backbone file's `__metadata__` (`spectralx_backbone`).
///
/// The token layout is `prefixTokens` tokens (class token, then storage tokens) followed by the
/// `grid²` patch tokens; the first patch token of every image is at index `prefixTokens`.
public struct BackboneConfiguration: Sendable, Codable, Hashable {
    public var kind: BackboneKind
    public var depth: Int
    public var width: Int
    public var heads: Int
    public var mlpHidden: Int
    /// Patch grid side (224 / 16).
    public var grid: Int
    /// Register (storage) tokens after the class token: 0 for ViT-L, 4 for DINOv3.
    public var storageTokens: Int
    /// Absolute position table added to the tokens (ViT-L).
    public var absolutePositions: Bool
    /// `ls1.gamma` / `ls2.gamma` scale each residual branch (DINOv3).
    public var layerScale: Bool
    /// The qkv bias is multiplied by a stored `bias_mask` (DINOv3 `LinearKMaskedBias`).
    public var maskedKeyBias: Bool
    public var rope: RotaryConfiguration?
    /// `vit_backbone.norm` is applied to every feature map (DINOv3); unused in ViT-L.
    public var finalNormOnFeatures: Bool
    /// LayerNorm eps of the blocks' `norm1`/`norm2` and of the final norm.
    public var blockNormEps: Double
    public var finalNormEps: Double
    /// Blocks whose MLP linears carry AoMoA adapters and after which the Are-adapter runs.
    public var adaptedBlocks: [Int]

    enum CodingKeys: String, CodingKey {
        case kind, depth, width, heads, grid, rope
        case mlpHidden = "mlp_hidden"
        case storageTokens = "storage_tokens"
        case absolutePositions = "absolute_positions"
        case layerScale = "layerscale"
        case maskedKeyBias = "masked_k_bias"
        case finalNormOnFeatures = "final_norm_on_features"
        case blockNormEps = "block_norm_eps"
        case finalNormEps = "final_norm_eps"
        case adaptedBlocks = "adapted_blocks"
    }

    public init(kind: BackboneKind, depth: Int = 24, width: Int = 1024, heads: Int = 16, mlpHidden: Int = 4096,
                grid: Int = 14, storageTokens: Int, absolutePositions: Bool, layerScale: Bool, maskedKeyBias: Bool,
                rope: RotaryConfiguration?, finalNormOnFeatures: Bool, blockNormEps: Double = 1e-6,
                finalNormEps: Double = 1e-6, adaptedBlocks: [Int] = [5, 11, 17, 23])
    {
        self.kind = kind
        self.depth = depth
        self.width = width
        self.heads = heads
        self.mlpHidden = mlpHidden
        self.grid = grid
        self.storageTokens = storageTokens
        self.absolutePositions = absolutePositions
        self.layerScale = layerScale
        self.maskedKeyBias = maskedKeyBias
        self.rope = rope
        self.finalNormOnFeatures = finalNormOnFeatures
        self.blockNormEps = blockNormEps
        self.finalNormEps = finalNormEps
        self.adaptedBlocks = adaptedBlocks
    }

    /// SatMAE++ / Scale-MAE ViT-L/16 (spec `spectralx-model.md` §1).
    public static let vitL = BackboneConfiguration(
        kind: .vitL, storageTokens: 0, absolutePositions: true, layerScale: false, maskedKeyBias: false, rope: nil,
        finalNormOnFeatures: false)

    /// DINOv3 ViT-L/16 sat493m as `get_dinov3` builds it (spec `spectralx-dinov3.md` §1).
    public static let dinov3 = BackboneConfiguration(
        kind: .dinov3, storageTokens: 4, absolutePositions: false, layerScale: true, maskedKeyBias: true,
        rope: RotaryConfiguration(), finalNormOnFeatures: true)

    public static func standard(_ kind: BackboneKind) -> BackboneConfiguration { kind == .vitL ? .vitL : .dinov3 }

    /// Class token + storage tokens.
    public var prefixTokens: Int { 1 + storageTokens }
    /// Patch tokens per image (grid²).
    public var patchTokens: Int { grid * grid }
    /// Rows of the residual stream per image.
    public var tokensPerImage: Int { prefixTokens + patchTokens }
    public var headDim: Int { width / heads }

    /// The `__metadata__` key under which backbone files record this configuration.
    public static let metadataKey = "spectralx_backbone"

    /// Compact JSON with sorted keys, as stored in `__metadata__`.
    public func jsonString() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Reads the configuration off a backbone's tensors (`shapes`: key without `model.` → shape):
    /// `storage_tokens` → DINOv3 with that many registers; `rope_embed.periods` → RoPE;
    /// `ls1.gamma` → LayerScale; `attn.qkv.bias_mask` → masked k bias; the number of blocks, the
    /// width (class token) and the MLP width (fc1) from the shapes. Heads and the RoPE base/dtype
    /// are not visible in shapes: they come from a recorded configuration in `metadata`, or the
    /// kind's standard values (head dim 64, base 100, bf16).
    public init(inferringFrom shapes: [String: [Int]], metadata: [String: String] = [:]) throws(CheckpointError) {
        let recorded = metadata[Self.metadataKey].flatMap { try? JSONDecoder().decode(BackboneConfiguration.self, from: Data($0.utf8)) }
        let vb = "vit_backbone."
        guard let cls = shapes[vb + "cls_token"], cls.count == 3, cls[2] > 0 else {
            throw .invalidArgument("not a backbone: vit_backbone.cls_token (1, 1, D) is missing")
        }
        let width = cls[2]
        var depth = 0
        while shapes[vb + "blocks.\(depth).attn.qkv.weight"] != nil { depth += 1 }
        guard depth > 0 else { throw .invalidArgument("not a backbone: no vit_backbone.blocks.N.attn.qkv.weight") }
        var adapted: [Int] = []
        var mlp = 0
        for i in 0..<depth {
            let b = vb + "blocks.\(i).mlp."
            if let s = shapes[b + "fc1.linear.weight"] { adapted.append(i); mlp = s[0] } else if let s = shapes[b + "fc1.weight"] { mlp = s[0] }
        }
        let storage = shapes[vb + "storage_tokens"].map { $0.count == 3 ? $0[1] : -1 } ?? 0
        guard storage >= 0 else { throw .invalidArgument("vit_backbone.storage_tokens must have shape (1, R, D)") }
        let dino = storage > 0 || shapes[vb + "rope_embed.periods"] != nil
        let standard = Self.standard(dino ? .dinov3 : .vitL)
        let heads = recorded?.heads ?? max(1, width / 64)
        var rope: RotaryConfiguration?
        if let p = shapes[vb + "rope_embed.periods"] {
            rope = recorded?.rope ?? RotaryConfiguration()
            rope?.periods = p.first ?? 0
        }
        var grid = standard.grid
        if let pos = shapes[vb + "pos_embed"], pos.count == 3 {
            let n = pos[1] - 1
            grid = Int(Double(n).squareRoot().rounded())
            guard grid * grid == n else { throw .invalidArgument("vit_backbone.pos_embed holds \(pos[1]) rows, not 1 + grid²") }
        } else if let g = recorded?.grid {
            grid = g
        }
        self.init(kind: dino ? .dinov3 : .vitL, depth: depth, width: width, heads: heads, mlpHidden: mlp, grid: grid,
                  storageTokens: storage, absolutePositions: shapes[vb + "pos_embed"] != nil,
                  layerScale: shapes[vb + "blocks.0.ls1.gamma"] != nil,
                  maskedKeyBias: shapes[vb + "blocks.0.attn.qkv.bias_mask"] != nil, rope: rope,
                  finalNormOnFeatures: recorded?.finalNormOnFeatures ?? standard.finalNormOnFeatures,
                  blockNormEps: recorded?.blockNormEps ?? standard.blockNormEps,
                  finalNormEps: recorded?.finalNormEps ?? standard.finalNormEps,
                  adaptedBlocks: adapted.isEmpty ? (recorded?.adaptedBlocks ?? []) : adapted)
        try validate()
    }

    /// The invariants the model relies on.
    public func validate() throws(CheckpointError) {
        guard depth >= 1, width >= 2, width % 2 == 0 else { throw .invalidArgument("backbone width \(width) / depth \(depth) invalid") }
        guard heads >= 1, width % heads == 0 else { throw .invalidArgument("width \(width) is not a multiple of \(heads) heads") }
        guard mlpHidden >= 1, grid >= 1, storageTokens >= 0 else { throw .invalidArgument("backbone MLP/grid/storage sizes invalid") }
        guard adaptedBlocks.allSatisfy({ (0..<depth).contains($0) }) else {
            throw .invalidArgument("adapted blocks \(adaptedBlocks) outside 0..<\(depth)")
        }
        if let rope {
            guard headDim % 4 == 0, rope.periods == headDim / 4 else {
                throw .invalidArgument("RoPE needs headDim/4 = \(headDim / 4) periods, the weights hold \(rope.periods)")
            }
            guard rope.dtype == "bf16" || rope.dtype == "f32" else { throw .invalidArgument("RoPE dtype '\(rope.dtype)' is not bf16 or f32") }
        }
    }
}
