import SpectralXLayers
import SpectralXTensor

/// mmseg `MultiLevelNeck` (spec §4.6): per level a 1×1 conv, a bilinear rescale by 4/2/1/0.5 and a 3×3
/// conv; no norms, no activations.
struct MultiLevelNeck: Sendable {
    let laterals: [Conv2d]
    let convs: [Conv2d]
    static let scales: [Float] = [4, 2, 1, 0.5]

    init(_ s: WeightScope) {
        let d = ModelShape.width
        laterals = (0..<4).map { Conv2d(s["lateral_convs"][$0]["conv"], ConvGeometry(inChannels: d, outChannels: d, kernel: 1)) }
        convs = (0..<4).map { Conv2d(s["convs"][$0]["conv"], ConvGeometry(inChannels: d, outChannels: d, kernel: 3, padding: 1)) }
    }

    func callAsFunction(_ features: [Tensor]) -> [Tensor] {
        (0..<4).map { k in
            let l = laterals[k](features[k])
            let size = Int(Float(l.shape[2]) * Self.scales[k])
            return convs[k](BilinearResize.resize(l, height: size, width: size))
        }
    }
}

/// mmseg `UPerHead` (spec §4.7): PPM on the coarsest map, FPN top-down, fuse, `conv_seg`.
/// Every ConvModule is conv → BatchNorm(eps 1e-6, folded) → ReLU.
struct UPerHead: Sendable {
    let psp: [Conv2d]
    let bottleneck: Conv2d
    let laterals: [Conv2d]
    let fpn: [Conv2d]
    let fuse: Conv2d
    let classifier: Conv2d
    let classes: Int
    static let poolScales = [1, 2, 3, 6]

    init(_ s: WeightScope, classes: Int) {
        self.classes = classes
        let d = ModelShape.width, c = ModelShape.headChannels
        func module(_ m: WeightScope, _ g: ConvGeometry) -> Conv2d {
            Conv2d(m["conv"], g, bias: false, batchNorm: BatchNormParameters(m["bn"], channels: g.outChannels, eps: 1e-6))
        }
        psp = (0..<4).map { module(s["psp_modules"][$0]["1"], ConvGeometry(inChannels: d, outChannels: c, kernel: 1)) }
        bottleneck = module(s["bottleneck"], ConvGeometry(inChannels: d + 4 * c, outChannels: c, kernel: 3, padding: 1))
        laterals = (0..<3).map { module(s["lateral_convs"][$0], ConvGeometry(inChannels: d, outChannels: c, kernel: 1)) }
        fpn = (0..<3).map { module(s["fpn_convs"][$0], ConvGeometry(inChannels: c, outChannels: c, kernel: 3, padding: 1)) }
        fuse = module(s["fpn_bottleneck"], ConvGeometry(inChannels: 4 * c, outChannels: c, kernel: 3, padding: 1))
        classifier = Conv2d(s["conv_seg"], ConvGeometry(inChannels: c, outChannels: classes, kernel: 1))
    }

    private func relu(_ t: Tensor) -> Tensor {
        Activations.relu(t.mutablePointer, count: t.count)
        return t
    }

    /// Concatenates `(B, Ci, H, W)` maps along channels.
    static func concatChannels(_ parts: [Tensor]) -> Tensor {
        let b = parts[0].shape[0], hw = parts[0].shape[2] * parts[0].shape[3]
        let total = parts.reduce(0) { $0 + $1.shape[1] }
        let out = Tensor(zeros: [b, total, parts[0].shape[2], parts[0].shape[3]])
        for i in 0..<b {
            var at = i * total * hw
            for p in parts {
                let n = p.shape[1] * hw
                (out.mutablePointer + at).update(from: p.pointer + i * n, count: n)
                at += n
            }
        }
        return out
    }

    func callAsFunction(_ n: [Tensor], trace: ForwardTrace?) -> Tensor {
        let top3 = n[3].shape[2]
        var pooled = [n[3]]
        for (k, s) in Self.poolScales.enumerated() {
            let p = relu(psp[k](AdaptiveAveragePool.pool(n[3], size: s)))
            pooled.append(BilinearResize.resize(p, height: top3, width: top3))
        }
        let top = relu(bottleneck(Self.concatChannels(pooled)))
        let lat = (0..<3).map { relu(laterals[$0](n[$0])) } + [top]
        for i in stride(from: 3, to: 0, by: -1) {
            let up = BilinearResize.resize(lat[i], height: lat[i - 1].shape[2], width: lat[i - 1].shape[3])
            Elementwise.add(up.pointer, into: lat[i - 1].mutablePointer, count: up.count)
        }
        var outs = (0..<3).map { relu(fpn[$0](lat[$0])) } + [top]
        let size = outs[0].shape[2]
        for i in 1..<4 { outs[i] = BilinearResize.resize(outs[i], height: size, width: size) }
        let fused = relu(fuse(Self.concatChannels(outs)))
        trace?.record("head.fused", fused)
        return classifier(fused)
    }
}
