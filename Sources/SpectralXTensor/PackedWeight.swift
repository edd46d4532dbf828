import CSpectralXKernels
import Dispatch
import Synchronization

/// An `nn.Linear` weight `(n, k)` packed once at load for the micro-kernels of
/// `CSpectralXKernels/packed_gemm.c` (AVX-512, AVX2, or the portable one), which then compute
/// `y = x·Wᵀ (+ b) (+ y)` without repacking the weight on every call. Where a layer is not packed at load
/// (``isPreferred`` false) its products pack the weight per call (``GEMM``) and give the same bits: only
/// memory and time differ. The packed copy is the size of the weight, columns rounded up to 16, in huge pages.
public struct PackedWeight: Sendable {
    public let n: Int, k: Int
    let storage: FloatStorage

    /// true when a vector micro-kernel runs here (AVX2 + FMA, `SPECTRALX_SIMD` not `generic`); elsewhere
    /// the portable one gives the same bits, slowly.
    public static let isAvailable: Bool = sx_packed_gemm_available() != 0
    /// The CPU's verdict, or `SPECTRALX_GEMM=mapped`'s.
    static let cpuPrefersPacked: Bool = sx_packed_gemm_preferred() != 0
    private static let optedIn = Atomic<Bool>(false)
    private static let environmentAsks: Bool = sx_packed_gemm_requested() == 1

    /// Lets ``isPreferred`` follow the CPU's verdict in this process; the CLI calls it at start, before
    /// any model loads. Opt-in rather than the library default because a packed copy is private
    /// anonymous memory (1.3 GB per loaded ViT-L) where the mapped weights are shared, reclaimable page
    /// cache: a process that loads many models at once (the test suite) would exhaust RAM.
    public static func useWhereFaster() { optedIn.store(true, ordering: .relaxed) }

    /// Overrides ``isPreferred`` for the models loaded inside `withValue` (a test loading one model on
    /// each path); nil: the process's choice.
    @TaskLocal public static var override: Bool?

    /// true when the frozen linears should be packed at load: on a CPU with a vector kernel, unless
    /// `SPECTRALX_GEMM=mapped`, when ``useWhereFaster()`` was called or `SPECTRALX_GEMM=packed` is set;
    /// ``override`` first. Never changes a result's bits.
    public static var isPreferred: Bool {
        if let forced = override { return forced }
        guard cpuPrefersPacked else { return false }
        return environmentAsks || optedIn.load(ordering: .relaxed)
    }
    /// The micro-kernel's instruction set here ("avx512", "avx2"), nil when unavailable.
    public static var kernelName: String? {
        switch sx_packed_gemm_level() {
        case Int32(SX_SIMD_AVX512.rawValue): "avx512"
        case Int32(SX_SIMD_AVX2.rawValue): "avx2"
        default: "portable"
        }
    }
    /// Columns per panel, the unit work is split by.
    static let panelColumns = Int(sx_packed_panel_columns())
    /// Panels of this weight.
    var panels: Int { (n + Self.panelColumns - 1) / Self.panelColumns }

    /// Packs `weight` (row-major `(n, k)`); nil when it is empty.
    public init?(weight: UnsafePointer<Float>, n: Int, k: Int) {
        guard n > 0, k > 0 else { return nil }
        self.n = n
        self.k = k
        storage = FloatStorage(uninitializedCount: sx_packed_weight_count(n, k), hugePages: true)
        sx_pack_weight(weight, n, k, storage.base)
    }

    /// How many chunks of panels a product split across `workers` cores is cut into: at most 16 panels a
    /// chunk (one K block of them, 256 KiB, stays in L2 while a row chunk of the other operand passes),
    /// at least two chunks per worker, never more chunks than panels. Chunk `c` holds panels
    /// ``chunk(_:of:panels:)``, all within one panel of each other. Why balanced: 16-or-fewer cut from the
    /// left made the 196 pixels of a 14² map chunks of 64, 64, 64 and 4 columns, one worker doing 128 of
    /// them. Which worker computes a column never changes its bits.
    static func chunkCount(panels: Int, workers: Int) -> Int {
        max(1, min(panels, max(2 * workers, (panels + 15) / 16)))
    }

    /// The panels of chunk `c` of `chunks`.
    static func chunk(_ c: Int, of chunks: Int, panels: Int) -> Range<Int> {
        (c * panels / chunks)..<((c + 1) * panels / chunks)
    }

