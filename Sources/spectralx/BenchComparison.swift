import Dispatch
import Foundation
import SpectralXCheckpoint
import SpectralXModel

/// `spectralx bench --also DOMAIN`: per-image times of several domains of one store (e.g. a ViT-L and a
/// DINOv3 domain) measured in the same process, interleaved run by run so machine load hits them alike.
enum BenchComparison {
    static func run(store: ModelStoreLayout, first: (name: String, net: SpectralXNetwork), others: [String],
                    batches: [Int], runs: Int) throws {
        var nets = [first]
        for name in others { nets.append((name, try SpectralXNetwork.load(store: store, domain: name))) }
        print("")
        print("same-run comparison (runs interleaved across domains; medians):")
        for b in batches {
            let inputs = nets.map { BenchInput.make(batch: b, bands: $0.net.domain.bands) }
            for (i, n) in nets.enumerated() { _ = n.net(inputs[i]) }  // warm-up each
            var seconds = [[Double]](repeating: [], count: nets.count)
            for _ in 0..<runs {
                for (i, n) in nets.enumerated() {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = n.net(inputs[i])
                    seconds[i].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                }
            }
            let base = median(seconds[0]) / Double(b)
            for (i, n) in nets.enumerated() {
                let perImage = median(seconds[i]) / Double(b)
                print(String(format: "  batch %d  %@ (%@, C=%d K=%d): %.3f s/image  (%.2f× %@)  [runs: %@]", b, n.name,
                             n.net.backbone.configuration.kind.rawValue, n.net.domain.bands, n.net.domain.classes, perImage,
                             perImage / base, nets[0].name, seconds[i].map { String(format: "%.3f", $0) }.joined(separator: " ")))
            }
        }
    }
}
