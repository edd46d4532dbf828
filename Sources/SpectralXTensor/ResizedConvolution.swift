/// A 3×3 stride-1 pad-1 convolution of a bilinearly resized map, computed at the map's own resolution.
///
/// Channel mixing commutes with bilinear interpolation, so for taps W_t and an upsampling U:
/// `conv(U(x))[p] = Σ_t U(W_t·x)[p + t]`, where a tap whose position p + t falls outside the resized map
/// contributes nothing (exactly the zero padding of the original). One GEMM at the low resolution
/// computes all nine tap planes (M = 9·out), each plane is interpolated with the same
/// `align_corners=False` weights as ``BilinearResize`` and shift-added. For the neck's ×4 upsampling
/// this is 16× less arithmetic than convolving the upsampled map.
///
/// A linear map in front of the resize (a 1×1 convolution with bias) composes into the taps:
/// `W_t·(L·x + b) = (W_t·L)·x + W_t·b`, where the constant `W_t·b` ("tap bias") is added to tap plane t
/// *before* the shift, so it too vanishes outside the map. Interpolation weights sum to one, so a
/// constant survives the resize.
public struct ResizedConvolution: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    /// `(9·out, in)`: row `t·out + o` is tap t = 3·ky + kx of output channel o.
    public let taps: ConstantMatrix
    /// `(9·out)` constants added to each tap plane before resize and shift, or nil.
    public let tapBias: Tensor?
    public var name: String { "resized-3x3" }

    /// `weight` is `(out, in, 3, 3)` row-major (PyTorch layout); `tapBias` `(9·out)` in tap-major order.
    public init(outChannels: Int, inChannels: Int, weight: UnsafePointer<Float>, tapBias: UnsafePointer<Float>? = nil) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        let t = Tensor(zeros: [9 * outChannels, inChannels])
        let dst = t.mutablePointer
        for o in 0..<outChannels {
            for i in 0..<inChannels {
                for k in 0..<9 { dst[(k * outChannels + o) * inChannels + i] = weight[(o * inChannels + i) * 9 + k] }
            }
        }
        taps = ConstantMatrix(t.pointer, rows: 9 * outChannels, columns: inChannels)
        self.tapBias = tapBias.map { b in
            let t = Tensor(zeros: [9 * outChannels])
            t.mutablePointer.update(from: b, count: 9 * outChannels)
            return t
        }
    }

    /// Taps already in `(9·out, in)` tap-major layout (e.g. composed with a preceding linear map).
    public init(taps: Tensor, tapBias: Tensor?) {
        precondition(taps.shape.count == 2 && taps.shape[0] % 9 == 0)
        self.taps = ConstantMatrix(taps.pointer, rows: taps.shape[0], columns: taps.shape[1])
        self.tapBias = tapBias
        self.outChannels = taps.shape[0] / 9
        self.inChannels = taps.shape[1]
    }

    /// Adds `conv(resize(x))` to `y`: `x` is `(B, in, h, w)`, `y` `(B, out, H, W)` (written by its
    /// creator, the caller). `scale` is input/output per axis as ``BilinearResize/axis(input:output:scale:)``
    /// takes it (nil: h/H).
    public func accumulate(_ x: Tensor, into y: Tensor, scale: Float? = nil) {
        precondition(x.shape.count == 4 && x.shape[1] == inChannels, "\(name) \(inChannels)→\(outChannels): input \(x.shape)")
        precondition(y.shape.count == 4 && y.shape[0] == x.shape[0] && y.shape[1] == outChannels, "output \(y.shape)")
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (oh, ow) = (y.shape[2], y.shape[3])
        let ay = BilinearResize.axis(input: h, output: oh, scale: scale)
        let ax = BilinearResize.axis(input: w, output: ow, scale: scale)
        let m = 9 * outChannels, hw = h * w
        let planes = FloatStorage(uninitializedCount: m * hw)  // written by the GEMM (beta 0)
        for i in 0..<b {
            taps.multiply(n: hw, b: x.pointer + i * inChannels * hw, ldb: hw, into: planes.base, ldc: hw)
            if let tapBias { Elementwise.addChannelBias(planes.base, channels: m, plane: hw, bias: tapBias.pointer) }
            Self.shiftAdd(planes: UnsafePointer(planes.base), outChannels: outChannels, height: h, width: w,
                          ay: ay, ax: ax, into: y.mutablePointer + i * outChannels * oh * ow)
        }
    }

    /// `out[o] += Σ_{ky,kx} shift_{ky,kx}(resize(P[3ky+kx, o]))` for every output channel, separably:
    /// first along x for each kernel row (Q_ky = Σ_kx shiftX(resizeX(P))), then along y.
    /// Horizontal before vertical, as PyTorch's `upsample_bilinear2d` evaluates the interpolation.
    static func shiftAdd(planes p: UnsafePointer<Float>, outChannels: Int, height h: Int, width w: Int,
                         ay: BilinearResize.AxisWeights, ax: BilinearResize.AxisWeights,
                         into y: UnsafeMutablePointer<Float>) {
        let oh = ay.i0.count, ow = ax.i0.count, hw = h * w
        let src = SharedPointer(p), dst = SharedPointer(y)
        Parallel.forRanges(outChannels, minChunk: max(1, 4096 / max(oh * ow, 1))) { range in
            let q = UnsafeMutablePointer<Float>.allocate(capacity: 3 * h * ow)
            defer { q.deallocate() }
            ay.i0.withUnsafeBufferPointer { yi0 in ay.i1.withUnsafeBufferPointer { yi1 in
            ay.w0.withUnsafeBufferPointer { yw0 in ay.w1.withUnsafeBufferPointer { yw1 in
            ax.i0.withUnsafeBufferPointer { xi0 in ax.i1.withUnsafeBufferPointer { xi1 in
            ax.w0.withUnsafeBufferPointer { xw0 in ax.w1.withUnsafeBufferPointer { xw1 in
                for o in range {
                    // Horizontal: Q_ky[r, X] = Σ_kx resizeX(P_{ky,kx})[r, X + kx − 1] (zero outside 0..<ow).
                    for ky in 0..<3 {
                        let qk = q + ky * h * ow
                        for r in 0..<h {
                            let qr = qk + r * ow
                            for xo in 0..<ow { qr[xo] = 0 }
                            for kx in 0..<3 {
                                let pr = src.base + ((3 * ky + kx) * outChannels + o) * hw + r * w
                                let lo = max(0, 1 - kx), hi = min(ow, ow + 1 - kx)
                                for xo in lo..<hi {
                                    let s = xo + kx - 1
                                    qr[xo] += xw0[s] * pr[xi0[s]] + xw1[s] * pr[xi1[s]]
                                }
                            }
                        }
                    }
                    // Vertical: out[Y, :] += Σ_ky resizeY(Q_ky)[Y + ky − 1, :] (zero outside 0..<oh).
                    let out = dst.base + o * oh * ow
                    for yo in 0..<oh {
                        let orow = out + yo * ow
                        for ky in 0..<3 {
                            let s = yo + ky - 1
                            guard s >= 0 && s < oh else { continue }
                            let r0 = q + (ky * h + yi0[s]) * ow, r1 = q + (ky * h + yi1[s]) * ow
                            let a = yw0[s], c = yw1[s]
                            for xo in 0..<ow { orow[xo] += a * r0[xo] + c * r1[xo] }
                        }
                    }
                }
            } } } } } } } }
        }
    }
}

