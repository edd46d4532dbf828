import Dispatch
import Foundation

/// Splits element-wise and row-wise work across the machine's cores. The same workers run the slices
/// of large GEMMs (`GEMM.multiply`), so the process has one threading model; inside a body only
/// `GEMM.serial` may be called (nesting would oversubscribe).
public enum Parallel {
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint sub-ranges of `0..<count`, in parallel when the work is large enough.
    @inline(__always)
    public static func forRanges(_ count: Int, minChunk: Int = 4096, _ body: @Sendable (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(cores, max(1, count / max(minChunk, 1)))
        if chunks <= 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            let lo = i * per
            let hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// A pointer handed to ``Parallel/forRanges(_:minChunk:_:)`` workers.
///
/// `@unchecked Sendable` because the workers of one call write disjoint index ranges (each worker
/// touches only the rows/elements of its own range) and the caller waits for all of them before reading.
public struct SharedPointer<Pointee>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Pointee>
    @inline(__always) public init(_ p: UnsafeMutablePointer<Pointee>) { base = p }
    @inline(__always) public init(_ p: UnsafePointer<Pointee>) { base = UnsafeMutablePointer(mutating: p) }
    @inline(__always) public subscript(i: Int) -> Pointee {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
    @inline(__always) public static func + (l: SharedPointer, r: Int) -> UnsafeMutablePointer<Pointee> { l.base + r }
}
