// libFuzzer entry for the safetensors header validator; compiled with the SpectralXCheckpoint sources
// by Fuzz/run.sh. Every entry the validator accepts must lie inside the buffer: reading its bytes
// must not fault.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func spectralxFuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    guard let header = try? SafeTensorsHeader(fileBytes: raw, maxHeaderSize: 1 << 16) else { return 0 }
    var checksum: UInt8 = 0
    for e in header.entries {
        let start = header.dataStart + e.byteRange.lowerBound
        precondition(start >= 0 && start + e.byteRange.count <= size, "accepted entry \(e.name) outside the file")
        if e.byteRange.count > 0 { checksum &+= raw[start] &+ raw[start + e.byteRange.count - 1] }
    }
    _ = checksum
    return 0
}
