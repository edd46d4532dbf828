import Foundation
import SpectralXCheckpoint
import SpectralXCheckpointImport
import SpectralXSupport
import Testing

/// A class suite so each test's scratch directory is removed in `deinit`.
@Suite final class ZipArchiveTests: Sendable {
    let dir: URL

    init() throws { dir = try Fixtures.temporaryDirectory("zip") }
    deinit { try? FileManager.default.removeItem(at: dir) }

    func write(_ bytes: [UInt8], _ tag: String) throws -> String {
        let path = dir.appendingPathComponent("\(tag)-\(UInt32.random(in: 0...UInt32.max)).zip").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func build(zip64: Bool, _ entries: [(String, [UInt8])]) throws -> [UInt8] {
        let path = dir.appendingPathComponent("built-\(UInt32.random(in: 0...UInt32.max)).zip").path
        let z = try ZipBuilder(path: path, zip64: zip64)
        for (n, d) in entries { try z.add(n, d) }
        try z.finish()
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test(arguments: [false, true]) func readsStoredEntriesAndZip64(zip64: Bool) throws {
        let bytes = try build(zip64: zip64, [("x/a", Array("hello".utf8)), ("x/data/0", [UInt8](repeating: 7, count: 100))])
        let zip = try ZipArchive(path: try write(bytes, "ok"))
        #expect(zip.entries.map(\.name) == ["x/a", "x/data/0"])
        #expect(Array(try zip.bytes(named: "x/a", verifyCRC: true)) == Array("hello".utf8))
        let e = try #require(zip.entry(named: "x/data/0"))
        #expect(e.dataRange.lowerBound % 64 == 0)  // torch-style alignment survives
        #expect(Array(try zip.bytes(of: e, verifyCRC: true)) == [UInt8](repeating: 7, count: 100))
        #expect(throws: ImportError.zipEntryNotFound("nope")) { try zip.bytes(named: "nope") }
    }

    @Test func crcMismatchIsReported() throws {
        var bytes = try build(zip64: false, [("x/a", Array("hello".utf8))])
        let at = try #require(bytes.indices.first { bytes[$0] == UInt8(ascii: "h") && bytes[$0 + 1] == UInt8(ascii: "e") })
        bytes[at] = UInt8(ascii: "j")
        let zip = try ZipArchive(path: try write(bytes, "crc"))
        #expect(Array(try zip.bytes(named: "x/a")) == Array("jello".utf8))  // unchecked read still works
        #expect {
            _ = try zip.bytes(named: "x/a", verifyCRC: true)
        } throws: { e in
            if case ImportError.crcMismatch(entry: "x/a", _, _) = e { return true }
            return false
        }
    }

    @Test func deflateIsRefusedNamingTheEntry() throws {
        var bytes = try build(zip64: false, [("x/data/3", [1, 2, 3])])
        // Patch the method field (offset 10 in the central header) to 8 = deflate.
        let cd = try #require((0..<(bytes.count - 4)).first { bytes[$0..<($0 + 4)] == [0x50, 0x4B, 0x01, 0x02] })
        bytes[cd + 10] = 8
        let zip = try ZipArchive(path: try write(bytes, "deflate"))
        #expect(throws: ImportError.unsupportedCompression(entry: "x/data/3", method: 8)) { try zip.bytes(named: "x/data/3") }
        #expect(ImportError.unsupportedCompression(entry: "x/data/3", method: 8).description.contains("x/data/3"))
    }

    @Test func everyTruncationIsATypedError() throws {
        let good = try build(zip64: true, [("x/a", Array("hello".utf8)), ("x/b", [UInt8](repeating: 1, count: 300))])
        let dir = try Fixtures.temporaryDirectory("trunc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.zip").path
        for n in 0..<good.count {
            try Data(good[0..<n]).write(to: URL(fileURLWithPath: path))
            #expect(throws: ImportError.self, "prefix \(n)") { _ = try ZipArchive(path: path) }
        }
    }

    @Test func corruptedDirectoryNeverCrashes() throws {
        // Flip every byte of the central directory and end records in turn; any outcome but a
        // crash is acceptable, and successful opens must only expose in-bounds ranges.
        let good = try build(zip64: true, [("x/a", Array("hello".utf8)), ("x/b", [UInt8](repeating: 1, count: 300))])
        let dir = try Fixtures.temporaryDirectory("flip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("f.zip").path
        let start = try #require((0..<(good.count - 4)).first { good[$0..<($0 + 4)] == [0x50, 0x4B, 0x01, 0x02] })
        for i in start..<good.count {
            for v: UInt8 in [0x00, 0xFF, good[i] ^ 0x80] {
                var bad = good
                bad[i] = v
                try Data(bad).write(to: URL(fileURLWithPath: path))
                if let zip = try? ZipArchive(path: path) {
                    for e in zip.entries {
                        #expect(e.dataRange.upperBound <= bad.count)
                        _ = try? zip.bytes(of: e, verifyCRC: true)
                    }
                }
            }
        }
    }

    @Test func badCentralDirectoryAndLimits() throws {
        let good = try build(zip64: false, [("x/a", Array("hello".utf8))])
        // Central directory offset pointing past the end.
        var bad = good
        let eocd = good.count - 22
        bad[eocd + 16] = 0xFF; bad[eocd + 17] = 0xFF; bad[eocd + 18] = 0x00; bad[eocd + 19] = 0x00
        #expect(throws: ImportError.self) { _ = try ZipArchive(path: try write(bad, "cdoff")) }
        // More entries than the directory can hold.
        bad = good
        bad[eocd + 8] = 200; bad[eocd + 10] = 200
        #expect(throws: ImportError.self) { _ = try ZipArchive(path: try write(bad, "count")) }
        // Entry limit.
        var limits = ZipArchive.Limits()
        limits.maxEntries = 0
        #expect(throws: ImportError.tooManyZipEntries(count: 1, limit: 0)) {
            _ = try ZipArchive(file: MappedFile(path: try write(good, "limit")), limits: limits)
        }
        // Not a zip at all / empty file.
        #expect(throws: ImportError.self) { _ = try ZipArchive(path: try write(Array("not a zip file, just text".utf8), "txt")) }
        #expect(throws: ImportError.self) { _ = try ZipArchive(path: try write([], "empty")) }
        #expect(throws: ImportError.self) { _ = try TorchCheckpoint(path: try write(good, "nopkl")) }
    }
}