/// Float64 composition of linear maps at load time, rounded to float32 once.
public enum LinearComposition {
    /// `(A·B)` for A `(m × k)` and B `(k × n)` float32 row-major, accumulated in float64.
    public static func product(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, m: Int, k: Int, n: Int) -> [Double] {
        let ad = [Double](unsafeUninitializedCapacity: m * k) { buf, c in
            for i in 0..<(m * k) { buf[i] = Double(a[i]) }
            c = m * k
        }
        let bd = [Double](unsafeUninitializedCapacity: k * n) { buf, c in
            for i in 0..<(k * n) { buf[i] = Double(b[i]) }
            c = k * n
        }
        return product(ad, bd, m: m, k: k, n: n)
    }

    /// `(A·B)` in float64.
    public static func product(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
        precondition(a.count == m * k && b.count == k * n)
        var c = [Double](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            GEMM.multiplyDouble(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
        } } }
        return c
    }

    /// `A·v` for A `(m × k)` and v `(k)` in float64.
    public static func apply(_ a: [Double], _ v: [Double], m: Int, k: Int) -> [Double] {
        precondition(a.count == m * k && v.count == k)
        var out = [Double](repeating: 0, count: m)
        for i in 0..<m {
            var s = 0.0
            for j in 0..<k { s += a[i * k + j] * v[j] }
            out[i] = s
        }
        return out
    }

    /// Rounds to a float32 tensor of `shape`.
    public static func tensor(_ values: [Double], shape: [Int]) -> Tensor {
        precondition(values.count == shape.reduce(1, *))
        let t = Tensor(zeros: shape)
        let p = t.mutablePointer
        for i in 0..<values.count { p[i] = Float(values[i]) }
        return t
    }
}
