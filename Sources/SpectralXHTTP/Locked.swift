import Foundation

/// A value guarded by a lock; the one shared-state primitive of this module.
// @unchecked Sendable: every access to `value` goes through `lock`, which makes it thread-safe.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    var current: Value { withLock { $0 } }
}
