import Foundation
import SpectralXBlobStore
import SpectralXTestSupport
import SpectralXFetch
import Testing

/// Which implementation a behaviour test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case file, s3
    var testDescription: String { rawValue }
}

/// A fresh, empty store of one kind; nil (with the reason printed) when S3 cannot be tested here.
struct StoreFixture {
    let store: any BlobStore
    let scratch: URL

    init?(_ kind: StoreKind) throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-blob-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        switch kind {
        case .file:
            store = try FileBlobStore(directory: scratch.appendingPathComponent("store"))
        case .s3:
            switch MotoServer.plain {
            case .success(let moto): store = try moto.store(prefix: "t/\(UUID().uuidString)")
            case .failure(let reason):
                print("skipping the S3 case: \(reason)")
                try? FileManager.default.removeItem(at: scratch)
                return nil
            }
        }
    }

    func file(_ name: String, _ data: Data) throws -> URL {
        let url = scratch.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }

    func cleanup() { try? FileManager.default.removeItem(at: scratch) }
}

func bytes(_ count: Int, seed: UInt64 = 1) -> Data {
    var state = seed &* 0x9E37_79B9_7F4A_7C15
    var out = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        out[i] = UInt8(truncatingIfNeeded: state)
    }
    return Data(out)
}

/// The same behaviour, test for test, for every BlobStore implementation.
@Suite struct BlobStoreBehaviourTests {
    @Test(arguments: StoreKind.allCases) func putGetRoundTrip(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        let data = bytes(100_000)
        let info = try f.store.put("inputs/scene 1/ü.bin", data: data)
        #expect(info.size == 100_000 && !info.etag.isEmpty)
        #expect(try f.store.get("inputs/scene 1/ü.bin") == data)
        #expect(try f.store.exists("inputs/scene 1/ü.bin"))

        let src = try f.file("src.bin", bytes(4321, seed: 2))
        try f.store.put("from-file", fromFile: src)
        let out = f.scratch.appendingPathComponent("out.bin")
        let got = try f.store.get("from-file", range: nil, toFile: out)
        #expect(try Data(contentsOf: out) == bytes(4321, seed: 2))
        #expect(got.size == 4321)
        // An empty object is an object.
        try f.store.put("empty", data: Data())
        #expect(try f.store.get("empty").isEmpty && f.store.head("empty").size == 0)
    }

