import Dispatch
import Metrics
import SpectralXModel
import SpectralXTensor

/// The real `BatchRunner`: stacks preprocessed (C,224,224) images of one domain into a
/// (B,C,224,224) tensor, runs the SpectralX forward pass once and splits the (B,K,224,224) logits.
/// Per-stage times go to the `spectralx_model_stage_seconds` timer.
public struct NetworkBatchRunner: BatchRunner {
    public typealias Model = LoadedDomain
    /// One preprocessed image, (C,224,224) float32, C order.
    public typealias Input = [Float]
    /// Its logits, (K,224,224) float32.
    public typealias Output = [Float]

    public init() {}

    public func run(model: LoadedDomain, inputs: [[Float]]) throws -> [[Float]] {
        let s = ModelShape.imageSize, c = model.bands, k = model.classes
        let per = c * s * s
        let x = Tensor(zeros: [inputs.count, c, s, s])
        for (i, input) in inputs.enumerated() {
            guard input.count == per else {
                throw EngineError.inferenceFailed("input \(i) has \(input.count) values, expected \(per)")
            }
            input.withUnsafeBufferPointer { (x.mutablePointer + i * per).update(from: $0.baseAddress!, count: per) }
        }
        let trace = ForwardTrace()
        let logits = model.network(x, trace: trace)
        for (stage, seconds) in trace.stageSeconds {
            Metrics.Timer(label: "spectralx_model_stage_seconds", dimensions: [("stage", stage)])
                .recordNanoseconds(Int64(seconds * 1e9))
        }
        let out = k * s * s
        return (0..<inputs.count).map { i in Array(UnsafeBufferPointer(start: logits.pointer + i * out, count: out)) }
    }
}
