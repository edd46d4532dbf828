// libFuzzer entry for the NumPy .npy parser; compiled with the SpectralXRaster sources by Fuzz/run.sh.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func spectralxFuzzNPY(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    if let a = try? NpyArray.decode(raw, limits: .strict) {
        _ = a.toFloat32()
        _ = a.toInt64()
    }
    return 0
}
