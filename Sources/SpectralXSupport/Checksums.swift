import CZlib

/// CRC-32 (IEEE 802.3, the checksum of ZIP entries and PNG chunks), computed by zlib.
public enum CRC32 {
    /// The CRC-32 of `data`; pass a previous result as `initial` to continue over a split buffer.
    public static func checksum(_ data: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt32 {
        zlibChecksum(data, initial: initial, crc32)
    }

    public static func checksum<C: Collection>(_ bytes: C, initial: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        withBytes(of: bytes) { checksum($0, initial: initial) }
    }
}

/// Adler-32 (RFC 1950, the trailer of a zlib stream), computed by zlib.
public enum Adler32 {
    /// The Adler-32 of `data`; pass a previous result as `initial` to continue (1 starts afresh).
    public static func checksum(_ data: UnsafeRawBufferPointer, initial: UInt32 = 1) -> UInt32 {
        zlibChecksum(data, initial: initial, adler32)
    }

    public static func checksum<C: Collection>(_ bytes: C, initial: UInt32 = 1) -> UInt32 where C.Element == UInt8 {
        withBytes(of: bytes) { checksum($0, initial: initial) }
    }
}

/// Runs zlib's `crc32` or `adler32` over `data`. zlib takes a 32-bit length, so the data goes in
/// pieces of at most 1 GiB (none for an empty buffer, which leaves `initial` as it is).
private func zlibChecksum(_ data: UnsafeRawBufferPointer, initial: UInt32,
                          _ update: (uLong, UnsafePointer<Bytef>?, uInt) -> uLong) -> UInt32 {
    guard let base = data.baseAddress, !data.isEmpty else { return initial }
    var value = uLong(initial)
    var offset = 0
    while offset < data.count {
        let n = min(data.count - offset, 1 << 30)
        value = update(value, (base + offset).assumingMemoryBound(to: Bytef.self), uInt(n))
        offset += n
    }
    return UInt32(truncatingIfNeeded: value)
}

/// The bytes of a collection as one buffer (copied only when they are not contiguous).
private func withBytes<C: Collection, R>(of bytes: C, _ body: (UnsafeRawBufferPointer) -> R) -> R where C.Element == UInt8 {
    bytes.withContiguousStorageIfAvailable { body(UnsafeRawBufferPointer($0)) } ?? Array(bytes).withUnsafeBytes(body)
}