    /// `y[r, 0..<n] = x[r, 0..<k]·Wᵀ + bias (+ y[r, :] when accumulate)` for `rows` rows; row strides
    /// `lda` and `ldc`. Split across ``GEMM/threads`` workers (the Dispatch workers of every other
    /// parallel loop: one threading model): the activation rows are packed once, by row groups, then
    /// each worker takes the next chunk of panels (``chunkCount(panels:workers:)``) until none are left. A dynamic split rather than one fixed
    /// slice per core, because on a shared VM one vCPU is often descheduled for milliseconds and a
    /// fixed half would leave the other core idle waiting for it.
    public func multiply(_ x: UnsafePointer<Float>, rows: Int, lda: Int, bias: UnsafePointer<Float>?,
                         accumulate: Bool, into y: UnsafeMutablePointer<Float>, ldc: Int) {
        guard rows > 0 else { return }
        precondition(lda >= k && ldc >= n)
        let chunks = Self.chunkCount(panels: panels, workers: GEMM.threads)
        let slices = min(GEMM.threads, chunks, rows * n * k < GEMM.splitThreshold ? 1 : chunks)
        let (n, k) = (n, k)
        if slices <= 1 {
            let status = sx_gemm_packed(x, lda, rows, storage.base, n, k, 0, panels, bias, accumulate ? 1 : 0, y, ldc)
            precondition(status == 0, "sx_gemm_packed failed (\(status)): out of memory for the activation block")
            return
        }
        let groups = sx_packed_row_groups(rows)
        let apack = UnsafeMutablePointer<Float>.allocate(capacity: sx_packed_rows_count(rows, k))
        defer { apack.deallocate() }
        let px = SharedPointer(x), pa = SharedPointer(apack), py = SharedPointer(y), w = SharedPointer(storage.base)
        let b = bias.map { SharedPointer($0) }
        Parallel.perform(slices) { s in
            sx_pack_rows(px.base, lda, rows, k, s * groups / slices, (s + 1) * groups / slices, pa.base)
        }
        let next = ChunkCounter()
        Parallel.perform(slices) { _ in
            while true {
                let c = next.take()
                guard c < chunks else { return }
                let p = Self.chunk(c, of: chunks, panels: panels)
                let status = sx_gemm_packed_panels(pa.base, rows, k, w.base, n, p.lowerBound, p.upperBound, b?.base, accumulate ? 1 : 0, py.base, ldc)
                precondition(status == 0, "sx_gemm_packed_panels failed (\(status))")
            }
        }
    }
}

extension PackedWeight {
    /// One thread, on the micro-kernel of `level` (`SX_SIMD_AVX2` or `SX_SIMD_AVX512`): false when this
    /// CPU lacks it. For tests that the two kernels give the same bits.
    public func multiplySerial(level: Int32, _ x: UnsafePointer<Float>, rows: Int, lda: Int, bias: UnsafePointer<Float>?,
                               accumulate: Bool, into y: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        sx_gemm_packed_at(level, x, lda, rows, storage.base, n, k, 0, panels, bias, accumulate ? 1 : 0, y, ldc) == 0
    }
}

/// The next chunk index for workers sharing a product (each index handed out once).
final class ChunkCounter: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

/// The constant left operand A (`rows × columns`) of products `C = A·B` whose right operand B is an
/// activation: a convolution's weight against its `(in channels × pixels)` input, giving C in the
/// `(out channels × pixels)` layout the convolutions keep.
///
/// A is packed once as the row operand of the micro-kernels of `packed_gemm.c` (the roles of
/// ``PackedWeight`` swapped), and each call packs B's columns, panel chunk by panel chunk, on the worker
/// that multiplies them (one 16-float copy per row of a panel). One copy of the weight, and one operation
/// order for every element whatever the CPU, the split or the batch.
public struct ConstantMatrix: Sendable {
    public let rows: Int, columns: Int
    private let packed: FloatStorage

    /// Copies A (`rows × columns`, row stride `lda`) into the kernel's row layout.
    public init(_ a: UnsafePointer<Float>, rows: Int, columns: Int, lda: Int? = nil) {
        precondition(rows > 0 && columns > 0)
        let lda = lda ?? columns
        precondition(lda >= columns)
        self.rows = rows
        self.columns = columns
        packed = FloatStorage(uninitializedCount: sx_packed_rows_count(rows, columns), hugePages: true)
        sx_pack_rows(a, lda, rows, columns, 0, sx_packed_row_groups(rows), packed.base)
    }

    /// Panels of B the micro-kernel's loop nest keeps in L2 while a row chunk of A passes (SX_NCP in
    /// packed_gemm.c): up to this many, one pass over A computes the whole product.
    static let panelsPerPass = 16

    /// `C (rows × n) = A·B (+ C when accumulate)`, B `(columns × n)` with row stride `ldb`, C row stride `ldc`.
    /// Split across ``GEMM/threads`` workers when large; never call from inside a ``Parallel`` body.
    public func multiply(n: Int, b: UnsafePointer<Float>, ldb: Int, accumulate: Bool = false,
                         into c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard n > 0 else { return }
        precondition(ldb >= n && ldc >= n)
        let pb = SharedPointer(b)
        multiply(n: n, accumulate: accumulate, into: c, ldc: ldc) { j0, cols, r0, r1, panel in
            sx_pack_columns(pb.base + r0 * ldb + j0, ldb, r1 - r0, cols, panel)
        }
    }

