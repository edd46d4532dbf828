import Foundation

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
