import Foundation
import SpectralXEngine
import Synchronization
import Testing

/// A runner whose models "key.name" mix when their keys agree; records each batch as its groups.
final class MixingRunner: BatchRunner {
    let delay: Double
    let batches = Mutex<[[(model: String, inputs: [Int])]]>([])

    init(delay: Double) { self.delay = delay }

    func mixKey(for model: String) -> String? { model.split(separator: ".").first.map(String.init) }

    func run(model: String, inputs: [Int]) throws -> [Int] {
        try run(groups: [BatchGroup(model: model, inputs: inputs)])[0]
    }

    func run(groups: [BatchGroup<String, Int>]) throws -> [[Int]] {
        batches.withLock { $0.append(groups.map { ($0.model, $0.inputs) }) }
        Thread.sleep(forTimeInterval: delay)
        // The output names the model, so a misrouted result is visible.
        return groups.map { g in g.inputs.map { $0 * 10 + (g.model.hasSuffix("b") ? 1 : 0) } }
    }

    var recorded: [[(model: String, inputs: [Int])]] { batches.withLock { $0 } }
}

@Suite("Cross-domain batching (fake runner)")
struct MixedBatchingTests {
    @Test func modelsWithTheSameKeyShareBatchesAndOthersNever() throws {
        let runner = MixingRunner(delay: 0.15)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(80), maxQueueLength: 64))
        defer { s.shutdown() }
        let models = ["p.a", "p.b", "q.c"]
        let outs = concurrently(12) { i in try? s.submit(model: models[i % 3], input: i) }
        for (i, o) in outs.enumerated() { #expect(o?.value == i * 10 + (models[i % 3].hasSuffix("b") ? 1 : 0)) }
        let batches = runner.recorded
        #expect(batches.contains { $0.count == 2 }, "p.a and p.b should have shared a batch: \(batches.map { $0.map(\.model) })")
        for b in batches {
            #expect(b.reduce(0) { $0 + $1.inputs.count } <= 4)
            let keys = Set(b.map { $0.model.split(separator: ".")[0] })
            #expect(keys.count == 1, "a batch mixed keys: \(b.map(\.model))")
            #expect(Set(b.map(\.model)).count == b.count, "a model appears twice in one batch: \(b.map(\.model))")
            for g in b { #expect(g.inputs.allSatisfy { models[$0 % 3] == g.model }) }
        }
    }

    @Test func mixingOffKeepsOneModelPerBatch() throws {
        let runner = MixingRunner(delay: 0.1)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(
            maxBatchSize: 4, maxQueueDelay: .milliseconds(80), maxQueueLength: 64, mixModels: false))
        defer { s.shutdown() }
        let outs = concurrently(8) { i in try? s.submit(model: i % 2 == 0 ? "p.a" : "p.b", input: i) }
        for (i, o) in outs.enumerated() { #expect(o?.value == i * 10 + i % 2) }
        #expect(runner.recorded.allSatisfy { $0.count == 1 })
    }

    /// Oldest first across the mixed queues: while a batch of another key runs, p.a gets [1, 2],
    /// then p.b [3], then p.a [4]; with room for three the next batch is a:[1, 2] + b:[3], then a:[4].
    @Test func mixedBatchesTakeTheOldestImagesFirst() throws {
        let runner = MixingRunner(delay: 0.4)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 3, maxQueueDelay: .zero, maxQueueLength: 64))
        defer { s.shutdown() }
        let plan: [(String, [Int])] = [("z.z", [0]), ("p.a", [1, 2]), ("p.b", [3]), ("p.a", [4])]
        _ = concurrently(plan.count, stagger: 0.05) { i in try? s.submit(model: plan[i].0, inputs: plan[i].1) }
        let batches = runner.recorded.map { $0.map { "\($0.model):\($0.inputs)" } }
        #expect(batches == [["z.z:[0]"], ["p.a:[1, 2]", "p.b:[3]"], ["p.a:[4]"]], "\(batches)")
    }
}
