import ArgumentParser
import Foundation
import SpectralXCheckpoint

/// `spectralx synth`: deterministic synthetic weights (fixtures README §2) as a model store.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a synthetic backbone + domain (deterministic weights) into a model store.",
        discussion: """
            Without --manifest, any band count and class count (demo and benchmark models). With
            --manifest, exactly the weights an upstream fixture manifest describes, each tensor's sha256 verified.
            The backbone file is written only once per store and shared by every domain.
            """)

    @Option(name: [.customShort("o"), .long], help: "Model store directory (created if needed).")
    var out: String = "models"

    @Option(help: "Domain name.")
    var domain: String?

    @Option(help: "Number of input bands C.")
    var bands: Int = 32

    @Option(help: "Number of classes K.")
    var classes: Int = 23

    @Option(help: "Comma-separated band centre wavelengths in µm (default: evenly spaced 0.4–2.5 µm).")
    var wavelengths: String?

    @Option(help: "Weight manifest (e.g. ../shared/fixtures/weights-manifest.json or dinov3/weights-manifest-D.json) to reproduce exactly.")
    var manifest: String?

    @Option(help: "Backbone without --manifest: vit-l (= sat_mae_pp), scale_mae or dinov3.")
    var backbone: BackboneVariant = .satMAEPP

    @Option(help: "Backbone file name in the store (default: sat_mae_pp-synthetic / dinov3-synthetic).")
    var backboneName: String?

    func validate() throws {
        let b = DomainConfig.bandRange, k = DomainConfig.classRange
        guard b.contains(bands) else {
            throw ValidationError("--bands must be between \(b.lowerBound) and \(b.upperBound) (the spectral table needs two bands)")
        }
        guard k.contains(classes) else { throw ValidationError("--classes must be between 1 and 255 (uint8 labels)") }
    }

    func run() throws {
        try reportingFailures {
            let root = URL(fileURLWithPath: out)
            let result: SynthesisResult
            if let manifest {
                result = try ModelStoreSynthesizer.synthesizeFromManifest(URL(fileURLWithPath: manifest), at: root, domainName: domain,
                                                                          backboneName: backboneName)
                guard result.mismatchedTensors.isEmpty else {
                    throw CLIError("sha256 mismatch for \(result.mismatchedTensors.count) tensors: \(result.mismatchedTensors.prefix(5))")
                }
            } else {
                var list: [Double]?
                if let wavelengths {
                    let parsed = wavelengths.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
                    guard parsed.allSatisfy({ $0 != nil }), !parsed.isEmpty else { throw CLIError("--wavelengths: not a list of numbers") }
                    list = parsed.map { $0! }
                }
                result = try ModelStoreSynthesizer.synthesizeStore(at: root, domainName: domain ?? "demo", bands: bands,
                                                                   classes: classes, wavelengths: list,
                                                                   backboneName: backboneName, backbone: backbone)
            }
            let c = result.domainConfig
            print("domain \(c.name): \(c.bands) bands, \(c.classes) classes → \(result.adapterURL.path)")
            print("backbone \(c.backbone) (\((c.backboneVariant ?? .satMAEPP).kind.rawValue)): "
                  + "\(result.backboneWritten ? "written" : "already present") → \(result.backboneURL.path)")
            print(String(format: "%.1f s", result.seconds))
        }
    }
}

extension BackboneVariant: ExpressibleByArgument {
    public init?(argument: String) {
        if argument == "vit-l" { self = .satMAEPP; return }
        self.init(rawValue: argument)
    }

    public static var allValueStrings: [String] { ["vit-l"] + allCases.map(\.rawValue) }
}
