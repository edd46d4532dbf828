/// What the batching scheduler drives: one call runs a whole batch for one model. The real
/// implementation is `NetworkBatchRunner` (a SpectralX forward pass); tests use fakes, so batching,
/// queue limits, deadlines and ordering are tested without the 300 M-parameter network.
public protocol BatchRunner: Sendable {
    /// The batch key: only inputs for the same model share a forward pass.
    associatedtype Model: Hashable & Sendable
    associatedtype Input: Sendable
    associatedtype Output: Sendable

    /// Models whose images may share one forward pass (equal keys mix); the default `nil` never mixes.
    associatedtype MixKey: Hashable & Sendable = ObjectIdentifier

    /// Runs `inputs` (1…maxBatchSize of them, all for `model`) and returns one output per input, in order.
    func run(model: Model, inputs: [Input]) throws -> [Output]

    /// The cross-domain batching key of `model`: the scheduler forms one batch from queued images of
    /// models with equal keys (for SpectralX: domains bound to the same backbone instance).
    func mixKey(for model: Model) -> MixKey?

    /// Runs one batch made of several models' images (all with the same ``mixKey(for:)``), group by
    /// group in order; returns each group's outputs.
    func run(groups: [BatchGroup<Model, Input>]) throws -> [[Output]]
}

/// The images of one model inside a mixed batch.
public struct BatchGroup<Model: Sendable, Input: Sendable>: Sendable {
    public var model: Model
    public var inputs: [Input]
    public init(model: Model, inputs: [Input]) {
        self.model = model
        self.inputs = inputs
    }
}

extension BatchRunner {
    public func mixKey(for model: Model) -> MixKey? { nil }

    /// Default: one forward pass per group (a runner that can mix overrides this).
    public func run(groups: [BatchGroup<Model, Input>]) throws -> [[Output]] {
        try groups.map { try run(model: $0.model, inputs: $0.inputs) }
    }
}

/// Knobs of the dynamic batcher, named as in Triton's `dynamic_batching` block.
public struct SchedulerConfiguration: Sendable, Equatable {
    /// Largest number of images in one forward pass.
    public var maxBatchSize: Int
    /// How long the oldest queued image may wait for companions before a partial batch runs.
    public var maxQueueDelay: Duration
    /// Images waiting (all domains together) beyond which new requests are refused with `queueFull`.
    public var maxQueueLength: Int
    /// Default per-request deadline: an image still queued after this is dropped with `deadlineExceeded`.
    public var defaultTimeout: Duration
    /// Cross-domain batching: queued images of different models with the same runner mix key (domains
    /// on one backbone) share a batch, oldest first. Off: every batch holds one model's images.
    public var mixModels: Bool

    public init(maxBatchSize: Int = 4, maxQueueDelay: Duration = .milliseconds(10), maxQueueLength: Int = 32,
                defaultTimeout: Duration = .seconds(120), mixModels: Bool = true) {
        self.mixModels = mixModels
        self.maxBatchSize = max(1, maxBatchSize)
        self.maxQueueDelay = maxQueueDelay
        self.maxQueueLength = max(1, maxQueueLength)
        self.defaultTimeout = defaultTimeout
    }
}

/// One output together with the batch it ran in (reported to clients in a response header).
public struct BatchedOutput<Output: Sendable>: Sendable {
    public var value: Output
    /// Number of images in the forward pass that produced `value`.
    public var batchSize: Int
    /// Time spent queued before the batch started.
    public var queueSeconds: Double
    /// Wall time of the batch's forward pass.
    public var runSeconds: Double
}
