import Foundation
import SpectralXSupport

/// A minimal PNG writer for colour previews of label rasters: 8-bit indexed colour with a PLTE chunk,
/// the zlib stream made of stored (uncompressed) deflate blocks (no compressor; zlib's checksums).
/// Previews are for eyes, not for storage; label rasters for tools are GeoTIFF or NPY.
public enum PNGEncoder {
    /// Encodes `indices` (height × width, row-major) with `palette` (RGB triples, ≤ 256 entries).
    public static func encodeIndexed(_ indices: [UInt8], width: Int, height: Int, palette: [(UInt8, UInt8, UInt8)]) -> Data {
        precondition(indices.count == width * height && !palette.isEmpty && palette.count <= 256)
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var ihdr = Data()
        ihdr.appendBigEndian(UInt32(width))
        ihdr.appendBigEndian(UInt32(height))
        ihdr.append(contentsOf: [8, 3, 0, 0, 0])  // bit depth 8, colour type 3 (indexed), deflate, filter 0, no interlace
        appendChunk("IHDR", ihdr, to: &png)
        var plte = Data()
        for (r, g, b) in palette { plte.append(contentsOf: [r, g, b]) }
        appendChunk("PLTE", plte, to: &png)
        // Scanlines with filter byte 0.
        var raw = [UInt8]()
        raw.reserveCapacity((width + 1) * height)
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: indices[(y * width)..<((y + 1) * width)])
        }
        appendChunk("IDAT", zlibStored(raw), to: &png)
        appendChunk("IEND", Data(), to: &png)
        return png
    }

    /// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4), at most 65535 bytes each.
    static func zlibStored(_ data: [UInt8]) -> Data {
        var out = Data([0x78, 0x01])
        var offset = 0
        repeat {
            let n = min(65535, data.count - offset)
            let final: UInt8 = offset + n == data.count ? 1 : 0
            out.append(final)
            out.append(UInt8(n & 0xFF)); out.append(UInt8(n >> 8))
            out.append(UInt8(~n & 0xFF)); out.append(UInt8((~n >> 8) & 0xFF))
            out.append(contentsOf: data[offset..<(offset + n)])
            offset += n
        } while offset < data.count
        out.appendBigEndian(Adler32.checksum(data))
        return out
    }

    static func appendChunk(_ type: String, _ body: Data, to png: inout Data) {
        png.appendBigEndian(UInt32(body.count))
        var typed = Data(type.utf8)
        typed.append(body)
        png.append(typed)
        png.appendBigEndian(CRC32.checksum(typed))
    }
}

extension Data {
    mutating func appendBigEndian(_ v: UInt32) {
        append(contentsOf: [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)])
    }
}
