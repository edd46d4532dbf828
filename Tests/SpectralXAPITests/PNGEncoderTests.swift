import Foundation
import SpectralXAPI
import SpectralXRaster
import Testing

@Suite("PNG preview encoder")
struct PNGEncoderTests {
    /// Walks the chunks, checks every CRC, and inflates the stored deflate blocks by hand.
    @Test func chunksAndStoredBlocksAreValid() throws {
        let w = 300, h = 250  // (w+1)·h > 65535: several stored blocks
        let labels = (0..<(w * h)).map { UInt8($0 % 7) }
        let png = PNGEncoder.encodeIndexed(labels, width: w, height: h, palette: ClassPalette.colors(count: 7))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        var i = 8
        var types: [String] = [], idat = Data()
        let bytes = [UInt8](png)
        func be32(_ o: Int) -> UInt32 { bytes[o..<(o + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        while i < bytes.count {
            let n = Int(be32(i))
            let typeAndBody = Array(bytes[(i + 4)..<(i + 8 + n)])
            #expect(crc32(typeAndBody) == be32(i + 8 + n))
            let type = String(decoding: typeAndBody.prefix(4), as: UTF8.self)
            types.append(type)
            if type == "IDAT" { idat.append(contentsOf: typeAndBody.dropFirst(4)) }
            i += 12 + n
        }
        #expect(types == ["IHDR", "PLTE", "IDAT", "IEND"])
        // zlib header, then stored blocks: BFINAL/BTYPE byte, LEN, NLEN, data.
        let z = [UInt8](idat)
        #expect(z[0] == 0x78 && (UInt16(z[0]) << 8 | UInt16(z[1])) % 31 == 0)
        var raw: [UInt8] = [], p = 2, final = false
        while !final {
            final = z[p] & 1 == 1
            #expect(z[p] >> 1 == 0, "not a stored block")
            let len = Int(z[p + 1]) | Int(z[p + 2]) << 8, nlen = Int(z[p + 3]) | Int(z[p + 4]) << 8
            #expect(len == (~nlen & 0xFFFF))
            raw += z[(p + 5)..<(p + 5 + len)]
            p += 5 + len
        }
        #expect(raw.count == (w + 1) * h)
        for y in 0..<h {
            #expect(raw[y * (w + 1)] == 0)
            #expect(Array(raw[(y * (w + 1) + 1)..<((y + 1) * (w + 1))]) == Array(labels[(y * w)..<((y + 1) * w)]))
        }
    }

    func crc32(_ b: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for x in b {
            c ^= UInt32(x)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return ~c
    }
}
