/// TIFF predictors: 2 = horizontal differencing of integer samples (done on host-order values),
/// 3 = floating-point predictor (bytes of each row split into MSB-first planes, then byte
/// differencing). `samplesPerPixel` is the stride between neighbours in a row (1 for planar 2).
enum Predictor {
    /// Undoes predictor 2 in place on host-order samples of `bytesPerSample` width.
    static func undoHorizontal(_ buf: UnsafeMutableRawBufferPointer, rows: Int, rowSamples: Int, stride: Int, bytesPerSample: Int) {
        switch bytesPerSample {
        case 1: accumulate(buf, UInt8.self, rows, rowSamples, stride)
        case 2: accumulate(buf, UInt16.self, rows, rowSamples, stride)
        case 4: accumulate(buf, UInt32.self, rows, rowSamples, stride)
        default: accumulate(buf, UInt64.self, rows, rowSamples, stride)
        }
    }

    @inline(__always)
    private static func accumulate<T: FixedWidthInteger>(_ buf: UnsafeMutableRawBufferPointer, _: T.Type, _ rows: Int, _ rowSamples: Int, _ stride: Int) {
        let p = buf.baseAddress!.assumingMemoryBound(to: T.self)
        for r in 0..<rows {
            let row = p + r * rowSamples
            if stride == 1 {
                var prev = row[0]
                for i in 1..<max(rowSamples, 1) { prev = prev &+ row[i]; row[i] = prev }
            } else {
                var i = stride
                while i < rowSamples { row[i] = row[i] &+ row[i - stride]; i += 1 }
            }
        }
    }

    /// Applies predictor 2 in place (writer side), on host-order samples.
    static func applyHorizontal(_ buf: UnsafeMutableRawBufferPointer, rows: Int, rowSamples: Int, stride: Int, bytesPerSample: Int) {
        switch bytesPerSample {
        case 1: difference(buf, UInt8.self, rows, rowSamples, stride)
        case 2: difference(buf, UInt16.self, rows, rowSamples, stride)
        case 4: difference(buf, UInt32.self, rows, rowSamples, stride)
        default: difference(buf, UInt64.self, rows, rowSamples, stride)
        }
    }

    private static func difference<T: FixedWidthInteger>(_ buf: UnsafeMutableRawBufferPointer, _: T.Type, _ rows: Int, _ rowSamples: Int, _ stride: Int) {
        let p = buf.baseAddress!.assumingMemoryBound(to: T.self)
        for r in 0..<rows {
            let row = p + r * rowSamples
            var i = rowSamples - 1
            while i >= stride { row[i] = row[i] &- row[i - stride]; i -= 1 }
        }
    }

    /// Undoes predictor 3 in place; the result is host-order (little-endian) samples.
    static func undoFloatingPoint(_ buf: UnsafeMutableRawBufferPointer, rows: Int, rowSamples: Int, stride: Int, bytesPerSample bps: Int) {
        let rowBytes = rowSamples * bps
        guard rowBytes > 0 else { return }
        var tmp = [UInt8](repeating: 0, count: rowBytes)
        let base = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
        tmp.withUnsafeMutableBufferPointer { t in
            let tp = t.baseAddress!
            for r in 0..<rows {
                let row = base + r * rowBytes
                var i = stride
                while i < rowBytes { row[i] = row[i] &+ row[i - stride]; i += 1 }
                tp.update(from: row, count: rowBytes)
                for s in 0..<rowSamples {
                    for b in 0..<bps { row[s * bps + b] = tp[(bps - b - 1) * rowSamples + s] }
                }
            }
        }
    }

    /// Applies predictor 3 in place to host-order samples (writer side).
    static func applyFloatingPoint(_ buf: UnsafeMutableRawBufferPointer, rows: Int, rowSamples: Int, stride: Int, bytesPerSample bps: Int) {
        let rowBytes = rowSamples * bps
        guard rowBytes > 0 else { return }
        var tmp = [UInt8](repeating: 0, count: rowBytes)
        let base = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
        tmp.withUnsafeMutableBufferPointer { t in
            let tp = t.baseAddress!
            for r in 0..<rows {
                let row = base + r * rowBytes
                for s in 0..<rowSamples {
                    for b in 0..<bps { tp[(bps - b - 1) * rowSamples + s] = row[s * bps + b] }
                }
                row.update(from: tp, count: rowBytes)
                var i = rowBytes - 1
                while i >= stride { row[i] = row[i] &- row[i - stride]; i -= 1 }
            }
        }
    }

    /// Reverses the byte order of every `bytesPerSample`-wide sample in place.
    static func byteSwap(_ buf: UnsafeMutableRawBufferPointer, count: Int, bytesPerSample: Int) {
        guard let b = buf.baseAddress else { return }
        switch bytesPerSample {
        case 2: let p = b.assumingMemoryBound(to: UInt16.self); for i in 0..<count { p[i] = p[i].byteSwapped }
        case 4: let p = b.assumingMemoryBound(to: UInt32.self); for i in 0..<count { p[i] = p[i].byteSwapped }
        case 8: let p = b.assumingMemoryBound(to: UInt64.self); for i in 0..<count { p[i] = p[i].byteSwapped }
        default: break
        }
    }
}
