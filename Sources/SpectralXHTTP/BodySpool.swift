import Foundation

/// Collects a request body in memory, moving it to a temporary file once it grows past the
/// threshold (or from the start when the declared length already does).
final class BodySpool {
    private let threshold: Int64
    private let directory: URL
    private var memory = Data()
    private var file: FileHandle?
    private(set) var url: URL?
    private(set) var count: Int64 = 0

    init(threshold: Int64, directory: URL, expectedLength: Int64?) throws {
        self.threshold = threshold
        self.directory = directory
        if let expectedLength, expectedLength > threshold {
            try openFile()
        } else if let expectedLength {
            memory.reserveCapacity(Int(expectedLength))
        }
    }

    private func openFile() throws {
        let url = directory.appendingPathComponent("spectralx-body-\(HTTPRequest.generateRequestID())")
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        self.url = url
        let handle = try FileHandle(forWritingTo: url)
        file = handle
        if !memory.isEmpty {
            try handle.write(contentsOf: memory)
            memory = Data()
        }
    }

    func append(_ data: Data) throws {
        count += Int64(data.count)
        if file == nil && count > threshold { try openFile() }
        if let file {
            try file.write(contentsOf: data)
        } else {
            memory.append(data)
        }
    }

    /// The body as the handler sees it; the file (if any) stays until `remove()`.
    func finish() throws -> HTTPBody {
        if let file, let url {
            try file.close()
            self.file = nil
            return .file(url, count: count)
        }
        return .data(memory)
    }

    /// Deletes the spooled file, if one was made.
    func remove() {
        try? file?.close()
        file = nil
        if let url { try? FileManager.default.removeItem(at: url) }
        url = nil
    }
}
