import CSpectralXKernels

/// 3×3 stride-1 pad-1 convolution by Winograd's minimal filtering F(2×2, 3×3).
///
/// Each 2×2 output tile is computed from a 4×4 input tile with 16 multiplies per (in, out) channel
/// pair instead of 36: the kernel is transformed once at load (U = G g Gᵀ), each input tile per call
/// (V = Bᵀ d B), the 16 transformed positions become 16 GEMMs `U_k (out × in) · V_k (in × tiles)`, and
/// the output transform (Aᵀ M A) folds them back. 2.25× fewer multiply-adds than the direct
/// convolution; the transforms use only ±1 and ½, so float32 rounding stays at the level of a
/// different summation order.
struct WinogradConvolution: ConvolutionAlgorithm {
    let geometry: ConvGeometry
    /// (out × in) per tile position k = 4ξ + ν: the transformed kernel.
    let transformed: [ConstantMatrix]
    var name: String { "winograd-f2x2-3x3" }

    static func supports(_ g: ConvGeometry) -> Bool {
        g.kernel == (3, 3) && g.stride == (1, 1) && g.padding == (1, 1)
    }

    init(geometry g: ConvGeometry, weight: UnsafePointer<Float>) {
        precondition(Self.supports(g))
        geometry = g
        let t = Tensor(zeros: [16, g.outChannels, g.inChannels])
        let u = t.mutablePointer
        let plane = g.outChannels * g.inChannels
        for o in 0..<g.outChannels {
            for i in 0..<g.inChannels {
                let w = weight + (o * g.inChannels + i) * 9
                // G g: 4×3, rows [g0, (g0+g1+g2)/2, (g0−g1+g2)/2, g2] (in float64, rounded once)
                var gg = [[Double]](repeating: [0, 0, 0], count: 4)
                for c in 0..<3 {
                    let g0 = Double(w[c]), g1 = Double(w[3 + c]), g2 = Double(w[6 + c])
                    gg[0][c] = g0
                    gg[1][c] = (g0 + g1 + g2) / 2
                    gg[2][c] = (g0 - g1 + g2) / 2
                    gg[3][c] = g2
                }
                for r in 0..<4 {
                    let a = gg[r][0], b = gg[r][1], c = gg[r][2]
                    let row = [a, (a + b + c) / 2, (a - b + c) / 2, c]
                    for s in 0..<4 { u[(r * 4 + s) * plane + o * g.inChannels + i] = Float(row[s]) }
                }
            }
        }
        transformed = (0..<16).map { ConstantMatrix(t.pointer + $0 * plane, rows: g.outChannels, columns: g.inChannels) }
    }

    func run(image: UnsafePointer<Float>, height h: Int, width w: Int, into output: UnsafeMutablePointer<Float>) {
        let g = geometry
        let th = (h + 1) / 2, tw = (w + 1) / 2, tiles = th * tw
        let cin = g.inChannels, cout = g.outChannels
        let v = FloatStorage(uninitializedCount: 16 * cin * tiles)   // every element written below
        let src = SharedPointer(image), vp = SharedPointer(v.base)
        // Input transform: V_k[c, tile] = (Bᵀ d B)_k for the 4×4 patch at rows 2i−1…2i+2, cols 2j−1…2j+2
        // (CSpectralXKernels, vectorised over the tiles of a tile row).
        let scratchCount = sx_winograd_scratch_count(h, w)
        Parallel.forRanges(cin, minChunk: 1) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)   // once per worker
            defer { scratch.deallocate() }
            VectorMath.best.winogradInput(src.base, channels: cin, height: h, width: w, range: range, into: vp.base, scratch: scratch)
        }
        let m = FloatStorage(uninitializedCount: 16 * cout * tiles)  // written by the GEMMs (beta 0)
        for k in 0..<16 {
            transformed[k].multiply(n: tiles, b: v.base + k * cin * tiles, ldb: tiles, into: m.base + k * cout * tiles, ldc: tiles)
        }
        // Output transform: Y = Aᵀ M A, cropped at the bottom/right edge for odd sizes.
        let mp = SharedPointer(m.base), out = SharedPointer(output)
        Parallel.forRanges(cout, minChunk: 1) { range in
            VectorMath.best.winogradOutput(mp.base, channels: cout, height: h, width: w, range: range, into: out.base)
        }
    }
}
