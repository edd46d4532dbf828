import Foundation
import SpectralXCheckpoint
import SpectralXSupport
import Testing

@Suite struct SafeTensorsFileTests {
    @Test func writerReaderRoundTrip() throws {
        let dir = Fixtures.temporaryDirectory("roundtrip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("t.safetensors")
        let values: [Float] = (0..<1000).map { Float($0) * 0.5 - 7 }
        var writer = try SafeTensorsWriter(
            tensors: [try .init(name: "model.w", dtype: .f32, shape: [10, 100]),
                      try .init(name: "n", dtype: .i64, shape: []),
                      try .init(name: "h", dtype: .f16, shape: [3]),
                      try .init(name: "empty", dtype: .f32, shape: [0, 4])],
            metadata: [("format", "pt"), ("note", "µm \"quoted\"")])
        writer.chunkByteLimit = 48  // force many pieces and chunk boundaries inside tensors
        let digests = try writer.write(to: url) { i, offset, buffer in
            switch i {
            case 0:
                values.withUnsafeBytes { src in
                    buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + buffer.count)]))
                }
            case 1:
                withUnsafeBytes(of: Int64(45000).littleEndian) { buffer.copyMemory(from: $0) }
            default:
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
            .allSatisfy { !$0.contains(".tmp-") })  // no temporary file left

        let f = try SafeTensorsFile(url: url)
        #expect(f.names == ["w", "n", "h", "empty"])
        #expect(f.entries[0].storedName == "model.w")
        #expect(f.metadata == ["format": "pt", "note": "µm \"quoted\""])
        #expect(f.header.metadataPairs.map(\.key) == ["format", "note"])
        #expect(f.header.headerLength % 8 == 0)
        #expect(try f.floats("w") == values)
        #expect(try f.floats("model.w") == values)
        #expect(try f.int64Values("n") == [45000])
        #expect(f.float32Pointer("n") == nil)
        #expect(f.float32Pointer("missing") == nil)
        #expect(throws: CheckpointError.dtypeMismatch(key: "n", expected: "F32", actual: "I64")) { try f.float32Buffer("n") }
        #expect(throws: CheckpointError.tensorNotFound("zz")) { try f.rawBytes("zz") }
        #expect(throws: CheckpointError.shapeMismatch(key: "w", expected: [100, 10], actual: [10, 100])) {
            try f.float32Buffer("w", shape: [100, 10])
        }
        #expect(try f.float32Buffer("empty").count == 0)
        for (e, d) in zip(f.entries, digests) { #expect(SHA256.hash(f.rawBytes(of: e)) == d, "\(e.name)") }
        // The header is exactly Python's json.dumps(..., separators=(",", ":")) (ensure_ascii).
        let raw = try Data(contentsOf: url)
        let headerText = String(decoding: raw[8..<(8 + f.header.headerLength)], as: UTF8.self)
        #expect(headerText.hasPrefix(#"{"__metadata__":{"format":"pt","note":"\u00b5m \"quoted\""},"model.w":{"dtype":"F32","shape":[10,100],"data_offsets":[0,4000]}"#))
    }

    @Test func failedWriteLeavesNothingBehind() throws {
        let dir = Fixtures.temporaryDirectory("failwrite")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("t.safetensors")
        struct Boom: Error {}
        let writer = try SafeTensorsWriter(tensors: [try .init(name: "w", dtype: .f32, shape: [4])])
        #expect(throws: Boom.self) { try writer.write(to: url) { _, _, _ in throw Boom() } }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
            .allSatisfy { !$0.contains(".tmp-") })  // no temporary file left
        #expect(throws: CheckpointError.duplicateKey("a")) {
            try SafeTensorsWriter(tensors: [try .init(name: "a", dtype: .u8, shape: [1]), try .init(name: "a", dtype: .u8, shape: [1])])
        }
    }

    @Test func misalignedFloatTensorIsCopiedAligned() throws {
        let dir = Fixtures.temporaryDirectory("misaligned")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.safetensors")
        let floats: [Float] = [1.5, -2.25, 3e-3]
        var data: [UInt8] = [9]
        floats.withUnsafeBytes { data += $0 }
        let image = safetensorsImage(
            #"{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"f":{"dtype":"F32","shape":[3],"data_offsets":[1,13]}}"#,
            data: data)
        try Data(image).write(to: url)
        let f = try SafeTensorsFile(url: url)
        let p = try #require(f.float32Pointer("f"))
        #expect(Int(bitPattern: p) % 4 == 0)
        #expect(Array(UnsafeBufferPointer(start: p, count: 3)) == floats)
        #expect(Array(try f.rawBytes("b")) == [9])
    }

    @Test func fileLevelErrors() throws {
        let dir = Fixtures.temporaryDirectory("fileerrors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.safetensors")
        try Data().write(to: empty)
        #expect(throws: CheckpointError.fileTooSmall(size: 0)) { try SafeTensorsFile(url: empty) }
        let truncated = dir.appendingPathComponent("trunc.safetensors")
        let full = safetensorsImage(#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: .init(repeating: 0, count: 16))
        try Data(full.prefix(full.count - 3)).write(to: truncated)
        #expect(throws: CheckpointError.rangeOutOfBounds(key: "w", end: 16, dataSize: 13)) { try SafeTensorsFile(url: truncated) }
        try Data(full.prefix(20)).write(to: truncated)
        #expect(throws: CheckpointError.headerPastEndOfFile(length: UInt64(full.count - 8 - 16), fileSize: 20)) {
            try SafeTensorsFile(url: truncated)
        }
        do {
            _ = try SafeTensorsFile(url: dir.appendingPathComponent("nope.safetensors"))
            Issue.record("missing file opened")
        } catch {
            guard case .cannotOpen = error else { Issue.record("wrong error \(error)"); return }
        }
    }

    @Test func bundleLooksUpAcrossFilesAndRejectsDuplicates() throws {
        let dir = Fixtures.temporaryDirectory("bundle")
        defer { try? FileManager.default.removeItem(at: dir) }
        func make(_ name: String, _ keys: [String]) throws -> SafeTensorsFile {
            let url = dir.appendingPathComponent(name)
            let w = try SafeTensorsWriter(tensors: try keys.map { try .init(name: $0, dtype: .f32, shape: [2]) })
            try w.write(to: url) { i, _, b in
                let v: [Float] = [Float(i), Float(i) + 0.5]
                v.withUnsafeBytes { b.copyMemory(from: $0) }
            }
            return try SafeTensorsFile(url: url)
        }
        let a = try make("a.safetensors", ["x", "y"]), b = try make("b.safetensors", ["model.z"])
        let bundle = try WeightBundle(files: [a, b])
        #expect(bundle.names == ["x", "y", "z"])
        #expect(Array(try bundle.float32Buffer("z")) == [0, 0.5])
        #expect(Array(try bundle.float32Buffer("model.y", shape: [2])) == [1, 1.5])
        #expect(bundle.file(containing: "z") === b)
        #expect(throws: CheckpointError.tensorNotFound("w")) { try bundle.rawBytes("w") }
        let c = try make("c.safetensors", ["model.x"])
        #expect(throws: CheckpointError.duplicateKey("x")) { try WeightBundle(files: [a, c]) }
    }
}
