import Dispatch
import Metrics
import SpectralXModel
import SpectralXTensor

/// The real `BatchRunner`: stacks preprocessed (C,224,224) images of each domain into a
/// (B,C,224,224) tensor, runs the SpectralX forward pass once over all of them (domains sharing a
/// backbone mix: see `mixKey(for:)`) and splits the (B,K,224,224) logits.
/// Per-stage times go to the `spectralx_model_stage_seconds` timer.
public struct NetworkBatchRunner: BatchRunner {
    public typealias Model = DomainRun
    /// One preprocessed image, (C,224,224) float32, C order.
    public typealias Input = [Float]
    /// Its logits, (K,224,224) float32.
    public typealias Output = [Float]

    public init() {}

    public func run(model: DomainRun, inputs: [[Float]]) throws -> [[Float]] {
        try run(groups: [BatchGroup(model: model, inputs: inputs)])[0]
    }

    /// Images that may share a forward pass: same backbone instance, same precision.
    public struct MixKey: Hashable, Sendable {
        let backbone: ObjectIdentifier
        let precision: Precision
    }

    /// Domains bound to the same backbone instance mix at one precision; a different backbone (another
    /// file, another architecture, a reload) or precision never does.
    public func mixKey(for model: DomainRun) -> MixKey? {
        model.domain.network.map { MixKey(backbone: $0.backbone.identity, precision: model.precision) }
    }

    /// One forward pass over several domains' images (`SpectralXNetwork.mixed`).
    public func run(groups: [BatchGroup<DomainRun, [Float]>]) throws -> [[[Float]]] {
        guard let precision = groups.first?.model.precision else { return [] }
        precondition(groups.allSatisfy { $0.model.precision == precision }, "a batch mixes precisions")
        let s = ModelShape.imageSize
        var parts: [(network: SpectralXNetwork, input: Tensor)] = []
        for g in groups {
            let domain = g.model.domain
            let c = domain.bands, per = c * s * s
            let x = Tensor(zeros: [g.inputs.count, c, s, s])
            for (i, input) in g.inputs.enumerated() {
                guard input.count == per else {
                    throw EngineError.inferenceFailed("input \(i) for \(domain.name) has \(input.count) values, expected \(per)")
                }
                input.withUnsafeBufferPointer { (x.mutablePointer + i * per).update(from: $0.baseAddress!, count: per) }
            }
            guard let network = domain.network else {
                throw EngineError.inferenceFailed("domain '\(domain.name)' is described only, not bound to weights")
            }
            parts.append((network, x))
        }
        let trace = ForwardTrace()
        let logits = SpectralXNetwork.mixed(parts, trace: trace, precision: precision)
        for (stage, seconds) in trace.stageSeconds {
            Metrics.Timer(label: "spectralx_model_stage_seconds", dimensions: [("stage", stage)])
                .recordNanoseconds(Int64(seconds * 1e9))
        }
        return zip(groups, logits).map { g, l in
            let out = g.model.domain.classes * s * s
            return (0..<g.inputs.count).map { i in Array(UnsafeBufferPointer(start: l.pointer + i * out, count: out)) }
        }
    }
}
