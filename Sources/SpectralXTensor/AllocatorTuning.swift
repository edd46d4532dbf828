#if canImport(CMalloc) && os(Linux)
import CMalloc
#endif

/// Keeps freed activation buffers in the heap for reuse.
///
/// A forward pass allocates and frees tens of buffers of 1–30 MB. glibc serves those with fresh
/// `mmap`s and unmaps them on free, so every forward pays the kernel's page faults and page clearing
/// again (≈3 % of a forward in profiles). Raising the mmap and trim thresholds lets the heap reuse them.
///
/// One arena for all threads: a worker thread's own arena gets a new heap for a large buffer (the
/// convolutions' per-worker column panels, 5–20 MB) and glibc unmaps a secondary heap as soon as it is
/// wholly free, whatever the trim threshold, so every product faulted its panels in again (≈750 page
/// faults per image at batch 1; 2–7 % of the forward's CPU time went to clearing pages on a VM whose host
/// backs re-touched memory lazily). The trim threshold is at its maximum because at batch 4 the heap top
/// freed after a pass exceeded 1 GiB and was trimmed every time. Measured with `spectralx bench`'s
/// `minor_page_faults_per_image`: batch 4 2920 → 25–103, batch 1 94–951 (not all traced). Large
/// buffers are few, and small allocations come from glibc's per-thread cache without the arena lock.
/// Call once at process start, before any thread allocates (the CLI does); it only affects this
/// process's allocator.
public enum AllocatorTuning {
    public static func retainLargeAllocations() {
        #if canImport(CMalloc) && os(Linux)
        _ = mallopt(M_ARENA_MAX, 1)
        _ = mallopt(M_MMAP_THRESHOLD, 512 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
        #endif
    }
}
