import Foundation
import SpectralXCheckpoint
import SpectralXModel
import Synchronization

/// A domain bound to the shared backbone and ready to run. Identity matters: a reload makes a new
/// `LoadedDomain`, so the scheduler never batches images of the old and new weights together, and
/// requests already holding the old one finish on it.
public final class LoadedDomain: Sendable, Hashable {
    public let name: String
    public let config: DomainConfig
    /// The bound weights; nil for a domain described by its domain.json only
    /// (`ModelStore.Binding.describeOnly`), which only a runner that needs no weights can run.
    public let network: SpectralXNetwork?
    /// The backbone file this domain runs on (`models/backbones/<name>.safetensors`).
    public let backboneName: String
    public let loadedAt: Date
    /// Elements in the adapter file (per-domain parameters).
    public let adapterParameters: Int
    /// Elements in the shared backbone file.
    public let backboneParameters: Int
    public let adapterBytes: Int
    /// Seconds validation and binding took.
    public let loadSeconds: Double
    public let bands: Int
    public let classes: Int
    /// `vit-l` or `dinov3`.
    public let backboneKind: BackboneKind
    /// What the weights are: SHA-256 over the backbone and adapter file digests (see `ModelDigest`).
    /// A job records it at submission and runs or resumes only on a domain with the same digest.
    public let modelDigest: String
    /// Sizes and digests of the two weight files (what a model card such as STAC MLM reports).
    public let weights: WeightFacts
    private let leases = Mutex(0)

    init(name: String, config: DomainConfig, network: SpectralXNetwork?, backboneName: String, backboneKind: BackboneKind,
         modelDigest: String, adapterParameters: Int, backboneParameters: Int, adapterBytes: Int, loadSeconds: Double,
         weights: WeightFacts) {
        self.weights = weights
        self.name = name
        self.config = config
        self.network = network
        self.backboneName = backboneName
        self.loadedAt = Date()
        self.adapterParameters = adapterParameters
        self.backboneParameters = backboneParameters
        self.adapterBytes = adapterBytes
        self.loadSeconds = loadSeconds
        self.bands = network?.domain.bands ?? config.bands
        self.classes = network?.domain.classes ?? config.classes
        self.backboneKind = backboneKind
        self.modelDigest = modelDigest
    }

    /// What cross-domain batching must key on: domains share the frozen backbone's GEMMs only when
    /// this is equal (same backbone file, hence same kind and token layout). Never batch across it.
    public var backboneIdentity: BackboneIdentity { BackboneIdentity(name: backboneName, kind: backboneKind) }

    /// Requests currently using this domain.
    public var activeRequests: Int { leases.withLock { $0 } }

    func acquire() { leases.withLock { $0 += 1 } }
    func release() { leases.withLock { $0 -= 1 } }

    public static func == (a: LoadedDomain, b: LoadedDomain) -> Bool { a === b }
    public func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(self)) }
}

/// The shared backbone a loaded domain runs on (file name and kind).
public struct BackboneIdentity: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let kind: BackboneKind
    public var description: String { "\(name) (\(kind.rawValue))" }
}

/// A request's hold on a domain: while any lease is open, `unload` waits before returning, so
/// in-flight requests finish on the weights they started with.
public final class DomainLease: Sendable {
    public let domain: LoadedDomain
    private let released = Mutex(false)

    init(_ domain: LoadedDomain) {
        self.domain = domain
        domain.acquire()
    }

    public func release() {
        let first = released.withLock { r in defer { r = true }; return !r }
        if first { domain.release() }
    }

    deinit { release() }
}

/// What is known about a domain's two weight files: parameter counts, byte sizes and SHA-256
/// digests (nil when unknown: a describe-only store has no weight files to hash).
public struct WeightFacts: Sendable, Equatable {
    public var backboneParameters: Int
    public var backboneBytes: Int
    public var backboneSHA256: String?
    public var adapterParameters: Int
    public var adapterBytes: Int
    public var adapterSHA256: String?

    public init(backboneParameters: Int, backboneBytes: Int, backboneSHA256: String?, adapterParameters: Int, adapterBytes: Int,
                adapterSHA256: String?) {
        self.backboneParameters = backboneParameters
        self.backboneBytes = backboneBytes
        self.backboneSHA256 = backboneSHA256
        self.adapterParameters = adapterParameters
        self.adapterBytes = adapterBytes
        self.adapterSHA256 = adapterSHA256
    }
}
