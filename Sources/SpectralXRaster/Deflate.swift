import CZlib

/// zlib/Deflate (TIFF compression 8 and 32946) with bounded output: inflation stops once the
/// expected block size is produced, so a deflate bomb costs at most `capacity` bytes.
enum Deflate {
    /// A reusable inflate stream (one per decoding worker): saves zlib's per-block state and
    /// window allocations. The z_stream lives at a fixed heap address because zlib keeps a
    /// pointer back to it.
    final class Inflater {
        private let strm: UnsafeMutablePointer<z_stream>
        private var initialized = false

        init() {
            strm = .allocate(capacity: 1)
            strm.initialize(to: z_stream())
        }

        deinit {
            if initialized { inflateEnd(strm) }
            strm.deinitialize(count: 1)
            strm.deallocate()
        }

        func inflate(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws -> Int {
            if initialized {
                guard inflateReset(strm) == Z_OK else { throw RasterError.decompressionFailed(codec: "Deflate", reason: "inflateReset failed") }
            } else {
                let rc = inflateInit_(strm, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
                guard rc == Z_OK else { throw RasterError.decompressionFailed(codec: "Deflate", reason: "inflateInit failed (\(rc))") }
                initialized = true
            }
            return try Deflate.run(strm, src, dst)
        }
    }

    /// Inflates `src` into `dst` (capacity = dst.count) with a fresh stream. Returns the number of bytes produced.
    static func inflate(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws -> Int {
        try Inflater().inflate(src, into: dst)
    }

    /// Drives an initialised stream until `dst` is full, the stream ends or the input runs out.
    private static func run(_ strm: UnsafeMutablePointer<z_stream>, _ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer) throws -> Int {
        guard dst.count > 0 else { return 0 }
        var produced = 0
        var consumed = 0
        // zlib counts in UInt32: feed and drain in chunks below 4 GiB.
        let chunk = Int(UInt32.max / 2)
        while produced < dst.count {
            let inAvail = min(src.count - consumed, chunk)
            let outAvail = min(dst.count - produced, chunk)
            strm.pointee.next_in = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: Bytef.self).advanced(by: consumed))
            strm.pointee.avail_in = uInt(inAvail)
            strm.pointee.next_out = dst.baseAddress!.assumingMemoryBound(to: Bytef.self).advanced(by: produced)
            strm.pointee.avail_out = uInt(outAvail)
            let r = CZlib.inflate(strm, Z_NO_FLUSH)
            let usedIn = inAvail - Int(strm.pointee.avail_in), madeOut = outAvail - Int(strm.pointee.avail_out)
            consumed += usedIn
            produced += madeOut
            if r == Z_STREAM_END { break }
            if r == Z_BUF_ERROR || (r == Z_OK && usedIn == 0 && madeOut == 0) {
                break  // input exhausted (or no progress possible)
            }
            if r != Z_OK {
                let msg = strm.pointee.msg.map { String(cString: $0) } ?? "code \(r)"
                throw RasterError.decompressionFailed(codec: "Deflate", reason: msg)
            }
        }
        return produced
    }

    /// zlib-wrapped Deflate of `src` (what TIFF readers expect for compression 8).
    static func deflate(_ src: UnsafeRawBufferPointer, level: Int32 = 6) throws -> [UInt8] {
        let bound = Int(compressBound(uLong(src.count)))
        var out = [UInt8](repeating: 0, count: bound)
        var destLen = uLongf(bound)
        let rc = out.withUnsafeMutableBytes { o in
            compress2(o.baseAddress!.assumingMemoryBound(to: Bytef.self), &destLen,
                      src.baseAddress?.assumingMemoryBound(to: Bytef.self) ?? UnsafePointer(bitPattern: 1)!, uLong(src.count), level)
        }
        guard rc == Z_OK else { throw RasterError.decompressionFailed(codec: "Deflate", reason: "compress2 failed (\(rc))") }
        out.removeLast(bound - Int(destLen))
        return out
    }
}
