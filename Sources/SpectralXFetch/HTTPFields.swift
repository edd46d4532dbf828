/// Ordered header fields of an outgoing request or a received response. Order and spelling are
/// kept as given (what goes on the wire is what was signed); lookups ignore case.
public struct HTTPFields: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}
    public init(_ pairs: [(String, String)]) { for (n, v) in pairs { append(n, v) } }
    public init(dictionaryLiteral elements: (String, String)...) { self.init(elements) }

    /// The first value of `name` (case-insensitive), or nil.
    public subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    public mutating func append(_ name: String, _ value: String) { fields.append((name, value)) }

    /// Replaces every field called `name` with one field (or removes them when `value` is nil).
    public mutating func set(_ name: String, _ value: String?) {
        remove(name)
        if let value { fields.append((name, value)) }
    }

    public mutating func remove(_ name: String) { fields.removeAll { $0.name.caseInsensitiveEquals(name) } }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count && lowercased() == other.lowercased()
    }
}
