import SpectralXLayers
import SpectralXTensor

/// mmseg `MultiLevelNeck` (spec §4.6): per level a 1×1 conv, a bilinear rescale by 4/2/1/0.5 and a 3×3
/// conv; no norms, no activations.
///
/// The fast path computes only N3 (the PPM needs the whole map): since the neck is linear, N0…N2 are
/// never formed — each is consumed only by a head lateral, and `UPerHead` composes lateral ∘ conv ∘
/// resize ∘ lateral into one ``ResizedConvolution`` at 14². ``reference(_:)`` computes N0…N3 as
/// upstream does, for the parity tests.
struct MultiLevelNeck: Sendable {
    /// Raw `(1024, 1024)` lateral weights and biases (borrowed from the mapped file, not copied).
    let lateralWeights: [Tensor], lateralBiases: [Tensor]
    /// Raw `(1024, 1024, 3, 3)` conv weights and biases.
    let convWeights: [Tensor], convBiases: [Tensor]
    /// N3 = conv(lateral(resize(F3))): the 2×2 average (14 → 7) commutes with the 1×1 lateral.
    let lateral3: Conv2d, conv3: Conv2d
    static let scales: [Float] = [4, 2, 1, 0.5]

    init(_ s: WeightScope) {
        let d = ModelShape.width
        lateralWeights = (0..<4).map { s["lateral_convs"][$0]["conv"].tensor("weight", [d, d, 1, 1]) }
        lateralBiases = (0..<4).map { s["lateral_convs"][$0]["conv"].tensor("bias", [d]) }
        convWeights = (0..<4).map { s["convs"][$0]["conv"].tensor("weight", [d, d, 3, 3]) }
        convBiases = (0..<4).map { s["convs"][$0]["conv"].tensor("bias", [d]) }
        lateral3 = Conv2d(geometry: ConvGeometry(inChannels: d, outChannels: d, kernel: 1),
                          weight: lateralWeights[3], bias: lateralBiases[3], batchNorm: nil)
        conv3 = Conv2d(geometry: ConvGeometry(inChannels: d, outChannels: d, kernel: 3, padding: 1),
                       weight: convWeights[3], bias: convBiases[3], batchNorm: nil)
    }

    /// N3 `(B, 1024, 7, 7)` from the last feature map `(B, 1024, 14, 14)`.
    func coarsest(_ f3: Tensor) -> Tensor {
        conv3(lateral3(BilinearResize.resize(f3, height: f3.shape[2] / 2, width: f3.shape[3] / 2)))
    }

    /// N0…N3 exactly as upstream orders the work (lateral, resize, conv); tests and traces only.
    func reference(_ features: [Tensor]) -> [Tensor] {
        let d = ModelShape.width
        return (0..<4).map { k in
            let lateral = Conv2d(geometry: ConvGeometry(inChannels: d, outChannels: d, kernel: 1),
                                 weight: lateralWeights[k], bias: lateralBiases[k], batchNorm: nil)
            let conv = Conv2d(geometry: ConvGeometry(inChannels: d, outChannels: d, kernel: 3, padding: 1),
                              weight: convWeights[k], bias: convBiases[k], batchNorm: nil)
            let l = lateral(features[k])
            let size = Int(Float(l.shape[2]) * Self.scales[k])
            return conv(BilinearResize.resize(l, height: size, width: size))
        }
    }
}

/// mmseg `UPerHead` (spec §4.7): PPM on the coarsest map, FPN top-down, fuse, `conv_seg`.
/// Every ConvModule is conv → BatchNorm(eps 1e-6, folded) → ReLU.
///
/// Two rewrites of the arithmetic (same function up to float32 rounding):
/// - lateral k (k < 3) is composed at load, in float64, with neck level k (lateral 1×1, resize, 3×3):
///   one ``ResizedConvolution`` from the 14² feature map (M = 9·512 instead of a 3×3 over 1024
///   channels at 56² followed by a 1×1);
/// - `fpn_bottleneck` over `concat(f0, U(f1), U(f2), U(f3))` is the sum of a 3×3 on f0 and three
///   ``ResizedConvolution``s on f1…f3 at their own 28², 14², 7².
struct UPerHead: Sendable {
    let psp: [Conv2d]
    let bottleneck: Conv2d
    /// Neck level k then head lateral k, composed: `(B, 1024, 14, 14)` → `(B, 512, S_k, S_k)` pre-ReLU.
    let laterals: [ResizedConvolution]
    let lateralBiases: [Tensor]
    let fpn: [Conv2d]
    /// `fpn_bottleneck` on f0 (with the folded bias), and on f1, f2, f3 from their own resolution.
    let fuse0: Convolution
    let fuseUp: [ResizedConvolution]
    let classifier: Conv2d
    let classes: Int
    static let poolScales = [1, 2, 3, 6]
    /// The algorithm of the two 3×3 convolutions at 56² (`fpn_convs.0` and the f0 part of
    /// `fpn_bottleneck`, 512 → 512): Winograd F(4×4, 3×3), whose 14 × 14 tiles cover the map exactly,
    /// does 1.78× fewer multiply-adds than F(2×2, 3×3) there (2 × 1.44 GMAC per image).
    static let fullResolution = ConvolutionChoice.winograd4

