import Foundation
import SpectralXCheckpoint
import SpectralXCheckpointImport
import Testing

/// A class suite so the scratch directory of the storage tests is removed in `deinit`.
@Suite final class PickleMachineTests: Sendable {
    let dir: URL

    init() throws { dir = try Fixtures.temporaryDirectory("pickle") }
    deinit { try? FileManager.default.removeItem(at: dir) }

    func scratchPath() -> String { dir.appendingPathComponent("\(UInt32.random(in: 0...UInt32.max)).ckpt").path }

    func load(_ bytes: [UInt8], limits: PickleMachine.Limits = .init()) throws(ImportError) -> PickleGraph {
        try PickleMachine(limits: limits).load(bytes)
    }

    @Test func scalarsContainersAndMemo() throws {
        var p = PickleBuilder()
        p.op(0x7D); p.put()                          // {}  memo 0
        p.op(0x28)
        p.string("i"); p.int(-5)
        p.string("big"); p.ops([0x8A, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1])  // LONG1 2^64
        p.string("neg"); p.ops([0x8A, 2, 0xFF, 0x7F])                 // 32767
        p.string("m1"); p.ops([0x8A, 1, 0xFF])                        // -1
        p.string("f"); p.float(2.5)
        p.string("t"); p.op(0x88); p.op(0x89); p.op(0x4E); p.op(0x87) // (True, False, None)
        p.string("l"); p.op(0x5D); p.put(); p.op(0x28); p.int(1); p.int(2); p.op(0x65)
        p.string("self"); p.get(0)                   // the dict itself: a cycle
        p.string("b"); p.ops([0x43, 2, 0xAB, 0xCD])  // SHORT_BINBYTES
        p.string("s"); p.ops([0x55, 2, 0xE9, 0x41])  // SHORT_BINSTRING latin-1 "éA"
        p.op(0x75)
        p.stop()
        let g = try load(p.bytes)
        let d = try #require(g.dict(g.root))
        #expect(d["i"] == .int(-5))
        #expect(d["big"] == .bigInt([0, 0, 0, 0, 0, 0, 0, 0, 1]))
        #expect(d["neg"] == .int(32767))
        #expect(d["m1"] == .int(-1))
        #expect(d["f"] == .float(2.5))
        #expect(g.sequence(d["t"]!) == [.bool(true), .bool(false), .none])
        #expect(g.sequence(d["l"]!) == [.int(1), .int(2)])
        #expect(d["self"] == g.root)
        #expect(d["b"] == .bytes([0xAB, 0xCD]))
        #expect(d["s"] == .string("éA"))
        #expect(g.find(key: "nothing", in: g.root, depth: 10) == nil)  // the cycle terminates
    }

    @Test func protocolFiveOpcodes() throws {
        // PROTO 5, FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, NEWOBJ, BUILD, EMPTY_SET, ADDITEMS.
        var b: [UInt8] = [0x80, 5, 0x95]
        var body: [UInt8] = []
        func su(_ s: String) { body += [0x8C, UInt8(s.utf8.count)] + Array(s.utf8); body.append(0x94) }
        su("some.module"); su("Thing"); body.append(0x93); body.append(0x94)
        body += [0x29, 0x81, 0x94]  // NEWOBJ Thing()
        body += [0x7D, 0x94]; su("k"); body += [0x4B, 3, 0x73]  // {'k': 3}
        body.append(0x62)  // BUILD
        body += [0x8F, 0x94, 0x28, 0x4B, 1, 0x4B, 2, 0x90]  // set {1, 2}
        body += [0x86, 0x94, 0x2E]  // (obj, set)
        b.le64(UInt64(body.count)); b += body
        let g = try load(b)
        let items = try #require(g.sequence(g.root))
        guard case let .object(o)? = g.node(items[0]) else { Issue.record("no object"); return }
        #expect(o.callable == .global(module: "some.module", name: "Thing"))
        #expect(o.kind == .newobj)
        #expect(g.dict(items[0])?["k"] == .int(3))
        #expect(g.sequence(items[1]) == [.int(1), .int(2)])
    }

    @Test func unknownCallablesBecomeOpaqueObjects() throws {
        var p = PickleBuilder()
        p.global("os", "system"); p.op(0x28); p.string("rm -rf /"); p.op(0x74); p.op(0x52); p.stop()
        let g = try load(p.bytes)
        guard case let .object(o)? = g.node(g.root) else { Issue.record("not opaque"); return }
        #expect(o.callableName == "os.system")  // named, never called
    }