    @Test(arguments: StoreKind.allCases) func rangedGet(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        let data = bytes(100)
        try f.store.put("r", data: data)
        #expect(try f.store.get("r", range: ByteRange(offset: 10, length: 20)) == data[10..<30])
        #expect(try f.store.get("r", range: ByteRange(offset: 90, length: 50)) == data[90..<100])  // clipped
        #expect(throws: BlobStoreError.invalidRange(key: "r", range: ByteRange(offset: 100, length: 1))) {
            try f.store.get("r", range: ByteRange(offset: 100, length: 1))
        }
        let out = f.scratch.appendingPathComponent("range.bin")
        let info = try f.store.get("r", range: ByteRange(offset: 5, length: 10), toFile: out)
        #expect(try Data(contentsOf: out) == data[5..<15])
        #expect(info.size == 100)
    }

    @Test(arguments: StoreKind.allCases) func headAndETag(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        let put = try f.store.put("h", data: bytes(777))
        let head = try f.store.head("h")
        #expect(head.size == 777 && head.etag == put.etag && head.etag.hasPrefix("\""))
        #expect(try f.store.list(prefix: "h").map(\.etag) == [head.etag])
        try f.store.put("h", data: bytes(777, seed: 9))
        #expect(try f.store.head("h").etag != head.etag)
        #expect(try f.store.get("h") == bytes(777, seed: 9))
    }

    /// Reads pinned to an ETag fail once the object is replaced, instead of mixing versions.
    @Test(arguments: StoreKind.allCases) func readsPinnedToAnETag(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        let v1 = bytes(1000, seed: 1)
        try f.store.put("cog.tif", data: v1)
        let etag = try f.store.head("cog.tif").etag
        #expect(try f.store.get("cog.tif", range: ByteRange(offset: 0, length: 16), ifMatch: etag) == v1[0..<16])
        try f.store.put("cog.tif", data: bytes(1000, seed: 2))
        #expect(throws: BlobStoreError.changed(key: "cog.tif")) {
            try f.store.get("cog.tif", range: ByteRange(offset: 16, length: 16), ifMatch: etag)
        }
        let out = f.scratch.appendingPathComponent("pinned.bin")
        #expect(throws: BlobStoreError.changed(key: "cog.tif")) {
            try f.store.get("cog.tif", range: nil, ifMatch: etag, toFile: out)
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let fresh = try f.store.head("cog.tif").etag
        #expect(try f.store.get("cog.tif", range: nil, ifMatch: fresh, toFile: out).etag == fresh)
    }

    @Test(arguments: StoreKind.allCases) func largeFileInParts(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        let size = (5 << 20) * 2 + 123_457  // three parts of 5 MiB on S3
        let src = try f.file("big.bin", bytes(size, seed: 3))
        let info = try f.store.put("results/big.bin", fromFile: src)
        #expect(info.size == Int64(size))
        let head = try f.store.head("results/big.bin")
        #expect(head.size == Int64(size) && head.etag == info.etag)
        if kind == .s3 { #expect(head.etag.hasSuffix("-3\""), "multipart ETag: \(head.etag)") }
        let out = f.scratch.appendingPathComponent("big.out")
        try f.store.get("results/big.bin", range: nil, toFile: out)
        #expect(try Digest.sha256Hex(file: out.path) == Digest.sha256Hex(file: src.path))
        #expect(try f.store.get("results/big.bin", range: ByteRange(offset: Int64(5 << 20) - 3, length: 6))
                == bytes(size, seed: 3)[(5 << 20) - 3 ..< (5 << 20) + 3])
    }

    @Test(arguments: StoreKind.allCases) func putIfAbsent(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        try f.store.put("lock", data: Data("first".utf8), mode: .ifAbsent)
        #expect(throws: BlobStoreError.alreadyExists(key: "lock")) {
            try f.store.put("lock", data: Data("second".utf8), mode: .ifAbsent)
        }
        #expect(throws: BlobStoreError.alreadyExists(key: "lock")) {
            try f.store.put("lock", fromFile: try f.file("x", Data("third".utf8)), mode: .ifAbsent)
        }
        #expect(try f.store.get("lock") == Data("first".utf8))
        try f.store.put("lock", data: Data("fourth".utf8), mode: .overwrite)
        #expect(try f.store.get("lock") == Data("fourth".utf8))
    }

    /// Several writers race for one key with put-if-absent: exactly one wins, the object is whole.
    @Test(arguments: StoreKind.allCases) func putIfAbsentRace(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        let store = f.store
        let writers = 6
        let wins = Locked(0), losses = Locked(0)
        DispatchQueue.concurrentPerform(iterations: writers) { i in
            do {
                try store.put("claim", data: bytes(50_000, seed: UInt64(10 + i)), mode: .ifAbsent)
                wins.update { $0 += 1 }
            } catch BlobStoreError.alreadyExists {
                losses.update { $0 += 1 }
            } catch {
                Issue.record("writer \(i): \(error)")
            }
        }
        #expect(wins.value == 1 && losses.value == writers - 1)
        let stored = try store.get("claim")
        #expect((0..<writers).contains { stored == bytes(50_000, seed: UInt64(10 + $0)) })
        #expect(try store.list(prefix: "").map(\.key) == ["claim"])  // no temp files left visible
    }

    @Test(arguments: StoreKind.allCases) func listByPrefix(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        for key in ["a/2", "a/1", "a/b/3", "ab", "c"] { try f.store.put(key, data: Data(key.utf8)) }
        #expect(try f.store.list(prefix: "a/").map(\.key) == ["a/1", "a/2", "a/b/3"])
        #expect(try f.store.list(prefix: "a").map(\.key) == ["a/1", "a/2", "a/b/3", "ab"])
        #expect(try f.store.list(prefix: "").map(\.key) == ["a/1", "a/2", "a/b/3", "ab", "c"])
        #expect(try f.store.list(prefix: "a/b/").map(\.size) == [5])
        #expect(try f.store.list(prefix: "zz").isEmpty)
    }

    @Test(arguments: StoreKind.allCases) func deleteAndMissingKeys(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        try f.store.put("d/x", data: Data("x".utf8))
        try f.store.delete("d/x")
        try f.store.delete("d/x")  // deleting a missing key succeeds
        #expect(try !f.store.exists("d/x"))
        #expect(throws: BlobStoreError.notFound(key: "d/x")) { try f.store.head("d/x") }
        #expect(throws: BlobStoreError.notFound(key: "d/x")) { try f.store.get("d/x") }
        #expect(throws: BlobStoreError.notFound(key: "nope")) { try f.store.get("nope", range: ByteRange(offset: 0, length: 1)) }
        let out = f.scratch.appendingPathComponent("never")
        #expect(throws: BlobStoreError.notFound(key: "nope")) { try f.store.get("nope", range: nil, toFile: out) }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(try f.store.list(prefix: "d/").isEmpty)
    }

    @Test(arguments: StoreKind.allCases) func invalidKeys(_ kind: StoreKind) throws {
        guard let f = try StoreFixture(kind) else { return }
        defer { f.cleanup() }
        for key in ["", "/abs", "a//b", "../up", "a/./b", "a/", "tab\there", "back\\slash", "x/.blobtmp-1"] {
            #expect(throws: BlobStoreError.self, "\(key)") { try f.store.put(key, data: Data()) }
        }
        #expect(throws: BlobStoreError.self) { try f.store.list(prefix: "../") }
    }
}

/// A value behind a lock, for counting across threads in tests.
/// `@unchecked Sendable`: every access goes through `lock`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func update(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
