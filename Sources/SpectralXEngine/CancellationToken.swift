import Synchronization

/// A cooperative cancellation flag shared by whoever started some work (an HTTP request whose
/// client went away, a job being dismissed, a CLI interrupted by a signal) and the work itself.
/// The scene pipeline checks it before scheduling each group of windows, and the batch scheduler
/// drops queued images of a cancelled token when it forms a batch, so a cancelled scene stops
/// within one batch. Cancelling is idempotent and cannot be undone.
public final class CancellationToken: Sendable {
    private let flag = Atomic<Bool>(false)
    private let handlers = Mutex<[@Sendable () -> Void]>([])

    public init() {}

    /// Requests cancellation; runs the registered handlers once.
    public func cancel() {
        guard !flag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let hs = handlers.withLock { h -> [@Sendable () -> Void] in defer { h.removeAll() }; return h }
        for h in hs { h() }
    }

    public var isCancelled: Bool { flag.load(ordering: .acquiring) }

    /// Throws `EngineError.cancelled` once cancelled.
    public func check() throws {
        if isCancelled { throw EngineError.cancelled }
    }

    /// Runs `handler` when the token is cancelled (right away if it already is), e.g. to wake a waiter.
    public func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let now = handlers.withLock { h -> Bool in
            if flag.load(ordering: .acquiring) { return true }
            h.append(handler)
            return false
        }
        if now { handler() }
    }
}
