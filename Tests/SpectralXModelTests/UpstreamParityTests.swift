import Foundation
import SpectralXCheckpoint
import SpectralXLayers
import SpectralXModel
import SpectralXTensor
import Testing

/// The domain-A wavelength list (configs/stage2/experiment_WHUOHS_ST.yaml, with its 0.569 quirk, Q8).
let whuOHSWavelengths: [Double] = [
    0.466, 0.48, 0.5, 0.52, 0.536, 0.55, 0.566, 0.58, 0.569, 0.61, 0.626, 0.64, 0.656, 0.67, 0.686, 0.7,
    0.716, 0.73, 0.746, 0.76, 0.776, 0.79, 0.806, 0.82, 0.836, 0.85, 0.866, 0.88, 0.896, 0.91, 0.926, 0.94,
]

@Suite("Upstream parity (domain A)", .serialized)
struct UpstreamParityTests {
    @Test("full forward pass and every stored intermediate")
    func domainA() throws {
        guard Fixtures.root != nil, let dir = ProcessInfo.processInfo.environment["SPECTRALX_FIXTURE_WEIGHTS"] else {
            print("SKIP: \(Fixtures.skipReason)")
            return
        }
        let backbone = try FrozenBackbone.load(SafeTensorsFile(path: dir + "/backbone.safetensors"))
        let domain = try SpectralXDomain.load(SafeTensorsFile(path: dir + "/domain.safetensors"), wavelengths: whuOHSWavelengths)
        let net = SpectralXNetwork(backbone: backbone, domain: domain)
        let input = try NpyFixture.tensor("inputA.npy")
        let trace = ForwardTrace(keep: { _ in true })
        let logits = net(input, trace: trace)
        func check(_ name: String, _ fixture: String, image0Only: Bool = false) throws {
            guard let mine = trace.tensors[name] else { Issue.record("no trace \(name)"); return }
            let ref = try NpyFixture.tensor(fixture)
            let m = image0Only ? mine.slice(0..<1) : mine
            let c = Comparison(m, ref)
            print("\(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(c)")
        }
        try check("hypert.x_lr", "hypertA_x_lr.npy")
        try check("hypert.spa_fea", "hypertA_spa_fea.npy")
        try check("hypert.spe_fea", "hypertA_spe_fea.npy")
        try check("hypert.core_tokens", "hypertA_core_tokens.npy")
        try check("hypert.tokens", "hypertA_tokens.npy")
        try check("stream.b04", "streamA_b04.npy")
        for b in ["05", "11", "17", "23"] {
            try check("stream.b\(b).pre", "streamA_b\(b)_preAre.npy")
            try check("stream.b\(b).post", "streamA_b\(b)_postAre.npy")
        }
        try check("neck.N0", "neckA_N0.npy", image0Only: true)
        try check("neck.N1", "neckA_N1.npy")
        try check("neck.N2", "neckA_N2.npy")
        try check("neck.N3", "neckA_N3.npy")
        try check("head.fused", "fusedA.npy", image0Only: true)
        try check("head.out", "headA_out.npy")
        let ref = try NpyFixture.tensor("logitsA.npy")
        let c = Comparison(logits, ref)
        print("logits                 \(c)")
        let refS = try NpyFixture.int64("areA_idx_s.npy"), refP = try NpyFixture.int64("areA_idx_p.npy")
        var flips: [String] = []
        for call in 0..<4 {
            for b in 0..<2 {
                let s = trace.indices["are.\(call).idx_s.\(b)"]!, p = trace.indices["are.\(call).idx_p.\(b)"]!
                for j in 0..<784 where s[j] != refS.values[(call * 2 + b) * 784 + j] { flips.append("call \(call) idx_s image \(b) j \(j)") }
                for j in 0..<512 where p[j] != refP.values[(call * 2 + b) * 512 + j] { flips.append("call \(call) idx_p image \(b) j \(j)") }
            }
        }
        print("Are index flips: \(flips)")
        let override: SpectralXNetwork.AreIndexOverride = { call, b in
            (Array(refS.values[((call * 2 + b) * 784)..<((call * 2 + b + 1) * 784)]),
             Array(refP.values[((call * 2 + b) * 512)..<((call * 2 + b + 1) * 512)]))
        }
        let trace2 = ForwardTrace(keep: { $0.hasPrefix("neck") || $0.hasPrefix("head") || $0.hasPrefix("stream.b23") })
        let logits2 = net(input, trace: trace2, areOverride: override)
        let c2 = Comparison(logits2, ref)
        print("logits (ref Are idx)   \(c2)")
        #expect(c2.maxAbs <= 1e-4)
    }
}
