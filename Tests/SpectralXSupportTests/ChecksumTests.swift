import Foundation
import SpectralXSupport
import Testing

@Suite struct ChecksumTests {
    @Test func crc32KnownValues() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let first = CRC32.checksum(long[0..<333])
        #expect(CRC32.checksum(long[333...], initial: first) == CRC32.checksum(long))
    }

    @Test func adler32KnownValues() {
        #expect(Adler32.checksum([UInt8]()) == 1)
        #expect(Adler32.checksum(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(Adler32.checksum(Array("123456789".utf8)) == 0x091E_01DE)
        let long = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        #expect(Adler32.checksum(long[50_000...], initial: Adler32.checksum(long[..<50_000])) == Adler32.checksum(long))
    }
}
