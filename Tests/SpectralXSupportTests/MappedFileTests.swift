import Foundation
import SpectralXSupport
import Testing

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
