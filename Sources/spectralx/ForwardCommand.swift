import ArgumentParser
import Foundation
import SpectralXCheckpoint
import SpectralXModel
import SpectralXRaster
import SpectralXTensor

/// `spectralx forward`: the parity entry point — raw logits for an already preprocessed batch.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run the network on a preprocessed float32 .npy batch (B,C,224,224) and write raw logits (B,K,224,224).")

    @Option(help: "Model store directory.")
    var models: String = "models"

    @Option(help: "Domain name in the store.")
    var domain: String

    @Argument(help: "Input .npy, shape (B,C,224,224) or (C,224,224).")
    var input: String

    @Option(name: [.customShort("o"), .long], help: "Output .npy for the logits.")
    var output: String

    func run() throws {
        try reportingFailures {
            let net = try SpectralXNetwork.load(store: ModelStoreLayout(root: URL(fileURLWithPath: models)), domain: domain)
            let array: NpyArray
            do { array = try NpyArray.read(path: input) } catch { throw CLIError("\(input): \(error)") }
            var shape = array.shape
            if shape.count == 3 { shape.insert(1, at: 0) }
            let c = net.domain.bands, s = ModelShape.imageSize
            guard shape.count == 4, shape[1] == c, shape[2] == s, shape[3] == s, shape[0] >= 1 else {
                throw CLIError("\(input): shape \(array.shape) does not match (B, \(c), \(s), \(s)) for domain \(domain)")
            }
            guard array.dtype.kind == .float else { throw CLIError("\(input): dtype \(array.dtype) is not a float type") }
            let x = Tensor(shape: shape, values: array.toFloat32())
            let logits = net(x)
            try NpyWriter.write(logits.toArray(), shape: logits.shape, to: output)
        }
    }
}
