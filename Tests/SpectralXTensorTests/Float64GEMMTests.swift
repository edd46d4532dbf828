import CSpectralXKernels
import Foundation
import SpectralXTensor
import Testing

/// ``GEMM/multiplyTransposedFloat64(m:n:k:a:lda:b:ldb:bias:c:ldc:)`` against the direct float64 definition
/// `Float(Σ a·b + bias)`: its point is to return the correctly rounded float32 of the exact product, so
/// (nearly) every element must be bit-identical, not merely close.
@Suite("Float64-accumulated GEMM")
struct Float64GEMMTests {
    /// (rows m, outputs n, inner k, extra row padding of A, B and C, with bias). 1 and 3 "images" of odd
    /// token counts; n from one partial panel (512 columns) to two (one per core) and three (two on one
    /// core, the last partial).
    static let cases: [(m: Int, n: Int, k: Int, pad: Int, bias: Bool)] = [
        (1, 37, 129, 0, true), (1, 301, 65, 3, false), (3, 7, 33, 1, true),
        (3 * 11, 301, 131, 5, true), (3 * 11, 129, 257, 0, false), (2 * 13, 513, 97, 2, true),
        (1, 1100, 45, 1, false), (3 * 5, 1100, 45, 0, true),
    ]

    @Test("rounded once from the float64 sum, strided operands, columns outside n untouched", arguments: cases)
    func matchesDefinition(_ c: (m: Int, n: Int, k: Int, pad: Int, bias: Bool)) {
        let lda = c.k + c.pad, ldb = c.k + 2 * c.pad, ldc = c.n + c.pad
        let a = randomTensor([c.m, lda], seed: 11), b = randomTensor([c.n, ldb], seed: 12), bias = randomTensor([c.n], seed: 13)
        let sentinel: Float = 1234.5
        let out = Tensor(shape: [c.m, ldc], values: [Float](repeating: sentinel, count: c.m * ldc))
        GEMM.multiplyTransposedFloat64(m: c.m, n: c.n, k: c.k, a: a.pointer, lda: lda, b: b.pointer, ldb: ldb,
                                       bias: c.bias ? bias.pointer : nil, c: out.mutablePointer, ldc: ldc)
        var identical = 0, worstULPs: Float = 0
        for i in 0..<c.m {
            for j in 0..<c.n {
                var s = c.bias ? Double(bias.pointer[j]) : 0
                for t in 0..<c.k { s += Double(a.pointer[i * lda + t]) * Double(b.pointer[j * ldb + t]) }
                let ref = Float(s), got = out.pointer[i * ldc + j]
                if got.bitPattern == ref.bitPattern { identical += 1 }
                worstULPs = max(worstULPs, abs(got - ref) / ref.ulp)
            }
            for j in c.n..<ldc { #expect(out.pointer[i * ldc + j] == sentinel, "row \(i) column \(j) written") }
        }
        // float64 summation-order error (≈1e-13 here) can tip an element across a float32 rounding
        // midpoint only with probability ≈1e-6; float32 accumulation of ≥33 terms misses the correctly
        // rounded value in a large share of elements.
        #expect(worstULPs <= 1, "\(c): worst \(worstULPs) ulp")
        #expect(identical * 1000 >= 999 * c.m * c.n, "\(c): \(identical) of \(c.m * c.n) bit-identical")
    }

    /// Every element is one float64 FMA chain in k order: a row's bits never depend on the rows beside it,
    /// on the number of workers, or on the instruction set (each level's tile against the portable one).
    @Test("same bits alone or stacked, on 1 or 2 workers, and at every instruction-set level", arguments: [(3, 201, 100, 64), (1, 64, 40, 300)])
    func invariant(_ c: (images: Int, rows: Int, n: Int, k: Int)) {
        let m = c.images * c.rows
        let a = randomTensor([m, c.k], seed: 31), b = randomTensor([c.n, c.k], seed: 32), bias = randomTensor([c.n], seed: 33)
        let all = Tensor(zeros: [m, c.n])
        GEMM.multiplyTransposedFloat64(m: m, n: c.n, k: c.k, a: a.pointer, lda: c.k, b: b.pointer, ldb: c.k, bias: bias.pointer,
                                       c: all.mutablePointer, ldc: c.n)
        let before = GEMM.threads
        defer { GEMM.threads = before }
        for threads in [1, 2] {
            GEMM.threads = threads
            for image in 0..<c.images {
                let one = Tensor(zeros: [c.rows, c.n])
                GEMM.multiplyTransposedFloat64(m: c.rows, n: c.n, k: c.k, a: a.pointer + image * c.rows * c.k, lda: c.k, b: b.pointer,
                                               ldb: c.k, bias: bias.pointer, c: one.mutablePointer, ldc: c.n)
                let same = withExtendedLifetime((one, all)) { memcmp(one.pointer, all.pointer + image * c.rows * c.n, c.rows * c.n * 4) == 0 }
                #expect(same, "image \(image), \(threads) workers")
            }
        }
        let wide = (0..<(m * c.k)).map { Double(a.pointer[$0]) }
        let panels = (c.n + Int(sx_dgemm_panel_columns()) - 1) / Int(sx_dgemm_panel_columns())
        var outputs: [[Float]] = []
        for level in [SX_SIMD_GENERIC, SX_SIMD_AVX2, SX_SIMD_AVX512] {
            var out = [Float](repeating: 0, count: m * c.n)
            guard sx_dgemm_nt_f32_at(Int32(level.rawValue), m, c.k, wide, c.k, b.pointer, c.k, c.n, 0, panels, bias.pointer, &out, c.n) == 0 else { continue }
            outputs.append(out)
        }
        #expect(outputs.count >= 1)
        for o in outputs.dropFirst() { #expect(o == outputs[0], "a level's tile differs from the portable one") }
    }
}
