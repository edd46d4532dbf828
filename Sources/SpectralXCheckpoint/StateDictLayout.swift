import Foundation

/// What a state-dict entry is for (spec `spectralx-model.md` §7.1); decides which file stores it.
public enum TensorRole: String, Sendable, Codable, CaseIterable {
    case frozenBackbone = "FROZEN-BACKBONE"
    case perDomain = "PER-DOMAIN"
    case perDomainFrozen = "PER-DOMAIN-FROZEN"
    case unused = "UNUSED"

    /// FROZEN-BACKBONE tensors go to the shared backbone file, everything else to the domain file.
    public var file: WeightFile { self == .frozenBackbone ? .backbone : .domain }
}

/// Which of the two weight files holds a tensor.
public enum WeightFile: String, Sendable, Codable, CaseIterable {
    case backbone
    case domain
}

/// The upstream `model.backbone` choice. The two ViT-L variants differ only in the unused
/// classifier head; `dinov3` is the other backbone kind (spec `spectralx-dinov3.md`).
public enum BackboneVariant: String, Sendable, Codable, CaseIterable {
    /// SatMAE++ ViT-L: `vit_backbone.head` keeps 1000 ImageNet classes.
    case satMAEPP = "sat_mae_pp"
    /// Scale-MAE ViT-L: `vit_backbone.head` has K classes.
    case scaleMAE = "scale_mae"
    /// DINOv3 ViT-L/16 (`upernetSpectralX-DINOv3`): storage tokens, LayerScale, RoPE, final norm.
    case dinov3 = "dinov3"

    public var kind: BackboneKind { self == .dinov3 ? .dinov3 : .vitL }
}

/// The role rule that chooses a synthetic tensor's uniform range (fixtures/README.md §2.2).
public enum WeightRule: String, Sendable, Codable, CaseIterable {
    case linearWeight = "linear-weight"
    case areAttnWeight = "are-attn-weight"
    case linearBias = "linear-bias"
    case normWeight = "norm-weight"
    case normBias = "norm-bias"
    case bnRunningMean = "bn-running-mean"
    case bnRunningVar = "bn-running-var"
    case intZero = "int-zero"
    case scaler = "scaler"
    case areScale = "are-scale"
    case mmoeWGate = "mmoe-w-gate"
    case mmoeWNoise = "mmoe-w-noise"
    case mmoeMean = "mmoe-mean"
    case mmoeStd = "mmoe-std"
    case posEmbed = "pos-embed"
    case clsToken = "cls-token"
    case hypertQuery = "hypert-query"
    // DINOv3 (fixtures/dinov3 README §1).
    case storageTokens = "storage-tokens"
    case maskToken = "mask-token"
    case layerscaleGamma = "layerscale-gamma"
    case finalNormWeight = "final-norm-weight"
    /// Constants (not generated): their contents come from `DINOv3Constants`.
    case constKBiasMask = "const-k-bias-mask"
    case constRopePeriods = "const-rope-periods"

    /// (lo, hi) for a tensor of `shape`, computed in Double exactly as the manifest's generator
    /// did: ±(s·√3)/√fan_in with fan_in = product(shape[1...]) (s = 1, or 2.5 for the Are
    /// attention), which reproduces every manifest value bit for bit.
    public func range(shape: [Int]) -> (lo: Double, hi: Double) {
        switch self {
        case .linearWeight, .areAttnWeight:
            let fanIn = shape.dropFirst().reduce(1, *)
            let s: Double = self == .areAttnWeight ? 2.5 : 1.0
            let hi = (s * 3.0.squareRoot()) / Double(fanIn).squareRoot()
            return (-hi, hi)
        case .linearBias: return (-0.05, 0.05)
        case .normWeight: return (0.8, 1.2)
        case .normBias, .bnRunningMean, .clsToken: return (-0.1, 0.1)
        case .bnRunningVar: return (0.5, 1.5)
        case .intZero, .mmoeMean: return (0, 0)
        case .mmoeStd: return (1, 1)
        case .scaler: return (0.9, 1.1)
        case .areScale: return (0.2, 0.3)
        case .mmoeWGate: return (-0.15, 0.15)
        case .mmoeWNoise: return (-0.01, 0.01)
        case .posEmbed: return (-2.5, 2.5)
        case .hypertQuery: return (-3.0.squareRoot(), 3.0.squareRoot())
        case .storageTokens: return (-1, 1)
        case .maskToken: return (-0.1, 0.1)
        case .layerscaleGamma: return (0.3, 0.9)
        case .finalNormWeight: return (2.5, 5.0)
        case .constKBiasMask, .constRopePeriods: return (0, 0)
        }
    }

    /// Constants are written from their definition, not from the generator.
    public var isConstant: Bool { self == .constKBiasMask || self == .constRopePeriods }
}

