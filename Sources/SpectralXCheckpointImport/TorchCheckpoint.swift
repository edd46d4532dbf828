import SpectralXCheckpoint
import SpectralXSupport

/// A `torch.save` zip checkpoint, opened and unpickled without Python: the archive stays mapped,
/// the pickle becomes a `PickleGraph`, tensors are views into the archive's storage entries.
public final class TorchCheckpoint: Sendable {
    public let archive: ZipArchive
    /// The archive's top folder including the slash (`tiny-upstream/`).
    public let prefix: String
    public let graph: PickleGraph

    public var path: String { archive.path }
    public var root: PickleValue { graph.root }

    public convenience init(path: String, pickleLimits: PickleMachine.Limits = .init()) throws(ImportError) {
        try self.init(archive: ZipArchive(path: path), pickleLimits: pickleLimits)
    }

    public init(archive: ZipArchive, pickleLimits: PickleMachine.Limits = .init()) throws(ImportError) {
        self.archive = archive
        // torch.save writes `<name>/data.pkl`; exactly one such record is expected.
        let pickles = archive.entries.filter {
            $0.name.hasSuffix("/data.pkl") && $0.name.split(separator: "/", omittingEmptySubsequences: false).count == 2
        }
        guard pickles.count == 1, let pkl = pickles.first else {
            throw .notATorchCheckpoint(reason: pickles.isEmpty
                ? "no '<name>/data.pkl' in the archive (legacy non-zip torch.save files are not supported)"
                : "\(pickles.count) '<name>/data.pkl' records")
        }
        prefix = String(pkl.name.dropLast("data.pkl".count))
        if let order = archive.entry(named: prefix + "byteorder") {
            let text = String(decoding: try archive.bytes(of: order), as: UTF8.self)
            guard text == "little" else { throw .notATorchCheckpoint(reason: "byte order '\(text)' (only little-endian is supported)") }
        }
        let bytes = try archive.bytes(of: pkl, verifyCRC: true)
        graph = try PickleMachine(limits: pickleLimits).load(bytes, hooks: TorchPickleHooks(archive: archive, prefix: prefix))
    }

    /// The top-level dict (Lightning / trainer checkpoints are dicts).
    public var topLevel: PickleDict? { graph.dict(root) }

    public var topLevelKeys: [String] { topLevel?.items.compactMap(\.key.stringValue) ?? [] }
    public var epoch: Int64? { topLevel?["epoch"]?.intValue }
    public var globalStep: Int64? { topLevel?["global_step"]?.intValue }
    public var hyperParameters: PickleValue? { topLevel?["hyper_parameters"] }

    /// One state-dict entry: the key as stored (with any `model.` prefix) and its tensor.
    public struct NamedTensor: Sendable {
        public let key: String
        public let tensor: TorchTensor
        /// Graph node of the tensor: equal refs mean one shared tensor object.
        public let ref: PickleRef
    }

    /// The value holding the state dict: `state_dict` of the top-level dict, or the top level
    /// itself when it is a bare state dict (`torch.save(model.state_dict())`).
    public func stateDictValue() throws(ImportError) -> PickleValue {
        if let sd = topLevel?["state_dict"] {
            guard graph.dict(sd) != nil else { throw .noStateDict(reason: "'state_dict' is \(graph.summary(sd)), not a dict") }
            return sd
        }
        if let d = topLevel, d.count > 0, d.items.allSatisfy({ graph.tensor($0.value) != nil }) { return root }
        throw .noStateDict(reason: "the checkpoint has no 'state_dict' (top level: \(graph.summary(root))"
            + (topLevelKeys.isEmpty ? "" : " with keys \(topLevelKeys.joined(separator: ", "))") + ")")
    }

    /// The state dict's tensors in order.
    public func stateDict() throws(ImportError) -> [NamedTensor] {
        guard let d = graph.dict(try stateDictValue()) else { throw .noStateDict(reason: "not a dict") }
        var out: [NamedTensor] = []
        out.reserveCapacity(d.count)
        for item in d.items {
            guard let key = item.key.stringValue else {
                throw .noStateDict(reason: "state-dict key \(graph.summary(item.key)) is not a string")
            }
            guard case let .ref(r) = item.value, let t = graph.tensor(item.value) else {
                throw .invalidTensor(reason: "state-dict entry '\(key)' is \(graph.summary(item.value)), not a tensor")
            }
            out.append(NamedTensor(key: key, tensor: t, ref: r))
        }
        return out
    }

    /// Distinct storages the unpickled objects refer to.
    public var storages: [TorchStorage] {
        graph.nodes.compactMap { if case let .storage(s) = $0 { return s } else { return nil } }
    }

    /// The bytes of a tensor's storage entry (validated large enough when unpickled).
    public func storageBytes(_ t: TorchTensor, verifyCRC: Bool = false) throws(ImportError) -> UnsafeRawBufferPointer {
        guard let s = graph.storage(t.storage) else { throw .invalidTensor(reason: "tensor without storage") }
        guard let e = archive.entry(named: s.entryName) else { throw .zipEntryNotFound(s.entryName) }
        return try archive.bytes(of: e, verifyCRC: verifyCRC)
    }

    /// The tensor's elements in C order as little-endian bytes of its own dtype.
    public func contiguousBytes(_ t: TorchTensor) throws(ImportError) -> [UInt8] {
        TensorGather.contiguousBytes(t, storageBytes: try storageBytes(t))
    }

    /// The tensor as Doubles (C order), for tests and small listings.
    public func doubleValues(_ t: TorchTensor) throws(ImportError) -> [Double] {
        let b = try contiguousBytes(t)
        let n = t.elementCount, w = t.dtype.itemSize
        return (0..<n).map { i in
            var raw: UInt64 = 0
            for k in 0..<w { raw |= UInt64(b[i * w + k]) << (8 * UInt64(k)) }
            switch t.dtype {
            case .float32: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
            case .float64: return Double(bitPattern: raw)
            case .float16: return Double(TensorGather.halfToFloat(UInt16(truncatingIfNeeded: raw)))
            case .bfloat16: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw) << 16))
            case .int64: return Double(Int64(bitPattern: raw))
            case .int32: return Double(Int32(truncatingIfNeeded: raw))
            case .int16: return Double(Int16(truncatingIfNeeded: raw))
            case .int8: return Double(Int8(truncatingIfNeeded: raw))
            case .uint8, .bool: return Double(raw)
            }
        }
    }

    /// One line of `spectralx import --dump`.
    public struct TensorListing: Sendable, Hashable {
        public let key: String
        public let dtype: TorchDType
        public let shape: [Int]
        /// SHA-256 of the C-order little-endian bytes (what `tensor.numpy().tobytes()` hashes to).
        public let sha256: String
        public let storageKey: String
        public let contiguous: Bool
    }

    /// Every state-dict tensor with its checksum (keys as stored, prefix kept).
    public func listTensors() throws(ImportError) -> [TensorListing] {
        try stateDict().map { (nt) throws(ImportError) -> TensorListing in
            let bytes = try contiguousBytes(nt.tensor)
            return TensorListing(key: nt.key, dtype: nt.tensor.dtype, shape: nt.tensor.shape,
                                 sha256: SHA256.hash(bytes).hex, storageKey: graph.storage(nt.tensor.storage)?.key ?? "?",
                                 contiguous: nt.tensor.isContiguous)
        }
    }
}