    /// `C = A·B (+ C)` for a B that is never formed. `pack(j0, count, r0, r1,
    /// into)` writes rows `r0 ..< r1` of columns `j0 ..< j0 + count` of B in the layout of `sx_pack_columns`
    /// for those columns, from its K block at `r0` on (`r0` a multiple of the 256-deep block); an implicit
    /// im2col, for instance. Called on the workers: each packs the panels it then multiplies, or, when the
    /// output channels are split, K blocks of the one shared layout.
    public func multiply(n: Int, accumulate: Bool = false, into c: UnsafeMutablePointer<Float>, ldc: Int,
                         packing pack: @Sendable (_ j0: Int, _ count: Int, _ r0: Int, _ r1: Int,
                                                  _ into: UnsafeMutablePointer<Float>) -> Void) {
        guard n > 0 else { return }
        precondition(ldc >= n)
        let (m, k) = (rows, columns)
        let nr = PackedWeight.panelColumns
        // Panels of B packed and multiplied at a time: PackedWeight's chunks.
        let threads = GEMM.threads
        let panels = (n + nr - 1) / nr
        let chunks = PackedWeight.chunkCount(panels: panels, workers: threads)
        let width = (panels + chunks - 1) / chunks * nr   // the widest chunk
        let slices = min(threads, chunks, m * n * k < GEMM.splitThreshold ? 1 : chunks)
        let pa = SharedPointer(packed.base), pc = SharedPointer(c)
        let groups = sx_packed_row_groups(m)
        if panels <= Self.panelsPerPass && threads > 1 && m * n * k >= GEMM.splitThreshold && groups >= 2 * threads {
            // B is at most one pass of panels: packed once, the output channels (A's rows) split instead, so
            // each worker streams its half of A once against the same B in L2. Split by panels, every
            // chunk re-read the whole of A: the composed laterals at 14² (A 9·512 × 1024, 18.9 MB; B 196
            // pixels) read 75 MB of weights instead of 19, and F(4×4) at 56² (36 products of A 1 MB, B 196
            // tiles) 144 MB instead of 36. Also where the pixels are too few to split evenly (the PPM
            // bottleneck's Winograd: 16 tiles).
            let panel = UnsafeMutablePointer<Float>.allocate(capacity: sx_packed_weight_count(n, k))
            defer { panel.deallocate() }
            // B's K blocks are disjoint runs of the layout: packed by all workers (an implicit im2col of
            // HyperT-sized reductions took a millisecond on one core, e.g. the Are-adapter's 3×3/2 at 14²).
            let depth = sx_packed_block_depth(), blocks = (k + depth - 1) / depth, pp = SharedPointer(panel)
            Parallel.perform(blocks) { blk in
                let r0 = blk * depth
                pack(0, n, r0, min(k, r0 + depth), pp.base + r0 * panels * nr)
            }
            let pb = SharedPointer(panel), workers = threads
            Parallel.perform(workers) { s in
                let g0 = s * groups / workers, g1 = (s + 1) * groups / workers
                guard g0 < g1 else { return }
                let status = sx_gemm_packed_groups(pa.base, m, g0, g1, k, pb.base, n, 0, (n + nr - 1) / nr, nil,
                                                   accumulate ? 1 : 0, pc.base, ldc)
                precondition(status == 0, "sx_gemm_packed_groups failed (\(status))")
            }
            return
        }
        let next = ChunkCounter()
        withoutActuallyEscaping(pack) { pack in
            let worker: @Sendable (Int) -> Void = { _ in
                let panel = UnsafeMutablePointer<Float>.allocate(capacity: sx_packed_weight_count(width, k))
                defer { panel.deallocate() }
                while true {
                    let chunk = next.take()
                    guard chunk < chunks else { return }
                    let p = PackedWeight.chunk(chunk, of: chunks, panels: panels)
                    let j0 = p.lowerBound * nr, cols = min(p.upperBound * nr, n) - j0
                    pack(j0, cols, 0, k, panel)
                    let status = sx_gemm_packed_panels(pa.base, m, k, panel, cols, 0, (cols + nr - 1) / nr, nil,
                                                       accumulate ? 1 : 0, pc.base + j0, ldc)
                    precondition(status == 0, "sx_gemm_packed_panels failed (\(status))")
                }
            }
            if slices <= 1 { worker(0) } else { Parallel.perform(slices, worker) }
        }
    }
}
