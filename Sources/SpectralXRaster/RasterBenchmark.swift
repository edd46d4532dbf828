import Foundation

/// Decode-throughput measurement for `spectralx bench` and the raster benchmarks: how fast the
/// reader turns a (Geo)TIFF into native samples.
public enum RasterBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var threads: Int
        /// Bytes of decoded pixels per iteration (width·height·bands·bytesPerSample).
        public var decodedBytes: Int
        /// Best wall time of one decode, in seconds (header parse + decode, file already cached).
        public var seconds: Double
        /// Median wall time over the iterations.
        public var medianSeconds: Double
        public var iterations: Int
        public var info: TIFFImageInfo
        public var megabytesPerSecond: Double { Double(decodedBytes) / 1e6 / seconds }
        public var description: String {
            String(format: "%dx%dx%d %@ c%d p%d %@: %.1f MB decoded in %.3f s (median %.3f s over %d) = %.1f MB/s, %d thread(s)",
                   info.width, info.height, info.bands, info.sampleType.description, Int(info.compression), info.predictor,
                   info.isTiled ? "tiled" : "stripped", Double(decodedBytes) / 1e6, seconds, medianSeconds, iterations, megabytesPerSecond, threads)
        }
    }

    /// Decodes the file `iterations` times and reports the best and median times. Memory: one
    /// decoded raster at a time (released between iterations).
    public static func decode(path: String, iterations: Int = 3, threads: Int = 1, limits: RasterLimits = .default) throws -> Result {
        var times: [Double] = []
        var bytes = 0
        var info: TIFFImageInfo?
        for _ in 0..<max(1, iterations) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let reader = try TIFFReader(path: path, limits: limits)
            let raster = try reader.read(threads: threads)
            let t1 = DispatchTime.now().uptimeNanoseconds
            times.append(Double(t1 - t0) / 1e9)
            bytes = raster.data.count
            info = reader.info
        }
        let sorted = times.sorted()
        return Result(threads: threads, decodedBytes: bytes, seconds: sorted[0], medianSeconds: sorted[sorted.count / 2], iterations: times.count, info: info!)
    }

    /// `(bytes, seconds)` form: decoded bytes and best time of one decode.
    public static func decodeBenchmark(path: String, iterations: Int = 3, threads: Int = 1) throws -> (bytes: Int, seconds: Double) {
        let r = try decode(path: path, iterations: iterations, threads: threads)
        return (r.decodedBytes, r.seconds)
    }
}
