import Foundation
import SpectralXTensor
import Testing

@Suite("Layout ops and vector math")
struct TokenOpsTests {
    @Test("token assembly and feature map layout", arguments: [1, 3])
    func tokens(_ images: Int) {
        let side = 3, n = 9, d = 5
        let tokens = randomTensor([images, n, d], seed: 41), cls = randomTensor([d], seed: 42), pos = randomTensor([n + 1, d], seed: 43)
        let stream = Tensor(zeros: [images * (n + 1), d])
        TokenAssembly.assemble(tokens: tokens.pointer, images: images, tokensPerImage: n, dim: d, classToken: cls.pointer,
                               positions: pos.pointer, into: stream.mutablePointer)
        for i in 0..<images { for k in 0...n { for f in 0..<d {
            let expected = (k == 0 ? cls.pointer[f] : tokens.pointer[(i * n + k - 1) * d + f]) + pos.pointer[k * d + f]
            #expect(stream.pointer[(i * (n + 1) + k) * d + f] == expected)
        } } }
        let map = TokenAssembly.featureMap(stream, images: images, side: side)
        #expect(map.shape == [images, d, side, side])
        for i in 0..<images { for f in 0..<d { for k in 0..<n {
            #expect(map.pointer[(i * d + f) * n + k] == stream.pointer[(i * (n + 1) + k + 1) * d + f])
        } } }
    }

    @Test("window partition follows the (image, window row, window col, r, c) order and inverts", arguments: [1, 3])
    func windows(_ images: Int) {
        let side = 6, window = 3, d = 4
        let x = randomTensor([images * side * side, d], seed: 44)
        let w = WindowPartition.partition(x, images: images, side: side, window: window)
        var k = 0
        for b in 0..<images { for wr in 0..<2 { for wc in 0..<2 { for r in 0..<window { for c in 0..<window {
            let g = (b * side + wr * window + r) * side + wc * window + c
            for f in 0..<d { #expect(w.pointer[k * d + f] == x.pointer[g * d + f]) }
            k += 1
        } } } } }
        let base = randomTensor([images * side * side, d], seed: 45)
        let grid = base.copy()
        WindowPartition.unpartitionAdding(w, images: images, side: side, window: window, into: grid)
        for i in 0..<grid.count { #expect(grid.pointer[i] == base.pointer[i] + x.pointer[i]) }
    }

    @Test("channel concatenation and means")
    func concatAndMeans() {
        let a = randomTensor([3, 2, 2, 3], seed: 46), b = randomTensor([3, 1, 2, 3], seed: 47)
        let c = Tensor.concatenateChannels([a, b])
        #expect(c.shape == [3, 3, 2, 3])
        for i in 0..<3 { for ch in 0..<3 { for p in 0..<6 {
            let expected = ch < 2 ? a.pointer[(i * 2 + ch) * 6 + p] : b.pointer[i * 6 + p]
            #expect(c.pointer[(i * 3 + ch) * 6 + p] == expected)
        } } }
        let m = randomTensor([7, 5], seed: 48)
        let cm = Reduction.columnMeans(m.pointer, rows: 7, cols: 5), rm = Reduction.rowMeans(m.pointer, rows: 7, cols: 5)
        for col in 0..<5 {
            let ref = (0..<7).reduce(0.0) { $0 + Double(m.pointer[$1 * 5 + col]) } / 7
            #expect(abs(Double(cm[col]) - ref) < 1e-6)
        }
        for r in 0..<7 {
            let ref = (0..<5).reduce(0.0) { $0 + Double(m.pointer[r * 5 + $1]) } / 5
            #expect(abs(Double(rm[r]) - ref) < 1e-6)
        }
    }

    @Test("vectorised exp within 2 ulp-scale of float64 exp at every instruction-set level; range ends; tails")
    func vectorExp() {
        var grid: [Float] = []
        var x = -87.0
        while x < 88 { grid.append(Float(x)); x += 0.0137 }
        for kernels in VectorMath.available {
            let y = Tensor(shape: [grid.count], values: grid)
            _ = kernels.expShifted(y.mutablePointer, count: grid.count, shift: 0)
            var worst = 0.0
            for (i, v) in grid.enumerated() {
                let ref = Foundation.exp(Double(v))
                worst = max(worst, abs(Double(y.pointer[i]) - ref) / ref)
            }
            #expect(worst < 3e-7, "\(kernels.name): relative error \(worst)")
            // Range ends: clamped (no inf/denormal/garbage exponent), rounding ties, NaN passes through.
            let edgeValues: [Float] = [-1000, -87.3, 88.3, 1000, 0, 0.5 * 0.6931472, -.infinity, .nan]
            let edges = Tensor(shape: [8], values: edgeValues)
            _ = kernels.expShifted(edges.mutablePointer, count: 8, shift: 0)
            let e = (0..<8).map { edges.pointer[$0] }
            #expect(e[0] > 0 && e[0] < 1e-37 && e[1] == e[0], "\(kernels.name) \(e)")
            #expect(e[2].isFinite && e[3] == e[2] && e[2] > 2e38, "\(kernels.name) \(e)")
            #expect(e[4] == 1 && abs(Double(e[5]) - 2.0.squareRoot()) < 3e-7, "\(kernels.name) \(e)")
            #expect(e[6] == e[0] && e[7].isNaN, "\(kernels.name) \(e)")
            // expShifted over lengths that exercise the vector body and the tail.
            for count in [1, 7, 8, 13, 16, 17, 197] {
                let t = randomTensor([count], seed: UInt64(count))
                let y = t.copy()
                let sum = kernels.expShifted(y.mutablePointer, count: count, shift: 0.5)
                var ref = 0.0
                for i in 0..<count {
                    let e = Foundation.exp(Double(t.pointer[i]) - 0.5)
                    ref += e
                    #expect(abs(Double(y.pointer[i]) - e) <= 3e-7 * e)
                }
                #expect(abs(Double(sum) - ref) <= 1e-6 * ref)
            }
        }
    }
}

@Suite("OpenBLAS kernel selection")
struct BLASRuntimeTests {
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]

    @Test("a generic fallback on a newer CPU is corrected; an operator's OPENBLAS_CORETYPE never is")
    func decisions() {
        #expect(BLASRuntime.decide(detected: "Prescott", environment: [:], cpuFlags: avx512).force == "SkylakeX")
        #expect(BLASRuntime.decide(detected: "Haswell", environment: [:], cpuFlags: avx512).force == "SkylakeX")
        #expect(BLASRuntime.decide(detected: "Prescott", environment: [:], cpuFlags: ["avx", "avx2", "fma"]).force == "Haswell")
        #expect(BLASRuntime.decide(detected: "SkylakeX", environment: [:], cpuFlags: avx512).force == nil)
        #expect(BLASRuntime.decide(detected: "Cooperlake", environment: [:], cpuFlags: avx512).force == nil)
        #expect(BLASRuntime.decide(detected: "Prescott", environment: [:], cpuFlags: ["sse3"]).force == nil)
        #expect(BLASRuntime.decide(detected: "Prescott", environment: [:], cpuFlags: nil).force == nil)
        let pinned = BLASRuntime.decide(detected: "Prescott", environment: ["OPENBLAS_CORETYPE": "Prescott"], cpuFlags: avx512)
        #expect(pinned.force == nil && pinned.note != nil)
    }

    @Test("the selection in force is at least what the CPU flags allow (unless pinned)")
    func inForce() {
        let s = BLASRuntime.selection
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil || s.note == nil,
              let flags = BLASRuntime.cpuFlags(), let best = BLASRuntime.bestCore(forFlags: flags) else { return }
        if s.note?.hasPrefix("OPENBLAS_CORETYPE=") == true { return }
        #expect(BLASRuntime.level(ofCore: s.active) >= best.level || s.note?.contains("not a dynamic-arch") == true,
                "\(s)")
    }
}

