import Foundation
import SpectralXAPI
import SpectralXHTTP
import Testing

/// The repository root (three levels above this file).
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Every match of the first capture group of `pattern` in the Swift files of `Sources/<target>`.
private func captures(_ pattern: String, inTarget target: String) throws -> Set<String> {
    let dir = repositoryRoot.appendingPathComponent("Sources/\(target)")
    let regex = try NSRegularExpression(pattern: pattern)
    var out = Set<String>()
    for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".swift") {
        let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
        for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            out.insert(String(text[Range(m.range(at: 1), in: text)!]))
        }
    }
    return out
}

/// A NumPy v1 file with an arbitrary dtype string and zeroed data.
func npyBytes(descr: String, shape: [Int], itemSize: Int) -> Data {
    let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
    d.append(Data(header.utf8))
    d.append(Data(count: shape.reduce(1, *) * itemSize))
    return d
}

/// An uncompressed little-endian 8-bit TIFF, `spp` samples per pixel, whose BitsPerSample tag
/// lists `bitsCount` values (TIFF requires one per sample).
func tiffWithShortBitsPerSample(width: Int = 8, height: Int = 8, spp: Int = 4, bitsCount: Int = 1) -> Data {
    var b = [UInt8]()
    func u16(_ v: Int) { b += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func u32(_ v: Int) { u16(v & 0xFFFF); u16(v >> 16) }
    let entries = 10
    let ifd = 8, extra = ifd + 2 + entries * 12 + 4
    let bitsAt = extra, dataAt = extra + 2 * max(bitsCount, 3)
    b += Array("II".utf8); u16(42); u32(ifd)
    u16(entries)
    func entry(_ tag: Int, _ type: Int, _ count: Int, _ value: Int) { u16(tag); u16(type); u32(count); u32(value) }
    entry(256, 3, 1, width)
    entry(257, 3, 1, height)
    entry(258, 3, bitsCount, bitsCount <= 2 ? (bitsCount == 2 ? 8 | 8 << 16 : 8) : bitsAt)
    entry(259, 3, 1, 1)
    entry(262, 3, 1, 1)
    entry(273, 4, 1, dataAt)
    entry(277, 3, 1, spp)
    entry(278, 3, 1, height)
    entry(279, 4, 1, width * height * spp)
    entry(284, 3, 1, 1)
    u32(0)
    for _ in 0..<max(bitsCount, 3) { u16(8) }
    for i in 0..<(width * height * spp) { b.append(UInt8(truncatingIfNeeded: i * 7)) }
    return Data(b)
}

@Suite("Stable error codes", .serialized)
struct ErrorCodeTests {
    var s: TestServer { SharedServer.fake }

    /// openapi.yaml's `Error.error.code` enum is exactly the codes of `APIErrorCode` and of the HTTP
    /// layer's `HTTPErrorCode`, and every code a source file spells out is one of them.
    @Test func openAPIListsExactlyTheCodesTheServerUses() throws {
        let yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let lines = yaml.components(separatedBy: "\n")
        let marker = try #require(lines.firstIndex { $0.contains("Generated from APIErrorCode") }, "no generated enum in openapi.yaml")
        #expect(lines[marker + 1].trimmingCharacters(in: .whitespaces) == "enum:")
        let start = marker + 1
        var documented: [String] = []
        for line in lines[(start + 1)...] {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("- ") else { break }
            documented.append(String(t.dropFirst(2)))
        }
        #expect(documented == documented.sorted(), "keep the enum sorted")
        let http = Set(HTTPErrorCode.allCases.map(\.rawValue))
        let api = Set(APIErrorCode.allCases.map(\.rawValue))
        #expect(http.isSuperset(of: ["too_many_connections", "invalid_content_length", "header_fields_too_large"]))
        #expect(Set(documented) == api.union(http),
                "undocumented: \(api.union(http).subtracting(documented).sorted()); stale: \(Set(documented).subtracting(api.union(http)).sorted())")
        let literal = try captures(#"APIError\(\s*\.\w+,\s*"([a-z_]+)""#, inTarget: "SpectralXAPI")
        #expect(literal.isSubset(of: api), "codes spelled as text but missing from APIErrorCode: \(literal.subtracting(api).sorted())")
    }

    @Test func float16NumPyIsAnUnsupportedDtype() throws {
        let r = try s.request("POST", "/v1/domains/syn/segment", headers: [("Content-Type", "application/x-npy")],
                              body: npyBytes(descr: "<f2", shape: [4, 8, 8], itemSize: 2))
        #expect(r.errorCode! == (415, "unsupported_npy_dtype"), "\(r.text)")
    }

    @Test func bitsPerSampleWithFewerValuesThanSamplesIsRefused() throws {
        for count in [1, 2] {
            let r = try s.request("POST", "/v1/domains/syn/segment?output=json", headers: [("Content-Type", "image/tiff")],
                                  body: tiffWithShortBitsPerSample(bitsCount: count))
            #expect(r.errorCode! == (400, "malformed_file"), "\(count): \(r.text)")
            #expect(r.text.contains("BitsPerSample"))
        }
        // The same file with one value per sample is segmented.
        let ok = try s.request("POST", "/v1/domains/syn/segment?output=json", headers: [("Content-Type", "image/tiff")],
                               body: tiffWithShortBitsPerSample(bitsCount: 4))
        #expect(ok.status == 200, "\(ok.text)")
    }

    @Test func missingTilePartNamesAFewPartsOnly() throws {
        let boundary = "b0undary"
        var body = Data()
        for i in 0..<1000 { body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"part\(i)\"\r\n\r\nx\r\n".utf8)) }
        body.append(Data("--\(boundary)--\r\n".utf8))
        let r = try s.request("POST", "/v1/domains/syn/segment", headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")], body: body)
        #expect(r.errorCode! == (400, "missing_tile_part"))
        #expect(r.text.contains("part0") && r.text.contains("1000 parts") && !r.text.contains("part999"))
        #expect(r.body.count < 600)
    }

    @Test func errorMessagesAreBounded() {
        let e = APIError(.badRequest, .invalidParameter, String(repeating: "é", count: 5000))
        #expect(e.message.unicodeScalars.count <= APIError.maxMessageLength)
        #expect(e.message.hasSuffix("(message truncated)"))
    }
}
