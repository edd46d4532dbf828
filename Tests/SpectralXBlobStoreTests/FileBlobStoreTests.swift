import Foundation
import SpectralXBlobStore
import Testing

/// What only the directory store has.
@Suite struct FileBlobStoreTests {
    @Test func staleTemporaryFilesAreSweptFreshOnesKept() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-sweep-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try FileBlobStore(directory: dir)
        try store.put("jobs/1/result.tif", data: Data("r".utf8))
        let stale = dir.appendingPathComponent("jobs/1/.blobtmp-dead").path
        let fresh = dir.appendingPathComponent("jobs/1/.blobtmp-live").path
        #expect(FileManager.default.createFile(atPath: stale, contents: Data("half".utf8)))
        #expect(FileManager.default.createFile(atPath: fresh, contents: Data("half".utf8)))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: stale)
        #expect(try store.list(prefix: "").map(\.key) == ["jobs/1/result.tif"])  // temp files are never listed
        #expect(store.removeStaleTemporaryFiles() == 1)
        #expect(!FileManager.default.fileExists(atPath: stale) && FileManager.default.fileExists(atPath: fresh))
        #expect(try store.get("jobs/1/result.tif") == Data("r".utf8))
    }

    @Test func aKeyCannotBeBothObjectAndDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-conflict-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try FileBlobStore(directory: dir)
        try store.put("a/b", data: Data("x".utf8))
        #expect(throws: BlobStoreError.self) { try store.put("a", data: Data("y".utf8)) }
        #expect(throws: BlobStoreError.notFound(key: "a")) { try store.head("a") }
        #expect(throws: BlobStoreError.self) { try store.put("a/b/c", data: Data("z".utf8)) }
        #expect(try store.get("a/b") == Data("x".utf8))
    }
}
