import Foundation
import SpectralXLayers
import SpectralXTensor

/// The MMoE of AoMoA at inference (upstream `MMoE` + `SparseDispatcher`, spec §4.3.2), bug for bug:
/// top-2 of 4 experts from `x·w_gate[task]` (no noise), softmax over the two, gates ≤ 1e-4 dropped
/// without renormalising, then `log(Σ g·exp(E(x)))` in float32 with no max-subtraction — exact zeros
/// become 2⁻⁵² (→ −36.0436534) and overflow stays +inf, as upstream.
public struct MixtureOfExperts: Sendable {
    public struct Expert: Sendable {
        public let fc1: Linear
        public let fc2: Linear
        public init(fc1: Linear, fc2: Linear) {
            self.fc1 = fc1
            self.fc2 = fc2
        }
    }
    /// `(2, r, 4)`: one gating matrix per task (0 = spatial half, 1 = spectral half).
    public let gate: Tensor
    public let experts: [Expert]
    public let width: Int
    public static let gateThreshold: Float = 1e-4
    public static let zeroReplacement: Float = 2.220446049250313e-16

    public init(_ s: WeightScope, width r: Int, hidden: Int) {
        width = r
        gate = s.tensor("w_gate", [2, r, 4])
        experts = (0..<4).map { e in
            Expert(fc1: Linear(s["experts"][e]["fc1"], in: r, out: hidden),
                   fc2: Linear(s["experts"][e]["fc2"], in: hidden, out: r))
        }
        s.ignore("w_noise"); s.ignore("mean"); s.ignore("std")
    }

    public init(gate: Tensor, experts: [Expert]) {
        self.gate = gate
        self.experts = experts
        self.width = gate.shape[1]
    }

    /// The routing decision for one row.
    public struct Route: Sendable, Equatable {
        public var experts: (Int, Int)
        public var gates: (Float, Float)
        public static func == (a: Route, b: Route) -> Bool { a.experts == b.experts && a.gates == b.gates }
    }

    /// Gate logits `(rows × 4)` and routes, for tests and for the forward pass.
    public func route(_ x: UnsafePointer<Float>, rows: Int, task: Int) -> (logits: Tensor, routes: [Route]) {
        let logits = Tensor(zeros: [rows, 4])
        GEMM.multiply(m: rows, n: 4, k: width, a: x, lda: width, b: gate.pointer + task * width * 4, ldb: 4,
                      c: logits.mutablePointer, ldc: 4)
        var routes: [Route] = []
        routes.reserveCapacity(rows)
        for r in 0..<rows {
            let l = logits.pointer + r * 4
            var e1 = 0
            for e in 1..<4 where l[e] > l[e1] { e1 = e }
            var e2 = e1 == 0 ? 1 : 0
            for e in 0..<4 where e != e1 && l[e] > l[e2] { e2 = e }
            // softmax([l1, l2]) as PyTorch computes it: subtract the max (l1), exponentiate, normalise.
            let x2 = expf(l[e2] - l[e1])
            let sum = 1 + x2
            var g1 = 1 / sum, g2 = x2 / sum
            if g1 <= Self.gateThreshold { g1 = 0 }
            if g2 <= Self.gateThreshold { g2 = 0 }
            routes.append(Route(experts: (e1, e2), gates: (g1, g2)))
        }
        return (logits, routes)
    }

    /// `(rows × r)` → `(rows × r)`. `overrides` (tests only) replaces the chosen expert pair of some rows,
    /// with the gates recomputed from that pair's logits — the MMoE analogue of substituting a reference
    /// Are index at a documented near-tie.
    public func callAsFunction(_ x: Tensor, task: Int, overrides: [Int: (Int, Int)] = [:]) -> Tensor {
        let sum = Tensor(zeros: [x.count / width, width])
        apply(x, task: task, overrides: overrides, into: sum.mutablePointer)
        return sum
    }

