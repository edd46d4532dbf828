import CSpectralXKernels

/// Shape of a 2-D cross-correlation (PyTorch `Conv2d` semantics: weight `(out, in, kh, kw)`, zero padding).
public struct ConvGeometry: Sendable, Equatable, CustomStringConvertible {
    public var inChannels: Int
    public var outChannels: Int
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    public var padding: (h: Int, w: Int)

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = (kernel, kernel)
        self.stride = (stride, stride)
        self.padding = (padding, padding)
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding.h - kernel.h) / stride.h + 1, (width + 2 * padding.w - kernel.w) / stride.w + 1)
    }

    public var description: String {
        "Conv \(kernel.h)×\(kernel.w)/\(stride.h) pad \(padding.h), \(inChannels)→\(outChannels)"
    }

    public static func == (a: ConvGeometry, b: ConvGeometry) -> Bool {
        a.inChannels == b.inChannels && a.outChannels == b.outChannels && a.kernel == b.kernel
            && a.stride == b.stride && a.padding == b.padding
    }
}

/// One way of computing a convolution. Every algorithm computes the same function (up to float
/// rounding); ``Convolution`` picks one per geometry. Winograd or upsample-aware variants plug in here.
public protocol ConvolutionAlgorithm: Sendable {
    var name: String { get }
    /// Writes every element of `(outC, Ho, Wo)` for one image `(inC, H, W)`, bias not included (the
    /// output buffer is not cleared beforehand).
    func run(image: UnsafePointer<Float>, height: Int, width: Int, into output: UnsafeMutablePointer<Float>)
}

/// Which algorithm a ``Convolution`` uses.
public enum ConvolutionChoice: String, Sendable, CaseIterable {
    /// Chosen from the geometry (see ``Convolution/init(geometry:weight:bias:choice:)``).
    case automatic
    /// One GEMM; 1×1, stride 1, no padding only.
    case pointwise
    /// k×k shifted GEMMs over the padded image; stride 1 only.
    case shiftedGEMM
    /// Tiled im2col + GEMM; any geometry.
    case tiledIm2Col
    /// Winograd F(2×2, 3×3); 3×3, stride 1, padding 1 only.
    case winograd
    /// Winograd F(4×4, 3×3): 1.78× fewer multiply-adds than F(2×2, 3×3), more rounding; never chosen by
    /// `.automatic` (a model asks for it where its parity allows); 3×3, stride 1, padding 1 only.
    case winograd4

    public func supports(_ g: ConvGeometry) -> Bool {
        switch self {
        case .automatic, .tiledIm2Col: return true
        case .pointwise: return g.kernel == (1, 1) && g.stride == (1, 1) && g.padding == (0, 0)
        case .shiftedGEMM: return g.stride == (1, 1)
        case .winograd, .winograd4: return WinogradConvolution.supports(g)
        }
    }
}

/// A convolution layer's arithmetic: prepared weights + bias + the algorithm chosen for its geometry.
public struct Convolution: Sendable {
    public let geometry: ConvGeometry
    public let algorithm: any ConvolutionAlgorithm
    public let bias: Tensor?

    /// `weight` is `(out, in, kh, kw)` row-major, `bias` `(out,)`; both are copied into the algorithm's layout.
    /// `.automatic` takes one GEMM for 1×1 convolutions, Winograd F(2×2,3×3) for 3×3/1 pad 1 with at
    /// least 256 input channels, and implicit im2col for the rest (no column buffer, the whole reduction in
    /// one product): HyperT's module1 (64 channels, 224²) in 12–15 ms against 21–29 on shifted GEMMs (Zen 5
    /// VM). The choice depends on the geometry alone, never on the batch, the CPU or how weights are
    /// stored, so a convolution's bits do not either.
    public init(geometry g: ConvGeometry, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                choice: ConvolutionChoice = .automatic) {
        precondition(choice.supports(g), "\(choice) cannot compute \(g)")
        self.geometry = g
        if let bias {
            let t = Tensor(zeros: [g.outChannels])
            t.mutablePointer.update(from: bias, count: g.outChannels)
            self.bias = t
        } else {
            self.bias = nil
        }
        var resolved = choice
        if choice == .automatic {
            if ConvolutionChoice.pointwise.supports(g) {
                resolved = .pointwise
            } else if WinogradConvolution.supports(g) && g.inChannels >= 256 {
                // Measured (`spectralx bench --kernels`): 1.4–1.6× faster than shifted GEMMs from 256
                // input channels on. At HyperT's 128 channels (112²) it is faster too since the tile
                // transforms are vectorised C (27 vs 39 ms on a Zen 3 VM), but its rounding there took
                // DINOv3's logits to 1.02e-4 against upstream on that VM (bound 1e-4), so 128-channel
                // convolutions stay on shifted GEMMs.
                resolved = .winograd
            } else {
                resolved = .tiledIm2Col
            }
        }
        switch resolved {
        case .pointwise: algorithm = PointwiseConvolution(geometry: g, weight: weight)
        case .shiftedGEMM: algorithm = ShiftedGEMMConvolution(geometry: g, weight: weight)
        case .winograd: algorithm = WinogradConvolution(geometry: g, weight: weight)
        case .winograd4: algorithm = WinogradConvolution(geometry: g, weight: weight, tile: .f4)
        case .automatic, .tiledIm2Col: algorithm = TiledIm2ColConvolution(geometry: g, weight: weight)
        }
    }

