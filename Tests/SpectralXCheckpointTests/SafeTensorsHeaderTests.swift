import Foundation
import SpectralXCheckpoint
import Testing

/// Builds a safetensors byte image: 8-byte LE length, header text (space-padded to 8), data.
func safetensorsImage(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil, pad: Bool = true) -> [UInt8] {
    var h = Array(header.utf8)
    if pad { while h.count % 8 != 0 { h.append(0x20) } }
    let n = declaredLength ?? UInt64(h.count)
    var out = (0..<8).map { UInt8(truncatingIfNeeded: n >> (UInt64($0) * 8)) }
    out += h
    out += data
    return out
}

func parseHeader(_ bytes: [UInt8], maxHeaderSize: Int = SafeTensorsHeader.defaultMaxHeaderSize) throws(CheckpointError) -> SafeTensorsHeader {
    do {
        return try bytes.withUnsafeBytes { try SafeTensorsHeader(fileBytes: $0, maxHeaderSize: maxHeaderSize) }
    } catch let e as CheckpointError {
        throw e
    } catch {
        fatalError("unexpected error type \(error)")
    }
}

func expectError(_ expected: CheckpointError, _ bytes: [UInt8], maxHeaderSize: Int = SafeTensorsHeader.defaultMaxHeaderSize,
                 sourceLocation: SourceLocation = #_sourceLocation)
{
    do {
        _ = try parseHeader(bytes, maxHeaderSize: maxHeaderSize)
        Issue.record("expected \(expected), parsing succeeded", sourceLocation: sourceLocation)
    } catch {
        #expect(error == expected, sourceLocation: sourceLocation)
        #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
    }
}

@Suite struct SafeTensorsHeaderTests {
    let okHeader = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}"#

    @Test func validFileParses() throws {
        let h = try parseHeader(safetensorsImage(okHeader, data: [UInt8](repeating: 0, count: 16)))
        #expect(h.entries.map(\.name) == ["a", "b"])
        #expect(h.entries[0].shape == [2] && h.entries[0].dtype == .f32 && h.entries[0].byteRange == 0..<8)
        #expect(h.entries[1].shape == [] && h.entries[1].elementCount == 1)
        #expect(h.metadata == ["format": "pt"])
        #expect(h.dataStart % 8 == 0)
    }

    @Test func truncatedFile() {
        expectError(.fileTooSmall(size: 0), [])
        expectError(.fileTooSmall(size: 5), [1, 0, 0, 0, 0])
    }

    @Test func headerLengthPastEndOfFile() {
        expectError(.headerPastEndOfFile(length: 1000, fileSize: 8 + 8), safetensorsImage("{}", declaredLength: 1000))
        expectError(.headerPastEndOfFile(length: 1 << 40, fileSize: 16), safetensorsImage("{}", declaredLength: 1 << 40),
                    maxHeaderSize: Int.max)
    }

    @Test func headerLengthOverLimit() {
        expectError(.headerTooLarge(length: UInt64.max, limit: SafeTensorsHeader.defaultMaxHeaderSize),
                    safetensorsImage("{}", declaredLength: UInt64.max))
        expectError(.headerTooLarge(length: 24, limit: 8), safetensorsImage(#"{"__metadata__":{}}"#), maxHeaderSize: 8)
    }

    @Test func badUTF8AndBadJSON() {
        expectError(.headerNotUTF8, safetensorsImage("{\"\u{FF}\":1}").enumerated().map { $0.offset == 10 ? 0xFF : $0.element })
        do {
            _ = try parseHeader(safetensorsImage(#"{"a": {"dtype": "F32",}"#))
            Issue.record("bad JSON accepted")
        } catch {
            guard case .headerInvalidJSON = error else { Issue.record("wrong error \(error)"); return }
        }
        expectError(.headerNotObject, safetensorsImage("[1,2]"))
        do {
            _ = try parseHeader(safetensorsImage(String(repeating: "[", count: 100_000)))
            Issue.record("deep nesting accepted")
        } catch {
            guard case .headerInvalidJSON = error else { Issue.record("wrong error \(error)"); return }
        }
    }

    @Test func badDType() {
        expectError(.invalidDType(key: "w", dtype: "F8"),
                    safetensorsImage(#"{"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}"#, data: [0]))
    }

    @Test func shapeAndByteRangeMismatch() {
        expectError(.byteCountMismatch(key: "w", expected: 24, actual: 20),
                    safetensorsImage(#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, data: .init(repeating: 0, count: 24)))
        expectError(.invalidShape(key: "w", reason: "negative dimension -2"),
                    safetensorsImage(#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: .init(repeating: 0, count: 8)))
        expectError(.invalidShape(key: "w", reason: "element count overflows"),
                    safetensorsImage(#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#))
        expectError(.invalidShape(key: "w", reason: "dimension is not an integer"),
                    safetensorsImage(#"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#))
        expectError(.invalidDataOffsets(key: "w", reason: "begin 8 > end 0"),
                    safetensorsImage(#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: .init(repeating: 0, count: 8)))
        expectError(.invalidDataOffsets(key: "w", reason: "offsets must be non-negative integers"),
                    safetensorsImage(#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[-1,0]}}"#))
        expectError(.missingField(key: "w", field: "data_offsets"),
                    safetensorsImage(#"{"w":{"dtype":"F32","shape":[0]}}"#))
        expectError(.entryNotObject(key: "w"), safetensorsImage(#"{"w":[1]}"#))
    }

    @Test func rangePastEndOfData() {
        expectError(.rangeOutOfBounds(key: "w", end: 16, dataSize: 12),
                    safetensorsImage(#"{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#, data: .init(repeating: 0, count: 12)))
    }

    @Test func overlappingRangesRejected() {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectError(.overlappingRanges(first: "a", second: "b"), safetensorsImage(h, data: .init(repeating: 0, count: 12)))
        // A range nested inside an earlier longer one.
        let h2 = #"{"big":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},"x":{"dtype":"U8","shape":[2],"data_offsets":[8,10]},"y":{"dtype":"U8","shape":[1],"data_offsets":[12,13]}}"#
        expectError(.overlappingRanges(first: "big", second: "x"), safetensorsImage(h2, data: .init(repeating: 0, count: 16)))
    }

    @Test func nonAscendingOffsetsAreFine() throws {
        let h = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#
        let header = try parseHeader(safetensorsImage(h, data: .init(repeating: 0, count: 8)))
        #expect(header.entries.map(\.name) == ["a", "b", "e"])  // file order = data order
        #expect(header.entry(named: "e")?.byteRange == 4..<4)
    }

    @Test func duplicatesPrefixesAndMetadata() throws {
        expectError(.duplicateKey("a"), safetensorsImage(
            #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
            data: [0, 0]))
        expectError(.prefixCollision(key: "a"), safetensorsImage(
            #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"model.a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
            data: [0, 0]))
        expectError(.invalidMetadata(reason: "value of 'n' is not a string"), safetensorsImage(#"{"__metadata__":{"n":1}}"#))
        let h = try parseHeader(safetensorsImage(#"{"model.head.bias":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}"#, data: [1, 0, 1]))
        #expect(h.entries[0].name == "head.bias" && h.entries[0].storedName == "model.head.bias")
        #expect(h.entry(named: "model.head.bias") == h.entry(named: "head.bias"))
    }

    @Test func randomCorruptionNeverCrashes() {
        // Mutate a valid image byte by byte; every outcome must be a value or a typed error.
        let base = safetensorsImage(okHeader, data: [UInt8](repeating: 7, count: 16))
        var rng = SplitMix(state: 12345)
        var failures = 0
        let iterations = Int(ProcessInfo.processInfo.environment["SPECTRALX_FUZZ_ITERATIONS"] ?? "") ?? 3000
        for _ in 0..<iterations {
            var bytes = base
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 5 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            do { _ = try parseHeader(bytes) } catch { failures += 1 }
        }
        #expect(failures > 0)
    }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= WeightGenerator.gamma
        return WeightGenerator.mix(state)
    }
}