    /// As ``callAsFunction(_:task:overrides:)``, writing the `(rows × r)` result into `sum`, which must
    /// hold zeros (the experts' terms accumulate into it).
    func apply(_ x: Tensor, task: Int, overrides: [Int: (Int, Int)] = [:], into sum: UnsafeMutablePointer<Float>) {
        let rows = x.count / width
        let (logits, computed) = route(x.pointer, rows: rows, task: task)
        var routes = computed
        for (r, pair) in overrides where r < rows {
            let l = logits.pointer + r * 4
            let x2 = expf(l[pair.1] - l[pair.0]), sum = 1 + x2
            var g1 = 1 / sum, g2 = x2 / sum
            if g1 <= Self.gateThreshold { g1 = 0 }
            if g2 <= Self.gateThreshold { g2 = 0 }
            routes[r] = Route(experts: pair, gates: (g1, g2))
        }
        for (e, expert) in experts.enumerated() {
            var members: [(row: Int, gate: Float)] = []
            for (r, route) in routes.enumerated() {
                if route.experts.0 == e && route.gates.0 > 0 { members.append((r, route.gates.0)) }
                if route.experts.1 == e && route.gates.1 > 0 { members.append((r, route.gates.1)) }
            }
            if members.isEmpty { continue }
            let gathered = Tensor(zeros: [members.count, width])
            for (i, m) in members.enumerated() {
                (gathered.mutablePointer + i * width).update(from: x.pointer + m.row * width, count: width)
            }
            let hidden = expert.fc1(gathered)
            Activations.relu(hidden.mutablePointer, count: hidden.count)
            let out = expert.fc2(hidden)
            // libm's expf and logf (their underflow and overflow are upstream's semantics), on all
            // cores: an expert's members are distinct rows, so the workers' rows never overlap, and each
            // element still receives its experts' terms in expert order.
            let o = SharedPointer(out.pointer), acc = SharedPointer(sum), w = width
            members.withUnsafeBufferPointer { list in
                let list = SharedPointer(list.baseAddress!)
                Parallel.forRanges(members.count, minChunk: max(1, 16_384 / w)) { range in
                    for i in range {
                        let m = list[i], src = o + i * w, dst = acc + m.row * w
                        for f in 0..<w { dst[f] += m.gate * expf(src[f]) }
                    }
                }
            }
        }
        let p = SharedPointer(sum)
        Parallel.forRanges(rows * width, minChunk: 16_384) { range in
            for i in range { p[i] = logf(p[i] == 0 ? Self.zeroReplacement : p[i]) }
        }
    }
}

/// One `AoMixtureOfAdapters` (spec §4.3.1): LN → Linear(d→d/4) → LN → MMoE → Linear(d/4→o),
/// shared by both halves of a token; only the gating task differs.
struct MixtureOfAdapters: Sendable {
    let norm1: LayerNorm, norm2: LayerNorm
    let reduce: Linear, increase: Linear
    let mixture: MixtureOfExperts

    init(_ s: WeightScope, inWidth d: Int, outWidth o: Int) {
        norm1 = LayerNorm(s["norm1"], dim: d, eps: 1e-5)
        reduce = Linear(s["dimReduction"], in: d, out: d / 4, bias: false).packedForInference()
        norm2 = LayerNorm(s["norm2"], dim: d / 4, eps: 1e-5)
        mixture = MixtureOfExperts(s["MoA"], width: d / 4, hidden: d / 32)
        increase = Linear(s["dimIncrease"], in: d / 4, out: o, bias: false).packedForInference()
    }
}

/// The AoMoA wrapper around a frozen linear: `linear(x) + scaler ⊙ [A(x_spatial, 0) ‖ A(x_spectral, 1)]`.
struct AdaptedLinear: Sendable {
    let scaler: Tensor
    let adapter: MixtureOfAdapters
    let inWidth: Int, outWidth: Int

    init(_ s: WeightScope, inWidth: Int, outWidth: Int) {
        self.inWidth = inWidth
        self.outWidth = outWidth
        scaler = s.tensor("scaler", [outWidth])
        adapter = MixtureOfAdapters(s["blocks_MoA"], inWidth: inWidth / 2, outWidth: outWidth / 2)
    }

    /// Adds the scaled adapter output to `y` (`rows × outWidth`), given the linear's input `x` (`rows × inWidth`).
    func addAdapter(input x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, trace: ForwardTrace?, name: String) {
        trace.time("aomoa") { addAdapterUntimed(input: x, rows: rows, into: y, trace: trace, name: name) }
    }

    /// Both halves go through the adapter's shared layers (norms, `dimReduction`, `dimIncrease`) as one
    /// stack of `2·rows` rows, spatial half first: one GEMM each instead of two half-height ones. Only
    /// the MMoE's gating differs by half, so it runs per half. Rows are independent in every one of
    /// these layers, so the stack gives each row the bits it gets alone.
    private func addAdapterUntimed(input x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, trace: ForwardTrace?, name: String) {
        let hi = inWidth / 2, ho = outWidth / 2, r = adapter.mixture.width
        // norm1 writes every element, so the stack is not zero-filled first.
        let a = Tensor(uninitialized: [2 * rows, hi])
        for task in 0..<2 {
            adapter.norm1.apply(x + task * hi, rows: rows, inStride: inWidth, into: a.mutablePointer + task * rows * hi)
        }
        let reduced = adapter.norm2(adapter.reduce(a))
        let mixed = Tensor(zeros: [2 * rows, r])
        for task in 0..<2 {
            let half = reduced.slice(task * rows..<(task + 1) * rows)
            trace?.record("\(name).in.\(task)", half)
            adapter.mixture.apply(half, task: task, overrides: trace?.routeOverrides["\(name).\(task)"] ?? [:],
                                  into: mixed.mutablePointer + task * rows * r)
            trace?.record("\(name).out.\(task)", mixed.slice(task * rows..<(task + 1) * rows))
        }
        let out = adapter.increase(mixed)
        for task in 0..<2 {
            let s = scaler.pointer + task * ho
            for row in 0..<rows {
                let dst = y + row * outWidth + task * ho, src = out.pointer + (task * rows + row) * ho
                for f in 0..<ho { dst[f] += s[f] * src[f] }
            }
        }
    }
}
