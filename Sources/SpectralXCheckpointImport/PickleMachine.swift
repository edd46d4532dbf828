/// What the unpickler asks its embedder for: the meaning of persistent ids and of calls to
/// known globals. Everything else stays symbolic.
public protocol PickleHooks {
    /// BINPERSID: turns a persistent id (e.g. torch's `('storage', …)` tuple) into a value.
    func persistentLoad(_ pid: PickleValue, graph: inout PickleGraph) throws(ImportError) -> PickleValue
    /// REDUCE of `module.name` with `args`; nil means "unknown", which yields an opaque object.
    func reduce(module: String, name: String, args: [PickleValue], graph: inout PickleGraph) throws(ImportError)
        -> PickleValue?
}

/// Hooks that know nothing: persistent ids are refused, every call becomes an opaque object
/// (OrderedDict still becomes a dict, which the machine handles itself).
public struct NoPickleHooks: PickleHooks {
    public init() {}
    public func persistentLoad(_ pid: PickleValue, graph: inout PickleGraph) throws(ImportError) -> PickleValue {
        throw .invalidPickle(reason: "persistent id without a loader", offset: 0)
    }
    public func reduce(module: String, name: String, args: [PickleValue], graph: inout PickleGraph) throws(ImportError)
        -> PickleValue? { nil }
}

/// A safe, non-executing unpickler for protocols 2–5.
///
/// Why not "real" unpickling: a pickle is a program that may call any importable function;
/// checkpoints from the internet must not run code. GLOBAL only names a class; REDUCE asks the
/// hooks, which build values for the few callables torch uses and leave everything else opaque.
/// Stack depth, MARK nesting and memo size are bounded, every length is checked against the
/// remaining input, values never nest (see `PickleRef`), and what the machine builds is bounded in
/// proportion to the input with a hard cap (`Limits.builtBytes(forInput:)`), so hostile input —
/// e.g. megabytes of nested TUPLE1 opcodes, each one byte that makes a graph node — ends in an
/// `ImportError` with small memory instead of gigabytes.
public struct PickleMachine {
    public struct Limits: Sendable {
        public var maxStack = 1 << 22
        public var maxMarkDepth = 10_000
        public var maxMemo = 1 << 22
        public var maxGlobalLength = 1024
        /// Hard cap on the estimated bytes the graph holds (nodes, container elements, string and
        /// byte payloads), whatever the input size.
        public var maxBuiltBytes = 1 << 30
        /// Estimated built bytes allowed per input byte, plus `builtBytesSlack`. Torch checkpoint
        /// pickles build about 3–6 bytes per input byte (≈100 input bytes and ≈8 nodes per tensor).
        public var builtBytesPerInputByte = 24
        public var builtBytesSlack = 16 << 20
        public init() {}

        /// The budget for an input of `count` bytes.
        public func builtBytes(forInput count: Int) -> Int {
            let (scaled, o) = count.multipliedReportingOverflow(by: max(0, builtBytesPerInputByte))
            return min(maxBuiltBytes, o ? Int.max : scaled &+ max(0, builtBytesSlack))
        }
    }

    /// Estimated bytes one graph node costs (arena slot plus the container's heap header).
    static let nodeCost = MemoryLayout<PickleNode>.stride + 48
    /// Estimated bytes one element of a container costs.
    static let elementCost = MemoryLayout<PickleValue>.stride

    public var limits: Limits

    public init(limits: Limits = Limits()) { self.limits = limits }

    public func load(_ data: UnsafeRawBufferPointer, hooks: some PickleHooks = NoPickleHooks())
        throws(ImportError) -> PickleGraph
    {
        var run = Run(data: data, limits: limits)
        return try run.execute(hooks: hooks)
    }

    public func load(_ data: [UInt8], hooks: some PickleHooks = NoPickleHooks()) throws(ImportError) -> PickleGraph {
        let result: Result<PickleGraph, ImportError> = data.withUnsafeBytes { b in
            Result { () throws(ImportError) -> PickleGraph in try load(b, hooks: hooks) }
        }
        return try result.get()
    }

