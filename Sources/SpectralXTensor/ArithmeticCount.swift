import CSpectralXKernels
import Foundation
import Synchronization

/// The arithmetic a computation actually does: floating-point operations (2 per multiply-add) of every
/// matrix product it runs — OpenBLAS calls through ``GEMM`` and the packed kernels alike, on the calling
/// thread and on the workers of its parallel loops. Element-wise work (Winograd tile transforms, the
/// shift-adds of resized convolutions, norms, activations) is not counted, as the spec's §8 count of the
/// direct computation counts only multiply-adds. `spectralx bench` sets one against the other.
public enum ArithmeticCount {
    /// One measurement at a time: the count is one process-wide sum.
    private static let lock = Mutex(())

    /// Runs `body` with counting on for this thread (and the pool workers it hands loops to); returns its
    /// result and the operations of its products. Products of other threads are not counted.
    public static func measure<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> (result: T, flops: Double) {
        // The outcome leaves the lock through captured variables: `withLock` may only return values
        // it can send, and `T` need not be Sendable.
        var outcome: Result<T, E>?
        var flops = 0.0
        lock.withLock { _ in
            _ = sx_flops_take()
            sx_flops_set_counting(1)
            defer { sx_flops_set_counting(0) }
            do throws(E) { outcome = .success(try body()) } catch { outcome = .failure(error) }
            flops = Double(sx_flops_take())
        }
        return (try outcome!.get(), flops)
    }

    /// The operations counted so far in the running measurement, or nil when this thread is not inside
    /// one (differences of two readings attribute arithmetic to a stage of the measured body).
    public static var sofar: Double? {
        sx_flops_counting() != 0 ? Double(sx_flops_peek()) : nil
    }

    /// Counts an `m × n × k` product (2·m·n·k operations) when the calling thread is counting.
    @inline(__always)
    static func product(m: Int, n: Int, k: Int) {
        sx_flops_add(2 * Double(m) * Double(n) * Double(k))
    }
}
