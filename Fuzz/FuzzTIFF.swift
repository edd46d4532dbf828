// libFuzzer entry for the TIFF/GeoTIFF parser and decoder; compiled together with the
// SpectralXRaster sources by Fuzz/run.sh (no package import: same module).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func spectralxFuzzTIFF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let d = Data(bytes: data, count: size)
    if let reader = try? TIFFReader(data: d, limits: .strict) {
        _ = try? reader.read()
    }
    return 0
}
