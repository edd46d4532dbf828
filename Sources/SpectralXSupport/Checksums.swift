import CZlib

/// CRC-32 (IEEE 802.3, the checksum of ZIP entries and PNG chunks), computed by zlib.
public enum CRC32 {
    /// The CRC-32 of `data`; pass a previous result as `initial` to continue over a split buffer.
    public static func checksum(_ data: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt32 {
        var c = UInt(initial)
        forEachChunk(data) { c = crc32(c, $0, $1) }
        return UInt32(truncatingIfNeeded: c)
    }

    public static func checksum<C: Collection>(_ bytes: C, initial: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        bytes.withContiguousStorageIfAvailable { checksum(UnsafeRawBufferPointer($0), initial: initial) }
            ?? Array(bytes).withUnsafeBytes { checksum($0, initial: initial) }
    }
}

/// Adler-32 (RFC 1950, the trailer of a zlib stream), computed by zlib.
public enum Adler32 {
    /// The Adler-32 of `data`; pass a previous result as `initial` to continue (1 starts afresh).
    public static func checksum(_ data: UnsafeRawBufferPointer, initial: UInt32 = 1) -> UInt32 {
        var a = UInt(initial)
        forEachChunk(data) { a = adler32(a, $0, $1) }
        return UInt32(truncatingIfNeeded: a)
    }

    public static func checksum<C: Collection>(_ bytes: C, initial: UInt32 = 1) -> UInt32 where C.Element == UInt8 {
        bytes.withContiguousStorageIfAvailable { checksum(UnsafeRawBufferPointer($0), initial: initial) }
            ?? Array(bytes).withUnsafeBytes { checksum($0, initial: initial) }
    }
}

/// zlib takes a 32-bit length: feeds `data` in pieces of at most 1 GiB (none for an empty buffer).
private func forEachChunk(_ data: UnsafeRawBufferPointer, _ body: (UnsafePointer<Bytef>, uInt) -> Void) {
    guard let base = data.baseAddress, !data.isEmpty else { return }
    var offset = 0
    while offset < data.count {
        let n = min(data.count - offset, 1 << 30)
        body((base + offset).assumingMemoryBound(to: Bytef.self), uInt(n))
        offset += n
    }
}