    init(_ s: WeightScope, classes: Int, neck: MultiLevelNeck) {
        self.classes = classes
        let d = ModelShape.width, c = ModelShape.headChannels
        func module(_ m: WeightScope, _ g: ConvGeometry, choice: ConvolutionChoice = .automatic) -> Conv2d {
            Conv2d(m["conv"], g, bias: false, batchNorm: BatchNormParameters(m["bn"], channels: g.outChannels, eps: 1e-6),
                   choice: choice)
        }
        psp = (0..<4).map { module(s["psp_modules"][$0]["1"], ConvGeometry(inChannels: d, outChannels: c, kernel: 1)) }
        bottleneck = module(s["bottleneck"], ConvGeometry(inChannels: d + 4 * c, outChannels: c, kernel: 3, padding: 1))
        var composed: [ResizedConvolution] = [], biases: [Tensor] = []
        for k in 0..<3 {
            let m = s["lateral_convs"][k]
            let w = m["conv"].tensor("weight", [c, d, 1, 1])
            let bn = BatchNormParameters(m["bn"], channels: c, eps: 1e-6)
            let (taps, tapBias, bias) = Self.composeLateral(
                head: w, bn: bn, neckConv: neck.convWeights[k], neckConvBias: neck.convBiases[k],
                neckLateral: neck.lateralWeights[k], neckLateralBias: neck.lateralBiases[k])
            composed.append(ResizedConvolution(taps: taps, tapBias: tapBias))
            biases.append(bias)
        }
        laterals = composed
        lateralBiases = biases
        fpn = (0..<3).map {
            module(s["fpn_convs"][$0], ConvGeometry(inChannels: c, outChannels: c, kernel: 3, padding: 1),
                   choice: $0 == 0 ? Self.fullResolution : .automatic)
        }

        // fpn_bottleneck with its BatchNorm folded, split by input-channel group.
        let fb = s["fpn_bottleneck"]
        let w = fb["conv"].tensor("weight", [c, 4 * c, 3, 3])
        let bn = BatchNormParameters(fb["bn"], channels: c, eps: 1e-6)
        var parts = (0..<4).map { _ in Tensor(zeros: [c, c, 3, 3]) }
        let bias = Tensor(zeros: [c])
        for o in 0..<c {
            let scale = Double(bn.gamma.pointer[o]) / (Double(bn.variance.pointer[o]) + bn.eps).squareRoot()
            bias.mutablePointer[o] = Float(-Double(bn.mean.pointer[o]) * scale + Double(bn.beta.pointer[o]))
            for g in 0..<4 {
                let src = w.pointer + (o * 4 * c + g * c) * 9, dst = parts[g].mutablePointer + o * c * 9
                for i in 0..<(c * 9) { dst[i] = Float(Double(src[i]) * scale) }
            }
        }
        fuse0 = Convolution(geometry: ConvGeometry(inChannels: c, outChannels: c, kernel: 3, padding: 1),
                            weight: parts[0].pointer, bias: bias.pointer, choice: Self.fullResolution)
        fuseUp = (1..<4).map { ResizedConvolution(outChannels: c, inChannels: c, weight: parts[$0].pointer) }
        parts.removeAll()
        classifier = Conv2d(s["conv_seg"], ConvGeometry(inChannels: c, outChannels: classes, kernel: 1))
    }

