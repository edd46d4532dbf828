import SpectralXTensor

/// timm-style multi-head self-attention: fused `qkv` Linear(d→3d), softmax(QKᵀ/√e)V per head, `proj`.
public struct MultiHeadSelfAttention: Sendable {
    public let qkv: Linear
    public let proj: Linear
    public let heads: Int
    public var dim: Int { proj.outFeatures }

    public init(_ scope: WeightScope, dim: Int, heads: Int) {
        qkv = Linear(scope["qkv"], in: dim, out: 3 * dim)
        proj = Linear(scope["proj"], in: dim, out: dim)
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
        let fused = Tensor(zeros: [rows, 3 * dim])
        qkv.apply(x.pointer, rows: rows, into: fused.mutablePointer)
        let mixed = Tensor(zeros: [rows, dim])
        let scores = FloatStorage(count: tokens * tokens)
        for s in 0..<sequences {
            AttentionKernel.selfAttention(
                qkv: fused.pointer + s * tokens * 3 * dim, tokens: tokens, dim: dim, heads: heads,
                scores: scores.base, into: mixed.mutablePointer + s * tokens * dim)
        }
        let y = Tensor(zeros: [rows, dim])
        proj.apply(mixed.pointer, rows: rows, into: y.mutablePointer)
        return y.reshaped(x.shape)
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
        fc1 = Linear(scope["fc1"], in: dim, out: hidden, bias: bias)
        fc2 = Linear(scope["fc2"], in: hidden, out: dim, bias: bias)
    }

    /// Adds `MLP(x)` to `residual` (both `rows × dim`).
    public func apply(_ x: UnsafePointer<Float>, rows: Int, addingInto residual: UnsafeMutablePointer<Float>) {
        let h = FloatStorage(count: rows * fc1.outFeatures)
        fc1.apply(x, rows: rows, into: h.base)
        Activations.gelu(h.base, count: rows * fc1.outFeatures)
        fc2.apply(h.base, rows: rows, into: residual, accumulate: true)
    }
}
