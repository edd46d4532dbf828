import Foundation
import SpectralXSupport
#if canImport(Glibc)
import Glibc
#endif

/// One part of a `multipart/form-data` body (RFC 7578).
public struct MultipartPart: Sendable {
    public let headers: HTTPHeaders
    /// The `name` parameter of `Content-Disposition` (the form field: `tile` for `curl -F tile=@x.tif`).
    public let name: String?
    /// The `filename` parameter, when the part is a file upload.
    public let filename: String?
    /// The part's `Content-Type`; RFC 7578 says a missing one means `text/plain`, which is reported as nil.
    public let contentType: String?
    /// The part's content. For a body spooled to a file this is a zero-copy view of a memory mapping
    /// that stays valid as long as this `Data` lives (the spool file may be deleted meanwhile).
    public let body: Data
}

/// A streaming-free, linear-time `multipart/form-data` parser.
///
/// Works on an in-memory body, or on a spooled body file that it memory-maps (the file is read
/// once by the kernel's paging, never copied into the heap). Boundaries are found with `memmem`,
/// so the cost is linear in the body size.
public enum MultipartFormData {
    /// Longest header section of one part.
    static let maxPartHeaderBytes = 16 * 1024

    /// The boundary parameter of a `multipart/form-data` Content-Type, or nil if the media type is
    /// something else or the boundary is missing or invalid (RFC 2046: 1–70 characters).
    public static func boundary(fromContentType contentType: String) -> String? {
        let (type, params) = parseParameters(contentType)
        guard type.lowercased() == "multipart/form-data",
              let b = params.first(where: { $0.name == "boundary" })?.value,
              (1...70).contains(b.utf8.count), b.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) else { return nil }
        return b
    }

    /// Parses a request body; `contentType` is the request's `Content-Type` value.
    /// Throws `HTTPServerError` 400 `invalid_multipart` (or 415 `unsupported_media_type` when the
    /// body is not multipart/form-data).
    public static func parse(_ body: HTTPBody, contentType: String) throws -> [MultipartPart] {
        guard let boundary = boundary(fromContentType: contentType) else {
            throw HTTPServerError(status: .unsupportedMediaType, code: "unsupported_media_type",
                                  message: "expected multipart/form-data with a boundary")
        }
        switch body {
        case .data(let data):
            return try data.withUnsafeBytes { raw in
                try parse(raw, boundary: boundary) { range in Data(raw[range]) }
            }
        case .file(let url, _):
            let mapping: MappedFile
            do { mapping = try MappedFile(path: url.path) } catch {
                throw HTTPServerError(.internalError, message: "cannot map the spooled body: \(error)")
            }
            let raw = mapping.bytes
            return try parse(raw, boundary: boundary) { range in
                guard !range.isEmpty else { return Data() }
                return Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: raw.baseAddress! + range.lowerBound),
                            count: range.count, deallocator: .custom { _, _ in withExtendedLifetime(mapping) {} })
            }
        }
    }

    /// Parses an in-memory multipart body with a known boundary.
    public static func parse(_ data: Data, boundary: String) throws -> [MultipartPart] {
        try data.withUnsafeBytes { raw in
            try parse(raw, boundary: boundary) { range in Data(raw[range]) }
        }
    }

    static func invalid(_ message: String) -> HTTPServerError {
        HTTPServerError(status: .badRequest, code: "invalid_multipart", message: message)
    }

    private static func parse(_ raw: UnsafeRawBufferPointer, boundary: String,
                              makeBody: (Range<Int>) -> Data) throws -> [MultipartPart] {
        let dashBoundary = Array("--\(boundary)".utf8)
        let delimiter = Array("\r\n--\(boundary)".utf8)
        let count = raw.count
        guard count > 0 else { throw invalid("empty multipart body") }
        // First delimiter: at the very start, or after a preamble ending in CRLF.
        var pos: Int
        if count >= dashBoundary.count && memcmp(raw.baseAddress!, dashBoundary, dashBoundary.count) == 0 {
            pos = dashBoundary.count
        } else if let found = find(delimiter, in: raw, from: 0) {
            pos = found + delimiter.count
        } else {
            throw invalid("no multipart boundary found")
        }
        var parts: [MultipartPart] = []
        while true {
            // After a delimiter: "--" closes, else optional padding then CRLF.
            if pos + 2 <= count && raw[pos] == UInt8(ascii: "-") && raw[pos + 1] == UInt8(ascii: "-") {
                return parts
            }
            while pos < count && (raw[pos] == 32 || raw[pos] == 9) { pos += 1 }
            guard pos + 2 <= count, raw[pos] == 13, raw[pos + 1] == 10 else { throw invalid("malformed boundary line") }
            pos += 2
            // Part headers.
            var headers = HTTPHeaders()
            if pos + 2 <= count && raw[pos] == 13 && raw[pos + 1] == 10 {
                pos += 2
            } else {
                guard let end = find(Array("\r\n\r\n".utf8), in: raw, from: pos),
                      end - pos <= maxPartHeaderBytes else { throw invalid("malformed part headers") }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: raw[pos..<end]), as: UTF8.self)
                for line in text.components(separatedBy: "\r\n") {
                    guard let colon = line.firstIndex(of: ":") else { throw invalid("malformed part header line") }
                    headers.add(name: String(line[..<colon]).trimmingOWS(), value: String(line[line.index(after: colon)...]).trimmingOWS())
                }
                pos = end + 4
            }
            // Part body up to the next delimiter.
            guard let next = find(delimiter, in: raw, from: pos) else { throw invalid("unterminated multipart body") }
            var name: String? = nil, filename: String? = nil
            if let disposition = headers["Content-Disposition"] {
                let (_, params) = parseParameters(disposition)
                name = params.first { $0.name == "name" }?.value
                filename = params.first { $0.name == "filename" }?.value
            }
            parts.append(MultipartPart(headers: headers, name: name, filename: filename,
                                       contentType: headers["Content-Type"], body: makeBody(pos..<next)))
            pos = next + delimiter.count
        }
    }

    /// First occurrence of `needle` at or after `start`: `memchr` for its first byte, `memcmp` for the
    /// rest, so the cost is O(body × needle), needle being at most 74 bytes.
    private static func find(_ needle: [UInt8], in raw: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = raw.baseAddress, start <= raw.count, raw.count - start >= needle.count else { return nil }
        let last = raw.count - needle.count
        var i = start
        return needle.withUnsafeBytes { n -> Int? in
            while i <= last {
                guard let hit = memchr(base + i, Int32(needle[0]), last - i + 1) else { return nil }
                let at = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(base + at, n.baseAddress!, n.count) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }

    /// Splits `type; a=b; c="d;e"` into the leading value and lower-cased parameter names with
    /// unquoted values.
    static func parseParameters(_ header: String) -> (value: String, params: [(name: String, value: String)]) {
        var items: [String] = []
        var current = ""
        var inQuotes = false
        var escaped = false
        for ch in header {
            if escaped { current.append(ch); escaped = false; continue }
            if inQuotes && ch == "\\" { current.append(ch); escaped = true; continue }
            if ch == "\"" { inQuotes.toggle() }
            if ch == ";" && !inQuotes { items.append(current); current = ""; continue }
            current.append(ch)
        }
        items.append(current)
        let value = items.removeFirst().trimmingOWS()
        let params = items.compactMap { item -> (name: String, value: String)? in
            guard let eq = item.firstIndex(of: "=") else { return nil }
            let name = String(item[..<eq]).trimmingOWS().lowercased()
            var v = String(item[item.index(after: eq)...]).trimmingOWS()
            if v.hasPrefix("\"") && v.hasSuffix("\"") && v.count >= 2 {
                v = String(v.dropFirst().dropLast())
                var out = "", esc = false
                for ch in v {
                    if esc { out.append(ch); esc = false } else if ch == "\\" { esc = true } else { out.append(ch) }
                }
                v = out
            }
            return (name, v)
        }
        return (value, params)
    }
}
