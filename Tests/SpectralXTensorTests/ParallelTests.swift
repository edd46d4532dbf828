import Dispatch
import Foundation
import SpectralXTensor
import Synchronization
import Testing

/// The worker pool behind ``Parallel``: every index exactly once, whoever calls and however often.
@Suite("Parallel loops on the worker pool")
struct ParallelTests {
    /// Counts per index, under a lock so a double run or a lost index shows.
    final class Hits: Sendable {
        private let counts: Mutex<[Int]>
        init(_ n: Int) { counts = Mutex([Int](repeating: 0, count: n)) }
        func hit(_ i: Int) { counts.withLock { $0[i] += 1 } }
        func count(_ i: Int) -> Int { counts.withLock { $0[i] } }
        var allOnce: Bool { counts.withLock { $0.allSatisfy { $0 == 1 } } }
    }

    @Test("every index runs exactly once", arguments: [1, 2, 3, 7, 64, 1000])
    func everyIndexOnce(_ n: Int) {
        for _ in 0..<200 {
            let hits = Hits(n)
            Parallel.perform(n) { hits.hit($0) }
            #expect(hits.allOnce)
        }
    }

    @Test("loops back to back, with pauses that let the workers park between them")
    func backToBackAndParked() {
        for round in 0..<40 {
            let hits = Hits(5)
            Parallel.perform(5) { hits.hit($0) }
            #expect(hits.allOnce)
            // Past the default spin budget now and then, so the park/wake path is taken too.
            if round % 10 == 9 { usleep(5_000) }
        }
    }

    @Test("a loop inside a loop runs on the inner caller's thread and still covers every index")
    func nested() {
        let outer = 4, inner = 9
        let hits = Hits(outer * inner)
        Parallel.perform(outer) { i in
            Parallel.perform(inner) { j in hits.hit(i * inner + j) }
        }
        #expect(hits.allOnce)
    }

    @Test("callers on several threads at once each get all their indices")
    func concurrentCallers() {
        let callers = 6, n = 50
        let hits = Hits(callers * n)
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for _ in 0..<20 {
                let local = Hits(n)
                Parallel.perform(n) { local.hit($0) }
                if local.allOnce { hits.hit(c * n) }
            }
        }
        for c in 0..<callers { #expect(hits.count(c * n) == 20) }
    }

    @Test("forRanges covers 0..<count with disjoint ranges", arguments: [0, 1, 4095, 4096, 100_003])
    func ranges(_ count: Int) {
        let hits = Hits(max(count, 1))
        Parallel.forRanges(count, minChunk: 1000) { r in for i in r { hits.hit(i) } }
        if count == 0 { #expect(hits.count(0) == 0) } else { #expect(hits.allOnce) }
    }
}
