import Dispatch
import Foundation
import Metrics
import SpectralXSupport

/// A dynamic batcher in the spirit of Triton's: requests queue per model; one worker thread forms a
/// batch from the model whose oldest image has waited longest, waiting at most `maxQueueDelay` for
/// up to `maxBatchSize` images, and runs it. With `mixModels`, images of other models with the same
/// runner mix key (domains on the same backbone) fill the batch too, oldest first. Only one batch runs at a time (the forward pass already
/// uses every core through OpenBLAS). Admission is bounded (`maxQueueLength` → `queueFull`) and
/// every image carries a deadline after which it is dropped rather than run.
///
/// Callers block in `submit` (HTTP handlers run on their own threads).
///
/// Priority: `.interactive` images (synchronous requests) are queued ahead of `.background` ones
/// (job windows) of the same model, and a model whose head image is interactive is served before
/// one whose head is background, and a batch never mixes the two; so background work delays an
/// interactive image by at most the batch already running, and does not make its own batch larger.
// @unchecked: every mutable field is guarded by `condition`; the worker and callers only touch them under it.
public final class BatchScheduler<Runner: BatchRunner>: @unchecked Sendable {
    public typealias Output = Runner.Output

    /// One queued image and the ticket its submitter waits on.
    private struct Item {
        let input: Runner.Input
        let ticket: Ticket
        let index: Int
        let priority: BatchPriority
        let enqueued: ContinuousClock.Instant
        let deadline: ContinuousClock.Instant
        /// Checked when a batch is formed: a cancelled image is dropped instead of run.
        let cancel: CancellationToken?
        /// Admission order, to break ties between images enqueued at the same instant.
        let sequence: UInt64
    }

    /// The rendez-vous between a submitter and the worker for a group of images.
    private final class Ticket {
        var results: [Result<BatchedOutput<Output>, any Error>?]
        var remaining: Int
        init(count: Int) { results = Array(repeating: nil, count: count); remaining = count }
    }

    public let configuration: SchedulerConfiguration
    private let runner: Runner
    private let condition = NSCondition()
    private var queues: [Runner.Model: [Item]] = [:]
    private var queued = 0
    private var admitted: UInt64 = 0
    private var running = 0
    private var stopping = false
    private var stopped = false
    /// Exponential moving average of seconds per batch, for Retry-After estimates.
    private var secondsPerBatch = 1.0
    private let clock = ContinuousClock()
    private var batchObserver: (@Sendable (Int) -> Void)?

    private let depthGauge = Gauge(label: "spectralx_queue_depth")
    private let batchRecorder = Recorder(label: "spectralx_batch_size", aggregate: true)
    private let queueTimer = Metrics.Timer(label: "spectralx_queue_wait_seconds")
    private let batchTimer = Metrics.Timer(label: "spectralx_batch_seconds")
    private let rejectCounter = Counter(label: "spectralx_queue_rejections_total", dimensions: [("reason", "queue_full")])
    private let expiredCounter = Counter(label: "spectralx_queue_rejections_total", dimensions: [("reason", "deadline")])

    public init(runner: Runner, configuration: SchedulerConfiguration = SchedulerConfiguration()) {
        self.runner = runner
        self.configuration = configuration
        let thread = Thread { [self] in workerLoop() }
        thread.name = "spectralx-batch-worker"
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// Images waiting to run (all models).
    public var queueDepth: Int { condition.withLock { queued } }

    /// Installs (or with nil removes) a function the worker thread calls just before each batch runs,
    /// outside the lock, with the batch's image count. While it runs no other batch can start: a test
    /// holds the first batch in it to queue requests behind a busy scheduler deterministically.
    public func setBatchObserver(_ observer: (@Sendable (Int) -> Void)?) {
        condition.withLock { batchObserver = observer }
    }

    /// The error a new single-image submission would get right now (queue full or shutting down), or
    /// nil. Lets the API refuse an upload from its headers, before the body is transferred; the
    /// authoritative check is still `submit`'s, since the queue can change in between.
    public func admissionError() -> EngineError? {
        condition.withLock {
            if stopping { return .shuttingDown }
            if queued > 0 && queued + 1 > configuration.maxQueueLength { return .queueFull(retryAfterSeconds: retryAfterLocked()) }
            return nil
        }
    }

    /// Images waiting plus images in the running batch.
    public var inFlight: Int { condition.withLock { queued + running } }

    /// Runs one input; blocks until it ran, failed, or was dropped.
    public func submit(model: Runner.Model, input: Runner.Input, timeout: Duration? = nil) throws -> BatchedOutput<Output> {
        try submit(model: model, inputs: [input], timeout: timeout)[0]
    }

    /// Runs several inputs of one model (they may be spread over several batches); blocks until all
    /// are done and returns their outputs in order. With `waitForRoom`, a full queue makes the call
    /// wait (until the deadline) instead of failing: used for the later window groups of a tiled
    /// scene whose first group was admitted.
    public func submit(model: Runner.Model, inputs: [Runner.Input], timeout: Duration? = nil,
                       waitForRoom: Bool = false, cancel: CancellationToken? = nil,
                       priority: BatchPriority = .interactive) throws -> [BatchedOutput<Output>] {
        guard !inputs.isEmpty else { return [] }
        let now = clock.now
        let deadline = now + (timeout ?? configuration.defaultTimeout)
        let ticket = Ticket(count: inputs.count)
        // Wake the worker on cancellation so it drops the images without waiting for other work.
        cancel?.onCancel { [condition] in condition.withLock { condition.broadcast() } }
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopping { throw EngineError.shuttingDown }
            if let cancel, cancel.isCancelled { throw EngineError.cancelled }
            // A group larger than the whole queue is still admitted into an empty queue.
            if queued == 0 || queued + inputs.count <= configuration.maxQueueLength { break }
            if !waitForRoom {
                rejectCounter.increment()
                throw EngineError.queueFull(retryAfterSeconds: retryAfterLocked())
            }
            if clock.now >= deadline {
                expiredCounter.increment()
                throw EngineError.deadlineExceeded(retryAfterSeconds: retryAfterLocked())
            }
            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
        }
        let enqueued = clock.now
        let items = inputs.enumerated().map { i, input in
            admitted += 1
            return Item(input: input, ticket: ticket, index: i, priority: priority, enqueued: enqueued, deadline: deadline,
                        cancel: cancel, sequence: admitted)
        }
        var queue = queues[model] ?? []
        // Interactive images go ahead of every background image, behind earlier interactive ones.
        let position = priority == .interactive ? (queue.firstIndex { $0.priority == .background } ?? queue.count) : queue.count
        queue.insert(contentsOf: items, at: position)
        queues[model] = queue
        queued += inputs.count
        depthGauge.record(queued)
        condition.broadcast()
        while ticket.remaining > 0 { condition.wait() }
        var outputs: [BatchedOutput<Output>] = []
        outputs.reserveCapacity(inputs.count)
        for r in ticket.results { outputs.append(try r!.get()) }
        return outputs
    }

