import Foundation
import Testing
import SpectralXRaster

/// Opt-in decode benchmark: `SPECTRALX_RASTER_BENCH=DIR swift test -c release --filter Benchmark`
/// after `python3 scripts/raster/make_bench_files.py DIR`. Without the variable it decodes a small
/// generated file once, so the API stays exercised.
@Suite struct BenchmarkTests {
    @Test func decodeThroughput() throws {
        if let dir = ProcessInfo.processInfo.environment["SPECTRALX_RASTER_BENCH"] {
            for f in ["tile32.tif", "tile32_tiled.tif", "s2_13band.tif", "s2_13band_deflate.tif"] where FileManager.default.fileExists(atPath: dir + "/" + f) {
                for threads in [1, 2] {
                    let r = try RasterBenchmark.decode(path: dir + "/" + f, iterations: f.hasPrefix("s2") ? 2 : 5, threads: threads)
                    print("RasterBenchmark \(f): \(r)")
                }
            }
            return
        }
        let dir = try makeTempDir("bench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try makeRaster(.uint16, width: 128, height: 128, bands: 4)
        try GeoTIFFWriter.write(r, to: dir + "/b.tif", options: TIFFWriteOptions(compression: .deflate, predictor: 2))
        let (bytes, secs) = try RasterBenchmark.decodeBenchmark(path: dir + "/b.tif", iterations: 1)
        #expect(bytes == 128 * 128 * 4 * 2 && secs > 0)
    }
}
