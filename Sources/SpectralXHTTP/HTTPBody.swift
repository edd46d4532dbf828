import Foundation

/// A request body as the handler receives it: in memory, or spooled to a temporary file when it
/// was larger than `HTTPServerConfiguration.bodyMemoryThreshold`. The server removes the file
/// after the response has been written, so copy it if it must outlive the request.
public enum HTTPBody: Sendable, Equatable {
    case data(Data)
    case file(URL, count: Int64)

    public static let empty = HTTPBody.data(Data())

    /// Body length in bytes.
    public var count: Int64 {
        switch self {
        case .data(let d): Int64(d.count)
        case .file(_, let n): n
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// The whole body in memory (a file body is memory-mapped where possible, so this is cheap
    /// for reading but the mapping must not outlive the request).
    public func readData() throws -> Data {
        switch self {
        case .data(let d): return d
        case .file(let url, _): return try Data(contentsOf: url, options: .alwaysMapped)
        }
    }

    /// The spooled file, if any.
    public var fileURL: URL? {
        if case .file(let url, _) = self { return url }
        return nil
    }
}