    @Test func malformedPicklesAreTypedErrors() throws {
        #expect(throws: ImportError.unknownOpcode(opcode: 0xFF, offset: 2)) { _ = try load([0x80, 2, 0xFF]) }
        #expect(throws: ImportError.memoNotFound(index: 7, offset: 2)) { _ = try load([0x80, 2, 0x68, 7, 0x2E]) }
        #expect(throws: ImportError.memoNotFound(index: 70000, offset: 2)) { _ = try load([0x80, 2, 0x6A, 0x70, 0x11, 1, 0, 0x2E]) }
        #expect(throws: ImportError.stackUnderflow(opcode: "STOP", offset: 2)) { _ = try load([0x80, 2, 0x2E]) }
        #expect(throws: ImportError.stackUnderflow(opcode: "APPENDS (no MARK)", offset: 3)) { _ = try load([0x80, 2, 0x5D, 0x65]) }
        #expect(throws: ImportError.noStopOpcode) { _ = try load([0x80, 2, 0x4E]) }
        #expect(throws: ImportError.unsupportedPickleProtocol(6)) { _ = try load([0x80, 6]) }
        #expect(throws: ImportError.unsupportedOpcode(name: "INST", offset: 2)) { _ = try load([0x80, 2, 0x69]) }
        #expect(throws: ImportError.self) { _ = try load([0x80, 2, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x41]) }  // length past end
        #expect(throws: ImportError.self) { _ = try load([0x80, 2, 0x8D] + [UInt8](repeating: 0xFF, count: 8)) }
        #expect(throws: ImportError.self) { _ = try load([0x80, 2, 0x54, 0xFF, 0xFF, 0xFF, 0xFF]) }  // negative BINSTRING
        #expect(throws: ImportError.self) { _ = try load([0x80, 2, 0x63] + Array("no newline".utf8)) }
        #expect(throws: ImportError.self) { _ = try load([0x80, 2, 0x4B, 1, 0x4B, 2, 0x73, 0x2E]) }  // SETITEM on int
        #expect(throws: ImportError.self) { _ = try load([0x80, 2, 0x4E, 0x29, 0x52, 0x4E, 0x52, 0x2E]) }  // REDUCE args not tuple
        #expect(throws: ImportError.self) { _ = try load([0x80, 2, 0x4E, 0x51, 0x2E]) }  // BINPERSID without loader
        #expect(throws: ImportError.self) { _ = try load([]) }
    }

    @Test func everyTruncationOfARealPickleIsATypedError() throws {
        let zip = try ZipArchive(path: Fixtures.path("tiny-upstream.ckpt"))
        let pkl = Array(try zip.bytes(named: "tiny-upstream/data.pkl"))
        let hooks = TorchPickleHooks(archive: zip, prefix: "tiny-upstream/")
        _ = try PickleMachine().load(pkl, hooks: hooks)
        for n in 0..<(pkl.count - 1) {
            #expect(throws: ImportError.self, "prefix \(n)") { _ = try PickleMachine().load(Array(pkl[0..<n]), hooks: hooks) }
        }
    }

    /// Issue 10: megabytes of nested TUPLE1 (one byte → one graph node) made `import` use 4.3 GB.
    /// What the machine builds is bounded in proportion to the input, with a hard cap.
    @Test func builtSizeIsBoundedByTheInput() throws {
        let nested = [0x80, 2, 0x4E] + [UInt8](repeating: 0x85, count: 200_000) + [0x2E]  // None, TUPLE1 × 200k, STOP
        func refusal(_ bytes: [UInt8], _ limits: PickleMachine.Limits) -> (what: String, limit: Int, offset: Int)? {
            do { _ = try load(bytes, limits: limits) } catch {
                if case let .pickleLimitExceeded(what, limit, offset) = error, what.hasPrefix("built size") { return (what, limit, offset) }
                Issue.record("unexpected error \(error)")
            }
            return nil
        }
        // Default limits: about 24 bytes per input byte (+16 MiB); 200k nested tuples need far more.
        let byDefault = try #require(refusal(nested, .init()))
        #expect(byDefault.limit == PickleMachine.Limits().builtBytes(forInput: nested.count))
        // A low hard cap stops it early, whatever the proportional budget allows.
        var low = PickleMachine.Limits()
        low.maxBuiltBytes = 1 << 20
        let capped = try #require(refusal(nested, low))
        #expect(capped.limit == 1 << 20 && capped.offset < 20_000, "\(capped)")
        // The same shape, shallow enough, loads under the same cap.
        let shallow = [0x80, 2, 0x4E] + [UInt8](repeating: 0x85, count: 500) + [0x2E]
        #expect(throws: Never.self) { _ = try self.load(shallow, limits: low) }
        // Payload bytes count too: a 64 KiB string in a pickle capped at 32 KiB built bytes.
        var tiny = PickleMachine.Limits()
        tiny.maxBuiltBytes = 32 << 10
        var p = PickleBuilder()
        p.string(String(repeating: "x", count: 64 << 10)); p.stop()
        #expect(refusal(p.bytes, tiny) != nil)
    }

