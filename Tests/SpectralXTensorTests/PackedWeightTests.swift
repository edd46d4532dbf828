import CSpectralXKernels
import Foundation
import SpectralXTensor
import SpectralXTestSupport
import Testing

@Suite("Packed-weight linear kernel")
struct PackedWeightTests {
    static func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        Tensor(shape: shape, values: TestRandom.values(count: shape.reduce(1, *), seed: seed))
    }

    /// y = x·Wᵀ + b (+ y₀) in float64, the definition.
    static func reference(x: Tensor, rows: Int, lda: Int, w: Tensor, n: Int, k: Int, bias: Tensor?, y0: Tensor?, ldc: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * n)
        for r in 0..<rows {
            for j in 0..<n {
                var s = 0.0
                for i in 0..<k { s += Double(x.pointer[r * lda + i]) * Double(w.pointer[j * k + i]) }
                if let bias { s += Double(bias.pointer[j]) }
                if let y0 { s += Double(y0.pointer[r * ldc + j]) }
                y[r * n + j] = s
            }
        }
        return y
    }

    /// Rows around the 6-row groups (1, 5, 6, 7) and the 120-row chunks (121, 241), the ViT's 197
    /// (batch 1) and 591 (batch 3); columns around the 16-column panels and the 16-panel chunks (257);
    /// reductions around the 256-deep blocks. Products of ≥ 2²⁰ multiply-adds with more than one 16-panel
    /// chunk are split across cores.
    @Test("against float64: edges of row groups, chunks, column panels and reduction blocks; bias, accumulate, strides",
          arguments: [(1, 1, 1), (5, 15, 255), (6, 16, 256), (7, 17, 257), (121, 33, 300), (197, 64, 600), (591, 40, 300),
                      (241, 257, 40), (197, 96, 1024), (25, 48, 4096),
                      // more rows than one AVX-512 row chunk (240, or as many as half the L2 holds: 1020 at 2 MiB)
                      (1033, 40, 300),
                      // split across cores: rows packed in two group ranges, 16-panel chunks handed out
                      (197, 520, 600), (13, 300, 300)])
    func againstFloat64(_ shape: (Int, Int, Int)) throws {
        let (rows, n, k) = shape
        let lda = k + 5, ldc = n + 3
        let x = Self.randomTensor([rows, lda], seed: UInt64(rows * 7 + k))
        let w = Self.randomTensor([n, k], seed: UInt64(n * 13 + k))
        let bias = Self.randomTensor([n], seed: UInt64(n))
        let packed = try #require(PackedWeight(weight: w.pointer, n: n, k: k))
        for (useBias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
            let y0 = Self.randomTensor([rows, ldc], seed: 99)
            let y = y0.copy()
            packed.multiply(x.pointer, rows: rows, lda: lda, bias: useBias ? bias.pointer : nil, accumulate: accumulate,
                            into: y.mutablePointer, ldc: ldc)
            let ref = Self.reference(x: x, rows: rows, lda: lda, w: w, n: n, k: k, bias: useBias ? bias : nil,
                                     y0: accumulate ? y0 : nil, ldc: ldc)
            var worst = 0.0
            for r in 0..<rows {
                for j in 0..<n { worst = max(worst, abs(Double(y.pointer[r * ldc + j]) - ref[r * n + j])) }
                // Padding columns of y are never written.
                for j in n..<ldc { #expect(y.pointer[r * ldc + j] == y0.pointer[r * ldc + j]) }
            }
            // Terms are products of values in [-1, 1) and the sums reach ~√k/3: float32 rounding of a
            // blocked k-term sum stays well below 1e-6·k (a wrong row, column or block errs by O(1)).
            #expect(worst <= 1e-6 * Double(k) + 1e-6, "\(shape) bias \(useBias) accumulate \(accumulate): \(worst)")
            if !accumulate {
                // The per-call product (weights packed per call, what an unpacked layer runs) gives the
                // same bits, bias added after the sum as the kernel adds it.
                let other = Tensor(zeros: [rows, ldc])
                GEMM.multiply(transB: true, m: rows, n: n, k: k, a: x.pointer, lda: lda, b: w.pointer, ldb: k, c: other.mutablePointer, ldc: ldc)
                if useBias { for r in 0..<rows { for j in 0..<n { other.mutablePointer[r * ldc + j] += bias.pointer[j] } } }
                let differing = (0..<rows).reduce(0) { acc, r in
                    acc + (0..<n).filter { y.pointer[r * ldc + $0].bitPattern != other.pointer[r * ldc + $0].bitPattern }.count }
                #expect(differing == 0, "\(shape) bias \(useBias): the per-call product differs in \(differing) elements")
            }
        }
    }

    /// A row's result never depends on the rows beside it (the batch) or on how the product is split.
    @Test("each row's bits are the same alone, at every position of 2, 3 and 4 stacked inputs, on 1 and 2 workers",
          arguments: [(197, 96, 320), (7, 1024, 1024)])
    func rowsIndependent(_ shape: (Int, Int, Int)) throws {
        let (rows, n, k) = shape
        let w = Self.randomTensor([n, k], seed: 3), x = Self.randomTensor([4 * rows, k], seed: 5)
        let packed = try #require(PackedWeight(weight: w.pointer, n: n, k: k))
        let y = Tensor(zeros: [4 * rows, n])
        packed.multiply(x.pointer, rows: 4 * rows, lda: k, bias: nil, accumulate: false, into: y.mutablePointer, ldc: n)
        let before = GEMM.threads
        defer { GEMM.threads = before }
        for threads in [1, 2] {
            GEMM.threads = threads
            for batch in [1, 2, 3] {
                for start in 0...(4 - batch) {
                    let part = Tensor(zeros: [batch * rows, n])
                    packed.multiply(x.pointer + start * rows * k, rows: batch * rows, lda: k, bias: nil, accumulate: false,
                                    into: part.mutablePointer, ldc: n)
                    let same = withExtendedLifetime((part, y)) { memcmp(part.pointer, y.pointer + start * rows * n, batch * rows * n * 4) == 0 }
                    #expect(same, "\(shape): \(batch) inputs from \(start) on \(threads) workers")
                }
            }
        }
    }

    /// The AVX-512 tiles (up to 12 × 32: two 6-row groups × two panels, a lone group or panel on the
    /// narrower variants) keep the AVX2 tile's operation order per element, so both give the same bits:
    /// the float64 test above then covers both. Shapes with odd and even group and panel counts, cut tiles,
    /// the 120-row chunk edge and several K blocks.
    @Test("AVX-512, AVX2 and portable micro-kernels give identical bits",
          arguments: [(1, 15, 255), (6, 16, 256), (7, 17, 257), (12, 32, 300), (13, 33, 513), (121, 48, 600), (241, 48, 600), (197, 96, 1024), (591, 40, 300), (1033, 40, 300)])
    func avx512MatchesAVX2Bits(_ shape: (Int, Int, Int)) throws {
        let (rows, n, k) = shape
        let x = Self.randomTensor([rows, k], seed: UInt64(rows + 3 * k))
        let w = Self.randomTensor([n, k], seed: UInt64(5 * n + k))
        let bias = Self.randomTensor([n], seed: 7)
        guard let packed = PackedWeight(weight: w.pointer, n: n, k: k) else {
            print("SKIP: no AVX2+FMA on this CPU"); return
        }
        for (useBias, accumulate) in [(false, false), (true, true)] {
            let y0 = Self.randomTensor([rows, n], seed: 11)
            let a = y0.copy(), b = y0.copy()
            let b1 = bias.pointer
            guard packed.multiplySerial(level: Int32(SX_SIMD_AVX512.rawValue), x.pointer, rows: rows, lda: k, bias: useBias ? b1 : nil,
                                        accumulate: accumulate, into: a.mutablePointer, ldc: n) else {
                print("SKIP: no AVX-512 on this CPU; only the AVX2 kernel runs here"); return
            }
            #expect(packed.multiplySerial(level: Int32(SX_SIMD_AVX2.rawValue), x.pointer, rows: rows, lda: k, bias: useBias ? b1 : nil,
                                          accumulate: accumulate, into: b.mutablePointer, ldc: n))
            let differing = (0..<a.count).filter { a.pointer[$0].bitPattern != b.pointer[$0].bitPattern }.count
            #expect(differing == 0, "\(shape) bias \(useBias) accumulate \(accumulate): \(differing) elements differ")
            // The portable micro-kernel (SPECTRALX_SIMD=generic, other architectures): the same bits again.
            let g = y0.copy()
            #expect(packed.multiplySerial(level: Int32(SX_SIMD_GENERIC.rawValue), x.pointer, rows: rows, lda: k, bias: useBias ? b1 : nil,
                                          accumulate: accumulate, into: g.mutablePointer, ldc: n))
            let differingPortable = (0..<a.count).filter { g.pointer[$0].bitPattern != b.pointer[$0].bitPattern }.count
            #expect(differingPortable == 0, "\(shape) portable kernel: \(differingPortable) elements differ")
        }
    }

    /// C = A·B (+ C₀) in float64, the definition (A `m × k` contiguous, B `k × n` row stride ldb).
    static func leftReference(a: Tensor, m: Int, k: Int, b: Tensor, n: Int, ldb: Int, c0: Tensor?, ldc: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = c0.map { Double($0.pointer[i * ldc + j]) } ?? 0
                for r in 0..<k { s += Double(a.pointer[i * k + r]) * Double(b.pointer[r * ldb + j]) }
                c[i * n + j] = s
            }
        }
        return c
    }

    /// The constant-left-operand form (convolutions): A packed as rows, B's columns packed per call.
    /// Output channels around the 6-row groups and the 240-row chunks; pixel counts around the 16-column
    /// panels and the per-worker chunks; reductions around the 256-deep blocks; split across cores from
    /// 2²⁰ multiply-adds on, by output channels when there are too few pixels for panel chunks.
    @Test("constant left operand against float64: edges of row groups, panels, chunks and K blocks; accumulate, strides",
          arguments: [(1, 1, 1), (5, 15, 255), (6, 16, 256), (7, 17, 257), (13, 784, 256), (241, 33, 300),
                      (40, 1443, 64), (512, 49, 512), (3, 300, 1000),
                      // 19 panels: balanced chunks of 4-5 panels across the workers
                      (30, 300, 200),
                      // at most one pass of panels (≤ 16): split by output channels instead (196 pixels: a 14²
                      // map, F(4×4)'s tiles at 56²; one panel: Winograd at 7²)
                      (512, 196, 512), (512, 16, 512), (100, 9, 2000)])
    func constantLeftOperand(_ shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape
        let ldb = n + 7, ldc = n + 3
        let a = Self.randomTensor([m, k], seed: UInt64(m * 5 + k))
        let b = Self.randomTensor([k, ldb], seed: UInt64(n * 11 + k))
        do {
            let matrix = ConstantMatrix(a.pointer, rows: m, columns: k)
            for accumulate in [false, true] {
                let c0 = Self.randomTensor([m, ldc], seed: 77)
                let c = c0.copy()
                matrix.multiply(n: n, b: b.pointer, ldb: ldb, accumulate: accumulate, into: c.mutablePointer, ldc: ldc)
                let ref = Self.leftReference(a: a, m: m, k: k, b: b, n: n, ldb: ldb, c0: accumulate ? c0 : nil, ldc: ldc)
                var worst = 0.0, scale = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        worst = max(worst, abs(Double(c.pointer[i * ldc + j]) - ref[i * n + j]))
                        scale = max(scale, abs(ref[i * n + j]))
                    }
                    for j in n..<ldc { #expect(c.pointer[i * ldc + j] == c0.pointer[i * ldc + j]) }
                }
                #expect(worst <= 1e-6 + 2e-6 * scale, "\(m)×\(n)×\(k) accumulate \(accumulate): \(worst) of \(scale)")
            }
        }
    }

    @Test("columns packed from B are the packed weight of Bᵀ, bit for bit", arguments: [(1, 1), (17, 33), (300, 40), (513, 16)])
    func packColumnsIsPackWeightOfTranspose(_ shape: (Int, Int)) {
        let (k, n) = shape
        let ldb = n + 2
        let b = Self.randomTensor([k, ldb], seed: UInt64(k + n))
        let bt = Tensor(zeros: [n, k])
        for r in 0..<k { for j in 0..<n { bt.mutablePointer[j * k + r] = b.pointer[r * ldb + j] } }
        let count = sx_packed_weight_count(n, k)
        var fromColumns = [Float](repeating: .nan, count: count), fromWeight = [Float](repeating: -1, count: count)
        sx_pack_columns(b.pointer, ldb, k, n, &fromColumns)
        sx_pack_weight(bt.pointer, n, k, &fromWeight)
        #expect(fromColumns == fromWeight)
    }
}
