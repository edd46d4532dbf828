import Dispatch
import Foundation
import SpectralXSupport

/// Streams tensors into a safetensors file without ever holding the whole file in memory.
///
/// Tensor bytes come from a closure that fills one buffer piece at a time (at most
/// `chunkByteLimit` bytes), so a 1.2 GB backbone needs one 64 MB buffer. The file is written to
/// a temporary file beside `<path>` and renamed into place only when complete (`AtomicFile`), so a
/// reader never sees a half-written file at the final path. Optionally each tensor's SHA-256 is computed on the way (in parallel
/// across the tensors of a chunk).
public struct SafeTensorsWriter: Sendable {
    /// A tensor to be written: name as stored, element type and shape.
    public struct Tensor: Sendable, Hashable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        public let byteCount: Int

        public init(name: String, dtype: SafeTensorsDType, shape: [Int]) throws(CheckpointError) {
            var n = 1
            for d in shape {
                guard d >= 0 else { throw .invalidShape(key: name, reason: "negative dimension \(d)") }
                let (p, o) = n.multipliedReportingOverflow(by: d)
                if o { throw .invalidShape(key: name, reason: "element count overflows") }
                n = p
            }
            let (b, o) = n.multipliedReportingOverflow(by: dtype.byteSize)
            if o { throw .invalidShape(key: name, reason: "byte count overflows") }
            self.name = name
            self.dtype = dtype
            self.shape = shape
            byteCount = b
        }
    }

    /// Fills `buffer` with the bytes [byteOffset, byteOffset + buffer.count) of tensor `tensorIndex`.
    public typealias Fill = (_ tensorIndex: Int, _ byteOffset: Int, _ buffer: UnsafeMutableRawBufferPointer) throws -> Void

    public let tensors: [Tensor]
    public let metadata: [(key: String, value: String)]
    /// Largest buffer handed to the fill closure (and the size of the one staging buffer).
    public var chunkByteLimit: Int = 64 << 20
    /// Durable write: fsync the temporary file before the rename and the directory after (survives a crash).
    public var synchronizeBeforeRename = true

    /// Tensors are written in the given order; metadata comes first in the header, in this order.
    public init(tensors: [Tensor], metadata: [(key: String, value: String)] = []) throws(CheckpointError) {
        var seen = Set<String>()
        for t in tensors where !seen.insert(t.name).inserted { throw .duplicateKey(t.name) }
        if seen.contains("__metadata__") { throw .invalidArgument("'__metadata__' cannot be a tensor name") }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The header JSON exactly as written: compact, `__metadata__` first, then the tensors in
    /// order, padded with spaces to a multiple of 8 (byte-compatible with Python's
    /// `json.dumps(header, separators=(",", ":"))`).
    public func headerBytes() -> [UInt8] {
        var s = "{"
        var first = true
        if !metadata.isEmpty {
            s += "\"__metadata__\":{"
            for (i, kv) in metadata.enumerated() {
                if i > 0 { s += "," }
                JSONValue.appendPythonQuoted(kv.key, to: &s)
                s += ":"
                JSONValue.appendPythonQuoted(kv.value, to: &s)
            }
            s += "}"
            first = false
        }
        var offset = 0
        for t in tensors {
            if !first { s += "," }
            first = false
            JSONValue.appendPythonQuoted(t.name, to: &s)
            s += ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
            s += "\"data_offsets\":[\(offset),\(offset + t.byteCount)]}"
            offset += t.byteCount
        }
        s += "}"
        var bytes = Array(s.utf8)
        while bytes.count % 8 != 0 { bytes.append(0x20) }
        return bytes
    }

    /// Size of the data section.
    public var dataByteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// Writes the file atomically and returns each tensor's SHA-256 (in tensor order) when
    /// `hashTensors` is true, else an empty array.
    @discardableResult
    public func write(to url: URL, hashTensors: Bool = true, fill: Fill) throws -> [SHA256Digest] {
        do {
            return try AtomicFile.write(to: url.path, durable: synchronizeBeforeRename, permissions: 0o644) { output in
                try writeContents(to: output, hashTensors: hashTensors, fill: fill)
            }
        } catch let e as FileSystemError {
            throw CheckpointError(e)
        }
    }

    /// Header and data into the temporary file; each tensor's digest when `hashTensors`.
    private func writeContents(to output: AtomicFile.Output, hashTensors: Bool, fill: Fill) throws -> [SHA256Digest] {
        let header = headerBytes()
        var prefix = [UInt8](repeating: 0, count: 8)
        let n = UInt64(header.count)
        for i in 0..<8 { prefix[i] = UInt8(truncatingIfNeeded: n >> (UInt64(i) * 8)) }
        try output.write(prefix + header)

        let limit = max(8, chunkByteLimit / 8 * 8)
        var states = (0..<(hashTensors ? tensors.count : 0)).map { _ in SHA256() }

        // Double buffering: while a background queue writes one staging buffer, the caller's
        // thread fills and hashes the other. `freeBuffers` counts buffers not owned by the queue.
        let staging = [UnsafeMutableRawBufferPointer.allocate(byteCount: limit, alignment: 64),
                       UnsafeMutableRawBufferPointer.allocate(byteCount: limit, alignment: 64)]
        defer { for b in staging { b.deallocate() } }
        let writeQueue = DispatchQueue(label: "SafeTensorsWriter.write")
        let freeBuffers = DispatchSemaphore(value: staging.count)
        let writeState = WriteState()
        var current = 0
        freeBuffers.wait()  // this thread owns exactly one buffer from here on
        defer {
            writeQueue.sync {}  // never free buffers or close the fd under a pending write
            freeBuffers.signal()  // balance: libdispatch traps on disposing a semaphore in use
        }

        // Pieces: (tensor, offset in tensor, length, offset in staging buffer), packed into chunks.
        var pieces: [(tensor: Int, offset: Int, length: Int, at: Int)] = []
        var used = 0
        func flush() throws {
            guard used > 0 else { return }
            let buffer = staging[current]
            if hashTensors {
                // Group pieces by tensor; different tensors hash concurrently.
                var groups: [[Int]] = []
                for (i, p) in pieces.enumerated() {
                    if let last = groups.last?.last, pieces[last].tensor == p.tensor {
                        groups[groups.count - 1].append(i)
                    } else {
                        groups.append([i])
                    }
                }
                let piecesCopy = pieces
                let groupsCopy = groups
                let base = DisjointAccess(UnsafeRawBufferPointer(buffer))  // read only
                states.withUnsafeMutableBufferPointer { st in
                    let stp = DisjointAccess(st)  // one tensor's state per group: disjoint
                    DispatchQueue.concurrentPerform(iterations: groupsCopy.count) { g in
                        for i in groupsCopy[g] {
                            let p = piecesCopy[i]
                            stp.pointer[p.tensor].update(
                                UnsafeRawBufferPointer(rebasing: base.pointer[p.at..<(p.at + p.length)]))
                        }
                    }
                }
            }
            // Hand the buffer to the queue (it owns it until it signals), continue in the other.
            let bytes = DisjointAccess(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
            writeQueue.async {
                if writeState.error == nil {
                    do { try output.write(bytes.pointer) } catch { writeState.error = error }
                }
                freeBuffers.signal()
            }
            pieces.removeAll(keepingCapacity: true)
            used = 0
            current = (current + 1) % staging.count
            freeBuffers.wait()  // after a write failure the queue skips writes; checked at the end
        }
        for (ti, t) in tensors.enumerated() {
            var off = 0
            while off < t.byteCount {
                if used == limit { try flush() }
                let len = min(t.byteCount - off, limit - used)
                let buf = UnsafeMutableRawBufferPointer(rebasing: staging[current][used..<(used + len)])
                try fill(ti, off, buf)
                pieces.append((ti, off, len, used))
                used += len
                off += len
            }
        }
        try flush()
        if let error = writeQueue.sync(execute: { writeState.error }) { throw error }

        if !hashTensors { return [] }
        return states.indices.map { states[$0].finalize() }
    }

    /// The background writer's first failure. `@unchecked Sendable`: `error` is only read and
    /// written on the writer's serial queue (queue confinement).
    private final class WriteState: @unchecked Sendable {
        var error: (any Error)?
    }
}
