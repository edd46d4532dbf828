#if canImport(CMalloc) && os(Linux)
import CMalloc
#endif

/// Keeps freed activation buffers in the heap for reuse.
///
/// A forward pass allocates and frees tens of buffers of 1–30 MB. glibc serves those with fresh
/// `mmap`s and unmaps them on free, so every forward pays the kernel's page faults and page clearing
/// again (≈3 % of a forward in profiles). Raising the mmap and trim thresholds lets the heap reuse them.
/// Call once at process start (the CLI does); it only affects this process's allocator.
public enum AllocatorTuning {
    public static func retainLargeAllocations() {
        #if canImport(CMalloc) && os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 512 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
        #endif
    }
}
