import Foundation
import SpectralXSupport
import Testing

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hash([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hash(long).hex == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hash(million).hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func streamingInOddPiecesEqualsOneShot() {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var s = SHA256()
        var i = 0
        for step in [1, 63, 64, 65, 127, 1000, 3] + Array(repeating: 997, count: 20) where i < data.count {
            let end = min(data.count, i + step)
            data[i..<end].withUnsafeBytes { s.update($0) }
            i = end
        }
        data[i...].withUnsafeBytes { s.update($0) }
        #expect(s.finalize() == SHA256.hash(data))
    }

    @Test func copiesAreIndependent() {
        var a = SHA256()
        a.update(Array("ab".utf8))
        var b = a  // shares the context until one of them is updated
        a.update(Array("c".utf8))
        b.update(Array("x".utf8))
        #expect(a.finalize() == SHA256.hash(Array("abc".utf8)))
        #expect(b.finalize() == SHA256.hash(Array("abx".utf8)))
        // After finalize a hasher starts afresh.
        a.update(Array("abc".utf8))
        #expect(a.finalize() == SHA256.hash(Array("abc".utf8)))
    }

    @Test func fileDigestEqualsBytesDigest() throws {
        let dir = try TemporaryDirectory()
        let data = (0..<(5 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 7) }  // more than one 4 MiB chunk
        let path = dir.path("f.bin")
        try Data(data).write(to: URL(fileURLWithPath: path))
        #expect(try SHA256.hash(fileAtPath: path) == SHA256.hash(data))
        let abc = dir.path("abc")
        try Data("abc".utf8).write(to: URL(fileURLWithPath: abc))
        #expect(try SHA256.hash(fileAtPath: abc).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let empty = dir.path("empty")
        try Data().write(to: URL(fileURLWithPath: empty))
        #expect(try SHA256.hash(fileAtPath: empty).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(throws: FileSystemError(path: dir.path("missing"), operation: .open, errno: ENOENT)) {
            try SHA256.hash(fileAtPath: dir.path("missing"))
        }
    }
}

@Suite struct ChecksumTests {
    @Test func crc32KnownValues() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let first = CRC32.checksum(long[0..<333])
        #expect(CRC32.checksum(long[333...], initial: first) == CRC32.checksum(long))
    }

    @Test func adler32KnownValues() {
        #expect(Adler32.checksum([UInt8]()) == 1)
        #expect(Adler32.checksum(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(Adler32.checksum(Array("123456789".utf8)) == 0x091E_01DE)
        let long = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        #expect(Adler32.checksum(long[50_000...], initial: Adler32.checksum(long[..<50_000])) == Adler32.checksum(long))
    }
}

@Suite struct DurationConversionTests {
    @Test func secondsAndNanoseconds() {
        #expect(Duration.seconds(2).inSeconds == 2)
        #expect(Duration.milliseconds(1500).inSeconds == 1.5)
        #expect(Duration.zero.inNanoseconds == 0)
        #expect(Duration.nanoseconds(1_234_567_891).inNanoseconds == 1_234_567_891)
        #expect(Duration.seconds(3).inNanoseconds == 3_000_000_000)
        #expect(Duration.microseconds(-1500).inSeconds == -0.0015)
        #expect(Duration.nanoseconds(-2_500_000_000).inNanoseconds == -2_500_000_000)
    }
}

@Suite struct MappedFileTests {
    @Test func mapsContentsAndEmptyFiles() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("data")
        try Data([1, 2, 3, 4, 5]).write(to: URL(fileURLWithPath: path))
        let m = try MappedFile(path: path)
        #expect(m.size == 5 && Array(m.bytes) == [1, 2, 3, 4, 5])
        let emptyPath = dir.path("empty")
        try Data().write(to: URL(fileURLWithPath: emptyPath))
        let e = try MappedFile(path: emptyPath)
        #expect(e.size == 0 && e.baseAddress == nil && e.bytes.isEmpty)
    }

    @Test func failuresAreTyped() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: FileSystemError(path: dir.path("none"), operation: .open, errno: ENOENT)) {
            _ = try MappedFile(path: dir.path("none"))
        }
        #expect(throws: FileSystemError(path: dir.root, operation: .notRegularFile, errno: EINVAL)) {
            _ = try MappedFile(path: dir.root)
        }
    }
}

@Suite struct AtomicFileTests {
    @Test func writeReplacesAndLeavesNoTemporaryFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("out.json")
        for durable in [false, true] {
            try AtomicFile.write(Array("first \(durable)".utf8), to: path, durable: durable)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "first \(durable)")
            try AtomicFile.write(Data("second".utf8), to: path, durable: durable)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
            #expect(try dir.names() == ["out.json"])
        }
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        try AtomicFile.write([1], to: path, durable: true, permissions: 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        #expect(mode != nil)
    }

    @Test func aFailedWriteLeavesTheOldFileWhole() throws {
        struct Interrupted: Error {}
        let dir = try TemporaryDirectory()
        let path = dir.path("model.bin")
        try AtomicFile.write(Array("old contents".utf8), to: path, durable: true)
        #expect(throws: Interrupted.self) {
            try AtomicFile.write(to: path, durable: true) { out in
                try out.write(Array("half of the new".utf8))
                // While writing, the target still holds the old file and the new bytes are elsewhere.
                #expect(try String(contentsOfFile: path, encoding: .utf8) == "old contents")
                #expect(try dir.names().count == 2)
                throw Interrupted()
            }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old contents")
        #expect(try dir.names() == ["model.bin"])
    }

    @Test func bodyResultAndFailures() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("a")
        let n = try AtomicFile.write(to: path, durable: false) { out -> Int in
            try out.write(Data([9, 8, 7]))
            return 3
        }
        #expect(n == 3 && FileManager.default.contents(atPath: path) == Data([9, 8, 7]))
        // A directory that does not exist: the temporary file cannot be created.
        #expect(throws: FileSystemError.self) { try AtomicFile.write([1], to: dir.path("no/such/file"), durable: true) }
    }

    @Test func durableRename() throws {
        let dir = try TemporaryDirectory()
        try AtomicFile.write([1, 2], to: dir.path("partial"), durable: false)
        try AtomicFile.rename(dir.path("partial"), to: dir.path("final"), durable: true)
        #expect(try dir.names() == ["final"])
        #expect(throws: FileSystemError.self) { try AtomicFile.rename(dir.path("partial"), to: dir.path("x"), durable: false) }
    }
}

/// A fresh directory under the system temporary directory, removed when the value is released.
final class TemporaryDirectory {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-support-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func path(_ name: String) -> String { root + "/" + name }
    func names() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: root).sorted() }
}
