import SpectralXCheckpoint
import SpectralXSupport

/// Read-only view of a ZIP archive's central directory over a memory-mapped file: the container
/// `torch.save` writes (entries stored uncompressed, data aligned to 64 bytes, ZIP64 records when
/// the archive passes 4 GiB).
///
/// Every offset and size read from the file is checked against the file size with overflow-checked
/// arithmetic before any byte it points at is touched, so a truncated or hostile archive yields an
/// `ImportError`, never a crash. Only stored entries can be read: deflate would need zlib, which
/// this target deliberately does not link.
public final class ZipArchive: Sendable {
    /// One central-directory record, with its data range resolved through the local header.
    public struct Entry: Sendable, Hashable {
        public let name: String
        /// 0 = stored, 8 = deflate, …
        public let method: UInt16
        public let flags: UInt16
        public let crc32: UInt32
        public let compressedSize: Int
        public let uncompressedSize: Int
        public let localHeaderOffset: Int
        /// Byte range of the (compressed) data inside the file.
        public let dataRange: Range<Int>
    }

    /// Hard bounds so a malicious directory cannot make us allocate without limit.
    public struct Limits: Sendable {
        public var maxEntries = 1_000_000
        public var maxNameLength = 4096
        public init() {}
    }

    public let file: MappedFile
    /// Entries in central-directory order.
    public let entries: [Entry]
    private let index: [String: Int]

    public var path: String { file.path }

    public convenience init(path: String, limits: Limits = Limits()) throws(ImportError) {
        let mapped: MappedFile
        do { mapped = try MappedFile(path: path) } catch { throw .checkpoint(CheckpointError(error)) }
        try self.init(file: mapped, limits: limits)
    }

    public init(file: MappedFile, limits: Limits = Limits()) throws(ImportError) {
        self.file = file
        let entries = try Self.readCentralDirectory(Reader(file.bytes), limits: limits)
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() {
            if index.updateValue(i, forKey: e.name) != nil {
                throw .zipCorrupt(reason: "entry '\(e.name)' appears twice")
            }
        }
        self.entries = entries
        self.index = index
    }

