import Foundation
import SpectralXCheckpoint
import SpectralXModel
import SpectralXTensor
import SpectralXTestSupport

/// The fixture domains `A` and `B` of the shared test store (regenerated from the upstream manifests
/// by our own generator), with the backbone bound once.
final class ReferenceStore: Sendable {
    let layout: ModelStoreLayout
    let backbone: FrozenBackbone
    var synthesis: [SynthesisResult] { SharedTestStore.fixtureSyntheses }

    static let shared: Result<ReferenceStore, any Error>? = {
        guard SharedTestStore.fixturesDirectory != nil else { return nil }
        return Result { try ReferenceStore() }
    }()

    private init() throws {
        layout = ModelStoreLayout(root: SharedTestStore.root)
        let config = try layout.loadDomainConfig("A")
        backbone = try FrozenBackbone.load(SafeTensorsFile(url: layout.backboneURL(config.backbone)))
    }

    /// `packed`: a backbone and domain of their own, loaded with the linears on the packed kernel
    /// (``PackedWeight/override``), which the CLI uses; nil when this CPU cannot run it. Private memory
    /// (1.3 GB), freed with the network.
    func network(_ domain: String, packed: Bool) throws -> SpectralXNetwork? {
        guard packed else { return try network(domain) }
        return try PackedWeight.$override.withValue(true) {
            let config = try layout.loadDomainConfig(domain)
            let backbone = try FrozenBackbone.load(SafeTensorsFile(url: layout.backboneURL(config.backbone)))
            return try network(domain, backbone: backbone)
        }
    }

    func network(_ domain: String) throws -> SpectralXNetwork { try network(domain, backbone: backbone) }

    private func network(_ domain: String, backbone: FrozenBackbone) throws -> SpectralXNetwork {
        let config = try layout.loadDomainConfig(domain)
        let d = try SpectralXDomain.load(SafeTensorsFile(url: layout.adapterURL(domain)), wavelengths: config.wavelengths,
                                         expectedBands: config.bands, expectedClasses: config.classes)
        return SpectralXNetwork(backbone: backbone, domain: d)
    }
}
