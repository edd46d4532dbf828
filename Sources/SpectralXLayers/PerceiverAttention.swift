import SpectralXTensor

/// Single-head Perceiver cross-attention (`PerceiverAttention` in upstream `src/utils.py`):
/// keys/values from LayerNorm(media), queries from LayerNorm(latents), no biases.
///
/// Split into steps because SpectralX reuses them: the Are-adapter needs only the probabilities, and
/// its media (the HyperT side features) are the same in all four calls, so keys are computed once.
public struct PerceiverAttention: Sendable {
    public let normMedia: LayerNorm
    public let normLatents: LayerNorm
    public let toQ: Linear
    public let toKV: Linear
    /// nil where the output is discarded (the Are-adapter).
    public let toOut: Linear?
    public let dimHead: Int

    public init(_ scope: WeightScope, inputDim: Int, outDim: Int, dimHead: Int, needsOutput: Bool) {
        normMedia = LayerNorm(scope["norm_media"], dim: inputDim, eps: 1e-5)
        normLatents = LayerNorm(scope["norm_latents"], dim: outDim, eps: 1e-5)
        toQ = Linear(scope["to_q"], in: outDim, out: dimHead, bias: false).packedForInference()
        toKV = Linear(scope["to_kv"], in: inputDim, out: 2 * dimHead, bias: false).packedForInference()
        if needsOutput {
            toOut = Linear(scope["to_out"], in: dimHead, out: outDim, bias: false).packedForInference()
        } else {
            toOut = nil
            scope.ignore("to_out")
        }
        self.dimHead = dimHead
    }

    /// `[k | v]` rows (`n × 2·dimHead`) for media rows (`n × inputDim`).
    public func keysValues(media: UnsafePointer<Float>, rows: Int) -> Tensor {
        let m = Tensor(zeros: [rows, normMedia.dim])
        normMedia.apply(media, rows: rows, into: m.mutablePointer)
        let kv = Tensor(zeros: [rows, 2 * dimHead])
        toKV.apply(m.pointer, rows: rows, into: kv.mutablePointer)
        return kv
    }

    /// Scaled queries `LN(latents)·W_qᵀ · dimHead^-½` (`n × dimHead`); latent rows may be strided.
    public func queries(latents: UnsafePointer<Float>, rows: Int, stride: Int? = nil) -> Tensor {
        let l = Tensor(zeros: [rows, normLatents.dim])
        normLatents.apply(latents, rows: rows, inStride: stride, into: l.mutablePointer)
        let q = Tensor(zeros: [rows, dimHead])
        toQ.apply(l.pointer, rows: rows, into: q.mutablePointer)
        let scale = 1 / Float(dimHead).squareRoot()
        let p = q.mutablePointer
        for i in 0..<q.count { p[i] *= scale }
        return q
    }

    /// Attention probabilities `softmax_media(q·kᵀ)`: `(latents × media)`.
    public func probabilities(queries q: Tensor, keysValues kv: Tensor) -> Tensor {
        let nl = q.shape[0], nm = kv.shape[0]
        let a = Tensor(zeros: [nl, nm])
        GEMM.multiply(transB: true, m: nl, n: nm, k: dimHead, a: q.pointer, lda: dimHead,
                      b: kv.pointer, ldb: 2 * dimHead, c: a.mutablePointer, ldc: nm)
        SoftmaxKernel.rows(a.mutablePointer, rows: nl, cols: nm)
        return a
    }

    /// `(A·v)·W_outᵀ` (`latents × outDim`).
    public func output(probabilities a: Tensor, keysValues kv: Tensor) -> Tensor {
        guard let toOut else { preconditionFailure("this Perceiver was loaded without its output projection") }
        let nl = a.shape[0], nm = a.shape[1]
        let av = Tensor(zeros: [nl, dimHead])
        GEMM.multiply(m: nl, n: dimHead, k: nm, a: a.pointer, lda: nm, b: kv.pointer + dimHead, ldb: 2 * dimHead,
                      c: av.mutablePointer, ldc: dimHead)
        return toOut(av)
    }
}
