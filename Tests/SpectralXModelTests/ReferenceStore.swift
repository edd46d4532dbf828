import Foundation
import SpectralXCheckpoint
import SpectralXModel
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

    func network(_ domain: String) throws -> SpectralXNetwork {
        let config = try layout.loadDomainConfig(domain)
        let d = try SpectralXDomain.load(SafeTensorsFile(url: layout.adapterURL(domain)), wavelengths: config.wavelengths,
                                         expectedBands: config.bands, expectedClasses: config.classes)
        return SpectralXNetwork(backbone: backbone, domain: d)
    }
}
