import Foundation
import SpectralXEngine

/// The JSON shape of a domain in `GET /v1/domains[/{name}]` (and `PUT` answers).
struct DomainDescription: Codable, Sendable {
    struct ClassInfo: Codable, Sendable { var index: Int; var name: String }
    struct Parameters: Codable, Sendable { var backbone: Int; var adapter: Int; var total: Int }
    var name: String
    var state: String
    var backbone: String
    /// `vit-l` or `dinov3`.
    var backboneKind: String
    var bands: Int
    var classes: [ClassInfo]
    var wavelengthsUm: [Double]
    var inputSize: Int
    var preprocessing: String
    var parameters: Parameters
    var adapterBytes: Int
    var loadedAt: String
    var loadSeconds: Double
    var activeRequests: Int
    var description: String?

    enum CodingKeys: String, CodingKey {
        case name, state, backbone, bands, classes, preprocessing, parameters, description
        case backboneKind = "backbone_kind"
        case wavelengthsUm = "wavelengths_um", inputSize = "input_size", adapterBytes = "adapter_bytes"
        case loadedAt = "loaded_at", loadSeconds = "load_seconds", activeRequests = "active_requests"
    }

    init(_ d: LoadedDomain) {
        name = d.name
        state = "ready"
        backbone = d.config.backbone
        backboneKind = d.backboneKind.rawValue
        bands = d.bands
        classes = d.config.classNames.enumerated().map { ClassInfo(index: $0.offset, name: $0.element) }
        wavelengthsUm = d.config.wavelengths
        inputSize = d.config.inputSize
        preprocessing = d.config.preprocessing
        parameters = Parameters(backbone: d.backboneParameters, adapter: d.adapterParameters,
                                total: d.backboneParameters + d.adapterParameters)
        adapterBytes = d.adapterBytes
        loadedAt = ISO8601DateFormatter().string(from: d.loadedAt)
        loadSeconds = (d.loadSeconds * 1000).rounded() / 1000
        activeRequests = d.activeRequests
        description = d.config.description
    }
}

/// A domain of the store directory that failed to load (listed so operators see why).
struct DomainFailureDescription: Codable, Sendable {
    var name: String
    var state = "failed"
    var error: String
}

struct DomainList: Codable, Sendable {
    var domains: [DomainDescription]
    var failed: [DomainFailureDescription]
}

enum JSON {
    static func encode<T: Encodable>(_ value: T) -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(value)) ?? Data("{}".utf8)
    }
}
