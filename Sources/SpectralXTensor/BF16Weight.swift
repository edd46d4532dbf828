import CSpectralXKernels
import Synchronization

/// An `nn.Linear` weight `(n, k)` rounded to bf16 once and packed for `bf16_gemm.c` (K pairs interleaved
/// for `vdpbf16ps`): `y = bf16(x)·bf16(W)ᵀ (+ b) (+ y)` with float32 accumulation, the activations rounded
/// as they are packed. Half the bytes of the float32 packed copy. Like ``PackedWeight`` an element's bits
/// depend neither on the batch nor on the split across threads, and every micro-kernel gives the same bits.
public struct PackedBF16Weight: Sendable {
    public let n: Int, k: Int
    let storage: BF16Storage

    /// The micro-kernel here: `SX_BF16_AVX512` (vdpbf16ps) or `SX_BF16_PORTABLE` (exact, slow).
    public static let level: Int32 = sx_bf16_gemm_level()
    /// true when the products run on BF16 instructions here.
    public static var isAccelerated: Bool { level == Int32(SX_BF16_AVX512.rawValue) }
    /// true when the CPU has AVX512_BF16, whatever `SPECTRALX_SIMD` says.
    static let cpuHasInstructions: Bool = sx_bf16_gemm_supported(Int32(SX_BF16_AVX512.rawValue)) != 0
    /// The micro-kernel's name ("avx512bf16", "portable").
    public static var kernelName: String { isAccelerated ? "avx512bf16" : "portable" }

    /// Rounds and packs `weight` (row-major `(n, k)`, row stride `ldw`), the panels split across the cores;
    /// nil when it is empty.
    public init?(weight: UnsafePointer<Float>, n: Int, k: Int, ldw: Int? = nil) {
        guard n > 0, k > 0 else { return nil }
        let ldw = ldw ?? k
        precondition(ldw >= k)
        self.n = n
        self.k = k
        storage = BF16Storage(count: sx_bf16_packed_weight_count(n, k))
        let panels = (n + PackedWeight.panelColumns - 1) / PackedWeight.panelColumns
        let w = SharedPointer(weight), p = SharedPointer(storage.base)
        Parallel.forRanges(panels, minChunk: 8) { r in sx_bf16_pack_weight(w.base, ldw, n, k, r.lowerBound, r.upperBound, p.base) }
    }

    /// Bytes of the packed copy.
    public var bytes: Int { storage.count * 2 }
    var panels: Int { (n + PackedWeight.panelColumns - 1) / PackedWeight.panelColumns }

    /// `y[r, 0..<n] = bf16(x[r, 0..<k])·bf16(W)ᵀ + bias (+ y[r, :] when accumulate)` for `rows` rows; strides
    /// `lda`, `ldc`. Split as ``PackedWeight/multiply(_:rows:lda:bias:accumulate:into:ldc:)`` splits: rows
    /// rounded and packed once by group ranges, then panel chunks handed out to the workers.
    public func multiply(_ x: UnsafePointer<Float>, rows: Int, lda: Int, bias: UnsafePointer<Float>?,
                         accumulate: Bool, into y: UnsafeMutablePointer<Float>, ldc: Int) {
        guard rows > 0 else { return }
        precondition(lda >= k && ldc >= n)
        let (n, k, panels, level) = (n, k, panels, Self.level)
        let chunks = PackedWeight.chunkCount(panels: panels, workers: GEMM.threads)
        let slices = min(GEMM.threads, chunks, rows * n * k < GEMM.splitThreshold ? 1 : chunks)
        let groups = sx_packed_row_groups(rows)
        let apack = UnsafeMutablePointer<UInt16>.allocate(capacity: sx_bf16_packed_rows_count(rows, k))
        defer { apack.deallocate() }
        let px = SharedPointer(x), pa = SharedPointer(apack), py = SharedPointer(y), w = SharedPointer(storage.base)
        let b = bias.map { SharedPointer($0) }
        if slices <= 1 {
            sx_bf16_pack_rows(x, lda, rows, k, 0, groups, apack)
            let status = sx_bf16_gemm_panels_at(level, apack, rows, 0, groups, k, storage.base, n, 0, panels, bias,
                                                accumulate ? 1 : 0, y, ldc)
            precondition(status == 0, "sx_bf16_gemm_panels_at failed (\(status))")
            return
        }
        Parallel.perform(slices) { s in
            sx_bf16_pack_rows(px.base, lda, rows, k, s * groups / slices, (s + 1) * groups / slices, pa.base)
        }
        let next = ChunkCounter()
        Parallel.perform(slices) { _ in
            while true {
                let c = next.take()
                guard c < chunks else { return }
                let p = PackedWeight.chunk(c, of: chunks, panels: panels)
                let status = sx_bf16_gemm_panels_at(level, pa.base, rows, 0, groups, k, w.base, n, p.lowerBound, p.upperBound,
                                                    b?.base, accumulate ? 1 : 0, py.base, ldc)
                precondition(status == 0, "sx_bf16_gemm_panels_at failed (\(status))")
            }
        }
    }

    /// The whole product on one thread on the micro-kernel `level` (an `sx_bf16_level`): false when this CPU
    /// lacks it. For tests that the kernels give the same bits.
    public func multiplySerial(level: Int32, _ x: UnsafePointer<Float>, rows: Int, lda: Int, bias: UnsafePointer<Float>?,
                               accumulate: Bool, into y: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        sx_bf16_gemm_at(level, x, lda, rows, storage.base, n, k, bias, accumulate ? 1 : 0, y, ldc) == 0
    }

    /// `x` rounded to bf16 as the kernel rounds its operands (nearest even, denormals to zero), widened back.
    public static func rounded(_ x: Float) -> Float {
        var v = x, h: UInt16 = 0
        sx_bf16_from_float(&v, 1, &h)
        return Float(bitPattern: UInt32(h) << 16)
    }
}

/// The bf16 twin of ``FloatStorage``'s owned buffers: 64-byte aligned (2 MiB with huge pages when large).
///
/// `@unchecked Sendable` for FloatStorage's reason: write-once (filled by the initialiser of the weight that
/// allocates it, before anyone else sees it), read-only afterwards.
final class BF16Storage: @unchecked Sendable {
    let base: UnsafeMutablePointer<UInt16>
    let count: Int

    init(count: Int) {
        let bytes = max(count, 1) * 2
        let huge = bytes >= 4 << 20
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: huge ? 2 << 20 : 64)
        if huge { sx_advise_huge_pages(raw, bytes) }
        base = raw.bindMemory(to: UInt16.self, capacity: max(count, 1))
        self.count = count
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }
}
