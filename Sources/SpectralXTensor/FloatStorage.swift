import CSpectralXKernels
import Foundation

/// A contiguous float32 buffer, either owned (64-byte aligned, for activations and derived weights) or
/// borrowed from a longer-lived owner such as a memory-mapped checkpoint.
///
/// `@unchecked Sendable` because the buffer follows a write-once discipline: only the code that
/// allocates a storage writes it, before handing the tensor to anyone else; from then on it is read-only.
/// Borrowed storage (mapped weights) is read-only from the start. Kernels never write into a tensor they
/// did not allocate.
public final class FloatStorage: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int
    private let owner: AnyObject?
    private let owned: Bool

    /// Allocates `count` floats, zero-filled.
    public convenience init(count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: 0, count: max(count, 1))
    }

    /// Allocates `count` floats without clearing them, for buffers the caller overwrites completely.
    /// `hugePages`: 2 MiB-aligned with transparent huge pages asked for, for long-lived buffers streamed
    /// whole on every use (packed weights: fewer TLB misses, 512× fewer page faults when written).
    public init(uninitializedCount count: Int, hugePages: Bool = false) {
        precondition(count >= 0)
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let huge = hugePages && bytes >= 4 << 20
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: huge ? 2 << 20 : 64)
        if huge { sx_advise_huge_pages(raw, bytes) }
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        self.owner = nil
        self.owned = true
    }

    /// Wraps memory owned by `owner` (kept alive for the lifetime of this storage). Never written.
    public init(borrowing pointer: UnsafePointer<Float>, count: Int, owner: AnyObject) {
        self.base = UnsafeMutablePointer(mutating: pointer)
        self.count = count
        self.owner = owner
        self.owned = false
    }

    /// For borrowed storage (a read-only file mapping, the only kind there is: `CheckpointBinding`):
    /// drops the pages lying wholly inside this buffer from the process's resident set
    /// (`madvise(MADV_DONTNEED)`); a later read faults them in again from the file. Used once a weight has
    /// been copied into a packed form, so the process does not hold it twice. Does nothing for owned
    /// storage, whose contents it would erase.
    public func releaseResidentPages() {
        guard !owned else { return }
        #if os(Linux)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let end = (Int(bitPattern: base + count)) / page * page
        if end > start, let p = UnsafeMutableRawPointer(bitPattern: start) { _ = madvise(p, end - start, Int32(MADV_DONTNEED)) }
        #endif
    }

    /// true for storage borrowed from a mapping (see ``releaseResidentPages()``).
    public var isBorrowed: Bool { !owned }

    deinit {
        if owned { UnsafeMutableRawPointer(base).deallocate() }
    }
}