    @Test func nestingAndSizeLimits() throws {
        // A million MARKs: stopped by the MARK depth limit.
        #expect(throws: ImportError.pickleLimitExceeded(what: "MARK nesting", limit: 10_000, offset: 2 + 10_000)) {
            _ = try load([0x80, 2] + [UInt8](repeating: 0x28, count: 1_000_000))
        }
        // A million nested 1-tuples: no recursion anywhere (build, use, free). (Over the default
        // built-size budget, see builtSizeIsBoundedByTheInput, so the budget is raised here.)
        let deep = [0x80, 2, 0x4E] + [UInt8](repeating: 0x85, count: 1_000_000) + [0x2E]
        var roomy = PickleMachine.Limits()
        roomy.builtBytesPerInputByte = 1024
        let g = try load(deep, limits: roomy)
        #expect(g.nodes.count == 1_000_000)
        // Stack and memo limits.
        var limits = PickleMachine.Limits()
        limits.maxStack = 100
        #expect(throws: ImportError.self) { _ = try load([0x80, 2] + [UInt8](repeating: 0x4E, count: 101) + [0x2E], limits: limits) }
        limits = .init()
        limits.maxMemo = 10
        var memo: [UInt8] = [0x80, 4, 0x4E]
        for _ in 0..<11 { memo.append(0x94) }  // MEMOIZE grows the memo by one each time
        #expect(throws: ImportError.pickleLimitExceeded(what: "memo size", limit: 10, offset: 13)) {
            _ = try load(memo + [0x2E], limits: limits)
        }
        // DUP + APPEND of a list into itself a million times: references, not copies.
        var selfRef: [UInt8] = [0x80, 2, 0x5D]
        for _ in 0..<100_000 { selfRef += [0x32, 0x61] }
        selfRef.append(0x2E)
        let g2 = try load(selfRef)
        #expect(g2.sequence(g2.root)?.count == 100_000)
    }

    @Test func torchStorageChecks() throws {
        // A tensor needing more elements than its storage holds.
        func ckpt(numel: Int, data: Int, shape: [Int], stride: [Int]? = nil, offset: Int = 0) throws -> String {
            let path = scratchPath()
            var p = PickleBuilder()
            p.op(0x7D); p.string("w")
            p.tensor(storageClass: "FloatStorage", key: "0", numel: numel, offset: offset, shape: shape, stride: stride)
            p.op(0x73); p.stop()
            let z = try ZipBuilder(path: path)
            try z.add("c/data.pkl", p.bytes)
            try z.add("c/data/0", [UInt8](repeating: 0, count: data))
            try z.finish()
            return path
        }
        _ = try TorchCheckpoint(path: try ckpt(numel: 6, data: 24, shape: [2, 3]))
        #expect(throws: ImportError.storageTooSmall(key: "0", needed: 24, available: 20)) {
            _ = try TorchCheckpoint(path: try ckpt(numel: 6, data: 20, shape: [2, 3]))
        }
        #expect(throws: ImportError.storageTooSmall(key: "0", needed: 28, available: 24)) {
            _ = try TorchCheckpoint(path: try ckpt(numel: 6, data: 24, shape: [2, 3], offset: 1))
        }
        #expect(throws: ImportError.storageTooSmall(key: "0", needed: 40, available: 24)) {
            _ = try TorchCheckpoint(path: try ckpt(numel: 6, data: 24, shape: [2, 3], stride: [1, 4]))
        }
        #expect(throws: ImportError.self) {
            _ = try TorchCheckpoint(path: try ckpt(numel: 6, data: 24, shape: [Int(Int32.max), Int(Int32.max), 64]))
        }
        #expect(throws: ImportError.zipEntryNotFound("c/data/0")) {
            let path = scratchPath()
            var p = PickleBuilder()
            p.tensor(storageClass: "FloatStorage", key: "0", numel: 1, shape: [])
            p.stop()
            let z = try ZipBuilder(path: path)
            try z.add("c/data.pkl", p.bytes)
            try z.finish()
            _ = try TorchCheckpoint(path: path)
        }
        #expect(throws: ImportError.unsupportedStorageType("torch.ComplexFloatStorage")) {
            let path = scratchPath()
            var p = PickleBuilder()
            p.tensor(storageClass: "ComplexFloatStorage", key: "0", numel: 1, shape: [])
            p.stop()
            let z = try ZipBuilder(path: path)
            try z.add("c/data.pkl", p.bytes)
            try z.add("c/data/0", [0, 0, 0, 0, 0, 0, 0, 0])
            try z.finish()
            _ = try TorchCheckpoint(path: path)
        }
    }
}