/// One state-dict tensor: name, shape, type, role, destination file and synthetic range.
public struct StateDictEntry: Sendable, Hashable {
    /// Upstream key without the Lightning `model.` prefix.
    public let key: String
    public let shape: [Int]
    public let dtype: SafeTensorsDType
    public let role: TensorRole
    public let file: WeightFile
    public let rule: String
    public let lo: Double
    public let hi: Double

    public init(key: String, shape: [Int], dtype: SafeTensorsDType, role: TensorRole, file: WeightFile,
                rule: String, lo: Double, hi: Double)
    {
        self.key = key
        self.shape = shape
        self.dtype = dtype
        self.role = role
        self.file = file
        self.rule = rule
        self.lo = lo
        self.hi = hi
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.byteSize }
    /// Not generated: a fixed buffer (DINOv3 `bias_mask`, `rope_embed.periods`).
    public var isConstant: Bool { WeightRule(rawValue: rule)?.isConstant ?? false }
}

/// The upstream `UPerNetWrapperSpectralX` state dict for the ViT-L SpectralX configuration
/// (spec §7.2), or `UPerNetWrapperSpectralX_DINOv3` for `backbone: .dinov3` (spec dinov3 §5),
/// for any band count C and class count K, in upstream state-dict order.
///
/// This is what lets `spectralx synth` build demo models of any C and K without a manifest.
public struct StateDictLayout: Sendable {
    public let bands: Int
    public let classes: Int
    public let backbone: BackboneVariant
    public let entries: [StateDictEntry]

    public static let embedDim = 1024
    public static let depth = 24
    public static let adaptedBlocks = [5, 11, 17, 23]

    public init(bands: Int, classes: Int, backbone: BackboneVariant = .satMAEPP) throws(CheckpointError) {
        guard bands >= 1 else { throw .invalidArgument("band count must be at least 1, got \(bands)") }
        guard classes >= 1 else { throw .invalidArgument("class count must be at least 1, got \(classes)") }
        self.bands = bands
        self.classes = classes
        self.backbone = backbone
        var b = Builder()
        b.build(bands: bands, classes: classes, backbone: backbone)
        entries = b.entries
    }

    /// Entries stored in one file, in state-dict order.
    public func entries(in file: WeightFile) -> [StateDictEntry] { entries.filter { $0.file == file } }

    public var elementCount: Int { entries.reduce(0) { $0 + $1.elementCount } }

    /// Accumulates entries in state-dict order.
    private struct Builder {
        var entries: [StateDictEntry] = []

        mutating func add(_ key: String, _ shape: [Int], _ rule: WeightRule, _ role: TensorRole) {
            let (lo, hi) = rule.range(shape: shape)
            entries.append(StateDictEntry(key: key, shape: shape, dtype: rule == .intZero ? .i64 : .f32, role: role,
                                          file: role.file, rule: rule.rawValue, lo: lo, hi: hi))
        }

        /// A fixed buffer of the backbone (FROZEN-BACKBONE, stored in the backbone file).
        mutating func constant(_ key: String, _ shape: [Int], _ dtype: SafeTensorsDType, _ rule: WeightRule) {
            entries.append(StateDictEntry(key: key, shape: shape, dtype: dtype, role: .frozenBackbone, file: .backbone,
                                          rule: rule.rawValue, lo: 0, hi: 0))
        }

        mutating func linear(_ p: String, out: Int, in inner: [Int], bias: Bool = true, _ role: TensorRole,
                             weightRule: WeightRule = .linearWeight)
        {
            add(p + ".weight", [out] + inner, weightRule, role)
            if bias { add(p + ".bias", [out], .linearBias, role) }
        }

        mutating func layerNorm(_ p: String, _ n: Int, _ role: TensorRole) {
            add(p + ".weight", [n], .normWeight, role)
            add(p + ".bias", [n], .normBias, role)
        }

        mutating func batchNorm(_ p: String, _ n: Int, _ role: TensorRole) {
            layerNorm(p, n, role)
            add(p + ".running_mean", [n], .bnRunningMean, role)
            add(p + ".running_var", [n], .bnRunningVar, role)
            add(p + ".num_batches_tracked", [], .intZero, role)
        }

        /// timm-style transformer block as used by HyperT's semantic modules (dim d, MLP 4d).
        mutating func samBlock(_ p: String, _ d: Int, _ role: TensorRole) {
            layerNorm(p + ".norm1", d, role)
            linear(p + ".attn.qkv", out: 3 * d, in: [d], role)
            linear(p + ".attn.proj", out: d, in: [d], role)
            layerNorm(p + ".norm2", d, role)
            linear(p + ".mlp.fc1", out: 4 * d, in: [d], role)
            linear(p + ".mlp.fc2", out: d, in: [4 * d], role)
        }

