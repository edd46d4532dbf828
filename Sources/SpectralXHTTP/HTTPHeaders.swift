/// An ordered list of header fields with case-insensitive lookup.
///
/// Order and duplicates are preserved because both carry meaning on the wire (smuggling checks
/// need to see every `Content-Length`, and responses should be serialized exactly as built).
public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Field = (name: String, value: String)

    private var storage: [(name: String, value: String)]

    public init() { storage = [] }

    public init(_ fields: [(String, String)]) {
        storage = fields.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// Number of fields (each duplicate counts).
    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        storage.makeIterator()
    }

    /// Appends a field, keeping any existing field of the same name.
    public mutating func add(name: String, value: String) {
        storage.append((name: name, value: value))
    }

    /// Replaces every field of that name by a single one (appended where the first one was, or at the end).
    public mutating func replaceOrAdd(name: String, value: String) {
        if let first = storage.firstIndex(where: { Self.equalNames($0.name, name) }) {
            storage[first].value = value
            var index = storage.count - 1
            while index > first {
                if Self.equalNames(storage[index].name, name) { storage.remove(at: index) }
                index -= 1
            }
        } else {
            storage.append((name: name, value: value))
        }
    }

    /// Removes every field of that name.
    public mutating func remove(name: String) {
        storage.removeAll { Self.equalNames($0.name, name) }
    }

    /// The first value of the field with that name, compared case-insensitively.
    public subscript(name: String) -> String? {
        storage.first { Self.equalNames($0.name, name) }?.value
    }

    /// Every value of that name in order of appearance.
    public func values(for name: String) -> [String] {
        storage.filter { Self.equalNames($0.name, name) }.map(\.value)
    }

    public func contains(name: String) -> Bool {
        storage.contains { Self.equalNames($0.name, name) }
    }

    /// Comma-separated list elements of every field of that name, trimmed and lower-cased
    /// (`Connection`, `Transfer-Encoding`, `Expect`…).
    public func tokens(for name: String) -> [String] {
        values(for: name).flatMap { value in
            value.split(separator: ",").map {
                $0.trimmingOWS().lowercased()
            }.filter { !$0.isEmpty }
        }
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.storage.count == rhs.storage.count
            && zip(lhs.storage, rhs.storage).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    static func equalNames(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) where p != q {
            let lp = (p >= 65 && p <= 90) ? p + 32 : p
            let lq = (q >= 65 && q <= 90) ? q + 32 : q
            if lp != lq { return false }
        }
        return true
    }
}

extension StringProtocol {
    /// The string without leading and trailing optional whitespace (SP / HTAB), as RFC 9110 §5.6.3 defines it.
    func trimmingOWS() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