    /// Stops taking work, fails what is queued with `shuttingDown`, lets the running batch finish.
    public func shutdown() {
        condition.withLock {
            stopping = true
            for (_, items) in queues { for item in items { complete(item, with: .failure(EngineError.shuttingDown)) } }
            queues.removeAll()
            queued = 0
            depthGauge.record(0)
            condition.broadcast()
        }
    }

    /// Seconds a rejected client should wait: the batches ahead of it times the recent batch time.
    private func retryAfterLocked() -> Int {
        let batchesAhead = Double(queued + running) / Double(configuration.maxBatchSize)
        return max(1, Int((batchesAhead * secondsPerBatch).rounded(.up)))
    }

    /// Caller holds the lock.
    private func complete(_ item: Item, with result: Result<BatchedOutput<Output>, any Error>) {
        item.ticket.results[item.index] = result
        item.ticket.remaining -= 1
    }

    /// Drops every queued image whose deadline has passed or whose token was cancelled (run before
    /// each batch is formed). Caller holds the lock.
    private func expireLocked(now: ContinuousClock.Instant) {
        for key in Array(queues.keys) {
            guard var items = queues[key] else { continue }
            let before = items.count
            items.removeAll { item in
                if let c = item.cancel, c.isCancelled {
                    complete(item, with: .failure(EngineError.cancelled))
                    return true
                }
                guard item.deadline <= now else { return false }
                expiredCounter.increment()
                complete(item, with: .failure(EngineError.deadlineExceeded(retryAfterSeconds: retryAfterLocked())))
                return true
            }
            queued -= before - items.count
            queues[key] = items.isEmpty ? nil : items
        }
    }

