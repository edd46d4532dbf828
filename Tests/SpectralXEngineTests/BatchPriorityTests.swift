import Foundation
import SpectralXEngine
import Synchronization
import Testing

@Suite("Batch scheduler priority (fake runner)")
struct BatchPriorityTests {
    /// A background submitter keeps the queue full of its images (as a job does, one group at a time);
    /// an interactive image submitted meanwhile runs in the very next batch, ahead of queued
    /// background images of its own and of other models, and without background images in its batch.
    @Test func interactiveImagesGoAheadOfBackgroundWork() throws {
        let runner = FakeRunner(delay: 0.1)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 2, maxQueueDelay: .zero, maxQueueLength: 64))
        defer { s.shutdown() }
        // Background: model "a" and "b" groups, 8 images each, values 100+ / 200+.
        for (model, base) in [("a", 100), ("b", 200)] {
            Thread.detachNewThread { _ = try? s.submit(model: model, inputs: Array(base..<(base + 8)), priority: .background) }
        }
        Thread.sleep(forTimeInterval: 0.15)  // the first background batch is running
        let before = runner.recorded.count
        let out = try s.submit(model: "a", input: 7)
        #expect(out.value == 14)
        let batches = runner.recorded
        let mine = try #require(batches.firstIndex { $0.inputs.contains(7) })
        // At most the batch that was running when it arrived (and one that may have started at the same instant) precede it.
        #expect(mine <= before, "interactive image ran in batch \(mine); \(before) batches had started before it: \(batches.map(\.inputs))")
        #expect(batches[mine].inputs == [7], "an interactive batch holds no background images: \(batches[mine].inputs)")
        while s.inFlight > 0 { Thread.sleep(forTimeInterval: 0.05) }
        #expect(runner.recorded.map(\.inputs.count).reduce(0, +) == 17)
    }
}
