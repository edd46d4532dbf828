import Foundation
import SpectralXTensor
import SpectralXTestSupport
import Synchronization
import Testing

/// The arithmetic counter behind `spectralx bench`'s `gflop_computed_per_image`: exactly 2·m·n·k per
/// product, whichever path runs it and however it is split across the pool's workers, and nothing from
/// other threads (the other suites run their products meanwhile).
@Suite("Arithmetic counter")
struct ArithmeticCountTests {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        Tensor(shape: shape, values: TestRandom.values(count: shape.reduce(1, *), seed: seed))
    }

    /// Small (one call), and large enough to be split into slices or panel chunks on the workers.
    @Test("OpenBLAS products: 2·m·n·k, serial or split into slices", arguments: [(3, 5, 7), (197, 520, 600), (600, 40, 700)])
    func openBLAS(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        let a = Self.random([m, k], seed: 1), b = Self.random([k, n], seed: 2), c = Tensor(zeros: [m, n])
        let (_, flops) = ArithmeticCount.measure {
            GEMM.multiply(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.mutablePointer, ldc: n)
        }
        #expect(flops == 2 * Double(m * n * k))
    }

    @Test("packed linear kernel: 2·m·n·k, cut row groups and panels, split across workers",
          arguments: [(1, 1, 1), (7, 17, 257), (197, 520, 600), (591, 40, 300)])
    func packed(_ shape: (Int, Int, Int)) throws {
        let (rows, n, k) = shape
        guard let packed = PackedWeight(weight: Self.random([n, k], seed: 3).pointer, n: n, k: k) else {
            print("SKIP: no AVX2+FMA on this CPU; the packed kernel does not run here"); return
        }
        let x = Self.random([rows, k], seed: 4), y = Tensor(zeros: [rows, n])
        let (_, flops) = ArithmeticCount.measure {
            packed.multiply(x.pointer, rows: rows, lda: k, bias: nil, accumulate: false, into: y.mutablePointer, ldc: n)
        }
        #expect(flops == 2 * Double(rows * n * k))
    }

    @Test("nothing is counted outside a measurement, nor from another thread during one")
    func onlyTheMeasuringThread() {
        let (m, n, k) = (64, 64, 64)
        let a = Self.random([m, k], seed: 5), b = Self.random([k, n], seed: 6)
        let stop = ManagedAtomicFlag()
        let other = Thread {
            let c = Tensor(zeros: [m, n])
            while !stop.isSet { GEMM.serial(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.mutablePointer, ldc: n) }
        }
        other.start()
        defer { stop.set() }
        let c = Tensor(zeros: [m, n])
        for _ in 0..<20 {
            let (_, flops) = ArithmeticCount.measure {
                GEMM.serial(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.mutablePointer, ldc: n)
            }
            #expect(flops == 2 * Double(m * n * k))
        }
        let (_, none) = ArithmeticCount.measure {}
        #expect(none == 0)
    }
}

/// A flag another thread polls.
final class ManagedAtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
