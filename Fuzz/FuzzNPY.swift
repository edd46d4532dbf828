// libFuzzer entry for the NumPy .npy parser; compiled with the SpectralXRaster sources by Fuzz/run.sh.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func spectralxFuzzNPY(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    if size % 4 == 1, let s = try? NpyScene(data: Data(raw), limits: .strict) {
        _ = try? s.read(PixelWindow(x: s.width / 3, y: s.height / 3, width: max(1, s.width / 2), height: max(1, s.height / 2)))
        return 0
    }
    if let a = try? NpyArray.decode(raw, limits: .strict) {
        _ = a.toFloat32()
        _ = a.toInt64()
    }
    return 0
}
