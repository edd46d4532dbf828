import SpectralXTensor

/// timm-style multi-head self-attention: fused `qkv` Linear(d→3d), softmax(QKᵀ/√e)V per head, `proj`.
public struct MultiHeadSelfAttention: Sendable {
    public let qkv: Linear
    public let proj: Linear
    public let heads: Int
    public var dim: Int { proj.outFeatures }

    public init(_ scope: WeightScope, dim: Int, heads: Int) {
        qkv = Linear(scope["qkv"], in: dim, out: 3 * dim).packedForInference()
        proj = Linear(scope["proj"], in: dim, out: dim).packedForInference()
        self.heads = heads
    }

    public init(qkv: Linear, proj: Linear, heads: Int) {
        self.qkv = qkv
        self.proj = proj
        self.heads = heads
    }

    /// Attention over `sequences` independent sequences of `tokens` rows each, stored contiguously in `x`
    /// (`sequences·tokens` rows of width `dim`). Returns the projected output, same layout.
    public func callAsFunction(_ x: Tensor, sequences: Int, tokens: Int) -> Tensor {
        let rows = sequences * tokens
        precondition(x.count == rows * dim, "attention input \(x.shape) vs \(sequences)×\(tokens)×\(dim)")
        let y = Tensor(zeros: [rows, dim])
        apply(x.pointer, sequences: sequences, tokens: tokens, workspace: Workspace(rows: rows, tokens: tokens, dim: dim, heads: heads),
              into: y.mutablePointer)
        return y.reshaped(x.shape)
    }

    /// Scratch buffers of one attention call, reusable across calls of the same size (one forward
    /// pass's ViT blocks share one): the fused QKV rows, the heads' mixed values and one score matrix
    /// per head.
    public struct Workspace {
        public let qkv: FloatStorage, mixed: FloatStorage, scores: FloatStorage
        public init(rows: Int, tokens: Int, dim: Int, heads: Int) {
            qkv = FloatStorage(count: rows * 3 * dim)
            mixed = FloatStorage(count: rows * dim)
            scores = FloatStorage(count: heads * tokens * tokens)
        }
    }

    /// `sequences·tokens` rows of `x` → projected output rows in `y`, using `workspace` for scratch. `precision`
    /// applies to the qkv and proj products (see ``Linear/apply(_:rows:inStride:into:outStride:accumulate:precision:)``);
    /// the scores and softmax are float32.
    public func apply(_ x: UnsafePointer<Float>, sequences: Int, tokens: Int, workspace ws: Workspace,
                      into y: UnsafeMutablePointer<Float>, precision: Precision = .fp32) {
        let rows = sequences * tokens
        precondition(ws.qkv.count >= rows * 3 * dim && ws.mixed.count >= rows * dim && ws.scores.count >= heads * tokens * tokens)
        qkv.apply(x, rows: rows, into: ws.qkv.base, precision: precision)
        for s in 0..<sequences {
            AttentionKernel.selfAttention(
                qkv: ws.qkv.base + s * tokens * 3 * dim, tokens: tokens, dim: dim, heads: heads,
                scores: ws.scores.base, into: ws.mixed.base + s * tokens * dim)
        }
        proj.apply(ws.mixed.base, rows: rows, into: y, precision: precision)
    }
}

/// Linear → exact GELU → Linear.
public struct MLP: Sendable {
    public let fc1: Linear
    public let fc2: Linear

    public init(fc1: Linear, fc2: Linear) {
        self.fc1 = fc1
        self.fc2 = fc2
    }

    public init(_ scope: WeightScope, dim: Int, hidden: Int, bias: Bool = true) {
        fc1 = Linear(scope["fc1"], in: dim, out: hidden, bias: bias).packedForInference()
        fc2 = Linear(scope["fc2"], in: hidden, out: dim, bias: bias).packedForInference()
    }

    /// Adds `MLP(x)` to `residual` (both `rows × dim`).
    public func apply(_ x: UnsafePointer<Float>, rows: Int, addingInto residual: UnsafeMutablePointer<Float>) {
        let h = FloatStorage(uninitializedCount: rows * fc1.outFeatures)   // fc1 overwrites it
        fc1.apply(x, rows: rows, into: h.base)
        Activations.gelu(h.base, count: rows * fc1.outFeatures)
        fc2.apply(h.base, rows: rows, into: residual, accumulate: true)
    }
}