        /// Perceiver cross-attention: query from `latent` (512) features, keys/values from `media`.
        mutating func perceiver(_ p: String, media: Int, inner: Int, attnRule: WeightRule,
                                attnRole: TensorRole, outRole: TensorRole)
        {
            layerNorm(p + ".norm_media", media, attnRole)
            layerNorm(p + ".norm_latents", 512, attnRole)
            linear(p + ".to_q", out: inner, in: [512], bias: false, attnRole, weightRule: attnRule)
            linear(p + ".to_kv", out: 2 * inner, in: [media], bias: false, attnRole, weightRule: attnRule)
            linear(p + ".to_out", out: 512, in: [inner], bias: false, outRole)
        }

        /// AoMoA side branch: dimension reduction, 4-expert MMoE with 2 tasks, dimension increase.
        mutating func moaBlock(_ p: String, inHalf: Int, reduced r: Int, outHalf: Int, expertHidden h: Int) {
            linear(p + ".dimReduction", out: r, in: [inHalf], bias: false, .perDomain)
            linear(p + ".dimIncrease", out: outHalf, in: [r], bias: false, .perDomain)
            add(p + ".MoA.w_gate", [2, r, 4], .mmoeWGate, .perDomain)
            add(p + ".MoA.w_noise", [2, r, 4], .mmoeWNoise, .unused)
            add(p + ".MoA.mean", [1], .mmoeMean, .unused)
            add(p + ".MoA.std", [1], .mmoeStd, .unused)
            for e in 0..<4 {
                linear(p + ".MoA.experts.\(e).fc1", out: h, in: [r], .perDomain)
                linear(p + ".MoA.experts.\(e).fc2", out: r, in: [h], .perDomain)
            }
            layerNorm(p + ".norm1", inHalf, .perDomain)
            layerNorm(p + ".norm2", r, .perDomain)
        }

