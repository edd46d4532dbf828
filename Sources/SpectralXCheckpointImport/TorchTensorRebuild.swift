import SpectralXCheckpoint

/// Element types a torch storage can have (named after the legacy `torch.XStorage` classes
/// that `torch.save` still writes into the persistent id).
public enum TorchDType: String, Sendable, CaseIterable {
    case float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool

    public init?(storageClass: String) {
        switch storageClass {
        case "FloatStorage": self = .float32
        case "DoubleStorage": self = .float64
        case "HalfStorage": self = .float16
        case "BFloat16Storage": self = .bfloat16
        case "LongStorage": self = .int64
        case "IntStorage": self = .int32
        case "ShortStorage": self = .int16
        case "CharStorage": self = .int8
        case "ByteStorage": self = .uint8
        case "BoolStorage": self = .bool
        default: return nil
        }
    }

    public var itemSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float64 || self == .float16 || self == .bfloat16 }
}

/// A storage named by a persistent id: its bytes are the archive entry `<prefix>data/<key>`.
public struct TorchStorage: Sendable, Hashable {
    public let key: String
    public let dtype: TorchDType
    public let location: String
    /// Element count declared in the persistent id.
    public let elementCount: Int
    public let entryName: String
}

/// A dense tensor view: storage + offset + shape + strides (all in elements), as
/// `_rebuild_tensor_v2` receives them.
public struct TorchTensor: Sendable, Hashable {
    public let storage: PickleRef
    public let dtype: TorchDType
    public let storageOffset: Int
    public let shape: [Int]
    public let stride: [Int]
    public let requiresGrad: Bool

    public var elementCount: Int { shape.reduce(1, *) }  // validated not to overflow at rebuild

    /// Row-major (C-order) strides for `shape`.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in shape.indices.reversed() {
            s[i] = acc
            acc = acc &* max(shape[i], 1)
        }
        return s
    }

    public var isContiguous: Bool {
        let c = Self.contiguousStrides(shape)
        return zip(zip(shape, stride), c).allSatisfy { pair, want in pair.0 <= 1 || pair.1 == want }
    }
}

/// Hooks that give torch's persistent ids and rebuild functions their meaning.
///
/// `prefix` is the archive's top folder (`tiny-upstream/`). Storage sizes are checked against
/// the archive entries here, so every tensor that exists after unpickling is readable.
public struct TorchPickleHooks: PickleHooks {
    public let archive: ZipArchive
    public let prefix: String

    public init(archive: ZipArchive, prefix: String) {
        self.archive = archive
        self.prefix = prefix
    }

    /// Callables that would run torch code we will not emulate: kept opaque, with a reason.
    static let refused: Set<String> = [
        "torch.storage._load_from_bytes", "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_wrapper_subclass",
    ]

    public func persistentLoad(_ pid: PickleValue, graph: inout PickleGraph) throws(ImportError) -> PickleValue {
        guard case let .tuple(t)? = graph.node(pid), t.count == 5, t[0].stringValue == "storage" else {
            throw .notATorchCheckpoint(reason: "persistent id \(graph.summary(pid)) is not ('storage', type, key, location, numel)")
        }
        guard case let .global(module, cls) = t[1], module == "torch" else {
            throw .unsupportedStorageType(graph.summary(t[1]))
        }
        guard let dtype = TorchDType(storageClass: cls) else { throw .unsupportedStorageType("torch.\(cls)") }
        guard let key = t[2].stringValue, !key.isEmpty, !key.contains("/") else {
            throw .notATorchCheckpoint(reason: "storage key \(graph.summary(t[2])) is not a plain name")
        }
        guard let numel = t[4].intValue, numel >= 0, numel <= Int64(Int.max / dtype.itemSize) else {
            throw .notATorchCheckpoint(reason: "storage '\(key)' has element count \(graph.summary(t[4]))")
        }
        if let existing = graph.storagesByKey[key] {
            guard let s = graph.storage(existing), s.dtype == dtype else {
                throw .notATorchCheckpoint(reason: "storage '\(key)' is named twice with different types")
            }
            return .ref(existing)
        }
        let entryName = prefix + "data/" + key
        guard let entry = archive.entry(named: entryName) else { throw .zipEntryNotFound(entryName) }
        let needed = Int(numel) * dtype.itemSize
        guard entry.uncompressedSize >= needed else {
            throw .storageTooSmall(key: key, needed: needed, available: entry.uncompressedSize)
        }
        let storage = TorchStorage(key: key, dtype: dtype, location: t[3].stringValue ?? "?", elementCount: Int(numel),
                                   entryName: entryName)
        let v = graph.add(.storage(storage))
        if case let .ref(r) = v { graph.storagesByKey[key] = r }
        return v
    }