@Suite("GEMM slicing")
struct GEMMSliceTests {
    /// Products above the split threshold run as per-core slices along M or N; every layout must
    /// equal the float64 product (odd sizes so the slices are uneven).
    /// 161 rows and 1025 columns: ⌊n/2⌋ is a multiple of 16, so slices rounded from it would miss the
    /// last row/column (a bug this test caught: MMoE expert rows are ragged).
    @Test("sliced sgemm equals the float64 product", arguments: [(37, 301, 97, false, false), (301, 37, 97, true, false),
                                                              (45, 263, 101, false, true), (263, 45, 101, true, true),
                                                              (161, 16, 512, false, true), (8, 1025, 130, true, false)])
    func sliced(_ m: Int, _ n: Int, _ k: Int, _ ta: Bool, _ tb: Bool) {
        let a = randomTensor([m * k], seed: 51), b = randomTensor([k * n], seed: 52)
        let c = randomTensor([m * n], seed: 53)
        let c0 = c.toArray()
        GEMM.multiply(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: a.pointer, lda: ta ? m : k,
                      b: b.pointer, ldb: tb ? k : n, beta: 1, c: c.mutablePointer, ldc: n)
        var worst = 0.0
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let av = Double(a.pointer[ta ? p * m + i : i * k + p]), bv = Double(b.pointer[tb ? j * k + p : p * n + j])
                s += av * bv
            }
            worst = max(worst, abs(Double(c.pointer[i * n + j]) - (0.5 * s + Double(c0[i * n + j]))))
        } }
        #expect(worst < 1e-4, "max error \(worst)")
    }
}
