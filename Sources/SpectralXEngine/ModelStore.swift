import Foundation
import Logging
import Metrics
import SpectralXCheckpoint
import SpectralXModel
import SpectralXSupport
import Synchronization
#if canImport(CMalloc) && os(Linux)
import CMalloc
#endif

/// The served side of a model store directory (service.md §3): one memory-mapped backbone shared by
/// every domain, and the domains loaded beside it. Loading validates everything first (name,
/// domain.json, sha256 digests when domain.json has them, safetensors framing, tensor binding, band
/// and class counts) and only then swaps the new domain in, so a bad, truncated or mismatched domain
/// is refused with a clear error and never disturbs the domains already serving.
public final class ModelStore: Sendable {
    /// What `GET /v1/domains` reports for a domain the store tried and failed to load.
    public struct Failure: Sendable, Equatable {
        public var name: String
        public var reason: String
        public var at: Date
    }

    /// How loading turns a domain's files into something the batch runner can run.
    public enum Binding: Sendable {
        /// Validate every file (digests, framing, shapes) and bind the weights: what serving needs.
        case network
        /// Read and check domain.json only; no weight file is opened. For runners that need no
        /// weights (the tests' fake runners), so a store of a few domain.json files serves the API.
        case describeOnly
    }

    private struct Backbone {
        let network: FrozenBackbone
        let parameters: Int
        let bytes: Int
        /// SHA-256 of the file (domain.json's, verified, or computed once when it has none).
        let digest: String
    }

    private struct State {
        var backbones: [String: Backbone] = [:]
        var domains: [String: LoadedDomain] = [:]
        var failures: [String: Failure] = [:]
    }

    public let layout: ModelStoreLayout
    public let binding: Binding
    private let state = Mutex(State())
    /// Serialises loads and unloads (each may take seconds); lookups never wait for it.
    private let adminLock = Mutex(())
    private let logger: Logger
    private let loadedGauge = Gauge(label: "spectralx_domains_loaded")

    public init(root: URL, logger: Logger = Logger(label: "spectralx.store"), binding: Binding = .network) {
        self.layout = ModelStoreLayout(root: root)
        self.logger = logger
        self.binding = binding
    }

    /// Names with a domain.json in the store directory (loaded or not).
    public var availableDomainNames: [String] { layout.domainNames() }

    /// Loaded domains, sorted by name.
    public var domains: [LoadedDomain] { state.withLock { $0.domains.values.sorted { $0.name < $1.name } } }

    public var failures: [Failure] { state.withLock { $0.failures.values.sorted { $0.name < $1.name } } }

    public func domain(_ name: String) -> LoadedDomain? { state.withLock { $0.domains[name] } }

    /// Ready to serve: a backbone and at least one domain are loaded (a domain loads only with its backbone).
    public var isReady: Bool { state.withLock { !$0.domains.isEmpty } }

    public var backboneNames: [String] { state.withLock { $0.backbones.keys.sorted() } }

    /// A lease on a loaded domain for the duration of one request.
    public func lease(_ name: String) throws -> DomainLease {
        guard let d = domain(name) else {
            if !isReady { throw EngineError.notReady("no domain is loaded") }
            throw EngineError.unknownDomain(name)
        }
        return DomainLease(d)
    }

    /// Loads every domain of the store directory; a domain that fails is logged and skipped.
    @discardableResult
    public func loadAll() -> [(name: String, error: EngineError?)] {
        layout.domainNames().map { name in
            do {
                _ = try load(name)
                return (name, nil)
            } catch let e as EngineError {
                return (name, e)
            } catch {
                return (name, .domainLoadFailed(domain: name, reason: "\(error)"))
            }
        }
    }

    /// Loads or reloads `name` from the store directory. On any failure the previously loaded
    /// version (if any) keeps serving.
    @discardableResult
    public func load(_ name: String) throws -> LoadedDomain {
        do {
            try ModelStoreLayout.validateName(name)
        } catch {
            throw EngineError.invalidDomainName("invalid domain name: \(error)")
        }
        return try adminLock.withLock { _ in
            do {
                let domain = try validateAndBind(name)
                let replaced = state.withLock { s -> LoadedDomain? in
                    defer { s.domains[name] = domain; s.failures[name] = nil }
                    return s.domains[name]
                }
                loadedGauge.record(state.withLock { $0.domains.count })
                logger.info("domain loaded", metadata: [
                    "domain": "\(name)", "bands": "\(domain.bands)", "classes": "\(domain.classes)",
                    "seconds": "\(String(format: "%.2f", domain.loadSeconds))", "reload": "\(replaced != nil)",
                ])
                if let replaced { Self.returnMemoryWhenReleased(replaced) }
                return domain
            } catch let e as EngineError {
                if case .unknownDomain = e {} else { recordFailure(name, e) }
                throw e
            }
        }
    }

