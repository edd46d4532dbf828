import SpectralXTensor

/// What went wrong binding one parameter.
public struct WeightProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case missing(expected: [Int])
        case wrongShape(expected: [Int], found: [Int])
        case unexpected(found: [Int])
        case unsupportedType(String)
    }
    public var key: String
    public var kind: Kind

    public init(key: String, kind: Kind) {
        self.key = key
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .missing(let e): return "\(key): missing (expected shape \(e))"
        case .wrongShape(let e, let f): return "\(key): expected shape \(e), found \(f)"
        case .unexpected(let f): return "\(key): unexpected tensor of shape \(f)"
        case .unsupportedType(let t): return "\(key): unsupported dtype \(t)"
        }
    }
}

/// Every problem found while binding a model's weights, reported at once.
public struct WeightBindingError: Error, CustomStringConvertible, Sendable {
    public var problems: [WeightProblem]
    public init(problems: [WeightProblem]) { self.problems = problems }
    public var description: String {
        "weights do not fit the model (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n"
            + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// A named float32 tensor as a checkpoint provides it.
public struct NamedTensor: Sendable {
    public var shape: [Int]
    /// nil when the stored dtype is not float32.
    public var tensor: Tensor?
    public var dtype: String
    public init(shape: [Int], tensor: Tensor?, dtype: String) {
        self.shape = shape
        self.tensor = tensor
        self.dtype = dtype
    }
}

/// Binds layer parameters by their upstream state-dict names (MLX-style key paths).
///
/// Binding never stops at the first problem: a missing or mis-shaped key yields a zero placeholder
/// and is recorded, so that ``finish()`` can list every offending key with expected and found shapes.
public final class WeightBinder {
    private let lookup: (String) -> NamedTensor?
    private let allKeys: [String: [Int]]
    private var consumed = Set<String>()
    private var ignoredPrefixes: [String] = []
    private var ignoredKeys = Set<String>()
    public private(set) var problems: [WeightProblem] = []

    /// - Parameters:
    ///   - keys: every key the checkpoint files hold, with its shape (for the unexpected-key check).
    ///   - lookup: returns the tensor stored under a key.
    public init(keys: [String: [Int]], lookup: @escaping (String) -> NamedTensor?) {
        self.allKeys = keys
        self.lookup = lookup
    }

    public var root: WeightScope { WeightScope(binder: self, prefix: "") }

    func bind(_ key: String, _ shape: [Int]) -> Tensor {
        consumed.insert(key)
        guard let found = lookup(key) else {
            problems.append(WeightProblem(key: key, kind: .missing(expected: shape)))
            return Tensor(zeros: shape)
        }
        guard found.shape == shape else {
            problems.append(WeightProblem(key: key, kind: .wrongShape(expected: shape, found: found.shape)))
            return Tensor(zeros: shape)
        }
        guard let t = found.tensor else {
            problems.append(WeightProblem(key: key, kind: .unsupportedType(found.dtype)))
            return Tensor(zeros: shape)
        }
        return t.reshaped(shape)
    }

    /// Shape of a stored key, for parameters whose size is read from the weights (bands, classes).
    public func shape(of key: String) -> [Int]? { allKeys[key] }

    /// Marks keys that exist upstream but do not influence inference (spec Q15).
    public func ignore(prefix: String) { ignoredPrefixes.append(prefix) }
    public func ignore(key: String) { ignoredKeys.insert(key) }

    /// Throws if any key was missing, mis-shaped, or present but not used by the model.
    public func finish() throws {
        var all = problems
        for (key, shape) in allKeys.sorted(by: { $0.key < $1.key }) where !consumed.contains(key) {
            if ignoredKeys.contains(key) || ignoredPrefixes.contains(where: { key.hasPrefix($0) }) { continue }
            all.append(WeightProblem(key: key, kind: .unexpected(found: shape)))
        }
        if !all.isEmpty { throw WeightBindingError(problems: all) }
    }
}

/// A key prefix inside a ``WeightBinder``: `scope["blocks.3"]["attn"].tensor("qkv.weight", [3072, 1024])`.
public struct WeightScope {
    let binder: WeightBinder
    public let prefix: String

    public subscript(_ child: String) -> WeightScope {
        WeightScope(binder: binder, prefix: prefix.isEmpty ? child : prefix + "." + child)
    }
    public subscript(_ index: Int) -> WeightScope { self[String(index)] }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

    public func tensor(_ name: String, _ shape: [Int]) -> Tensor { binder.bind(key(name), shape) }

    public func shape(of name: String) -> [Int]? { binder.shape(of: key(name)) }

    public func ignore(_ name: String) { binder.ignore(prefix: key(name)) }
}
