import Foundation
import Synchronization

/// Threads that run handlers: started on demand up to `maxThreads` (jobs beyond wait in FIFO
/// order), an idle thread exits after `idleTime`. Plain `Thread`s rather than Dispatch so the
/// bound is the one configured, not the global pool's hidden thread limit.
final class HandlerPool: Sendable {
    private struct State {
        var queue: [@Sendable () -> Void] = []
        var head = 0
        var threads = 0
        var busy = 0
    }
    private let state = Mutex(State())
    private let condition = NSCondition()
    private let maxThreads: Int
    private let name: String
    private let idleTime: TimeInterval

    init(name: String, maxThreads: Int, idleTime: TimeInterval = 30) {
        self.name = name
        self.maxThreads = max(1, maxThreads)
        self.idleTime = idleTime
    }

    /// Jobs submitted and not yet started.
    var pending: Int { state.withLock { $0.queue.count - $0.head } }

    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        let spawn = state.withLock { s -> Bool in
            s.queue.append(job)
            // Enough idle threads for every waiting job, or at the bound: no new thread.
            if s.threads - s.busy >= s.queue.count - s.head || s.threads >= maxThreads { return false }
            s.threads += 1
            return true
        }
        condition.signal()
        condition.unlock()
        if spawn {
            let thread = Thread { [self] in work() }
            thread.name = name
            thread.stackSize = 4 << 20
            thread.start()
        }
    }

    private func work() {
        condition.lock()
        while true {
            let job = state.withLock { s -> (@Sendable () -> Void)? in
                guard s.head < s.queue.count else { return nil }
                let j = s.queue[s.head]
                s.head += 1
                s.busy += 1
                if s.head > 1024 && s.head * 2 > s.queue.count { s.queue.removeFirst(s.head); s.head = 0 }
                return j
            }
            if let job {
                condition.unlock()
                job()
                condition.lock()
                state.withLock { $0.busy -= 1 }
                continue
            }
            let signalled = condition.wait(until: Date().addingTimeInterval(idleTime))
            if !signalled && pending == 0 {
                state.withLock { $0.threads -= 1 }
                condition.unlock()
                return
            }
        }
    }
}
