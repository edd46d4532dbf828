import SpectralXTensor

/// How far one precision's logits `(B, K, H, W)` are from another's on the same images: the share of pixels
/// whose argmax class is the same (first maximum on ties, as upstream's argmax), and the largest and mean
/// absolute logit differences. `bench --precision fp32,bf16` and the bf16 tests report it.
public struct LogitAgreement: Sendable {
    public let argmaxAgreementPercent: Double, maxAbsError: Double, meanAbsError: Double, pixels: Int

    public init(_ a: Tensor, _ b: Tensor) {
        precondition(a.shape == b.shape && a.shape.count == 4, "logits \(a.shape) vs \(b.shape)")
        let (images, k, plane) = (a.shape[0], a.shape[1], a.shape[2] * a.shape[3])
        var same = 0, worst = 0.0, sum = 0.0
        for i in 0..<images {
            let pa = a.pointer + i * k * plane, pb = b.pointer + i * k * plane
            for px in 0..<plane {
                var ia = 0, ib = 0
                for c in 0..<k {
                    if pa[c * plane + px] > pa[ia * plane + px] { ia = c }
                    if pb[c * plane + px] > pb[ib * plane + px] { ib = c }
                    let d = Double(abs(pa[c * plane + px] - pb[c * plane + px]))
                    worst = max(worst, d)
                    sum += d
                }
                if ia == ib { same += 1 }
            }
        }
        pixels = images * plane
        argmaxAgreementPercent = 100 * Double(same) / Double(max(pixels, 1))
        maxAbsError = worst
        meanAbsError = sum / Double(max(pixels * k, 1))
    }
}
