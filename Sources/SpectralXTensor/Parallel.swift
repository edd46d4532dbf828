import CSpectralXKernels
import Dispatch
import Foundation

/// Splits element-wise and row-wise work across the machine's cores. The same workers run the slices
/// of large GEMMs (`GEMM.multiply`), so the process has one threading model; a parallel loop started
/// inside a body runs serially on that body's thread (never oversubscribing), so inside a body call
/// `GEMM.serial` rather than splitting again.
///
/// The workers are `thread_pool.c`'s, which spin briefly between loops instead of sleeping: waking a
/// sleeping thread on another vCPU costs 0.1–0.3 ms (median) on this project's VMs, and a forward pass
/// has hundreds of loops. `SPECTRALX_POOL=dispatch` runs the loops on libdispatch's
/// `concurrentPerform` instead (for comparison).
public enum Parallel {
    public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// true: libdispatch's workers (`SPECTRALX_POOL=dispatch`); false: the spinning pool.
    static let useDispatch = ProcessInfo.processInfo.environment["SPECTRALX_POOL"]?.lowercased() == "dispatch"

    /// Calls `body(i)` once for every `i` in `0..<iterations`, in parallel across the cores, indices
    /// handed out dynamically (a core that finishes early takes the next); returns when all are done.
    public static func perform(_ iterations: Int, _ body: @Sendable (Int) -> Void) {
        if iterations <= 0 { return }
        if iterations == 1 { body(0); return }
        if useDispatch {
            let counting = sx_flops_counting()  // as the pool does: the caller's arithmetic counting goes along
            DispatchQueue.concurrentPerform(iterations: iterations) { i in
                let before = sx_flops_counting()
                sx_flops_set_counting(counting)
                body(i)
                sx_flops_set_counting(before)
            }
            return
        }
        typealias Body = @Sendable (Int) -> Void
        withoutActuallyEscaping(body) { escapable in
            var box: Body = escapable
            withUnsafeMutablePointer(to: &box) { p in
                _ = sx_parallel_for(iterations, { ctx, i in
                    ctx.unsafelyUnwrapped.assumingMemoryBound(to: Body.self).pointee(i)
                }, p)
            }
        }
    }

    /// Calls `body` on disjoint sub-ranges of `0..<count`, in parallel when the work is large enough.
    @inline(__always)
    public static func forRanges(_ count: Int, minChunk: Int = 4096, _ body: @Sendable (Range<Int>) -> Void) {
        if count <= 0 { return }
        let chunks = min(cores, max(1, count / max(minChunk, 1)))
        if chunks <= 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        perform(chunks) { i in
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
