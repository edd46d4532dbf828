import Foundation
import SpectralXModel
import SpectralXTensor
import Testing

/// Cross-domain batching at the model level: fixture domains A (32 bands, 23 classes) and B (13 bands,
/// 9 classes) share one backbone; a mixed pass must give every image the logits it gets alone.
@Suite("Mixed-domain forward", .serialized)
struct MixedForwardTests {
    @Test("a mixed A+B batch gives each tile its solo logits, bit for bit")
    func mixedEqualsSolo() throws {
        guard let store = try UpstreamParityTests.store() else { return }
        let a = try store.network("A"), b = try store.network("B")
        let inputA = try NpyFixture.tensor("inputA.npy").slice(0..<1)
        let inputB = try NpyFixture.tensor("inputB.npy")
        let soloA = a(inputA), soloB = b(inputB)
        let mixed = SpectralXNetwork.mixed([(a, inputA), (b, inputB)])
        #expect(mixed.count == 2 && mixed[0].shape == soloA.shape && mixed[1].shape == soloB.shape)
        let ca = Comparison(mixed[0], soloA), cb = Comparison(mixed[1], soloB)
        print("mixed vs solo: A \(ca); B \(cb)")
        // The tensors are kept alive across memcmp: a tensor whose last use is taking `.pointer` may be
        // freed before the call, and another suite's allocation may reuse its bytes (a flaky mismatch).
        withExtendedLifetime((mixed, soloA, soloB)) {
            #expect(memcmp(mixed[0].pointer, soloA.pointer, soloA.count * 4) == 0, "A: \(ca)")
            #expect(memcmp(mixed[1].pointer, soloB.pointer, soloB.count * 4) == 0, "B: \(cb)")
        }
    }
}
