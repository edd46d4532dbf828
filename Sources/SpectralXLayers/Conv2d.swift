import SpectralXTensor

/// BatchNorm running statistics, for folding into the preceding convolution at load time.
public struct BatchNormParameters {
    public let gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor
    public let eps: Double

    public init(_ scope: WeightScope, channels: Int, eps: Double) {
        gamma = scope.tensor("weight", [channels])
        beta = scope.tensor("bias", [channels])
        mean = scope.tensor("running_mean", [channels])
        variance = scope.tensor("running_var", [channels])
        scope.ignore("num_batches_tracked")
        self.eps = eps
    }
}

/// A convolution layer (PyTorch `Conv2d`), optionally with an eval-mode BatchNorm folded in:
/// W′ = W·γ/√(var+eps), b′ = (b − mean)·γ/√(var+eps) + β (per output channel, folded in float64).
public struct Conv2d: Sendable {
    public let convolution: Convolution
    public var geometry: ConvGeometry { convolution.geometry }

    public init(_ scope: WeightScope, _ geometry: ConvGeometry, bias: Bool = true, batchNorm: BatchNormParameters? = nil,
                choice: ConvolutionChoice = .automatic) {
        let g = geometry
        let w = scope.tensor("weight", [g.outChannels, g.inChannels, g.kernel.h, g.kernel.w])
        let b = bias ? scope.tensor("bias", [g.outChannels]) : nil
        self.init(geometry: g, weight: w, bias: b, batchNorm: batchNorm, choice: choice)
    }

    public init(geometry g: ConvGeometry, weight w: Tensor, bias b: Tensor?, batchNorm bn: BatchNormParameters?,
                choice: ConvolutionChoice = .automatic) {
        guard let bn else {
            convolution = Convolution(geometry: g, weight: w.pointer, bias: b?.pointer, choice: choice)
            return
        }
        let per = g.inChannels * g.kernel.h * g.kernel.w
        let fw = Tensor(zeros: w.shape)
        let fb = Tensor(zeros: [g.outChannels])
        for o in 0..<g.outChannels {
            let s = Double(bn.gamma.pointer[o]) / (Double(bn.variance.pointer[o]) + bn.eps).squareRoot()
            for i in 0..<per { fw.mutablePointer[o * per + i] = Float(Double(w.pointer[o * per + i]) * s) }
            let bias = b.map { Double($0.pointer[o]) } ?? 0
            fb.mutablePointer[o] = Float((bias - Double(bn.mean.pointer[o])) * s + Double(bn.beta.pointer[o]))
        }
        convolution = Convolution(geometry: g, weight: fw.pointer, bias: fb.pointer, choice: choice)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { convolution(x) }
}
