// libFuzzer entry for the TIFF/GeoTIFF parser and decoder; compiled together with the
// SpectralXRaster sources by Fuzz/run.sh (no package import: same module).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func spectralxFuzzTIFF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let d = Data(bytes: data, count: size)
    if size % 4 == 1 {
        // Windowed reading (block cache, internal mask IFD) as the scene pipeline does it.
        if let s = try? TIFFScene(data: d, limits: .strict, cacheBytes: 1 << 16) {
            let w = PixelWindow(x: s.width / 3, y: s.height / 3, width: max(1, s.width / 2), height: max(1, s.height / 2))
            _ = try? s.read(w)
            _ = try? s.readMask(w)
        }
        return 0
    }
    if size % 4 == 2 {
        // Read by range (header pieces fetched on demand, blocks fetched per window), tiny first read.
        if let s = try? TIFFScene(source: DataByteSource(d), limits: .strict, cacheBytes: 1 << 16, firstRead: 64) {
            let w = PixelWindow(x: s.width / 3, y: s.height / 3, width: max(1, s.width / 2), height: max(1, s.height / 2))
            _ = try? s.read(w)
            _ = try? s.readMask(w)
        }
        return 0
    }
    if let reader = try? TIFFReader(data: d, limits: .strict) {
        if size % 4 == 3 && reader.info.bands > 1 {
            // Also cover band subsets and the concurrent decoder.
            _ = try? reader.read(bands: 1..<reader.info.bands, threads: 2)
        } else {
            _ = try? reader.read()
        }
    }
    return 0
}
