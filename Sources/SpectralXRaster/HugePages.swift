#if canImport(Glibc)
import Glibc
#endif

/// Asks Linux for transparent huge pages on a large freshly allocated buffer (as NumPy does).
/// Faulting in a multi-GB raster with 4 KiB pages spends most of the decode time in the kernel's
/// per-page zeroing and bookkeeping; 2 MiB pages cut that by ~10×. A no-op elsewhere or when the
/// range is too small; failure is harmless.
@inline(__always) func adviseHugePages(_ base: UnsafeMutableRawPointer, _ count: Int) {
    #if os(Linux)
    let huge = 2 << 20
    guard count >= 2 * huge else { return }
    let start = (Int(bitPattern: base) + huge - 1) & ~(huge - 1)
    let end = (Int(bitPattern: base) + count) & ~(huge - 1)
    guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
    _ = madvise(p, end - start, MADV_HUGEPAGE)
    #endif
}