    public func reduce(module: String, name: String, args: [PickleValue], graph: inout PickleGraph) throws(ImportError)
        -> PickleValue?
    {
        let qualified = module + "." + name
        switch qualified {
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
            guard args.count >= 4 else { throw .invalidTensor(reason: "\(name) with \(args.count) arguments") }
            return try rebuildTensor(args, requiresGrad: args.count > 4 && args[4] == .bool(true), graph: &graph)
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            // (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor.
            guard let data = args.first, graph.tensor(data) != nil else {
                throw .invalidTensor(reason: "\(name) of \(args.first.map(graph.summary) ?? "nothing")")
            }
            return data
        case "_codecs.encode":
            // How protocol 2 spells Python 3 `bytes`: encode(latin-1 text, 'latin1').
            guard let s = args.first?.stringValue else { return nil }
            return .bytes(s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
        default:
            if Self.refused.contains(qualified) {
                let o = PickleObject(callable: .global(module: module, name: name), args: graph.add(.tuple(args)),
                                     kind: .reduce, refusal: "\(qualified) is not evaluated by the safe unpickler")
                return graph.add(.object(o))
            }
            return nil
        }
    }

    func rebuildTensor(_ args: [PickleValue], requiresGrad: Bool, graph: inout PickleGraph) throws(ImportError)
        -> PickleValue
    {
        guard case let .ref(sref) = args[0], let storage = graph.storage(sref) else {
            if case let .object(o)? = graph.node(args[0]) {
                throw .invalidTensor(reason: "tensor storage comes from \(o.callableName)"
                    + (o.refusal.map { " (\($0))" } ?? ", which is not a checkpoint storage"))
            }
            throw .invalidTensor(reason: "tensor storage is \(graph.summary(args[0]))")
        }
        guard let offset64 = args[1].intValue, offset64 >= 0, offset64 <= Int64(storage.elementCount) else {
            throw .invalidTensor(reason: "storage offset \(graph.summary(args[1])) outside storage '\(storage.key)'")
        }
        func ints(_ v: PickleValue, _ what: String) throws(ImportError) -> [Int] {
            guard let items = graph.sequence(v), items.count <= 64 else {
                throw .invalidTensor(reason: "\(what) is \(graph.summary(v))")
            }
            var out: [Int] = []
            for x in items {
                guard let i = x.intValue, i >= 0, i <= Int64(Int32.max) * 64 else {
                    throw .invalidTensor(reason: "\(what) has entry \(graph.summary(x))")
                }
                out.append(Int(i))
            }
            return out
        }
        let shape = try ints(args[2], "size")
        let stride = try ints(args[3], "stride")
        guard shape.count == stride.count else {
            throw .invalidTensor(reason: "size \(shape) and stride \(stride) differ in rank")
        }
        let offset = Int(offset64)
        // Highest element touched: offset + Σ (size−1)·stride; an empty tensor touches nothing.
        var count = 1
        var last = offset
        for (n, s) in zip(shape, stride) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            guard !o1 else { throw .invalidTensor(reason: "element count of \(shape) overflows") }
            count = c
            if n > 0 {
                let (span, o2) = (n - 1).multipliedReportingOverflow(by: s)
                let (l, o3) = last.addingReportingOverflow(span)
                guard !o2, !o3 else { throw .invalidTensor(reason: "strides \(stride) overflow") }
                last = l
            }
        }
        guard !count.multipliedReportingOverflow(by: storage.dtype.itemSize).overflow else { throw .invalidTensor(reason: "byte count of \(shape) overflows") }
        if count > 0 {
            guard last < storage.elementCount else {
                let need = (last + 1).multipliedReportingOverflow(by: storage.dtype.itemSize)
                throw .storageTooSmall(key: storage.key, needed: need.overflow ? Int.max : need.partialValue,
                                       available: storage.elementCount * storage.dtype.itemSize)
            }
        }
        let t = TorchTensor(storage: sref, dtype: storage.dtype, storageOffset: offset, shape: shape, stride: stride,
                            requiresGrad: requiresGrad)
        return graph.add(.tensor(t))
    }
}