    /// head lateral (BN folded) ∘ neck conv (3×3) ∘ resize ∘ neck lateral (1×1), in float64:
    /// taps A_t = L_h′·W_t·L_n, tap bias c_t = L_h′·W_t·b_n (zero outside the map, like the conv's own
    /// padding), output bias L_h′·b_w + b_h′.
    static func composeLateral(head: Tensor, bn: BatchNormParameters, neckConv: Tensor, neckConvBias: Tensor,
                               neckLateral: Tensor, neckLateralBias: Tensor) -> (Tensor, Tensor, Tensor) {
        let c = head.shape[0], d = head.shape[1]
        var lh = [Double](repeating: 0, count: c * d), bh = [Double](repeating: 0, count: c)
        for o in 0..<c {
            let s = Double(bn.gamma.pointer[o]) / (Double(bn.variance.pointer[o]) + bn.eps).squareRoot()
            for i in 0..<d { lh[o * d + i] = Double(head.pointer[o * d + i]) * s }
            bh[o] = -Double(bn.mean.pointer[o]) * s + Double(bn.beta.pointer[o])
        }
        let ln = (0..<(d * d)).map { Double(neckLateral.pointer[$0]) }
        let bnv = (0..<d).map { Double(neckLateralBias.pointer[$0]) }
        let taps = Tensor(zeros: [9 * c, d])
        let tapBias = Tensor(zeros: [9 * c])
        var wt = [Double](repeating: 0, count: d * d)
        for t in 0..<9 {
            for o in 0..<d { for i in 0..<d { wt[o * d + i] = Double(neckConv.pointer[(o * d + i) * 9 + t]) } }
            let lw = LinearComposition.product(lh, wt, m: c, k: d, n: d)          // L_h′·W_t
            let a = LinearComposition.product(lw, ln, m: c, k: d, n: d)           // ·L_n
            let cb = LinearComposition.apply(lw, bnv, m: c, k: d)
            let dst = taps.mutablePointer + t * c * d
            for i in 0..<(c * d) { dst[i] = Float(a[i]) }
            for o in 0..<c { tapBias.mutablePointer[t * c + o] = Float(cb[o]) }
        }
        let bw = (0..<d).map { Double(neckConvBias.pointer[$0]) }
        let out = LinearComposition.apply(lh, bw, m: c, k: d)
        let bias = Tensor(zeros: [c])
        for o in 0..<c { bias.mutablePointer[o] = Float(out[o] + bh[o]) }
        return (taps, tapBias, bias)
    }

    private func relu(_ t: Tensor) -> Tensor {
        Activations.relu(t.mutablePointer, count: t.count)
        return t
    }

    /// `features` are the four neck inputs `(B, 1024, 14, 14)`, `n3` the neck's coarsest output.
    func callAsFunction(features: [Tensor], n3: Tensor, trace: ForwardTrace?) -> Tensor {
        let b = n3.shape[0], c = ModelShape.headChannels
        let top3 = n3.shape[2]
        var pooled = [n3]
        for (k, s) in Self.poolScales.enumerated() {
            let p = relu(psp[k](AdaptiveAveragePool.pool(n3, size: s)))
            pooled.append(BilinearResize.resize(p, height: top3, width: top3))
        }
        let top = relu(bottleneck(Tensor.concatenateChannels(pooled)))
        let lat = (0..<3).map { k -> Tensor in
            let side = Int(Float(features[k].shape[2]) * MultiLevelNeck.scales[k])
            let z = Tensor(zeros: [b, c, side, side])
            laterals[k].accumulate(features[k], into: z, scale: 1 / MultiLevelNeck.scales[k])
            for i in 0..<b {
                Elementwise.addChannelBias(z.mutablePointer + i * c * side * side, channels: c, plane: side * side,
                                           bias: lateralBiases[k].pointer)
            }
            return relu(z)
        } + [top]
        for i in stride(from: 3, to: 0, by: -1) {
            let up = BilinearResize.resize(lat[i], height: lat[i - 1].shape[2], width: lat[i - 1].shape[3])
            Elementwise.add(up.pointer, into: lat[i - 1].mutablePointer, count: up.count)
        }
        let outs = (0..<3).map { relu(fpn[$0](lat[$0])) } + [top]
        let fused = fuse0(outs[0])
        for k in 1..<4 { fuseUp[k - 1].accumulate(outs[k], into: fused) }
        _ = relu(fused)
        trace?.record("head.fused", fused)
        return classifier(fused)
    }
}