    private func workerLoop() {
        condition.lock()
        while true {
            let now = clock.now
            expireLocked(now: now)
            if stopping && queued == 0 { break }
            // The model whose head image has waited longest goes next (FIFO across models), models with
            // an interactive head image before those with only background work; with mixing, queued
            // images of every model sharing its mix key join, in the same order.
            guard let (model, items) = queues.min(by: { a, b in
                let x = a.value[0], y = b.value[0]
                return x.priority != y.priority ? x.priority > y.priority : x.enqueued < y.enqueued
            }) else {
                condition.wait()
                continue
            }
            let candidates = mixCandidatesLocked(model: model, items: items)
            let ready = candidates.count >= configuration.maxBatchSize || now >= candidates[0].item.enqueued + configuration.maxQueueDelay
            if !ready {
                let wake = min(candidates[0].item.enqueued + configuration.maxQueueDelay,
                               candidates.map(\.item.deadline).min() ?? now)
                _ = condition.wait(until: Date(timeIntervalSinceNow: max(0, now.duration(to: wake).inSeconds)))
                continue
            }
            // A batch holds one priority: an interactive image is not slowed down by job windows
            // sharing its forward pass (candidates keep interactive images ahead of background ones).
            let samePriority = candidates.prefix { $0.item.priority == candidates[0].item.priority }.count
            let take = min(samePriority, configuration.maxBatchSize)
            let chosen = candidates.prefix(take)
            // Each model's images stay together (a contiguous segment of the forward pass), models in
            // the order their first image is taken.
            var groups: [(model: Runner.Model, items: [Item])] = []
            for c in chosen {
                if let g = groups.firstIndex(where: { $0.model == c.model }) { groups[g].items.append(c.item) }
                else { groups.append((c.model, [c.item])) }
            }
            for g in groups {
                let rest = queues[g.model]!.dropFirst(g.items.count)
                queues[g.model] = rest.isEmpty ? nil : Array(rest)
            }
            let batch = groups.flatMap(\.items)
            queued -= take
            running = take
            depthGauge.record(queued)
            let observer = batchObserver
            condition.unlock()
            observer?(take)

            let started = clock.now
            for item in batch { queueTimer.recordNanoseconds(item.enqueued.duration(to: started).inNanoseconds) }
            batchRecorder.record(take)
            let result = Result { () throws -> [Output] in
                if groups.count == 1 { return try runner.run(model: groups[0].model, inputs: batch.map(\.input)) }
                let outputs = try runner.run(groups: groups.map { BatchGroup(model: $0.model, inputs: $0.items.map(\.input)) })
                guard outputs.count == groups.count, zip(outputs, groups).allSatisfy({ $0.count == $1.items.count }) else {
                    throw EngineError.inferenceFailed("runner returned \(outputs.map(\.count)) outputs for groups of \(groups.map(\.items.count))")
                }
                return outputs.flatMap { $0 }
            }
            let elapsed = started.duration(to: clock.now)
            batchTimer.recordNanoseconds(elapsed.inNanoseconds)
            let queueSeconds = batch.map { $0.enqueued.duration(to: started).inSeconds }

            condition.lock()
            running = 0
            secondsPerBatch = 0.7 * secondsPerBatch + 0.3 * elapsed.inSeconds
            switch result {
            case .success(let outputs) where outputs.count == batch.count:
                for (i, item) in batch.enumerated() {
                    complete(item, with: .success(BatchedOutput(value: outputs[i], batchSize: take,
                                                                queueSeconds: queueSeconds[i], runSeconds: elapsed.inSeconds)))
                }
            case .success(let outputs):
                for item in batch {
                    complete(item, with: .failure(EngineError.inferenceFailed("runner returned \(outputs.count) outputs for \(take) inputs")))
                }
            case .failure(let error):
                for item in batch { complete(item, with: .failure(error)) }
            }
            condition.broadcast()
        }
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// The images a batch starting with `model`'s queue may take, in service order: that queue alone,
    /// or with mixing every queue whose model has the same mix key. Each queue is already in service
    /// order (interactive before background, then arrival), the merge keeps that order, so a queue's
    /// images are only ever taken from its front. Caller holds the lock.
    private func mixCandidatesLocked(model: Runner.Model, items: [Item]) -> [(model: Runner.Model, item: Item)] {
        guard configuration.mixModels, let key = runner.mixKey(for: model) else { return items.map { (model, $0) } }
        var merged: [(model: Runner.Model, item: Item)] = []
        for (m, q) in queues where m == model || runner.mixKey(for: m) == key {
            merged.append(contentsOf: q.map { (m, $0) })
        }
        merged.sort { a, b in
            if a.item.priority != b.item.priority { return a.item.priority > b.item.priority }
            return a.item.enqueued != b.item.enqueued ? a.item.enqueued < b.item.enqueued : a.item.sequence < b.item.sequence
        }
        return merged
    }
}

/// Who waits on a submitted image (see `BatchScheduler`): interactive requests before background work.
public enum BatchPriority: Int, Sendable, Comparable {
    /// Scene jobs: run when no interactive image is queued, fill the rest of a batch.
    case background = 0
    /// Synchronous requests (`…/segment`, `predict`).
    case interactive = 1

    public static func < (a: BatchPriority, b: BatchPriority) -> Bool { a.rawValue < b.rawValue }
}

/// What the engine needs of a batch scheduler: the seam that lets tests run the whole service on a
/// fake `BatchRunner` (see `InferenceEngine.init(store:runner:…)`) instead of the 1.2 GB network.
public protocol BatchScheduling: Sendable {
    var configuration: SchedulerConfiguration { get }
    /// Images waiting to run (all models).
    var queueDepth: Int { get }
    /// Images waiting plus images in the running batch.
    var inFlight: Int { get }
    /// The error a new single-image submission would get right now, or nil.
    func admissionError() -> EngineError?
    /// See `BatchScheduler.setBatchObserver`.
    func setBatchObserver(_ observer: (@Sendable (Int) -> Void)?)
    /// Runs `inputs` of one domain; see `BatchScheduler.submit(model:inputs:…)`.
    func submit(model: DomainRun, inputs: [[Float]], timeout: Duration?, waitForRoom: Bool, cancel: CancellationToken?,
                priority: BatchPriority) throws -> [BatchedOutput<[Float]>]
    /// Stops taking work; see `BatchScheduler.shutdown`.
    func shutdown()
}

extension BatchScheduler: BatchScheduling where Runner.Model == DomainRun, Runner.Input == [Float], Runner.Output == [Float] {}
