import Foundation
import CSpectralXKernels
import SpectralXTensor
import SpectralXTestSupport
import Testing

/// Deterministic pseudo-random values in [-1, 1).
func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    Tensor(shape: shape, values: TestRandom.values(count: shape.reduce(1, *), seed: seed))
}

/// Direct float64 cross-correlation, the definition every convolution algorithm must agree with.
func referenceConvolution(_ x: Tensor, weight w: Tensor, bias: Tensor?, _ g: ConvGeometry) -> [Double] {
    let (b, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (ho, wo) = g.outputSize(height: h, width: wd)
    var out = [Double](repeating: 0, count: b * g.outChannels * ho * wo)
    for n in 0..<b { for o in 0..<g.outChannels { for y in 0..<ho { for xx in 0..<wo {
        var s = bias.map { Double($0.pointer[o]) } ?? 0
        for i in 0..<c { for ky in 0..<g.kernel.h { for kx in 0..<g.kernel.w {
            let iy = y * g.stride.h - g.padding.h + ky, ix = xx * g.stride.w - g.padding.w + kx
            guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
            s += Double(x.pointer[((n * c + i) * h + iy) * wd + ix]) * Double(w.pointer[((o * c + i) * g.kernel.h + ky) * g.kernel.w + kx])
        } } }
        out[((n * g.outChannels + o) * ho + y) * wo + xx] = s
    } } } }
    return out
}

@Suite("Tensor kernels")
struct KernelTests {
    @Test("every convolution algorithm equals the direct definition", arguments: [
        (ConvGeometry(inChannels: 5, outChannels: 7, kernel: 1), 9, "pointwise-gemm"),
        (ConvGeometry(inChannels: 6, outChannels: 4, kernel: 3, padding: 1), 11, "shifted-gemm"),
        (ConvGeometry(inChannels: 3, outChannels: 5, kernel: 3, padding: 1), 7, "shifted-gemm"),
        (ConvGeometry(inChannels: 4, outChannels: 6, kernel: 2, stride: 2), 10, "implicit-im2col"),
        (ConvGeometry(inChannels: 3, outChannels: 8, kernel: 4, stride: 4), 16, "implicit-im2col"),
        (ConvGeometry(inChannels: 5, outChannels: 3, kernel: 3, stride: 2, padding: 1), 9, "implicit-im2col"),
        (ConvGeometry(inChannels: 256, outChannels: 6, kernel: 3, padding: 1), 9, "winograd-f2x2-3x3"),
        // Winograd at the head's sizes (56, 7) and at sizes whose tile rows leave vector tails (35: 18 tiles).
        (ConvGeometry(inChannels: 256, outChannels: 5, kernel: 3, padding: 1), 7, "winograd-f2x2-3x3"),
        (ConvGeometry(inChannels: 256, outChannels: 3, kernel: 3, padding: 1), 8, "winograd-f2x2-3x3"),
        (ConvGeometry(inChannels: 256, outChannels: 3, kernel: 3, padding: 1), 35, "winograd-f2x2-3x3"),
        (ConvGeometry(inChannels: 256, outChannels: 2, kernel: 3, padding: 1), 56, "winograd-f2x2-3x3"),
        // (every 3×3/1 pad 1 case above also runs F(4×4, 3×3): 7, 9, 25, 35 leave cut tiles, 8 and 56 none)
        // Products large enough to be split across cores, pixel counts that are no multiple of the packed
        // kernel's 16-column panels (1089, 37·39, 13·13 tiles), output channels across its 6-row groups.
        (ConvGeometry(inChannels: 300, outChannels: 20, kernel: 1), 33, "pointwise-gemm"),
        (ConvGeometry(inChannels: 64, outChannels: 40, kernel: 3, padding: 1), 37, "shifted-gemm"),
        (ConvGeometry(inChannels: 256, outChannels: 13, kernel: 3, padding: 1), 25, "winograd-f2x2-3x3"),
        (ConvGeometry(inChannels: 32, outChannels: 19, kernel: 3, stride: 2, padding: 1), 45, "implicit-im2col"),
        // 196 output pixels (one pass of panels) and a 576-deep reduction: packed, the output channels are
        // split and the implicit im2col's three K blocks are packed by the workers (the Are-adapter's 3×3/2)
        (ConvGeometry(inChannels: 64, outChannels: 24, kernel: 3, stride: 2, padding: 1), 28, "implicit-im2col"),
    ])
    func convolution(_ g: ConvGeometry, size: Int, algorithm: String) {
        // Batch 1 and 3; each image of the batch of 3 must have the bits it has alone.
        let single = convolution(g, size: size, algorithm: algorithm, batch: 1)
        let three = convolution(g, size: size, algorithm: algorithm, batch: 3)
        let per = single.count
        let same = withExtendedLifetime((single, three)) { memcmp(single.pointer, three.pointer, per * 4) == 0 }
        #expect(same, "\(g): image 0 of a batch of 3 differs from it alone")
    }

    @discardableResult
    func convolution(_ g: ConvGeometry, size: Int, algorithm: String, batch: Int) -> Tensor {
        let x = randomTensor([batch, g.inChannels, size, size], seed: 1)
        let w = randomTensor([g.outChannels, g.inChannels, g.kernel.h, g.kernel.w], seed: 2)
        let b = randomTensor([g.outChannels], seed: 3)
        let conv = Convolution(geometry: g, weight: w.pointer, bias: b.pointer)
        // Implicit im2col takes the stride-1 k×k convolutions too (shifted GEMMs only when asked for).
        #expect(conv.algorithm.name == (algorithm == "shifted-gemm" ? "implicit-im2col" : algorithm))
        let y = conv(x)
        let (ho, wo) = g.outputSize(height: size, width: size)
        #expect(y.shape == [batch, g.outChannels, ho, wo])
        let ref = referenceConvolution(x, weight: w, bias: b, g)
        // float32 rounding of a sum of in·k·k products grows with its magnitude: bound relative to the output
        // scale. 2304-term sums (256 channels × 9 taps) reached 2.1e-6 of the scale (1.0e-4 of 47.5), so 4e-6
        // leaves a factor 2; a wrong tap or offset errs by O(1) of the scale.
        let tolerance = 1e-6 + 4e-6 * ref.map(abs).max()!
        let worst = (0..<y.count).map { abs(Double(y.pointer[$0]) - ref[$0]) }.max()!
        #expect(worst < tolerance, "\(g) batch \(batch): max error \(worst)")
        // Every other algorithm that supports the geometry computes the same function.
        for choice in ConvolutionChoice.allCases where choice != .automatic && choice.supports(g) {
            let other = Convolution(geometry: g, weight: w.pointer, bias: b.pointer, choice: choice)(x)
            let e = (0..<other.count).map { abs(Double(other.pointer[$0]) - ref[$0]) }.max()!
            // F(4×4, 3×3)'s transforms (entries up to 8, the kernel's 1/24) round more: 2.3e-4 … 6.0e-4 here
            // against 1.8e-4 … 2.3e-4 for 4e-6 of the scale, i.e. up to 1.2e-5 of the scale; 2.5e-5 of it
            // still leaves a wrong tap or offset (O(1) of the scale) far outside.
            let bound = choice == .winograd4 ? 1e-6 + 2.5e-5 * ref.map(abs).max()! : tolerance
            #expect(e < bound, "\(g) via \(choice), batch \(batch): max error \(e)")
        }
        return y
    }

    /// The F(tile×tile, 3×3) input transform of `x` (`channels × h × w`) and output transform of `m`
    /// (`α² × channels × tiles`) at the generic level, after expecting every other instruction-set level
    /// to give the same bits.
    static func transformsAtEveryLevel(tile: Int, x: Tensor, m: Tensor, height h: Int, width w: Int) -> ([Float], [Float]) {
        let channels = x.shape[0], tiles = ((h + tile - 1) / tile) * ((w + tile - 1) / tile), a = tile + 2
        func transforms(_ k: VectorMath) -> ([Float], [Float]) {
            let v = Tensor(zeros: [a * a, channels, tiles]), y = Tensor(zeros: [channels, h, w])
            if tile == 2 {
                let scratch = Tensor(zeros: [sx_winograd_scratch_count(h, w)])
                k.winogradInput(x.pointer, channels: channels, height: h, width: w, range: 0..<channels, into: v.mutablePointer,
                                scratch: scratch.mutablePointer)
                k.winogradOutput(m.pointer, channels: channels, height: h, width: w, range: 0..<channels, into: y.mutablePointer)
            } else {
                let scratch = Tensor(zeros: [sx_winograd4_scratch_count(h, w)])
                k.winograd4Input(x.pointer, channels: channels, height: h, width: w, range: 0..<channels, into: v.mutablePointer,
                                 scratch: scratch.mutablePointer)
                k.winograd4Output(m.pointer, channels: channels, height: h, width: w, range: 0..<channels, into: y.mutablePointer)
            }
            return ((0..<v.count).map { v.pointer[$0] }, (0..<y.count).map { y.pointer[$0] })
        }
        let levels = VectorMath.available
        let generic = transforms(levels[0])
        for k in levels.dropFirst() {
            let other = transforms(k)
            #expect(other.0 == generic.0, "\(k.name) F(\(tile)×\(tile)) input transform")
            #expect(other.1 == generic.1, "\(k.name) F(\(tile)×\(tile)) output transform")
        }
        return generic
    }

    @Test("Winograd tile transforms: every instruction-set level gives the generic level's bits (additions only)",
          arguments: [(1, 1), (3, 5), (7, 7), (35, 34), (56, 56)])
    func winogradTransforms(_ size: (Int, Int)) {
        let (h, w) = size, channels = 3
        let th = (h + 1) / 2, tw = (w + 1) / 2, tiles = th * tw
        let x = randomTensor([channels, h, w], seed: UInt64(h * 100 + w))
        let m = randomTensor([16, channels, tiles], seed: 77)
        let generic = Self.transformsAtEveryLevel(tile: 2, x: x, m: m, height: h, width: w)
        // The generic level against the definition: V = Bᵀ d B of the zero-padded 4×4 patch.
        for c in 0..<channels { for ti in 0..<th { for tj in 0..<tw {
            func d(_ r: Int, _ s: Int) -> Float {
                let yy = 2 * ti - 1 + r, xx = 2 * tj - 1 + s
                return (yy >= 0 && yy < h && xx >= 0 && xx < w) ? x.pointer[(c * h + yy) * w + xx] : 0
            }
            let bt: [[Float]] = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
            for r in 0..<4 { for s in 0..<4 {
                var ref = 0.0
                for a in 0..<4 { for b in 0..<4 { ref += Double(bt[r][a]) * Double(d(a, b)) * Double(bt[s][b]) } }
                #expect(abs(Double(generic.0[((r * 4 + s) * channels + c) * tiles + ti * tw + tj]) - ref) < 1e-6)
            } }
        } } }
    }

    @Test("Winograd F(4×4) tile transforms: every level gives the generic level's bits (no FMA contraction); input transform = Bᵀ d B",
          arguments: [(1, 1), (3, 5), (7, 7), (9, 13), (35, 34), (56, 56)])
    func winograd4Transforms(_ size: (Int, Int)) {
        let (h, w) = size, channels = 3
        let th = (h + 3) / 4, tw = (w + 3) / 4, tiles = th * tw
        let x = randomTensor([channels, h, w], seed: UInt64(h * 100 + w + 7))
        let m = randomTensor([36, channels, tiles], seed: 78)
        let generic = Self.transformsAtEveryLevel(tile: 4, x: x, m: m, height: h, width: w)
        let bt: [[Double]] = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        let at: [[Double]] = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
        for c in 0..<channels { for ti in 0..<th { for tj in 0..<tw {
            // Input: V = Bᵀ d B of the zero-padded 6×6 patch; values in [-1, 1), entries up to 5: sums of
            // 36 terms up to 25 in size, so float32 steps stay below 1e-5.
            func d(_ r: Int, _ s: Int) -> Double {
                let yy = 4 * ti - 1 + r, xx = 4 * tj - 1 + s
                return (yy >= 0 && yy < h && xx >= 0 && xx < w) ? Double(x.pointer[(c * h + yy) * w + xx]) : 0
            }
            for r in 0..<6 { for s in 0..<6 {
                var ref = 0.0
                for a in 0..<6 { for b in 0..<6 { ref += bt[r][a] * d(a, b) * bt[s][b] } }
                #expect(abs(Double(generic.0[((r * 6 + s) * channels + c) * tiles + ti * tw + tj]) - ref) < 1e-5)
            } }
            // Output: Y = Aᵀ M A, cropped at the bottom and right edges.
            for r in 0..<4 { for e in 0..<4 where 4 * ti + r < h && 4 * tj + e < w {
                var ref = 0.0
                for a in 0..<6 { for b in 0..<6 {
                    ref += at[r][a] * Double(m.pointer[((a * 6 + b) * channels + c) * tiles + ti * tw + tj]) * at[e][b]
                } }
                #expect(abs(Double(generic.1[(c * h + 4 * ti + r) * w + 4 * tj + e]) - ref) < 5e-4)  // sums reach ~300
            } }
        } } }
    }

    @Test("bilinear resize, align_corners=False", arguments: [(14, 56), (14, 28), (14, 7), (1, 7), (2, 7), (3, 7), (6, 7), (56, 224), (7, 7)])
    func resize(_ input: Int, _ output: Int) {
        let x = randomTensor([1, 2, input, input], seed: 4)
        let y = BilinearResize.resize(x, height: output, width: output)
        #expect(y.shape == [1, 2, output, output])
        let scale = Double(input) / Double(output)
        func src(_ d: Int) -> (Int, Int, Double) {
            let s = max(scale * (Double(d) + 0.5) - 0.5, 0)
            let i0 = min(Int(s), input - 1)
            return (i0, min(i0 + 1, input - 1), s - Double(i0))
        }
        var worst = 0.0
        for p in 0..<2 { for oy in 0..<output { for ox in 0..<output {
            let (y0, y1, ly) = src(oy), (x0, x1, lx) = src(ox)
            func v(_ r: Int, _ c: Int) -> Double { Double(x.pointer[(p * input + r) * input + c]) }
            let ref = (1 - ly) * ((1 - lx) * v(y0, x0) + lx * v(y0, x1)) + ly * ((1 - lx) * v(y1, x0) + lx * v(y1, x1))
            worst = max(worst, abs(ref - Double(y.pointer[(p * output + oy) * output + ox])))
        } } }
        #expect(worst < 1e-6)
    }

    @Test("adaptive average pooling bins", arguments: [1, 2, 3, 6])
    func pooling(_ size: Int) {
        let x = randomTensor([1, 3, 7, 7], seed: 5)
        let y = AdaptiveAveragePool.pool(x, size: size)
        let bins = (0..<size).map { ($0 * 7 / size, (($0 + 1) * 7 + size - 1) / size) }
        for c in 0..<3 { for (oy, by) in bins.enumerated() { for (ox, bx) in bins.enumerated() {
            var s = 0.0
            for r in by.0..<by.1 { for q in bx.0..<bx.1 { s += Double(x.pointer[(c * 7 + r) * 7 + q]) } }
            let ref = s / Double((by.1 - by.0) * (bx.1 - bx.0))
            #expect(abs(ref - Double(y.pointer[(c * size + oy) * size + ox])) < 1e-6)
        } } }
    }

    @Test("softmax, LayerNorm and GELU against float64, every instruction-set level, vector tails",
          arguments: [1, 7, 15, 16, 17, 101, 1024])
    func elementwise(_ cols: Int) {
        let rows = 5, stride = cols + 3
        let x = randomTensor([rows, stride], seed: UInt64(6 + cols))
        let gamma = randomTensor([cols], seed: 7), beta = randomTensor([cols], seed: 8)
        #expect(VectorMath.available.count >= 1 && VectorMath.available.contains { $0.name == VectorMath.best.name })
        for kernels in VectorMath.available {
            // Softmax over rows with a stride; the padding columns must stay untouched.
            let s = x.copy()
            kernels.softmaxRows(s.mutablePointer, rows: rows, cols: cols, stride: stride)
            for r in 0..<rows {
                let m = (0..<cols).map { Double(x.pointer[r * stride + $0]) }.max()!
                let e = (0..<cols).map { exp(Double(x.pointer[r * stride + $0]) - m) }
                let z = e.reduce(0, +)
                for i in 0..<cols { #expect(abs(Double(s.pointer[r * stride + i]) - e[i] / z) < 1e-7, "\(kernels.name) softmax") }
                for i in cols..<stride { #expect(s.pointer[r * stride + i] == x.pointer[r * stride + i]) }
            }
            let ln = Tensor(zeros: [rows, cols])
            kernels.layerNormRows(x.pointer, rows: rows, dim: cols, rowStride: stride, gamma: gamma.pointer, beta: beta.pointer,
                                  eps: 1e-5, into: ln.mutablePointer, outStride: cols)
            for r in 0..<rows {
                let v = (0..<cols).map { Double(x.pointer[r * stride + $0]) }
                let mean = v.reduce(0, +) / Double(cols)
                let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols)
                for i in 0..<cols {
                    let ref = (v[i] - mean) / (variance + 1e-5).squareRoot() * Double(gamma.pointer[i]) + Double(beta.pointer[i])
                    #expect(abs(Double(ln.pointer[r * cols + i]) - ref) < 1e-5, "\(kernels.name) LayerNorm")
                }
            }
        }
        // The public entry points (parallel over rows) agree with the per-level kernel they use.
        let s = x.copy(), t = x.copy()
        SoftmaxKernel.rows(s.mutablePointer, rows: rows, cols: cols, stride: stride)
        VectorMath.best.softmaxRows(t.mutablePointer, rows: rows, cols: cols, stride: stride)
        #expect((0..<s.count).allSatisfy { s.pointer[$0] == t.pointer[$0] })
    }

    /// Softmax sums and LayerNorm moments run on 16 virtual lanes at every level, so the vector width does
    /// not change a sum's order: the AVX-512 kernels give the AVX2 kernels' bits (both contract a·b+c to FMA;
    /// the generic level has no FMA and is not expected to match).
    @Test("softmax, exp-sum, LayerNorm and GELU: AVX-512 gives the AVX2 level's bits", arguments: [1, 7, 16, 17, 33, 197, 1024, 1031])
    func levelsAgree(_ cols: Int) {
        let fma = VectorMath.available.filter { $0.name != "generic" }
        guard fma.count >= 2 else { print("SKIP: one FMA level on this CPU (\(fma.map(\.name)))"); return }
        let rows = 3
        let x = randomTensor([rows, cols], seed: UInt64(40 + cols))
        for i in 0..<x.count { x.mutablePointer[i] *= 9 }
        let gamma = randomTensor([cols], seed: 41), beta = randomTensor([cols], seed: 42)
        func run(_ k: VectorMath) -> [[UInt32]] {
            let s = x.copy(), e = x.copy(), g = x.copy(), ln = Tensor(zeros: [rows, cols])
            k.softmaxRows(s.mutablePointer, rows: rows, cols: cols, stride: cols)
            let sum = k.expShifted(e.mutablePointer, count: x.count, shift: 0.5)
            k.gelu(g.mutablePointer, count: x.count)
            k.layerNormRows(x.pointer, rows: rows, dim: cols, rowStride: cols, gamma: gamma.pointer, beta: beta.pointer, eps: 1e-6,
                            into: ln.mutablePointer, outStride: cols)
            return [s.toArray().map(\.bitPattern), e.toArray().map(\.bitPattern) + [sum.bitPattern], g.toArray().map(\.bitPattern),
                    ln.toArray().map(\.bitPattern)]
        }
        let reference = run(fma[0])
        for k in fma.dropFirst() {
            let r = run(k)
            for (name, i) in [("softmax", 0), ("exp-sum", 1), ("GELU", 2), ("LayerNorm", 3)] {
                #expect(r[i] == reference[i], "\(k.name) \(name) differs from \(fma[0].name) at \(cols) columns")
            }
        }
    }

    @Test("GELU against float64 erf, every instruction-set level, lengths that leave vector tails",
          arguments: [1, 15, 17, 2001])
    func gelu(_ count: Int) {
        let values = (0..<count).map { Float($0 - count / 2) * 20 / Float(max(count, 2)) }
        for kernels in VectorMath.available + [nil] {
            let g = Tensor(shape: [count], values: values)
            if let kernels { kernels.gelu(g.mutablePointer, count: count) } else { Activations.gelu(g.mutablePointer, count: count) }
            for i in 0..<count {
                let v = Double(values[i])
                let ref = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
                // PyTorch's erf approximation (Abramowitz–Stegun 7.1.26) is within 5e-7 of the true erf.
                #expect(abs(Double(g.pointer[i]) - ref) <= 3e-7 * max(1, abs(v)), "\(kernels?.name ?? "Activations") GELU(\(v))")
            }
        }
    }

    @Test("multi-head attention against a float64 evaluation")
    func attention() {
        let n = 13, dim = 24, heads = 3, e = dim / heads
        let qkv = randomTensor([n, 3 * dim], seed: 9)
        let out = Tensor(zeros: [n, dim])
        let scores = Tensor(zeros: [heads, n, n])
        AttentionKernel.selfAttention(qkv: qkv.pointer, tokens: n, dim: dim, heads: heads, scores: scores.mutablePointer, into: out.mutablePointer)
        func at(_ r: Int, _ c: Int) -> Double { Double(qkv.pointer[r * 3 * dim + c]) }
        for h in 0..<heads { for i in 0..<n {
            var logits = (0..<n).map { j in (0..<e).reduce(0.0) { $0 + at(i, h * e + $1) * at(j, dim + h * e + $1) } / Double(e).squareRoot() }
            let m = logits.max()!
            logits = logits.map { exp($0 - m) }
            let z = logits.reduce(0, +)
            for f in 0..<e {
                let ref = (0..<n).reduce(0.0) { $0 + logits[$1] / z * at($1, 2 * dim + h * e + f) }
                #expect(abs(Double(out.pointer[i * dim + h * e + f]) - ref) < 1e-5)
            }
        } }
    }
}
