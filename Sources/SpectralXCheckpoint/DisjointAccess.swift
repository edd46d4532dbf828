/// Carries an unsafe pointer (or buffer) into the iterations of `DispatchQueue.concurrentPerform`.
///
/// `@unchecked Sendable`: every use site guarantees that concurrent iterations touch disjoint
/// elements (or only read), and `concurrentPerform` is synchronous, so the memory outlives all
/// accesses. This is the one place where the checkpoint layer opts out of compiler checking.
struct DisjointAccess<Pointer>: @unchecked Sendable {
    let pointer: Pointer
    init(_ pointer: Pointer) { self.pointer = pointer }
}
