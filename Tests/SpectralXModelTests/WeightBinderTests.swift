import SpectralXLayers
import SpectralXTensor
import Testing

@Suite("Weight binding")
struct WeightBinderTests {
    /// A checkpoint that is wrong in every way at once: one error must list every problem.
    @Test("every missing, mis-shaped, mistyped and unexpected key is reported together")
    func allProblemsAtOnce() {
        let stored: [String: NamedTensor] = [
            "fc.weight": NamedTensor(shape: [3, 4], tensor: Tensor(zeros: [3, 4]), dtype: "F32"),   // transposed
            "norm.weight": NamedTensor(shape: [4], tensor: nil, dtype: "F16"),                      // wrong dtype
            "norm.bias": NamedTensor(shape: [4], tensor: Tensor(zeros: [4]), dtype: "F32"),
            "stray.weight": NamedTensor(shape: [7], tensor: Tensor(zeros: [7]), dtype: "F32"),     // not in the model
            "unused.head.weight": NamedTensor(shape: [2], tensor: Tensor(zeros: [2]), dtype: "F32"), // declared unused
        ]
        let binder = WeightBinder(keys: stored.mapValues(\.shape)) { stored[$0] }
        let root = binder.root
        _ = Linear(root["fc"], in: 3, out: 4)              // expects weight (4,3) and bias (4)
        _ = LayerNorm(root["norm"], dim: 4, eps: 1e-5)
        root.ignore("unused")
        do {
            try binder.finish()
            Issue.record("binding should fail")
        } catch let e as WeightBindingError {
            let text = e.description
            #expect(e.problems.count == 4, "\(text)")
            #expect(e.problems.contains(WeightProblem(key: "fc.weight", kind: .wrongShape(expected: [4, 3], found: [3, 4]))))
            #expect(e.problems.contains(WeightProblem(key: "fc.bias", kind: .missing(expected: [4]))))
            #expect(e.problems.contains(WeightProblem(key: "norm.weight", kind: .unsupportedType("F16"))))
            #expect(e.problems.contains(WeightProblem(key: "stray.weight", kind: .unexpected(found: [7]))))
            #expect(text.contains("fc.weight: expected shape [4, 3], found [3, 4]"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("a complete state dict binds without problems and without copying")
    func clean() throws {
        let w = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let stored = ["l.weight": NamedTensor(shape: [2, 2], tensor: w, dtype: "F32")]
        let binder = WeightBinder(keys: stored.mapValues(\.shape)) { stored[$0] }
        let linear = Linear(binder.root["l"], in: 2, out: 2, bias: false)
        try binder.finish()
        #expect(linear.weight.pointer == w.pointer)
        let y = linear(Tensor(shape: [1, 2], values: [1, 1]))
        #expect(y.toArray() == [3, 7])
    }
}
