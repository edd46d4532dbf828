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
