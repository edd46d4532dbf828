import SpectralXTensor

/// LayerNorm over the last axis with its own eps (1e-6 in the ViT, 1e-5 in SpectralX modules).
public struct LayerNorm: Sendable {
    public let gamma: Tensor
    public let beta: Tensor
    public let eps: Float
    public var dim: Int { gamma.count }

    public init(_ scope: WeightScope, dim: Int, eps: Float) {
        gamma = scope.tensor("weight", [dim])
        beta = scope.tensor("bias", [dim])
        self.eps = eps
    }

    public func apply(_ x: UnsafePointer<Float>, rows: Int, inStride: Int? = nil,
                      into y: UnsafeMutablePointer<Float>, outStride: Int? = nil) {
        LayerNormKernel.apply(x, rows: rows, dim: dim, rowStride: inStride, gamma: gamma.pointer, beta: beta.pointer,
                              eps: eps, into: y, outStride: outStride)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == dim)
        let y = Tensor(zeros: x.shape)
        apply(x.pointer, rows: x.count / dim, into: y.mutablePointer)
        return y
    }
}
