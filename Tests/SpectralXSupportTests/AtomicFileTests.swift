import Foundation
import SpectralXSupport
import Testing

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
