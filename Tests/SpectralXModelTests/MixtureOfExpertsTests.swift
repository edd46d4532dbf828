import Foundation
import SpectralXModel
import SpectralXLayers
import SpectralXTensor
import Testing

/// The upstream `MMoE` on crafted rows (fixtures `mmoe_cases/`, copied into `Data/`): the inclusive
/// 1e-4 gate threshold without renormalisation, the all-underflow −36.0436534 and the +inf overflow.
@Suite("MMoE edge cases")
struct MixtureOfExpertsTests {
    static func load(_ c: String) throws -> (mixture: MixtureOfExperts, x: Tensor, task: Int, out: Tensor, idx: [Int], gates: Tensor) {
        let dir = NpyFixture.bundled.appendingPathComponent("mmoe_cases")
        func t(_ s: String) throws -> Tensor { try NpyFixture.tensor(at: dir.appendingPathComponent("\(c)_\(s).npy")) }
        let fc1w = try t("fc1_w"), fc1b = try t("fc1_b"), fc2w = try t("fc2_w"), fc2b = try t("fc2_b")
        let experts = (0..<4).map { e in
            MixtureOfExperts.Expert(
                fc1: Linear(weight: fc1w.slice(e..<(e + 1)).reshaped([4, 16]), bias: fc1b.slice(e..<(e + 1)).reshaped([4])),
                fc2: Linear(weight: fc2w.slice(e..<(e + 1)).reshaped([16, 4]), bias: fc2b.slice(e..<(e + 1)).reshaped([16])))
        }
        let task = try NpyFixture.int64(at: dir.appendingPathComponent("\(c)_task.npy")).values[0]
        let idx = try NpyFixture.int64(at: dir.appendingPathComponent("\(c)_top2_idx.npy")).values
        return (MixtureOfExperts(gate: try t("w_gate"), experts: experts), try t("x"), task, try t("out"), idx, try t("top2_gate"))
    }

    @Test(arguments: ["a_gate_threshold", "b_underflow", "c_overflow"])
    func upstreamCase(_ name: String) throws {
        let c = try Self.load(name)
        let rows = c.x.shape[0]
        let (_, routes) = c.mixture.route(c.x.pointer, rows: rows, task: c.task)
        for r in 0..<rows {
            #expect(routes[r].experts.0 == c.idx[2 * r] && routes[r].experts.1 == c.idx[2 * r + 1], "row \(r) experts")
        }
        let y = c.mixture(c.x, task: c.task)
        for i in 0..<y.count {
            let mine = y.pointer[i], ref = c.out.pointer[i]
            if ref.isInfinite {
                #expect(mine == ref, "\(name)[\(i)]: \(mine) vs \(ref)")
            } else {
                #expect(abs(mine - ref) <= 2e-6 * max(1, abs(ref)), "\(name)[\(i)]: \(mine) vs \(ref)")
            }
        }
        switch name {
        case "b_underflow":
            #expect((0..<y.count).allSatisfy { y.pointer[$0] == Float(-36.0436534) }, "all-underflow rows must be log(2^-52)")
        case "c_overflow":
            #expect(y.pointer[0] == .infinity)
        case "a_gate_threshold":
            #expect(routes[0].gates.1 == 0 && routes[3].gates.1 == 0, "gates ≤ 1e-4 are dropped")
            #expect(routes[1].gates.1 > 0, "a gate of 1.23e-4 is kept")
            #expect(routes[0].gates.0 < 1, "the surviving gate is not renormalised")
        default: break
        }
    }
}