    /// One execution: input cursor, stack, mark stack, memo, graph.
    private struct Run {
        let data: UnsafeRawBufferPointer
        let limits: Limits
        var pos = 0
        var opStart = 0
        var stack: [PickleValue] = []
        var marks: [[PickleValue]] = []
        var memo: [UInt64: PickleValue] = [:]
        var graph = PickleGraph()
        var stackTotal = 0  // items on the stack plus those parked under marks
        /// Estimated bytes held by container elements and string/byte payloads (nodes are counted
        /// from the arena), checked against `budget` after every opcode.
        var builtBytes = 0
        let budget: Int

        init(data: UnsafeRawBufferPointer, limits: Limits) {
            self.data = data
            self.limits = limits
            self.budget = limits.builtBytes(forInput: data.count)
        }

        /// Throws when what has been built exceeds the budget.
        func checkBudget() throws(ImportError) {
            let total = graph.nodes.count * PickleMachine.nodeCost + builtBytes
            if total > budget {
                throw .pickleLimitExceeded(what: "built size (estimated \(total) bytes for a \(data.count)-byte pickle)",
                                           limit: budget, offset: opStart)
            }
        }

        mutating func charge(elements n: Int) { builtBytes += n * PickleMachine.elementCost }
        mutating func charge(bytes n: Int) { builtBytes += n }

        // MARK: input

        mutating func take(_ n: Int, _ what: String) throws(ImportError) -> UnsafeRawBufferPointer {
            guard n >= 0, n <= data.count - pos else { throw .pickleTruncated(offset: data.count, needed: what) }
            defer { pos += n }
            return UnsafeRawBufferPointer(rebasing: data[pos..<(pos + n)])
        }

        mutating func uint(_ n: Int, _ what: String) throws(ImportError) -> UInt64 {
            let b = try take(n, what)
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(b[i]) << (8 * UInt64(i)) }
            return v
        }

        /// A length prefix, refused when it exceeds what is left of the input.
        mutating func length(_ n: Int, signed: Bool = false, _ what: String) throws(ImportError) -> Int {
            let raw = try uint(n, what + " length")
            if signed, n == 4, raw & 0x8000_0000 != 0 { throw .invalidPickle(reason: "negative \(what) length", offset: opStart) }
            guard raw <= UInt64(data.count - pos) else { throw .pickleTruncated(offset: data.count, needed: what) }
            return Int(raw)
        }

