import Foundation
import SpectralXSupport

/// A memory-mapped, fully validated safetensors file.
///
/// Keep the object alive for as long as any pointer obtained from it is in use: pointers point
/// into the mapping (or into owned aligned copies) that are released in `deinit`. The model binds
/// its weights by `entry.name` (without any `model.` prefix) and holds a reference to the file.
///
/// `@unchecked Sendable`: every stored property is immutable after `init`; the mapping is
/// read-only and the aligned copies are written only during `init`, so sharing across threads is
/// safe.
public final class SafeTensorsFile: @unchecked Sendable {
    public let url: URL
    public let header: SafeTensorsHeader
    private let mapping: MappedFile
    /// Owned 4-byte-aligned copies of F32 tensors whose bytes are misaligned in the mapping.
    private let alignedCopies: [String: UnsafeMutableRawPointer]

    /// Maps and validates `url`; throws `CheckpointError` naming the problem on any malformed input.
    public init(url: URL, maxHeaderSize: Int = SafeTensorsHeader.defaultMaxHeaderSize) throws(CheckpointError) {
        self.url = url
        let mapping: MappedFile
        do { mapping = try MappedFile(path: url.path) } catch { throw CheckpointError(error) }
        self.mapping = mapping
        let header = try SafeTensorsHeader(fileBytes: mapping.bytes, maxHeaderSize: maxHeaderSize)
        self.header = header
        var copies: [String: UnsafeMutableRawPointer] = [:]
        if let base = mapping.baseAddress {
            for e in header.entries where e.dtype == .f32 && !e.byteRange.isEmpty {
                let src = base + header.dataStart + e.byteRange.lowerBound
                if Int(bitPattern: src) % MemoryLayout<Float>.alignment != 0 {
                    let dst = UnsafeMutableRawPointer.allocate(byteCount: e.byteRange.count, alignment: 64)
                    dst.copyMemory(from: src, byteCount: e.byteRange.count)
                    copies[e.name] = dst
                }
            }
        }
        alignedCopies = copies
    }

    public convenience init(path: String, maxHeaderSize: Int = SafeTensorsHeader.defaultMaxHeaderSize) throws(CheckpointError) {
        try self.init(url: URL(fileURLWithPath: path), maxHeaderSize: maxHeaderSize)
    }

    deinit {
        for p in alignedCopies.values { p.deallocate() }
    }

    /// Entries in file order.
    public var entries: [SafeTensorsEntry] { header.entries }
    /// The `__metadata__` map.
    public var metadata: [String: String] { header.metadata }
    /// Tensor names (normalised, without `model.`) in file order.
    public var names: [String] { header.entries.map(\.name) }
    /// Total file size in bytes.
    public var fileSize: Int { mapping.size }

    /// Looks a tensor up by name, with or without the `model.` prefix.
    public func entry(named name: String) -> SafeTensorsEntry? { header.entry(named: name) }

    /// The tensor's raw little-endian bytes, in place in the mapping.
    public func rawBytes(_ name: String) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard let e = header.entry(named: name) else { throw .tensorNotFound(name) }
        return rawBytes(of: e)
    }

    /// Raw bytes of an entry obtained from this file.
    public func rawBytes(of e: SafeTensorsEntry) -> UnsafeRawBufferPointer {
        guard let base = mapping.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + header.dataStart + e.byteRange.lowerBound, count: e.byteRange.count)
    }

    /// Pointer to an F32 tensor's elements (nil if the name is unknown or the dtype is not F32).
    /// Points into the mapping when aligned, otherwise into an owned aligned copy.
    public func float32Pointer(_ name: String) -> UnsafePointer<Float>? {
        guard let e = header.entry(named: name), e.dtype == .f32 else { return nil }
        if let copy = alignedCopies[e.name] {
            return UnsafePointer(copy.assumingMemoryBound(to: Float.self))
        }
        guard let base = mapping.baseAddress else { return nil }
        let p = base + header.dataStart + e.byteRange.lowerBound
        // The alignment check in init guarantees this (non-empty tensors); empty ones are never read.
        return p.assumingMemoryBound(to: Float.self)
    }

    /// The F32 tensor as a buffer, with typed errors for a missing tensor or a wrong dtype.
    public func float32Buffer(_ name: String) throws(CheckpointError) -> UnsafeBufferPointer<Float> {
        guard let e = header.entry(named: name) else { throw .tensorNotFound(name) }
        guard e.dtype == .f32 else { throw .dtypeMismatch(key: e.name, expected: "F32", actual: e.dtype.rawValue) }
        guard let p = float32Pointer(name) else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: p, count: e.elementCount)
    }

    /// The F32 tensor as a buffer after checking its shape (what a layer binding wants).
    public func float32Buffer(_ name: String, shape: [Int]) throws(CheckpointError) -> UnsafeBufferPointer<Float> {
        guard let e = header.entry(named: name) else { throw .tensorNotFound(name) }
        guard e.shape == shape else { throw .shapeMismatch(key: e.name, expected: shape, actual: e.shape) }
        return try float32Buffer(name)
    }

    /// A copy of an F32 tensor's values.
    public func floats(_ name: String) throws(CheckpointError) -> [Float] {
        Array(try float32Buffer(name))
    }

    /// A copy of an I64 tensor's values (e.g. BatchNorm `num_batches_tracked`).
    public func int64Values(_ name: String) throws(CheckpointError) -> [Int64] {
        guard let e = header.entry(named: name) else { throw .tensorNotFound(name) }
        guard e.dtype == .i64 else { throw .dtypeMismatch(key: e.name, expected: "I64", actual: e.dtype.rawValue) }
        let raw = rawBytes(of: e)
        return (0..<e.elementCount).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
    }
}
