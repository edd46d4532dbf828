import Foundation
import SpectralXEngine
import Synchronization
import Testing

/// A runner that doubles its inputs after a fixed delay and records every batch it ran.
final class FakeRunner: BatchRunner {
    let delay: Double
    let failWith: EngineError?
    let batches = Mutex<[(model: String, inputs: [Int])]>([])

    init(delay: Double = 0.05, failWith: EngineError? = nil) {
        self.delay = delay
        self.failWith = failWith
    }

    func run(model: String, inputs: [Int]) throws -> [Int] {
        batches.withLock { $0.append((model, inputs)) }
        Thread.sleep(forTimeInterval: delay)
        if let failWith { throw failWith }
        return inputs.map { $0 * 2 }
    }

    var recorded: [(model: String, inputs: [Int])] { batches.withLock { $0 } }
}

/// Runs `body(i)` for i in 0..<n on separate threads and returns the results in order.
func concurrently<T: Sendable>(_ n: Int, stagger: Double = 0, _ body: @escaping @Sendable (Int) -> T) -> [T] {
    let results = Mutex<[Int: T]>([:])
    let group = DispatchGroup()
    for i in 0..<n {
        group.enter()
        Thread.detachNewThread {
            let r = body(i)
            results.withLock { $0[i] = r }
            group.leave()
        }
        if stagger > 0 { Thread.sleep(forTimeInterval: stagger) }
    }
    group.wait()
    return results.withLock { r in (0..<n).map { r[$0]! } }
}

@Suite("Batch scheduler (fake runner)")
struct BatchSchedulerTests {
    @Test func concurrentRequestsShareBatchesUpToTheMaximum() throws {
        let runner = FakeRunner(delay: 0.2)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(100), maxQueueLength: 64))
        defer { s.shutdown() }
        let outs = concurrently(8) { i in try? s.submit(model: "a", input: i) }
        for (i, o) in outs.enumerated() { #expect(o?.value == 2 * i) }
        let sizes = runner.recorded.map(\.inputs.count)
        #expect(sizes.allSatisfy { $0 <= 4 })
        #expect(sizes.reduce(0, +) == 8)
        #expect(sizes.count < 8, "8 concurrent requests should have been batched, got batches \(sizes)")
        #expect(outs.compactMap { $0?.batchSize }.max()! > 1)
    }

    @Test func batchesNeverMixModels() throws {
        let runner = FakeRunner(delay: 0.05)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 8, maxQueueDelay: .milliseconds(50), maxQueueLength: 64))
        defer { s.shutdown() }
        let outs = concurrently(12) { i in try? s.submit(model: i % 2 == 0 ? "even" : "odd", input: i) }
        for (i, o) in outs.enumerated() { #expect(o?.value == 2 * i) }
        for batch in runner.recorded {
            #expect(batch.inputs.allSatisfy { ($0 % 2 == 0) == (batch.model == "even") })
        }
    }

    @Test func fifoOrderWithinAModel() throws {
        let runner = FakeRunner(delay: 0.01)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 3, maxQueueDelay: .milliseconds(1), maxQueueLength: 64))
        defer { s.shutdown() }
        let outs = try s.submit(model: "m", inputs: Array(0..<10))
        #expect(outs.map(\.value) == (0..<10).map { $0 * 2 })
        #expect(runner.recorded.flatMap(\.inputs) == Array(0..<10))
        #expect(runner.recorded.map(\.inputs.count) == [3, 3, 3, 1])
    }

    @Test func queueFullIsATypedErrorWithRetryAfter() throws {
        let runner = FakeRunner(delay: 0.5)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .zero, maxQueueLength: 2))
        defer { s.shutdown() }
        // One runs, two wait; the fourth and fifth find the queue full.
        let results = concurrently(5, stagger: 0.03) { i -> String in
            do { _ = try s.submit(model: "m", input: i); return "ok" } catch let e as EngineError {
                if case .queueFull(let r) = e { return r >= 1 ? "full" : "bad retry \(r)" }
                return "\(e)"
            } catch { return "\(error)" }
        }
        #expect(results.filter { $0 == "ok" }.count == 3, "\(results)")
        #expect(results.filter { $0 == "full" }.count == 2, "\(results)")
    }

    /// The head-time check the API uses to refuse an upload before its body is sent.
    @Test func admissionErrorReportsAFullQueueBeforeSubmitting() throws {
        let runner = FakeRunner(delay: 0.6)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .zero, maxQueueLength: 1))
        #expect(s.admissionError() == nil)
        let done = DispatchGroup()
        for i in 0..<2 {
            done.enter()
            Thread.detachNewThread { _ = try? s.submit(model: "m", input: i); done.leave() }
            Thread.sleep(forTimeInterval: 0.15)  // the first starts running, the second waits in the queue
        }
        guard case .queueFull(let retry)? = s.admissionError() else {
            Issue.record("expected queueFull, got \(String(describing: s.admissionError()))")
            return
        }
        #expect(retry >= 1)
        done.wait()
        #expect(s.admissionError() == nil)
        s.shutdown()
        #expect(s.admissionError() == .shuttingDown)
    }

    @Test func deadlineDropsQueuedImagesWithoutRunningThem() throws {
        let runner = FakeRunner(delay: 0.6)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 1, maxQueueDelay: .zero, maxQueueLength: 8))
        defer { s.shutdown() }
        let results = concurrently(2, stagger: 0.05) { i -> String in
            do { _ = try s.submit(model: "m", input: i, timeout: i == 0 ? .seconds(10) : .milliseconds(200)); return "ok" } catch let e as EngineError {
                if case .deadlineExceeded = e { return "expired" }
                return "\(e)"
            } catch { return "\(error)" }
        }
        #expect(results == ["ok", "expired"])
        #expect(runner.recorded.map(\.inputs) == [[0]])
    }

    @Test func runnerFailureReachesEveryRequestOfTheBatch() throws {
        let s = BatchScheduler(runner: FakeRunner(delay: 0.01, failWith: .inferenceFailed("boom")),
                               configuration: SchedulerConfiguration(maxBatchSize: 4, maxQueueDelay: .milliseconds(20)))
        defer { s.shutdown() }
        #expect(throws: EngineError.inferenceFailed("boom")) { try s.submit(model: "m", inputs: [1, 2, 3]) }
        // The worker survives and keeps serving.
        #expect(throws: EngineError.inferenceFailed("boom")) { try s.submit(model: "m", input: 4) }
    }

    @Test func shutdownRefusesNewWork() throws {
        let s = BatchScheduler(runner: FakeRunner(), configuration: SchedulerConfiguration())
        s.shutdown()
        #expect(throws: EngineError.shuttingDown) { try s.submit(model: "m", input: 1) }
    }

    @Test func waitForRoomAdmitsLaterGroupsInsteadOfFailing() throws {
        let runner = FakeRunner(delay: 0.05)
        let s = BatchScheduler(runner: runner, configuration: SchedulerConfiguration(maxBatchSize: 2, maxQueueDelay: .zero, maxQueueLength: 2))
        defer { s.shutdown() }
        let outs = concurrently(3) { i in (try? s.submit(model: "m", inputs: [i * 10, i * 10 + 1], waitForRoom: true))?.count ?? 0 }
        #expect(outs == [2, 2, 2])
    }
}
