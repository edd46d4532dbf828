import Foundation
import SpectralXCheckpoint
import SpectralXEngine
import SpectralXSupport

/// A deterministic stand-in for the SpectralX network, so the API's own behaviour (routes, errors,
/// jobs, admission, the HTTP contract) is tested without loading the 1.2 GB model. Each output pixel
/// depends on that pixel of the (normalised) first input band only: class `k` gets the logit
/// `-(v·K − k − ½)²`, so the label is ⌊v·K⌋ and the softmax scores are proper probabilities.
public struct FakeRunner: BatchRunner {
    public typealias Model = DomainRun
    public typealias Input = [Float]
    public typealias Output = [Float]

    /// Wall time of every batch: keeps jobs running long enough to be stopped or dismissed mid-way.
    public var delay: Duration

    public init(delay: Duration = .zero) { self.delay = delay }

    public func run(model run: DomainRun, inputs: [[Float]]) throws -> [[Float]] {
        let model = run.domain
        if delay > .zero { Thread.sleep(forTimeInterval: delay.inSeconds) }
        let n = WindowPlan.size * WindowPlan.size, k = model.classes
        return try inputs.map { x in
            guard x.count == model.bands * n else {
                throw EngineError.inferenceFailed("fake runner: \(x.count) values for \(model.bands) bands")
            }
            var out = [Float](repeating: 0, count: k * n)
            for p in 0..<n {
                let v = min(max(x[p], 0), 1) * Float(k)
                for c in 0..<k { let d = v - Float(c) - 0.5; out[c * n + p] = -d * d }
            }
            return out
        }
    }
}

/// Model stores of domain.json files only (`ModelStore.Binding.describeOnly`): what `FakeRunner` needs.
public enum FakeStore {
    /// `syn` as in the shared store: 4 bands, 3 classes.
    public static let syn = DomainConfig(name: "syn", backbone: ModelStoreSynthesizer.defaultBackboneName, bands: 4, classes: 3,
                                  description: "fake: domain.json only")

    /// A new store directory holding `domains` (the caller removes it).
    public static func make(_ domains: [DomainConfig] = [syn]) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-fake-store-\(UUID().uuidString)")
        let layout = ModelStoreLayout(root: dir)
        for d in domains {
            try FileManager.default.createDirectory(at: layout.domainDirectory(d.name), withIntermediateDirectories: true)
            try d.write(to: layout.domainConfigURL(d.name))
        }
        return dir
    }

    /// One store shared by the suites that never change it.
    public static let shared: URL = try! make()

    /// An engine over a describe-only store, running `FakeRunner`.
    public static func engine(root: URL = shared, delay: Duration = .zero,
                       scheduler: SchedulerConfiguration = SchedulerConfiguration()) -> InferenceEngine {
        InferenceEngine(store: ModelStore(root: root, binding: .describeOnly), runner: FakeRunner(delay: delay), scheduler: scheduler)
    }
}