    public func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The bytes of a stored entry, valid while this archive is alive. CRC-32 is verified when
    /// `verifyCRC` is true (one pass over the data; catches bit rot and truncated copies).
    public func bytes(of entry: Entry, verifyCRC: Bool = false) throws(ImportError) -> UnsafeRawBufferPointer {
        guard entry.flags & 1 == 0 else { throw .encryptedEntry(entry.name) }
        guard entry.method == 0 else { throw .unsupportedCompression(entry: entry.name, method: entry.method) }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw .zipCorrupt(reason: "stored entry '\(entry.name)' has different compressed and uncompressed sizes")
        }
        let all = file.bytes
        let slice = UnsafeRawBufferPointer(rebasing: all[entry.dataRange])
        if verifyCRC {
            let actual = CRC32.checksum(slice)
            if actual != entry.crc32 { throw .crcMismatch(entry: entry.name, expected: entry.crc32, actual: actual) }
        }
        return slice
    }

    public func bytes(named name: String, verifyCRC: Bool = false) throws(ImportError) -> UnsafeRawBufferPointer {
        guard let e = entry(named: name) else { throw .zipEntryNotFound(name) }
        return try bytes(of: e, verifyCRC: verifyCRC)
    }

    // MARK: - parsing

    private static let eocdSignature: UInt32 = 0x0605_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4B50
    private static let centralSignature: UInt32 = 0x0201_4B50
    private static let localSignature: UInt32 = 0x0403_4B50

    private static func readCentralDirectory(_ r: Reader, limits: Limits) throws(ImportError) -> [Entry] {
        let size = r.count
        guard size >= 22 else { throw .notAZipArchive(reason: "\(size) bytes is shorter than an end-of-central-directory record") }
        // The EOCD record is the last 22 bytes plus a comment of at most 65535 bytes.
        var eocd = -1
        var p = size - 22
        let lowest = max(0, size - 22 - 0xFFFF)
        while p >= lowest {
            if try r.u32(p) == eocdSignature, try Int(r.u16(p + 20)) <= size - 22 - p { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw .notAZipArchive(reason: "no end-of-central-directory record") }

        let disk = try r.u16(eocd + 4), cdDisk = try r.u16(eocd + 6)
        var diskEntries = UInt64(try r.u16(eocd + 8))
        var totalEntries = UInt64(try r.u16(eocd + 10))
        var cdSize = UInt64(try r.u32(eocd + 12))
        var cdOffset = UInt64(try r.u32(eocd + 16))
        var multiDisk = disk != 0 || cdDisk != 0

        // ZIP64: a locator 20 bytes before the EOCD points at the ZIP64 end record.
        if eocd >= 20, try r.u32(eocd - 20) == zip64LocatorSignature {
            let recordOffset = try r.offset(r.u64(eocd - 12), what: "ZIP64 end record offset")
            guard recordOffset <= eocd - 20 - 56, try r.u32(recordOffset) == zip64EOCDSignature else {
                throw .zipCorrupt(reason: "ZIP64 locator points at byte \(recordOffset), which is no ZIP64 end record")
            }
            let locatorDisk = try r.u32(eocd - 16), diskCount = try r.u32(eocd - 4)
            let recordDisk = try r.u32(recordOffset + 16), recordCDDisk = try r.u32(recordOffset + 20)
            multiDisk = multiDisk || locatorDisk != 0 || diskCount > 1 || recordDisk != 0 || recordCDDisk != 0
            diskEntries = try r.u64(recordOffset + 24)
            totalEntries = try r.u64(recordOffset + 32)
            cdSize = try r.u64(recordOffset + 40)
            cdOffset = try r.u64(recordOffset + 48)
        } else if totalEntries == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            throw .zipCorrupt(reason: "end record needs ZIP64 values but there is no ZIP64 locator")
        }
        guard !multiDisk, diskEntries == totalEntries else {
            throw .notAZipArchive(reason: "multi-disk archives are not supported")
        }
        guard totalEntries <= UInt64(limits.maxEntries) else {
            throw .tooManyZipEntries(count: totalEntries, limit: limits.maxEntries)
        }
        let start = try r.offset(cdOffset, what: "central directory offset")
        let length = try r.offset(cdSize, what: "central directory size")
        let (cdEnd, o) = start.addingReportingOverflow(length)
        guard !o, cdEnd <= size else {
            throw .zipCorrupt(reason: "central directory [\(start), +\(length)) runs past the \(size)-byte file")
        }
        // Each central header is at least 46 bytes, which bounds the count by the directory size.
        guard totalEntries <= UInt64(length / 46) else {
            throw .zipCorrupt(reason: "\(totalEntries) entries cannot fit in a \(length)-byte central directory")
        }

        var entries: [Entry] = []
        entries.reserveCapacity(Int(totalEntries))
        var q = start
        for n in 0..<Int(totalEntries) {
            guard q <= cdEnd - 46, try r.u32(q) == centralSignature else {
                throw .zipCorrupt(reason: "central header \(n) at byte \(q) is missing or cut short")
            }
            let flags = try r.u16(q + 8)
            let method = try r.u16(q + 10)
            let crc = try r.u32(q + 16)
            var csize = UInt64(try r.u32(q + 20))
            var usize = UInt64(try r.u32(q + 24))
            let nameLen = Int(try r.u16(q + 28)), extraLen = Int(try r.u16(q + 30)), commentLen = Int(try r.u16(q + 32))
            var diskStart = UInt64(try r.u16(q + 34))
            var localOffset = UInt64(try r.u32(q + 42))
            let recordEnd = q + 46 + nameLen + extraLen + commentLen  // ≤ q + 46 + 3·65535: no overflow
            guard recordEnd <= cdEnd else { throw .zipCorrupt(reason: "central header \(n) runs past the directory") }
            guard nameLen <= limits.maxNameLength else { throw .zipCorrupt(reason: "entry name of \(nameLen) bytes") }
            let name = try r.string(q + 46, nameLen)

            // ZIP64 extended information (id 1): only the fields whose 32-bit value is saturated, in order.
            var e = q + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = try r.u16(e), len = Int(try r.u16(e + 2))
                guard e + 4 + len <= extraEnd else { throw .zipCorrupt(reason: "extra field of '\(name)' is cut short") }
                if id == 1 {
                    var f = e + 4
                    func next64() throws(ImportError) -> UInt64 {
                        guard f + 8 <= e + 4 + len else { throw .zipCorrupt(reason: "ZIP64 extra field of '\(name)' is too short") }
                        defer { f += 8 }
                        return try r.u64(f)
                    }
                    if usize == 0xFFFF_FFFF { usize = try next64() }
                    if csize == 0xFFFF_FFFF { csize = try next64() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next64() }
                    if diskStart == 0xFFFF {
                        guard f + 4 <= e + 4 + len else { throw .zipCorrupt(reason: "ZIP64 extra field of '\(name)' is too short") }
                        diskStart = UInt64(try r.u32(f))
                    }
                }
                e += 4 + len
            }
            guard diskStart == 0 else { throw .notAZipArchive(reason: "entry '\(name)' lives on another disk") }

            // The local header repeats the name and may carry its own (padding) extra field.
            let local = try r.offset(localOffset, what: "local header offset of '\(name)'")
            guard local <= size - 30, try r.u32(local) == localSignature else {
                throw .zipCorrupt(reason: "local header of '\(name)' at byte \(local) is missing")
            }
            let localNameLen = Int(try r.u16(local + 26)), localExtraLen = Int(try r.u16(local + 28))
            guard localNameLen == nameLen, try r.string(local + 30, localNameLen) == name else {
                throw .zipCorrupt(reason: "local header name differs from the central directory for '\(name)'")
            }
            let dataStart = local + 30 + localNameLen + localExtraLen
            let compressed = try r.offset(csize, what: "size of '\(name)'")
            let uncompressed = try r.offset(usize, what: "size of '\(name)'")
            let (dataEnd, o2) = dataStart.addingReportingOverflow(compressed)
            guard !o2, dataEnd <= size else {
                throw .zipCorrupt(reason: "data of '\(name)' (\(compressed) bytes at \(dataStart)) runs past the \(size)-byte file")
            }
            entries.append(Entry(name: name, method: method, flags: flags, crc32: crc, compressedSize: compressed,
                                 uncompressedSize: uncompressed, localHeaderOffset: local, dataRange: dataStart..<dataEnd))
            q = recordEnd
        }
        return entries
    }

    /// Bounds-checked little-endian reads; every failure is a typed truncation error.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
        var count: Int { bytes.count }

        func check(_ at: Int, _ n: Int) throws(ImportError) {
            guard at >= 0, n >= 0, at <= bytes.count, n <= bytes.count - at else {
                throw .zipCorrupt(reason: "read of \(n) bytes at \(at) is past the end of the \(bytes.count)-byte file")
            }
        }

        func u16(_ at: Int) throws(ImportError) -> UInt16 {
            try check(at, 2)
            return UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
        }

        func u32(_ at: Int) throws(ImportError) -> UInt32 {
            try check(at, 4)
            var v: UInt32 = 0
            for i in 0..<4 { v |= UInt32(bytes[at + i]) << (8 * UInt32(i)) }
            return v
        }

        func u64(_ at: Int) throws(ImportError) -> UInt64 {
            try check(at, 8)
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            return v
        }

        func string(_ at: Int, _ n: Int) throws(ImportError) -> String {
            try check(at, n)
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)]), as: UTF8.self)
        }

        /// A 64-bit file offset or size as Int, refused when it cannot lie inside this file.
        func offset(_ v: UInt64, what: String) throws(ImportError) -> Int {
            guard v <= UInt64(bytes.count) else {
                throw .zipCorrupt(reason: "\(what) \(v) is beyond the end of the \(bytes.count)-byte file")
            }
            return Int(v)
        }
    }
}
