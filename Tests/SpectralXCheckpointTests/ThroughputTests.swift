import Foundation
import SpectralXCheckpoint
import SpectralXSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Throughput figures (printed, loosely bounded): CPU time is reported next to wall time because
/// the build machine is shared.
@Suite struct ThroughputTests {
    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    @Test func sha256Throughput() {
        let n = 64 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 64)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0x5A)
        let c0 = Self.threadCPUSeconds()
        let d = SHA256.hash(UnsafeRawBufferPointer(buf))
        let cpu = Self.threadCPUSeconds() - c0
        print("SHA-256: \(String(format: "%.0f", Double(n) / cpu / 1e6)) MB/s per core (\(d.hex.prefix(8)))")
        #expect(cpu < 10)
    }

    @Test func generatorThroughput() {
        let n = 16 << 20
        var out = [Float](repeating: 0, count: n)
        let c0 = Self.threadCPUSeconds()
        out.withUnsafeMutableBufferPointer { WeightGenerator.fill($0, tensorSeed: 7, lo: -1, hi: 1) }
        let cpu = Self.threadCPUSeconds() - c0
        print("generator: \(String(format: "%.0f", Double(n) / cpu / 1e6)) M elements/s per core")
        #expect(out[n - 1] >= -1 && out[n - 1] < 1)
    }
}
