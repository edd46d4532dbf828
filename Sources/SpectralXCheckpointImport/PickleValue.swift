/// Index of a node in a `PickleGraph`: every container, object and tensor lives in the graph's
/// arena and is referred to by index.
///
/// Why an arena instead of nested values: pickle containers are mutable and shared through the
/// memo (a dict is memoised *before* SETITEMS fill it; `trainer_state` is the same OrderedDict as
/// `state_dict`), and a hostile pickle can nest a million tuples. With flat values and indices,
/// sharing is exact (same index = same object, which is how twice-referenced tensors are
/// deduplicated), cycles are harmless, and nothing — building, hashing or freeing — recurses.
public struct PickleRef: Sendable, Hashable, CustomStringConvertible {
    public let index: Int
    public var description: String { "#\(index)" }
}

/// A scalar pickle value or a reference to a graph node. Never nested.
public enum PickleValue: Sendable, Hashable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer beyond 64 bits: little-endian two's complement bytes, as LONG1/LONG4 store it.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// A symbolic `module.name` from GLOBAL/STACK_GLOBAL. Nothing is ever imported or called.
    case global(module: String, name: String)
    case ref(PickleRef)

    public var stringValue: String? { if case let .string(s) = self { return s } else { return nil } }

    public var intValue: Int64? {
        switch self {
        case let .int(v): return v
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Numbers as Double (ints too, since configs write `1` for `1.0`).
    public var doubleValue: Double? {
        switch self {
        case let .float(v): return v
        case let .int(v): return Double(v)
        default: return nil
        }
    }
}

/// An insertion-ordered dict with Python's "last assignment wins" semantics.
public struct PickleDict: Sendable {
    public struct Item: Sendable { public let key: PickleValue; public var value: PickleValue }
    public private(set) var items: [Item] = []
    private var index: [PickleValue: Int] = [:]
    /// `collections.OrderedDict` rather than a plain dict (informational; both keep order).
    public var ordered = false
    /// State applied by BUILD (an OrderedDict's `__dict__`, e.g. a state dict's `_metadata`).
    public var attributes: PickleValue?

    public init(ordered: Bool = false) { self.ordered = ordered }

    public mutating func set(_ key: PickleValue, _ value: PickleValue) {
        if let i = index[key] { items[i].value = value; return }
        index[key] = items.count
        items.append(Item(key: key, value: value))
    }

    public subscript(key: PickleValue) -> PickleValue? { index[key].map { items[$0].value } }
    public subscript(key: String) -> PickleValue? { self[.string(key)] }
    public var count: Int { items.count }
}

/// Something the unpickler did not build for real: the result of calling (or instantiating) a
/// class it does not know. Kept as data so unknown callback objects in `hyper_parameters` are
/// harmless; only code that needs a *value* from it fails.
public struct PickleObject: Sendable {
    public enum Kind: String, Sendable { case reduce = "REDUCE", newobj = "NEWOBJ", newobjEx = "NEWOBJ_EX" }
    public let callable: PickleValue
    public let args: PickleValue
    public let kind: Kind
    /// Why a known callable was deliberately not evaluated (e.g. `torch.storage._load_from_bytes`).
    public let refusal: String?
    public var state: PickleValue?
    /// Items added by APPEND(S) / SETITEM(S) (list or dict subclasses).
    public var listItems: [PickleValue] = []
    public var dictItems = PickleDict()

    public var callableName: String {
        if case let .global(m, n) = callable { return "\(m).\(n)" }
        return "<non-global callable>"
    }
}

/// A node of the graph.
public enum PickleNode: Sendable {
    case list([PickleValue])
    case tuple([PickleValue])
    case dict(PickleDict)
    case set([PickleValue])
    case object(PickleObject)
    case storage(TorchStorage)
    case tensor(TorchTensor)
}

/// The result of unpickling: an arena of nodes and the root value.
public struct PickleGraph: Sendable {
    public internal(set) var nodes: [PickleNode] = []
    public internal(set) var root: PickleValue = .none
    /// Storage nodes by their archive key, so a storage named twice is one node.
    public internal(set) var storagesByKey: [String: PickleRef] = [:]

    public init() {}

    mutating func add(_ node: PickleNode) -> PickleValue {
        nodes.append(node)
        return .ref(PickleRef(index: nodes.count - 1))
    }

    public subscript(ref: PickleRef) -> PickleNode { nodes[ref.index] }

    public func node(_ v: PickleValue) -> PickleNode? {
        if case let .ref(r) = v { return nodes[r.index] }
        return nil
    }

    /// A dict, an OrderedDict, or an unknown dict subclass's SETITEMS items.
    public func dict(_ v: PickleValue) -> PickleDict? {
        switch node(v) {
        case let .dict(d)?: return d
        case let .object(o)? where o.dictItems.count > 0: return o.dictItems
        case let .object(o)?:
            // e.g. an AttributeDict-like object whose contents arrived through BUILD.
            if let s = o.state, case let .dict(d)? = node(s) { return d }
            return nil
        default: return nil
        }
    }

    /// Elements of a list, tuple or set (or an unknown list subclass's APPENDS items).
    public func sequence(_ v: PickleValue) -> [PickleValue]? {
        switch node(v) {
        case let .list(a)?, let .tuple(a)?, let .set(a)?: return a
        case let .object(o)? where !o.listItems.isEmpty: return o.listItems
        default: return nil
        }
    }

    public func tensor(_ v: PickleValue) -> TorchTensor? {
        if case let .tensor(t)? = node(v) { return t }
        return nil
    }

    public func storage(_ ref: PickleRef) -> TorchStorage? {
        if case let .storage(s) = nodes[ref.index] { return s }
        return nil
    }

    /// Looks `key` up in dicts reachable from `v` breadth-first, at most `depth` dict levels deep
    /// (visited nodes are skipped, so cycles terminate). Used for config values such as the
    /// wavelength list that trainers nest differently.
    public func find(key: String, in v: PickleValue, depth: Int = 3) -> PickleValue? {
        var frontier = [v]
        var seen = Set<Int>()
        for _ in 0..<max(1, depth) {
            var next: [PickleValue] = []
            for x in frontier {
                if case let .ref(r) = x, !seen.insert(r.index).inserted { continue }
                guard let d = dict(x) else { continue }
                if let hit = d[key] { return hit }
                next += d.items.map(\.value).filter { if case .ref = $0 { return true } else { return false } }
            }
            frontier = next
            if frontier.isEmpty { break }
        }
        return nil
    }

    /// A short, non-recursive rendering for listings (`dict(3)`, `tensor float32 [23]`, …).
    public func summary(_ v: PickleValue) -> String {
        switch v {
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .bigInt(b): return "int(\(b.count) bytes)"
        case let .float(d): return String(d)
        case let .string(s): return s.count > 60 ? "'\(s.prefix(57))…'" : "'\(s)'"
        case let .bytes(b): return "bytes(\(b.count))"
        case let .global(m, n): return "\(m).\(n)"
        case let .ref(r):
            switch nodes[r.index] {
            case let .list(a): return "list(\(a.count))"
            case let .tuple(a): return "tuple(\(a.count))"
            case let .dict(d): return (d.ordered ? "OrderedDict(" : "dict(") + "\(d.count))"
            case let .set(a): return "set(\(a.count))"
            case let .object(o): return "<\(o.callableName) object>"
            case let .storage(s): return "storage '\(s.key)' \(s.dtype.rawValue)"
            case let .tensor(t): return "tensor \(t.dtype.rawValue) \(t.shape)"
            }
        }
    }
}