        mutating func line(_ what: String) throws(ImportError) -> String {
            let start = pos
            while pos < data.count, data[pos] != 0x0A {
                pos += 1
                if pos - start > limits.maxGlobalLength {
                    throw .pickleLimitExceeded(what: "\(what) length", limit: limits.maxGlobalLength, offset: opStart)
                }
            }
            guard pos < data.count else { throw .pickleTruncated(offset: data.count, needed: what) }
            defer { pos += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: data[start..<pos]), as: UTF8.self)
        }

        // MARK: stack

        mutating func push(_ v: PickleValue) throws(ImportError) {
            guard stackTotal < limits.maxStack else {
                throw .pickleLimitExceeded(what: "stack size", limit: limits.maxStack, offset: opStart)
            }
            stack.append(v)
            stackTotal += 1
        }

        mutating func pop(_ op: PickleOpcode) throws(ImportError) -> PickleValue {
            guard let v = stack.popLast() else { throw .stackUnderflow(opcode: op.name, offset: opStart) }
            stackTotal -= 1
            return v
        }

        func top(_ op: PickleOpcode) throws(ImportError) -> PickleValue {
            guard let v = stack.last else { throw .stackUnderflow(opcode: op.name, offset: opStart) }
            return v
        }

        /// Items pushed since the last MARK; restores the stack below it.
        mutating func popMark(_ op: PickleOpcode) throws(ImportError) -> [PickleValue] {
            guard let below = marks.popLast() else { throw .stackUnderflow(opcode: op.name + " (no MARK)", offset: opStart) }
            let items = stack
            stack = below
            stackTotal -= items.count
            charge(elements: items.count)  // popped items end up in a container (or are dropped)
            return items
        }

        mutating func memoPut(_ key: UInt64, _ op: PickleOpcode) throws(ImportError) {
            let v = try top(op)
            if memo.updateValue(v, forKey: key) == nil {
                charge(elements: 2)  // key and value in the memo's hash table
                if memo.count > limits.maxMemo {
                    throw .pickleLimitExceeded(what: "memo size", limit: limits.maxMemo, offset: opStart)
                }
            }
        }

        mutating func memoGet(_ key: UInt64) throws(ImportError) -> PickleValue {
            guard let v = memo[key] else { throw .memoNotFound(index: key, offset: opStart) }
            return v
        }

        // MARK: containers

        mutating func setItems(_ pairs: [PickleValue], op: PickleOpcode) throws(ImportError) {
            guard pairs.count % 2 == 0 else { throw .invalidPickle(reason: "\(op.name) with an odd item count", offset: opStart) }
            let target = try top(op)
            guard case let .ref(r) = target, graph.nodes[r.index].setItems(pairs) else {
                throw .invalidPickle(reason: "\(op.name) on \(graph.summary(target))", offset: opStart)
            }
        }

        mutating func appendItems(_ items: [PickleValue], op: PickleOpcode) throws(ImportError) {
            let target = try top(op)
            guard case let .ref(r) = target, graph.nodes[r.index].append(items, toSet: op == .addItems) else {
                throw .invalidPickle(reason: "\(op.name) on \(graph.summary(target))", offset: opStart)
            }
        }

        mutating func tupleItems(_ v: PickleValue, op: PickleOpcode) throws(ImportError) -> [PickleValue] {
            if case let .tuple(a)? = graph.node(v) { return a }
            throw .invalidPickle(reason: "\(op.name) arguments are \(graph.summary(v)), not a tuple", offset: opStart)
        }

        /// REDUCE / NEWOBJ: OrderedDict becomes a dict, known torch callables go to the hooks,
        /// everything else is an opaque object.
        mutating func call(_ callable: PickleValue, _ args: PickleValue, kind: PickleObject.Kind, op: PickleOpcode,
                           hooks: some PickleHooks) throws(ImportError) -> PickleValue
        {
            let argv = try tupleItems(args, op: op)
            if case let .global(m, n) = callable {
                if m == "collections", n == "OrderedDict", kind != .newobjEx {
                    var d = PickleDict(ordered: true)
                    // OrderedDict(iterable_of_pairs) is the other spelling protocol 2 may use.
                    if kind == .reduce, let first = argv.first, let pairs = graph.sequence(first) {
                        for p in pairs {
                            guard let kv = graph.sequence(p), kv.count == 2 else {
                                throw .invalidPickle(reason: "OrderedDict item is not a pair", offset: opStart)
                            }
                            d.set(kv[0], kv[1])
                        }
                    }
                    return graph.add(.dict(d))
                }
                if kind == .reduce, let v = try hooks.reduce(module: m, name: n, args: argv, graph: &graph) { return v }
            }
            return graph.add(.object(PickleObject(callable: callable, args: args, kind: kind, refusal: nil)))
        }

        // MARK: loop

        mutating func execute(hooks: some PickleHooks) throws(ImportError) -> PickleGraph {
            while pos < data.count {
                try checkBudget()
                opStart = pos
                let byte = data[pos]
                pos += 1
                guard let op = PickleOpcode(rawValue: byte) else { throw .unknownOpcode(opcode: byte, offset: opStart) }
                switch op {
                case .proto:
                    let v = Int(try uint(1, "protocol"))
                    guard v <= 5 else { throw .unsupportedPickleProtocol(v) }
                case .frame:
                    _ = try length(8, "frame")
                case .stop:
                    graph.root = try pop(op)
                    return graph
                case .mark:
                    guard marks.count < limits.maxMarkDepth else {
                        throw .pickleLimitExceeded(what: "MARK nesting", limit: limits.maxMarkDepth, offset: opStart)
                    }
                    marks.append(stack)
                    stack = []
                case .pop:
                    if stack.isEmpty, !marks.isEmpty { _ = try popMark(op) } else { _ = try pop(op) }
                case .popMark:
                    _ = try popMark(op)
                case .dup:
                    try push(try top(op))

                case .emptyDict: try push(graph.add(.dict(PickleDict())))
                case .emptyList: try push(graph.add(.list([])))
                case .emptyTuple: try push(graph.add(.tuple([])))
                case .emptySet: try push(graph.add(.set([])))
                case .addItems: try appendItems(try popMark(op), op: op)
                case .frozenSet: try push(graph.add(.set(try popMark(op))))
                case .dict:
                    let items = try popMark(op)
                    charge(elements: items.count * 2)  // items plus the key index
                    guard items.count % 2 == 0 else { throw .invalidPickle(reason: "DICT with an odd item count", offset: opStart) }
                    var d = PickleDict()
                    for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
                    try push(graph.add(.dict(d)))
                case .list: try push(graph.add(.list(try popMark(op))))
                case .tuple: try push(graph.add(.tuple(try popMark(op))))
                case .tuple1, .tuple2, .tuple3:
                    let n = Int(op.rawValue - PickleOpcode.tuple1.rawValue) + 1
                    var items = [PickleValue](repeating: .none, count: n)
                    for i in (0..<n).reversed() { items[i] = try pop(op) }
                    charge(elements: n)
                    try push(graph.add(.tuple(items)))
                case .setItem:
                    charge(elements: 2)
                    let v = try pop(op), k = try pop(op)
                    try setItems([k, v], op: op)
                case .setItems: try setItems(try popMark(op), op: op)
                case .append:
                    charge(elements: 1)
                    try appendItems([try pop(op)], op: op)
                case .appends: try appendItems(try popMark(op), op: op)

                case .binput: try memoPut(try uint(1, "memo index"), op)
                case .longBinput: try memoPut(try uint(4, "memo index"), op)
                case .memoize: try memoPut(UInt64(memo.count), op)
                case .binget: try push(try memoGet(try uint(1, "memo index")))
                case .longBinget: try push(try memoGet(try uint(4, "memo index")))

                case .binunicode, .shortBinunicode, .binunicode8:
                    let n = try length(op == .shortBinunicode ? 1 : op == .binunicode ? 4 : 8, "string")
                    charge(bytes: n)
                    try push(.string(String(decoding: try take(n, "string"), as: UTF8.self)))
                case .binstring, .shortBinstring:
                    // Python 2 str: decoded byte for byte (latin-1), so no input is rejected.
                    let n = try length(op == .shortBinstring ? 1 : 4, signed: true, "string")
                    charge(bytes: 2 * n)  // latin-1 → UTF-8 may double
                    let b = try take(n, "string")
                    try push(.string(String(String.UnicodeScalarView(b.map { Unicode.Scalar($0) }))))
                case .binbytes, .shortBinbytes, .binbytes8, .bytearray8:
                    let n = try length(op == .shortBinbytes ? 1 : op == .binbytes ? 4 : 8, "bytes")
                    charge(bytes: n)
                    try push(.bytes(Array(try take(n, "bytes"))))
                case .binint:
                    try push(.int(Int64(Int32(truncatingIfNeeded: try uint(4, "BININT")))))
                case .binint1: try push(.int(Int64(try uint(1, "BININT1"))))
                case .binint2: try push(.int(Int64(try uint(2, "BININT2"))))
                case .long1, .long4:
                    let n = try length(op == .long1 ? 1 : 4, signed: true, "long")
                    charge(bytes: n)
                    try push(Self.long(Array(try take(n, "long"))))
                case .binfloat:
                    let b = try take(8, "BINFLOAT")
                    var bits: UInt64 = 0
                    for i in 0..<8 { bits = bits << 8 | UInt64(b[i]) }  // big-endian
                    try push(.float(Double(bitPattern: bits)))
                case .newTrue: try push(.bool(true))
                case .newFalse: try push(.bool(false))
                case .none: try push(.none)

                case .global:
                    let module = try line("GLOBAL module")
                    let name = try line("GLOBAL name")
                    try push(.global(module: module, name: name))
                case .stackGlobal:
                    let name = try pop(op), module = try pop(op)
                    guard let m = module.stringValue, let n = name.stringValue else {
                        throw .invalidPickle(reason: "STACK_GLOBAL operands are not strings", offset: opStart)
                    }
                    try push(.global(module: m, name: n))
                case .reduce:
                    let args = try pop(op), callable = try pop(op)
                    try push(try call(callable, args, kind: .reduce, op: op, hooks: hooks))
                case .newobj:
                    let args = try pop(op), cls = try pop(op)
                    try push(try call(cls, args, kind: .newobj, op: op, hooks: hooks))
                case .newobjEx:
                    _ = try pop(op)  // kwargs
                    let args = try pop(op), cls = try pop(op)
                    try push(try call(cls, args, kind: .newobjEx, op: op, hooks: hooks))
                case .build:
                    let state = try pop(op)
                    if case let .ref(r) = try top(op) {
                        switch graph.nodes[r.index] {
                        case var .object(o):
                            o.state = state
                            graph.nodes[r.index] = .object(o)
                        case var .dict(d):
                            d.attributes = state
                            graph.nodes[r.index] = .dict(d)
                        default: break  // e.g. a Parameter's extra state: irrelevant to the values
                        }
                    }
                case .binpersid:
                    let pid = try pop(op)
                    try push(try hooks.persistentLoad(pid, graph: &graph))

                case .int, .long, .float, .string, .unicode, .put, .get, .persid, .inst, .obj, .ext1, .ext2, .ext4,
                     .nextBuffer, .readonlyBuffer:
                    throw .unsupportedOpcode(name: op.name, offset: opStart)
                }
            }
            throw .noStopOpcode
        }

        /// LONG1/LONG4 payload: little-endian two's complement of any length.
        static func long(_ b: [UInt8]) -> PickleValue {
            if b.isEmpty { return .int(0) }
            if b.count <= 8 {
                var v: UInt64 = b.last! & 0x80 != 0 ? ~0 : 0
                for (i, x) in b.enumerated() {
                    v &= ~(0xFF << (8 * UInt64(i)))
                    v |= UInt64(x) << (8 * UInt64(i))
                }
                return .int(Int64(bitPattern: v))
            }
            return .bigInt(b)
        }
    }
}

/// In-place container updates. The node is swapped out of the arena first, so its payload is
/// uniquely referenced and grows without a copy (APPEND into a large list must stay O(1), or a
/// pickle could make loading quadratic).
extension PickleNode {
    mutating func setItems(_ pairs: [PickleValue]) -> Bool {
        var node = PickleNode.tuple([])
        swap(&self, &node)
        switch consume node {
        case var .dict(d):
            for i in stride(from: 0, to: pairs.count, by: 2) { d.set(pairs[i], pairs[i + 1]) }
            self = .dict(d)
        case var .object(o):
            for i in stride(from: 0, to: pairs.count, by: 2) { o.dictItems.set(pairs[i], pairs[i + 1]) }
            self = .object(o)
        case let other:
            self = other
            return false
        }
        return true
    }

    mutating func append(_ items: [PickleValue], toSet: Bool) -> Bool {
        var node = PickleNode.tuple([])
        swap(&self, &node)
        switch consume node {
        case var .list(a):
            a += items
            self = .list(a)
            return !toSet
        case var .set(a):
            a += items
            self = .set(a)
            return toSet
        case var .object(o):
            o.listItems += items
            self = .object(o)
        case let other:
            self = other
            return false
        }
        return true
    }
}
