import CSpectralXKernels

/// 3×3 stride-1 pad-1 convolution by Winograd's minimal filtering F(m×m, 3×3), m = 2 or 4.
///
/// Each m×m output tile is computed from an α×α input tile (α = m + 2) with α² multiplies per (in,
/// out) channel pair instead of 9·m²: the kernel is transformed once at load (U = G g Gᵀ, in float64,
/// rounded once), each input tile per call (V = Bᵀ d B), the α² transformed positions become α² GEMMs
/// `U_k (out × in) · V_k (in × tiles)`, and the output transform (Aᵀ M A) folds them back.
/// - F(2×2, 3×3): 2.25× fewer multiply-adds than the direct convolution; the transforms use only ±1
///   and ½, so float32 rounding stays at the level of a different summation order.
/// - F(4×4, 3×3): 4× fewer; the transforms' entries reach 8 (and the kernel's 1/24), so the rounding
///   error is several times F(2×2)'s. Used only where the model's parity allows it (the head's two 56²
///   convolutions, whose 14×14 tiles cover the map exactly), and tested against float64 like the rest.
struct WinogradConvolution: ConvolutionAlgorithm {
    /// The output tile side m.
    enum Tile: Int, Sendable {
        case f2 = 2
        case f4 = 4
        /// α = m + 2: the input tile side.
        var alpha: Int { rawValue + 2 }
        /// G (α × 3): U = G g Gᵀ.
        var g: [[Double]] {
            switch self {
            case .f2: return [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
            case .f4: return [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                              [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
            }
        }
    }

    let geometry: ConvGeometry
    let tile: Tile
    /// (out × in) per tile position k = α·ξ + ν: the transformed kernel.
    let transformed: [ConstantMatrix]
    var name: String { tile == .f2 ? "winograd-f2x2-3x3" : "winograd-f4x4-3x3" }

    static func supports(_ g: ConvGeometry) -> Bool {
        g.kernel == (3, 3) && g.stride == (1, 1) && g.padding == (1, 1)
    }

    init(geometry g: ConvGeometry, weight: UnsafePointer<Float>, tile: Tile = .f2) {
        precondition(Self.supports(g))
        geometry = g
        self.tile = tile
        let a = tile.alpha, gm = tile.g
        let t = Tensor(zeros: [a * a, g.outChannels, g.inChannels])
        let u = t.mutablePointer
        let plane = g.outChannels * g.inChannels
        var gg = [[Double]](repeating: [0, 0, 0], count: a)
        for o in 0..<g.outChannels {
            for i in 0..<g.inChannels {
                let w = weight + (o * g.inChannels + i) * 9
                // G g (α × 3), then (G g) Gᵀ (α × α), in float64.
                for r in 0..<a {
                    for c in 0..<3 { gg[r][c] = gm[r][0] * Double(w[c]) + gm[r][1] * Double(w[3 + c]) + gm[r][2] * Double(w[6 + c]) }
                }
                for r in 0..<a {
                    for s in 0..<a {
                        let v = gg[r][0] * gm[s][0] + gg[r][1] * gm[s][1] + gg[r][2] * gm[s][2]
                        u[(r * a + s) * plane + o * g.inChannels + i] = Float(v)
                    }
                }
            }
        }
        transformed = (0..<(a * a)).map { ConstantMatrix(t.pointer + $0 * plane, rows: g.outChannels, columns: g.inChannels) }
    }

    func run(image: UnsafePointer<Float>, height h: Int, width w: Int, into output: UnsafeMutablePointer<Float>) {
        let g = geometry
        let m = tile.rawValue, a = tile.alpha, positions = a * a
        let th = (h + m - 1) / m, tw = (w + m - 1) / m, tiles = th * tw
        let cin = g.inChannels, cout = g.outChannels
        let v = FloatStorage(uninitializedCount: positions * cin * tiles)   // every element written below
        let src = SharedPointer(image), vp = SharedPointer(v.base)
        // Input transform: V_k[c, tile] = (Bᵀ d B)_k for the α×α patch at rows m·i−1…m·i+m, cols likewise
        // (CSpectralXKernels, vectorised over the tiles of a tile row).
        let tile = self.tile
        let scratchCount = tile == .f2 ? sx_winograd_scratch_count(h, w) : sx_winograd4_scratch_count(h, w)
        Parallel.forRanges(cin, minChunk: 1) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)   // once per worker
            defer { scratch.deallocate() }
            switch tile {
            case .f2: VectorMath.best.winogradInput(src.base, channels: cin, height: h, width: w, range: range, into: vp.base, scratch: scratch)
            case .f4: VectorMath.best.winograd4Input(src.base, channels: cin, height: h, width: w, range: range, into: vp.base, scratch: scratch)
            }
        }
        let mm = FloatStorage(uninitializedCount: positions * cout * tiles)  // written by the GEMMs (beta 0)
        for k in 0..<positions {
            transformed[k].multiply(n: tiles, b: v.base + k * cin * tiles, ldb: tiles, into: mm.base + k * cout * tiles, ldc: tiles)
        }
        // Output transform: Y = Aᵀ M A, cropped at the bottom/right edge where m does not divide the size.
        let mp = SharedPointer(mm.base), out = SharedPointer(output)
        Parallel.forRanges(cout, minChunk: 1) { range in
            switch tile {
            case .f2: VectorMath.best.winogradOutput(mp.base, channels: cout, height: h, width: w, range: range, into: out.base)
            case .f4: VectorMath.best.winograd4Output(mp.base, channels: cout, height: h, width: w, range: range, into: out.base)
            }
        }
    }
}