        mutating func build(bands c: Int, classes k: Int, backbone: BackboneVariant) {
            let d = StateDictLayout.embedDim
            let vb = "vit_backbone"
            let dino = backbone == .dinov3
            add(vb + ".cls_token", [1, 1, d], .clsToken, .frozenBackbone)
            if dino {
                add(vb + ".storage_tokens", [1, 4, d], .storageTokens, .frozenBackbone)
                add(vb + ".mask_token", [1, d], .maskToken, .frozenBackbone)
            } else {
                add(vb + ".pos_embed", [1, 197, d], .posEmbed, .frozenBackbone)
            }

            // HyperT tokenizer + low-rank path (§4.1).
            let pe = vb + ".patch_embed.proj"
            add(pe + ".scaler", [d], .scaler, .perDomain)
            let ht = pe + ".proj"
            let f: TensorRole = .perDomainFrozen
            add(ht + ".spa_query", [196, 512], .hypertQuery, f)
            add(ht + ".spe_query", [196, 512], .hypertQuery, f)
            let ds = ht + ".downsample_module"
            linear(ds + ".conv1", out: 64, in: [c, 1, 1], f)
            linear(ds + ".module1.0", out: 64, in: [64, 3, 3], f)
            batchNorm(ds + ".module1.1", 64, f)
            linear(ds + ".module2.0", out: 128, in: [64, 2, 2], f)
            batchNorm(ds + ".module2.1", 128, f)
            linear(ds + ".module3.0", out: 128, in: [128, 3, 3], f)
            batchNorm(ds + ".module3.1", 128, f)
            linear(ds + ".module4.0", out: 256, in: [128, 2, 2], f)
            batchNorm(ds + ".module4.1", 256, f)
            linear(ds + ".conv2", out: 512, in: [256, 3, 3], f)
            samBlock(ht + ".spa_semantic_module.0", 512, f)
            samBlock(ht + ".spe_semantic_module.0", 784, f)
            perceiver(ht + ".spa_match_attn", media: 512, inner: 256, attnRule: .linearWeight, attnRole: f, outRole: f)
            perceiver(ht + ".spe_match_attn", media: 784, inner: 392, attnRule: .linearWeight, attnRole: f, outRole: f)
            layerNorm(ht + ".match_ff.0", d, f)
            linear(ht + ".match_ff.1", out: 4 * d, in: [d], bias: false, f)
            linear(ht + ".match_ff.3", out: d, in: [4 * d], bias: false, f)
            linear(pe + ".down", out: 16, in: [c, 4, 4], .perDomain)
            linear(pe + ".up", out: d, in: [16, 4, 4], .perDomain)
            if dino { constant(vb + ".rope_embed.periods", [16], .bf16, .constRopePeriods) }

            // ViT-L blocks; AoMoA wraps the MLP linears of the adapted blocks.
            for i in 0..<StateDictLayout.depth {
                let blk = vb + ".blocks.\(i)"
                layerNorm(blk + ".norm1", d, .perDomain)
                linear(blk + ".attn.qkv", out: 3 * d, in: [d], .frozenBackbone)
                if dino { constant(blk + ".attn.qkv.bias_mask", [3 * d], .f32, .constKBiasMask) }
                linear(blk + ".attn.proj", out: d, in: [d], .frozenBackbone)
                if dino { add(blk + ".ls1.gamma", [d], .layerscaleGamma, .frozenBackbone) }
                layerNorm(blk + ".norm2", d, .perDomain)
                if StateDictLayout.adaptedBlocks.contains(i) {
                    add(blk + ".mlp.fc1.scaler", [4 * d], .scaler, .perDomain)
                    linear(blk + ".mlp.fc1.linear", out: 4 * d, in: [d], .frozenBackbone)
                    moaBlock(blk + ".mlp.fc1.blocks_MoA", inHalf: d / 2, reduced: 128, outHalf: 2 * d, expertHidden: 16)
                    add(blk + ".mlp.fc2.scaler", [d], .scaler, .perDomain)
                    linear(blk + ".mlp.fc2.linear", out: d, in: [4 * d], .frozenBackbone)
                    moaBlock(blk + ".mlp.fc2.blocks_MoA", inHalf: 2 * d, reduced: 512, outHalf: d / 2, expertHidden: 64)
                } else {
                    linear(blk + ".mlp.fc1", out: 4 * d, in: [d], .frozenBackbone)
                    linear(blk + ".mlp.fc2", out: d, in: [4 * d], .frozenBackbone)
                }
                if dino { add(blk + ".ls2.gamma", [d], .layerscaleGamma, .frozenBackbone) }
            }
            if dino {
                // The final norm is applied to every feature map (spec dinov3 §3.6).
                add(vb + ".norm.weight", [d], .finalNormWeight, .perDomain)
                add(vb + ".norm.bias", [d], .normBias, .perDomain)
                layerNorm(vb + ".local_cls_norm", d, .unused)
            } else {
                layerNorm(vb + ".norm", d, .unused)
                linear(vb + ".head", out: backbone == .satMAEPP ? 1000 : k, in: [d], .unused)
            }

            // MultiLevelNeck.
            for j in 0..<4 { linear("neck.lateral_convs.\(j).conv", out: d, in: [d, 1, 1], .perDomain) }
            for j in 0..<4 { linear("neck.convs.\(j).conv", out: d, in: [d, 3, 3], .perDomain) }

            // UPerHead.
            let pd: TensorRole = .perDomain
            linear("head.conv_seg", out: k, in: [512, 1, 1], pd)
            for s in 0..<4 {
                linear("head.psp_modules.\(s).1.conv", out: 512, in: [d, 1, 1], bias: false, pd)
                batchNorm("head.psp_modules.\(s).1.bn", 512, pd)
            }
            linear("head.bottleneck.conv", out: 512, in: [d + 4 * 512, 3, 3], bias: false, pd)
            batchNorm("head.bottleneck.bn", 512, pd)
            for j in 0..<3 {
                linear("head.lateral_convs.\(j).conv", out: 512, in: [d, 1, 1], bias: false, pd)
                batchNorm("head.lateral_convs.\(j).bn", 512, pd)
            }
            for j in 0..<3 {
                linear("head.fpn_convs.\(j).conv", out: 512, in: [512, 3, 3], bias: false, pd)
                batchNorm("head.fpn_convs.\(j).bn", 512, pd)
            }
            linear("head.fpn_bottleneck.conv", out: 512, in: [4 * 512, 3, 3], bias: false, pd)
            batchNorm("head.fpn_bottleneck.bn", 512, pd)

            // Are-adapter.
            add("AreApt.scale", [], .areScale, pd)
            layerNorm("AreApt.norm", 512, pd)
            perceiver("AreApt.spa_match_attn", media: 512, inner: 256, attnRule: .areAttnWeight, attnRole: pd, outRole: .unused)
            perceiver("AreApt.spe_match_attn", media: 784, inner: 392, attnRule: .areAttnWeight, attnRole: pd, outRole: .unused)
            linear("AreApt.spa_mlp", out: 196, in: [784], .unused)
            linear("AreApt.spe_mlp", out: 196, in: [512], .unused)
            linear("AreApt.refine_spa.0", out: 256, in: [512, 3, 3], bias: false, pd)
            batchNorm("AreApt.refine_spa.1", 256, pd)
            linear("AreApt.refine_spa.3", out: 256, in: [256, 3, 3], bias: false, pd)
            batchNorm("AreApt.refine_spa.4", 256, pd)
            linear("AreApt.refine_spe.0", out: 196, in: [512, 1], bias: false, pd)
            batchNorm("AreApt.refine_spe.1", 196, pd)

            layerNorm("norm", d, .unused)
        }
    }
}
