// libFuzzer entry for the multipart/form-data parser; compiled with the codec files of SpectralXHTTP
// by Fuzz/run.sh. Seeds use the boundary "spectralx-fuzz-boundary".
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func spectralxFuzzMultipart(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Data(bytes: data, count: size)
    if let parts = try? MultipartFormData.parse(body, boundary: "spectralx-fuzz-boundary") {
        for p in parts { _ = (p.name, p.filename, p.contentType, p.body.count) }
    }
    return 0
}