    /// Removes `name` from service. New requests get `unknownDomain` at once; the call returns when
    /// every request still holding the domain has finished (or after `drainTimeout`), after which
    /// its adapter mapping is released with the last reference.
    @discardableResult
    public func unload(_ name: String, drainTimeout: Duration = .seconds(60)) throws -> LoadedDomain {
        try adminLock.withLock { _ in
            guard let removed = state.withLock({ s in s.domains.removeValue(forKey: name) }) else {
                throw EngineError.unknownDomain(name)
            }
            loadedGauge.record(state.withLock { $0.domains.count })
            let clock = ContinuousClock()
            let deadline = clock.now + drainTimeout
            while removed.activeRequests > 0 && clock.now < deadline {
                Thread.sleep(forTimeInterval: 0.01)
            }
            logger.info("domain unloaded", metadata: ["domain": "\(name)", "pending": "\(removed.activeRequests)"])
            Self.returnMemoryWhenReleased(removed)
            return removed
        }
    }

    /// Hands the heap memory of a replaced or unloaded domain back to the OS once its last request has
    /// released it. The process keeps freed large blocks for reuse (AllocatorTuning), so without this
    /// the derived weights of every replaced version stayed resident and each reload raised the RSS
    /// (measured: 2.4 → 4.0 GiB over two reloads of a C=32 domain); the k8s limit is sized for one
    /// reload above the steady state, not for a ratchet.
    static func returnMemoryWhenReleased(_ domain: LoadedDomain) {
        struct Weak: Sendable { weak var domain: LoadedDomain? }
        let watch = Weak(domain: domain)
        Thread.detachNewThread {
            let deadline = ContinuousClock.now + .seconds(3600)
            while watch.domain != nil && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.25) }
            #if canImport(CMalloc) && os(Linux)
            _ = malloc_trim(0)
            #endif
        }
    }

    private func recordFailure(_ name: String, _ error: EngineError) {
        state.withLock { $0.failures[name] = Failure(name: name, reason: "\(error)", at: Date()) }
        logger.error("domain load failed", metadata: ["domain": "\(name)", "error": "\(error)"])
    }

    private func validateAndBind(_ name: String) throws -> LoadedDomain {
        let t0 = DispatchTime.now().uptimeNanoseconds
        func fail(_ reason: String) -> EngineError { .domainLoadFailed(domain: name, reason: reason) }
        guard FileManager.default.fileExists(atPath: layout.domainConfigURL(name).path) else {
            throw EngineError.unknownDomain(name)
        }
        let config: DomainConfig
        do { config = try layout.loadDomainConfig(name) } catch { throw fail("\(error)") }
        guard config.name == name else { throw fail("domain.json names '\(config.name)', directory is '\(name)'") }
        if binding == .describeOnly {
            let text = (try? Data(contentsOf: layout.domainConfigURL(name))) ?? Data()
            let digest = ModelDigest.combine(backbone: config.backboneSHA256 ?? "described \(config.backbone)",
                                             adapter: config.adapterSHA256 ?? SHA256.hash(text).hex)
            return LoadedDomain(name: name, config: config, network: nil, backboneName: config.backbone,
                                backboneKind: config.backboneVariant?.kind ?? .vitL, modelDigest: digest, adapterParameters: 0,
                                backboneParameters: 0, adapterBytes: 0,
                                loadSeconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9,
                                weights: WeightFacts(backboneParameters: 0, backboneBytes: 0, backboneSHA256: config.backboneSHA256,
                                                     adapterParameters: 0, adapterBytes: 0, adapterSHA256: config.adapterSHA256))
        }
        // The wavelength list need not have one entry per band: upstream's DFC2020 configs pass the 32
        // WHU-OHS values for 13-band data (spec Q9), and the fixture domains B and D do the same.
        let adapterURL = layout.adapterURL(name)
        // Header checks first (no tensor byte read): a domain.json that contradicts its weights is
        // refused in milliseconds, before hashing, binding or any weight transformation.
        let adapter: SafeTensorsFile
        do { adapter = try SafeTensorsFile(url: adapterURL) } catch { throw fail("adapter.safetensors: \(error)") }
        let expectedLayout = try Self.checkHeader(adapter.header, file: .domain, config: config, fail: fail)
        let adapterDigest = try Self.sha256Hex(of: adapterURL, domain: name)
        if let expected = config.adapterSHA256, adapterDigest != expected.lowercased() {
            throw fail("adapter.safetensors sha256 \(adapterDigest) does not match domain.json's \(expected)")
        }
        let backbone = try backbone(named: config.backbone, expectedSHA256: config.backboneSHA256, domain: name,
                                    layout: expectedLayout)
        let bound: SpectralXDomain
        do {
            bound = try SpectralXDomain.load(adapter, wavelengths: config.wavelengths,
                                             expectedBands: config.bands, expectedClasses: config.classes)
        } catch {
            throw fail("adapter.safetensors does not bind: \(error)")
        }
        do {
            try SpectralXNetwork.checkCompatible(backbone: backbone.network, domain: bound, backboneName: "backbone '\(config.backbone)'")
        } catch {
            throw fail("\(error)")
        }
        if let variant = config.backboneVariant, variant.kind != backbone.network.configuration.kind {
            throw fail("domain.json declares backbone_variant \(variant.rawValue) but backbone '\(config.backbone)' is "
                       + backbone.network.configuration.kind.rawValue)
        }
        let params = adapter.entries.reduce(0) { $0 + $1.elementCount }
        return LoadedDomain(name: name, config: config, network: SpectralXNetwork(backbone: backbone.network, domain: bound),
                            backboneName: config.backbone, backboneKind: backbone.network.configuration.kind,
                            modelDigest: ModelDigest.combine(backbone: backbone.digest, adapter: adapterDigest),
                            adapterParameters: params, backboneParameters: backbone.parameters,
                            adapterBytes: adapter.fileSize,
                            loadSeconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9,
                            weights: WeightFacts(backboneParameters: backbone.parameters, backboneBytes: backbone.bytes,
                                                 backboneSHA256: backbone.digest, adapterParameters: params,
                                                 adapterBytes: adapter.fileSize, adapterSHA256: adapterDigest))
    }

    /// Compares a weight file's header with `domain.json` and the state-dict layout it implies.
    private static func checkHeader(_ header: SafeTensorsHeader, file: WeightFile, config: DomainConfig,
                                    fail: (String) -> EngineError) throws -> StateDictLayout {
        let (bands, classes) = StateDictLayout.dimensions(of: header)
        if file == .domain {
            if let bands, bands != config.bands {
                throw fail("band count mismatch: domain.json declares \(config.bands) bands but adapter.safetensors "
                    + "takes \(bands) (\(StateDictLayout.bandsKey))")
            }
            if let classes, classes != config.classes {
                throw fail("class count mismatch: domain.json declares \(config.classes) classes but adapter.safetensors "
                    + "has \(classes) (\(StateDictLayout.classesKey))")
            }
        }
        let layout: StateDictLayout
        do {
            layout = try StateDictLayout(bands: config.bands, classes: config.classes,
                                         backbone: config.backboneVariant ?? .satMAEPP)
        } catch { throw fail("\(error)") }
        let problems = layout.headerProblems(header, file: file)
        if !problems.isEmpty {
            let what = file == .domain ? "adapter.safetensors" : "backbone \(config.backbone).safetensors"
            throw fail("\(what) does not fit the model: " + problems.joined(separator: "; "))
        }
        return layout
    }

    /// The shared backbone, mapped and bound once per process.
    private func backbone(named bname: String, expectedSHA256: String?, domain: String,
                          layout expected: StateDictLayout) throws -> Backbone {
        if let b = state.withLock({ $0.backbones[bname] }) { return b }
        let url = layout.backboneURL(bname)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw EngineError.domainLoadFailed(domain: domain, reason: "backbone '\(bname)' not found at \(url.path)")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: url) } catch {
            throw EngineError.domainLoadFailed(domain: domain, reason: "backbone \(bname): \(error)")
        }
        let problems = expected.headerProblems(file.header, file: .backbone)
        if !problems.isEmpty {
            throw EngineError.domainLoadFailed(domain: domain,
                reason: "backbone \(bname).safetensors does not fit the model: " + problems.joined(separator: "; "))
        }
        // Hashed even without a recorded digest: it is part of every domain's model digest (once per backbone).
        let digest = try Self.sha256Hex(of: url, domain: domain)
        if let expectedSHA256, digest != expectedSHA256.lowercased() {
            throw EngineError.domainLoadFailed(domain: domain,
                reason: "backbone \(bname).safetensors sha256 \(digest) does not match domain.json's \(expectedSHA256)")
        }
        do {
            let b = Backbone(network: try FrozenBackbone.load(file), parameters: file.entries.reduce(0) { $0 + $1.elementCount },
                             bytes: file.fileSize, digest: digest)
            state.withLock { $0.backbones[bname] = b }
            logger.info("backbone loaded", metadata: ["backbone": "\(bname)", "parameters": "\(b.parameters)",
                                                      "kind": "\(b.network.configuration.kind.rawValue)"])
            return b
        } catch {
            throw EngineError.domainLoadFailed(domain: domain, reason: "backbone \(bname): \(error)")
        }
    }
}

extension ModelStore {
    /// Lowercase hex SHA-256 of a store file; a file that cannot be read fails the domain's load.
    static func sha256Hex(of url: URL, domain: String) throws(EngineError) -> String {
        do { return try SHA256.hash(fileAtPath: url.path).hex } catch {
            throw .domainLoadFailed(domain: domain, reason: "cannot read \(url.path): \(error)")
        }
    }
}

/// The identity of a domain's weights: one SHA-256 over its backbone and adapter file digests. What a
/// job and a resumable output record, so a reload between submission and run (or before a resume)
/// is refused instead of silently changing the model mid-job.
public enum ModelDigest {
    public static func combine(backbone: String, adapter: String) -> String {
        SHA256.hash(Array("backbone \(backbone)\nadapter \(adapter)\n".utf8)).hex
    }
}