    /// `(B, inC, H, W)` → `(B, outC, Ho, Wo)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.count == 4 && x.shape[1] == geometry.inChannels, "\(geometry): input \(x.shape)")
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let (ho, wo) = geometry.outputSize(height: h, width: w)
        // Every algorithm writes each output element (none accumulates), so no clearing first.
        let y = Tensor(uninitialized: [b, geometry.outChannels, ho, wo])
        for i in 0..<b {
            let out = y.mutablePointer + i * geometry.outChannels * ho * wo
            algorithm.run(image: x.pointer + i * geometry.inChannels * h * w, height: h, width: w, into: out)
            if let bias {
                Elementwise.addChannelBias(out, channels: geometry.outChannels, plane: ho * wo, bias: bias.pointer)
            }
        }
        return y
    }
}

/// 1×1 stride-1 convolution: one GEMM, W (out×in) · X (in×HW).
struct PointwiseConvolution: ConvolutionAlgorithm {
    let geometry: ConvGeometry
    let weight: ConstantMatrix
    var name: String { "pointwise-gemm" }

    init(geometry: ConvGeometry, weight: UnsafePointer<Float>) {
        self.geometry = geometry
        self.weight = ConstantMatrix(weight, rows: geometry.outChannels, columns: geometry.inChannels)
    }

    func run(image: UnsafePointer<Float>, height: Int, width: Int, into output: UnsafeMutablePointer<Float>) {
        let n = height * width
        weight.multiply(n: n, b: image, ldb: n, into: output, ldc: n)
    }
}

/// Stride-1 convolution without im2col: the zero-padded image is read at kh·kw shifted offsets, each
/// shift one GEMM accumulating into an output computed over the padded row width (the extra kw−1
/// columns per row are discarded). Memory: one padded copy of the input plus one output-sized buffer,
/// instead of an im2col matrix kh·kw times the input (231 MB for the head's 3×3 at 56²).
struct ShiftedGEMMConvolution: ConvolutionAlgorithm {
    let geometry: ConvGeometry
    /// Per tap (ky, kx): an (out × in) matrix.
    let taps: [ConstantMatrix]
    var name: String { "shifted-gemm" }

    init(geometry g: ConvGeometry, weight: UnsafePointer<Float>) {
        geometry = g
        let kk = g.kernel.h * g.kernel.w
        let t = Tensor(zeros: [kk, g.outChannels, g.inChannels])
        let dst = t.mutablePointer
        for o in 0..<g.outChannels {
            for i in 0..<g.inChannels {
                for k in 0..<kk {
                    dst[(k * g.outChannels + o) * g.inChannels + i] = weight[(o * g.inChannels + i) * kk + k]
                }
            }
        }
        taps = (0..<kk).map { ConstantMatrix(t.pointer + $0 * g.outChannels * g.inChannels, rows: g.outChannels, columns: g.inChannels) }
    }

    func run(image: UnsafePointer<Float>, height: Int, width: Int, into output: UnsafeMutablePointer<Float>) {
        let g = geometry
        let hp = height + 2 * g.padding.h, wp = width + 2 * g.padding.w
        let (ho, wo) = g.outputSize(height: height, width: width)
        let plane = hp * wp
        // + kernel width: the last tap of the last channel reads kw−1 floats past the padded plane
        // (they only feed discarded columns).
        let padded = FloatStorage(count: g.inChannels * plane + g.kernel.w)
        let src = SharedPointer(image), dst = SharedPointer(padded.base)
        let ph = g.padding.h, pw = g.padding.w
        Parallel.forRanges(g.inChannels, minChunk: max(1, 65536 / max(plane, 1))) { range in
            for c in range {
                for r in 0..<height {
                    (dst + (c * plane + (r + ph) * wp + pw)).update(from: src + (c * height + r) * width, count: width)
                }
            }
        }
        let wide = FloatStorage(uninitializedCount: g.outChannels * ho * wp)  // the first tap's GEMM has beta 0
        for ky in 0..<g.kernel.h {
            for kx in 0..<g.kernel.w {
                let k = ky * g.kernel.w + kx
                taps[k].multiply(n: ho * wp, b: padded.base + ky * wp + kx, ldb: plane, accumulate: k != 0,
                                 into: wide.base, ldc: ho * wp)
            }
        }
        let w = SharedPointer(wide.base), out = SharedPointer(output)
        Parallel.forRanges(g.outChannels, minChunk: max(1, 65536 / max(ho * wo, 1))) { range in
            for o in range {
                for r in 0..<ho {
                    (out + (o * ho + r) * wo).update(from: w + (o * ho + r) * wp, count: wo)
                }
            }
        }
    }
}

/// General convolution as one product per image through an implicit im2col: `sx_pack_conv_columns` writes
/// each worker's columns straight into the kernel's panel layout, so no column matrix is ever formed.
/// For the non-overlapping patch convolutions (2×2/2, 4×4/4) the column matrix is a permutation of
/// the input, so nothing is duplicated.
struct TiledIm2ColConvolution: ConvolutionAlgorithm {
    let geometry: ConvGeometry
    let weight: ConstantMatrix
    var name: String { "implicit-im2col" }

    init(geometry g: ConvGeometry, weight: UnsafePointer<Float>) {
        geometry = g
        self.weight = ConstantMatrix(weight, rows: g.outChannels, columns: g.inChannels * g.kernel.h * g.kernel.w)
    }

    func run(image: UnsafePointer<Float>, height: Int, width: Int, into output: UnsafeMutablePointer<Float>) {
        let g = geometry
        let (ho, wo) = g.outputSize(height: height, width: width)
        let src = SharedPointer(image)
        weight.multiply(n: ho * wo, into: output, ldc: ho * wo) { j0, count, r0, r1, panel in
            sx_pack_conv_columns(src.base, g.inChannels, height, width, Int32(g.kernel.h), Int32(g.kernel.w),
                                 Int32(g.stride.h), Int32(g.stride.w), Int32(g.padding.h), Int32(g.padding.w),
                                 wo, j0, count, r0, r1, panel)
        }
    }
}