/// Turns tensor views into C-order little-endian bytes, either in their own dtype (for listings
/// and checksums) or converted to the dtype the model store wants.
public enum TensorGather {
    /// The tensor's elements in C order, `dtype` bytes each, exactly as they would sit in a
    /// contiguous little-endian buffer. `storageBytes` is the storage entry's data.
    public static func contiguousBytes(_ t: TorchTensor, storageBytes: UnsafeRawBufferPointer) -> [UInt8] {
        let item = t.dtype.itemSize
        let n = t.elementCount
        if t.isContiguous {
            let start = t.storageOffset * item
            return Array(storageBytes[start..<(start + n * item)])
        }
        var out = [UInt8](repeating: 0, count: n * item)
        out.withUnsafeMutableBytes { dst in
            forEachSourceElement(t) { i, src in
                (dst.baseAddress! + i * item).copyMemory(from: storageBytes.baseAddress! + src * item, byteCount: item)
            }
        }
        return out
    }

    /// Calls `body(destinationIndex, sourceElementIndex)` for every element in C order.
    static func forEachSourceElement(_ t: TorchTensor, _ body: (Int, Int) -> Void) {
        let n = t.elementCount
        guard n > 0 else { return }
        let rank = t.shape.count
        var idx = [Int](repeating: 0, count: rank)
        var src = t.storageOffset
        for i in 0..<n {
            body(i, src)
            var d = rank - 1
            while d >= 0 {
                idx[d] += 1
                src += t.stride[d]
                if idx[d] < t.shape[d] { break }
                src -= t.stride[d] * t.shape[d]
                idx[d] = 0
                d -= 1
            }
        }
    }

    /// Converts C-order bytes of `from` into `to` (floats → F32 with round-to-nearest, integers →
    /// I64 sign- or zero-extended). Returns nil for conversions that would change meaning.
    public static func convert(_ bytes: [UInt8], from: TorchDType, to: SafeTensorsDType) -> [UInt8]? {
        switch (from, to) {
        case (.float32, .f32), (.int64, .i64), (.float64, .f64), (.float16, .f16), (.bfloat16, .bf16),
             (.int32, .i32), (.int16, .i16), (.int8, .i8), (.uint8, .u8), (.bool, .bool):
            return bytes
        case (.float64, .f32), (.float16, .f32), (.bfloat16, .f32):
            return mapElements(bytes, from: from, outSize: 4) { raw -> UInt64 in
                let f: Float
                switch from {
                case .float64: f = Float(Double(bitPattern: raw))
                case .float16: f = halfToFloat(UInt16(truncatingIfNeeded: raw))
                default: f = Float(bitPattern: UInt32(truncatingIfNeeded: raw) << 16)
                }
                return UInt64(f.bitPattern)
            }
        case (.int32, .i64), (.int16, .i64), (.int8, .i64), (.uint8, .i64), (.bool, .i64):
            return mapElements(bytes, from: from, outSize: 8) { raw -> UInt64 in
                switch from {
                case .int32: return UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: raw)))
                case .int16: return UInt64(bitPattern: Int64(Int16(truncatingIfNeeded: raw)))
                case .int8: return UInt64(bitPattern: Int64(Int8(truncatingIfNeeded: raw)))
                default: return raw
                }
            }
        default:
            return nil
        }
    }

    static func mapElements(_ bytes: [UInt8], from: TorchDType, outSize: Int, _ f: (UInt64) -> UInt64) -> [UInt8] {
        let inSize = from.itemSize
        let n = bytes.count / inSize
        var out = [UInt8](repeating: 0, count: n * outSize)
        for i in 0..<n {
            var raw: UInt64 = 0
            for b in 0..<inSize { raw |= UInt64(bytes[i * inSize + b]) << (8 * UInt64(b)) }
            let v = f(raw)
            for b in 0..<outSize { out[i * outSize + b] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(b))) }
        }
        return out
    }

    /// IEEE binary16 → binary32 (exact; subnormals, infinities and NaN preserved).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        var mant = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mant << 13) }
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            var e = -1
            repeat { mant <<= 1; e += 1 } while mant & 0x400 == 0
            mant &= 0x3FF
            return Float(bitPattern: sign | UInt32(127 - 15 - e) << 23 | mant << 13)
        }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | mant << 13)
    }
}
