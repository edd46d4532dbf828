import Foundation
import SpectralXCheckpoint
import SpectralXCheckpointImport
import SpectralXSupport

/// Test fixtures: the committed copies next to this file, and the shared fixture folder
/// (`../shared` from the package root, or `$SPECTRALX_SHARED`) when present.
enum Fixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    static var sharedFixtures: URL? {
        let env = ProcessInfo.processInfo.environment["SPECTRALX_SHARED"].map { URL(fileURLWithPath: $0) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates = [env, root.deletingLastPathComponent().appendingPathComponent("shared")].compactMap { $0 }
        return candidates.map { $0.appendingPathComponent("fixtures") }
            .first { FileManager.default.fileExists(atPath: $0.path) }
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static func temporaryDirectory(_ tag: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("spectralx-import-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Writes a stored (uncompressed) ZIP like torch.save does: 64-byte aligned data via a padding
/// extra field, optionally with forced ZIP64 records (central extra fields + ZIP64 end record).
final class ZipBuilder {
    private let handle: FileHandle
    private var offset = 0
    private var central: [UInt8] = []
    private var count = 0
    let zip64: Bool

    init(path: String, zip64: Bool = false) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        self.zip64 = zip64
    }

    private func emit(_ b: [UInt8]) throws {
        try handle.write(contentsOf: b)
        offset += b.count
    }

    /// Adds an entry whose data is produced in pieces by `chunks` (so gigabytes never sit in memory).
    func add(_ name: String, size: Int, crc: UInt32, chunks: (_ write: ([UInt8]) throws -> Void) throws -> Void) throws {
        let nameBytes = Array(name.utf8)
        let localStart = offset
        var pad = (64 - (localStart + 30 + nameBytes.count + 4) % 64) % 64
        if pad < 0 { pad += 64 }
        var local: [UInt8] = []
        local.le32(0x0403_4B50); local.le16(20); local.le16(0); local.le16(0); local.le16(0); local.le16(0x21)
        local.le32(crc); local.le32(UInt32(size)); local.le32(UInt32(size))
        local.le16(UInt16(nameBytes.count)); local.le16(UInt16(4 + pad))
        local += nameBytes
        local.le16(0x4246); local.le16(UInt16(pad)); local += [UInt8](repeating: 0x5A, count: pad)  // "FB" padding, as torch
        try emit(local)
        var written = 0
        try chunks { piece in
            written += piece.count
            try self.emit(piece)
        }
        precondition(written == size)

        var c: [UInt8] = []
        c.le32(0x0201_4B50); c.le16(45); c.le16(45); c.le16(0); c.le16(0); c.le16(0); c.le16(0x21)
        c.le32(crc)
        if zip64 {
            c.le32(0xFFFF_FFFF); c.le32(0xFFFF_FFFF)
        } else {
            c.le32(UInt32(size)); c.le32(UInt32(size))
        }
        c.le16(UInt16(nameBytes.count)); c.le16(zip64 ? 28 : 0); c.le16(0); c.le16(0); c.le16(0); c.le32(0)
        c.le32(zip64 ? 0xFFFF_FFFF : UInt32(localStart))
        c += nameBytes
        if zip64 {
            c.le16(1); c.le16(24); c.le64(UInt64(size)); c.le64(UInt64(size)); c.le64(UInt64(localStart))
        }
        central += c
        count += 1
    }

    func add(_ name: String, _ data: [UInt8]) throws {
        let crc = data.withUnsafeBytes { CRC32.checksum($0) }
        try add(name, size: data.count, crc: crc) { write in try write(data) }
    }

    func finish() throws {
        let cdStart = offset
        try emit(central)
        if zip64 {
            let recordStart = offset
            var r: [UInt8] = []
            r.le32(0x0606_4B50); r.le64(44); r.le16(45); r.le16(45); r.le32(0); r.le32(0)
            r.le64(UInt64(count)); r.le64(UInt64(count)); r.le64(UInt64(central.count)); r.le64(UInt64(cdStart))
            r.le32(0x0706_4B50); r.le32(0); r.le64(UInt64(recordStart)); r.le32(1)
            try emit(r)
        }
        var e: [UInt8] = []
        e.le32(0x0605_4B50); e.le16(0); e.le16(0)
        e.le16(zip64 ? 0xFFFF : UInt16(count)); e.le16(zip64 ? 0xFFFF : UInt16(count))
        e.le32(zip64 ? 0xFFFF_FFFF : UInt32(central.count)); e.le32(zip64 ? 0xFFFF_FFFF : UInt32(cdStart)); e.le16(0)
        try emit(e)
        try handle.close()
    }
}

extension [UInt8] {
    mutating func le16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    mutating func le32(_ v: UInt32) { for i in 0..<4 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func le64(_ v: UInt64) { for i in 0..<8 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
}

/// Emits pickle opcodes the way torch.save's protocol-2 pickler does.
struct PickleBuilder {
    var bytes: [UInt8] = [0x80, 2]
    private var nextMemo: UInt32 = 0

    mutating func op(_ b: UInt8) { bytes.append(b) }
    mutating func ops(_ b: [UInt8]) { bytes += b }
    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        op(0x58); bytes.le32(UInt32(u.count)); bytes += u
    }
    mutating func int(_ v: Int) {
        if v >= 0, v < 256 { ops([0x4B, UInt8(v)]) } else if v >= 0, v < 65536 { op(0x4D); bytes.le16(UInt16(v)) } else if
            let i = Int32(exactly: v)
        {
            op(0x4A); bytes.le32(UInt32(bitPattern: i))
        } else {
            ops([0x8A, 8]); bytes.le64(UInt64(bitPattern: Int64(v)))  // LONG1
        }
    }
    mutating func float(_ d: Double) {
        op(0x47)
        for i in (0..<8).reversed() { bytes.append(UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64(i)))) }
    }
    mutating func global(_ module: String, _ name: String) { op(0x63); bytes += Array("\(module)\n\(name)\n".utf8) }
    /// BINPUT/LONG_BINPUT of the top of the stack; returns the memo index.
    @discardableResult mutating func put() -> UInt32 {
        let i = nextMemo
        nextMemo += 1
        if i < 256 { ops([0x71, UInt8(i)]) } else { op(0x72); bytes.le32(i) }
        return i
    }
    mutating func get(_ i: UInt32) { if i < 256 { ops([0x68, UInt8(i)]) } else { op(0x6A); bytes.le32(i) } }
    mutating func intTuple(_ v: [Int]) {
        if v.isEmpty { op(0x29); return }
        op(0x28); for x in v { int(x) }; op(0x74)
    }
    /// `_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())`
    mutating func tensor(storageClass: String, key: String, numel: Int, offset: Int = 0, shape: [Int], stride: [Int]? = nil) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28)
        op(0x28); string("storage"); global("torch", storageClass); string(key); string("cpu"); int(numel); op(0x74)
        op(0x51)  // BINPERSID
        int(offset); intTuple(shape); intTuple(stride ?? TorchTensor.contiguousStrides(shape)); op(0x89)
        global("collections", "OrderedDict"); op(0x29); op(0x52)
        op(0x74); op(0x52)
    }
    mutating func stop() { op(0x2E) }
}
