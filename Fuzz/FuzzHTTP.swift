// libFuzzer entry for the HTTP/1.1 request codec (HTTPRequestParser); compiled with the codec files of
// SpectralXHTTP by Fuzz/run.sh. The input is fed twice — whole, and split at a point taken from its
// first byte — and both runs must not trap; the parser's own limits keep memory bounded.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func spectralxFuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = HTTPServerLimits(maxRequestLineLength: 512, maxHeaderBytes: 2048, maxHeaderCount: 32, maxBodySize: 4096)
    let split = size > 0 ? Int(bytes[0]) % (size + 1) : 0
    for chunks in [[bytes[...]], [bytes[..<split], bytes[split...]]] {
        var parser = HTTPRequestParser(limits: limits)
        loop: for chunk in chunks {
            parser.append(chunk)
            for _ in 0..<10_000 {
                do {
                    guard try parser.next() != nil else { break }
                } catch {
                    break loop
                }
            }
        }
    }
    return 0
}
