import Foundation
import SpectralXTensor

/// Optional observer of a forward pass: named intermediates (for parity tests against the upstream
/// fixtures) and per-stage wall times (for `spectralx bench`). Used from one thread at a time.
public final class ForwardTrace {
    /// Which intermediates to keep; nil keeps none (timings only).
    public let keep: ((String) -> Bool)?
    public private(set) var tensors: [String: Tensor] = [:]
    public private(set) var indices: [String: [Int]] = [:]
    public private(set) var stageSeconds: [(stage: String, seconds: Double)] = []
    /// Floating-point operations of each stage's matrix products (exclusive, like the times), when the
    /// forward runs inside ``ArithmeticCount/measure(_:)``; empty otherwise.
    public private(set) var stageFlops: [String: Double] = [:]

    /// Tests only: MMoE expert pairs to use instead of the computed top-2, by adapter
    /// (`"mmoe.b11.fc2.1"` = block 11, fc2, task 1) and row (image·T + token). For documented gate
    /// near-ties, where float32 noise legitimately picks the other expert (cf. Are index substitution).
    public var routeOverrides: [String: [Int: (Int, Int)]] = [:]

    public init(keep: ((String) -> Bool)? = nil) { self.keep = keep }

    func record(_ name: String, _ t: @autoclosure () -> Tensor) {
        if let keep, keep(name) { tensors[name] = t().copy() }
    }

    func record(_ name: String, indices i: @autoclosure () -> [Int]) {
        if let keep, keep(name) { indices[name] = i() }
    }

    private var childSeconds: [Double] = []
    private var childFlops: [Double] = []

    /// Times `body` under `stage`. Stages nest exclusively: time spent in an inner stage (the AoMoA
    /// adapters inside a ViT block) is counted there and not again in the outer one.
    func time<T>(_ stage: String, _ body: () -> T) -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        let flops0 = ArithmeticCount.sofar
        childSeconds.append(0)
        childFlops.append(0)
        let r = body()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let inner = childSeconds.removeLast()
        if !childSeconds.isEmpty { childSeconds[childSeconds.count - 1] += elapsed }
        let innerFlops = childFlops.removeLast()
        if let flops0, let flops1 = ArithmeticCount.sofar {
            let done = flops1 - flops0
            if !childFlops.isEmpty { childFlops[childFlops.count - 1] += done }
            stageFlops[stage, default: 0] += done - innerFlops
        }
        if let i = stageSeconds.firstIndex(where: { $0.stage == stage }) {
            stageSeconds[i].seconds += elapsed - inner
        } else {
            stageSeconds.append((stage, elapsed - inner))
        }
        return r
    }
}

extension Optional where Wrapped == ForwardTrace {
    func time<T>(_ stage: String, _ body: () -> T) -> T {
        switch self {
        case .some(let t): return t.time(stage, body)
        case .none: return body()
        }
    }
}
