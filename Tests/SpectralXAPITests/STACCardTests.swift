import Foundation
import Testing

/// `GET /v1/domains/{name}/stac` against the STAC 1.0 item, MLM 1.5.2, eo, classification and file JSON
/// Schemas kept in scripts/ogc/stac-schemas (offline, `jsonschema`), then read by `pystac`
/// (scripts/ogc/check_stac.py). Skipped with a message when jsonschema is missing.
@Suite("STAC MLM model card", .serialized)
struct STACCardTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs the checker on `item`; returns (exit status, output), or nil when it skipped.
    func check(_ item: Data) throws -> (Int32, String)? {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-stac-\(UUID().uuidString).json")
        try item.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.root.appendingPathComponent("scripts/ogc/check_stac.py").path, file.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if out.hasPrefix("skip") { print("skipping STAC schema validation: \(out)"); return nil }
        return (p.terminationStatus, out)
    }

    @Test func cardValidatesAgainstTheSchemas() throws {
        let r = try SharedServer.fake.request("GET", "/v1/domains/syn/stac")
        #expect(r.status == 200 && r.header("Content-Type") == "application/geo+json")
        let props = try #require(r.json["properties"] as? [String: Any])
        #expect(props["mlm:tasks"] as? [String] == ["semantic-segmentation"])
        let output = try #require((props["mlm:output"] as? [[String: Any]])?.first)
        let classes = try #require(output["classification:classes"] as? [[String: Any]])
        #expect(classes.map { $0["name"] as? String } == ["class_0", "class_1", "class_2"])
        #expect(classes.allSatisfy { ($0["color_hint"] as? String)?.count == 6 })
        let input = try #require((props["mlm:input"] as? [[String: Any]])?.first)
        #expect((input["input"] as? [String: Any])?["shape"] as? [Int] == [-1, 4, 224, 224])
        if let (status, out) = try check(r.body) {
            #expect(status == 0, "\(out)")
            #expect(out.contains("valid") && !out.contains("INVALID"))
        }
        // The checker does reject a broken card (no mlm:tasks).
        var broken = r.json
        var p = props
        p["mlm:tasks"] = nil
        broken["properties"] = p
        if let (status, out) = try check(try JSONSerialization.data(withJSONObject: broken)) {
            #expect(status == 1 && out.contains("INVALID"), "\(out)")
        }
        #expect(try SharedServer.fake.request("GET", "/v1/domains/nope/stac").status == 404)
    }
}
