import Foundation
import SpectralXSupport

/// Paths of the Triton-style model store (spec service.md §3):
///
///     <root>/backbones/<backbone>.safetensors        shared frozen ViT weights
///     <root>/domains/<domain>/domain.json            DomainConfig
///     <root>/domains/<domain>/adapter.safetensors    every per-domain tensor
///
/// `root` is the `models/` directory itself. One backbone file serves many domains, which is
/// why the backbone and the adapter are separate files.
public struct ModelStoreLayout: Sendable, Hashable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public var backbonesDirectory: URL { root.appendingPathComponent("backbones", isDirectory: true) }
    public var domainsDirectory: URL { root.appendingPathComponent("domains", isDirectory: true) }

    public func backboneURL(_ backbone: String) -> URL {
        backbonesDirectory.appendingPathComponent(backbone + ".safetensors")
    }

    public func domainDirectory(_ domain: String) -> URL {
        domainsDirectory.appendingPathComponent(domain, isDirectory: true)
    }

    public func domainConfigURL(_ domain: String) -> URL {
        domainDirectory(domain).appendingPathComponent("domain.json")
    }

    public func adapterURL(_ domain: String) -> URL {
        domainDirectory(domain).appendingPathComponent("adapter.safetensors")
    }

    /// Domains that have a domain.json, sorted by name.
    public func domainNames() -> [String] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: domainsDirectory.path)) ?? []
        return names.filter { fm.fileExists(atPath: domainConfigURL($0).path) }.sorted()
    }

    /// Backbone names (file names without `.safetensors`), sorted.
    public func backboneNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: backbonesDirectory.path)) ?? []
        return names.filter { $0.hasSuffix(".safetensors") }.map { String($0.dropLast(".safetensors".count)) }.sorted()
    }

    /// Reads and validates a domain's domain.json.
    public func loadDomainConfig(_ domain: String) throws(CheckpointError) -> DomainConfig {
        try DomainConfig.load(from: domainConfigURL(domain))
    }

    /// Opens a domain's two weight files (backbone named by its domain.json).
    public func openDomain(_ domain: String) throws(CheckpointError)
        -> (config: DomainConfig, backbone: SafeTensorsFile, adapter: SafeTensorsFile)
    {
        let config = try loadDomainConfig(domain)
        let backbone = try SafeTensorsFile(url: backboneURL(config.backbone))
        let adapter = try SafeTensorsFile(url: adapterURL(domain))
        return (config, backbone, adapter)
    }

    /// Store names become path components: allow only `[A-Za-z0-9._-]`, 1–128 characters, not
    /// starting with a dot (no traversal, no hidden files).
    public static func validateName(_ name: String) throws(CheckpointError) {
        guard !name.isEmpty, name.count <= 128 else { throw .invalidArgument("name must be 1–128 characters") }
        guard !name.hasPrefix(".") else { throw .invalidArgument("name '\(name)' must not start with '.'") }
        let ok = name.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
        }
        guard ok else { throw .invalidArgument("name '\(name)' may contain only letters, digits, '.', '_' and '-'") }
    }

    /// SHA-256 of a whole file.
    public static func fileSHA256(_ url: URL) throws(CheckpointError) -> SHA256Digest {
        do { return try SHA256.hash(fileAtPath: url.path) } catch { throw CheckpointError(error) }
    }
}
