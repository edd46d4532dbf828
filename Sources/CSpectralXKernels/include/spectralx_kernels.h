// Vectorised kernels between GEMMs (softmax, GELU, LayerNorm, Winograd tile transforms), compiled for several instruction sets
// in one binary and chosen at run time from the CPU's features: the Swift compiler targets baseline
// x86-64 (SSE2) and has no per-function target attribute, so its SIMD types never reach AVX2/AVX-512.
#ifndef SPECTRALX_KERNELS_H
#define SPECTRALX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set levels; each level's kernels are the same formulas on wider vectors.
enum sx_simd_level {
    SX_SIMD_GENERIC = 0,  ///< 4 lanes (SSE2 on x86-64, NEON on arm64), no FMA
    SX_SIMD_AVX2 = 1,     ///< 8 lanes, FMA
    SX_SIMD_AVX512 = 2,   ///< 16 lanes, FMA
};

/// One level's kernels. All pointers are to float32 rows; strides are in elements.
typedef struct sx_kernels {
    int level;
    const char *name;
    /// x[i] = exp(x[i] - shift) for i < n; returns the sum of the results.
    float (*exp_shifted)(float *x, ptrdiff_t n, float shift);
    /// Row-wise numerically stable softmax in place.
    void (*softmax_rows)(float *x, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t stride);
    /// In-place GELU with PyTorch's vectorised erf (Abramowitz-Stegun 7.1.26).
    void (*gelu)(float *x, ptrdiff_t n);
    /// Row-wise LayerNorm, moments accumulated in float64, biased variance.
    void (*layernorm_rows)(const float *x, ptrdiff_t rows, ptrdiff_t dim, ptrdiff_t x_stride,
                           const float *gamma, const float *beta, float eps, float *y, ptrdiff_t y_stride);
    /// Winograd F(2x2,3x3) input transform of channels c0..<c1 of a (cin, h, w) image into
    /// V[(4r+s)][c][tile]; `scratch` holds sx_winograd_scratch_count(h, w) floats (one per thread).
    void (*winograd_input)(const float *image, ptrdiff_t cin, ptrdiff_t h, ptrdiff_t w, ptrdiff_t c0, ptrdiff_t c1,
                           float *v, float *scratch);
    /// Winograd F(2x2,3x3) output transform of channels o0..<o1 from M[(4xi+nu)][o][tile] into (cout, h, w).
    void (*winograd_output)(const float *m, ptrdiff_t cout, ptrdiff_t h, ptrdiff_t w, ptrdiff_t o0, ptrdiff_t o1,
                            float *out);
    /// Winograd F(4x4,3x3) input transform of channels c0..<c1 into V[(6r+s)][c][tile] (6x6 patches at
    /// stride 4); `scratch` holds sx_winograd4_scratch_count(h, w) floats (one per thread).
    void (*winograd4_input)(const float *image, ptrdiff_t cin, ptrdiff_t h, ptrdiff_t w, ptrdiff_t c0, ptrdiff_t c1,
                            float *v, float *scratch);
    /// Winograd F(4x4,3x3) output transform of channels o0..<o1 from M[(6xi+nu)][o][tile] into (cout, h, w).
    void (*winograd4_output)(const float *m, ptrdiff_t cout, ptrdiff_t h, ptrdiff_t w, ptrdiff_t o0, ptrdiff_t o1,
                             float *out);
} sx_kernels;

/// Floats of scratch winograd_input needs for an h x w image (padded odd/even column rows).
static inline ptrdiff_t sx_winograd_scratch_count(ptrdiff_t h, ptrdiff_t w) {
    return (2 * ((h + 1) / 2) + 2) * 2 * ((w + 1) / 2 + 1 + 16);
}

/// Floats of scratch winograd4_input needs for an h x w image (the four column phases of each padded row).
static inline ptrdiff_t sx_winograd4_scratch_count(ptrdiff_t h, ptrdiff_t w) {
    return (4 * ((h + 3) / 4) + 2) * 4 * ((w + 3) / 4 + 1 + 16);
}

/// The kernels of `level`, or NULL when this CPU (or this build's architecture) lacks it.
const sx_kernels *sx_kernels_at(int level);

/// The widest level this CPU supports, unless SPECTRALX_SIMD=generic|avx2|avx512 asks for a lower one.
const sx_kernels *sx_kernels_best(void);

/// Asks Linux for transparent huge pages on the whole 2 MiB pages inside [base, base + bytes) (as NumPy
/// does for large arrays): fewer page faults when a buffer is first written and fewer TLB misses when a
/// large one is streamed. A no-op elsewhere or below 4 MiB; failure is harmless (huge_pages.c).
void sx_advise_huge_pages(void *base, size_t bytes);

// MARK: Linear layers with weights packed at load (packed_gemm.c)

/// Columns per packed panel (the unit `sx_gemm_packed` splits work by).
ptrdiff_t sx_packed_panel_columns(void);
/// Floats the packed form of an (n x k) weight takes (n rounded up to whole panels).
size_t sx_packed_weight_count(ptrdiff_t n, ptrdiff_t k);
/// Packs an nn.Linear weight (n x k, row-major) for sx_gemm_packed.
void sx_pack_weight(const float *w, ptrdiff_t n, ptrdiff_t k, float *packed);
/// sx_pack_weight for a weight whose rows are ldw floats apart.
void sx_pack_weight_ld(const float *w, ptrdiff_t ldw, ptrdiff_t n, ptrdiff_t k, float *packed);
/// Packs the k x n matrix b (row stride ldb) as sx_pack_weight packs its transpose (n x k): the right
/// operand of C = A * B for a constant A packed by sx_pack_rows (sx_packed_weight_count(n, k) floats).
void sx_pack_columns(const float *b, ptrdiff_t ldb, ptrdiff_t k, ptrdiff_t n, float *packed);
/// The im2col matrix of a convolution of x (channels x h x w; kernel kh x kw, stride sh/sw, zero padding
/// ph/pw; output width wo) for output pixels j0 ..< j0 + n, written in the layout of sx_pack_columns
/// (sx_packed_weight_count(n, channels * kh * kw) floats) without forming the matrix. Only its rows
/// (reduction indices) r0 ..< r1 (0 and channels * kh * kw for all; r0 a multiple of the 256-deep K
/// block): they are the layout's K blocks from r0 on, written from `packed` on, so workers can fill one
/// layout's K blocks in parallel.
void sx_pack_conv_columns(const float *x, ptrdiff_t channels, ptrdiff_t h, ptrdiff_t w, int kh, int kw, int sh, int sw,
                          int ph, int pw, ptrdiff_t wo, ptrdiff_t j0, ptrdiff_t n, ptrdiff_t r0, ptrdiff_t r1, float *packed);

/// Rows of B per K block of the packed layouts (SX_KC).
ptrdiff_t sx_packed_block_depth(void);
/// 1 when sx_gemm_packed runs a vector micro-kernel on this CPU (AVX2 + FMA, not capped by
/// SPECTRALX_SIMD=generic); elsewhere the portable one runs (same bits, slow).
int sx_packed_gemm_available(void);
/// 1 when it is available and SPECTRALX_GEMM is not `mapped` (see packed_gemm.c); callers decide
/// whether a process packs at all.
int sx_packed_gemm_preferred(void);
/// The level sx_gemm_packed_panels runs at (SX_SIMD_AVX512, SX_SIMD_AVX2, or SX_SIMD_GENERIC: the portable
/// micro-kernel).
int sx_packed_gemm_level(void);
/// SPECTRALX_GEMM, read in this one place: 1 `packed`, 0 `mapped` (or the old `openblas`), -1 unset (or anything else).
int sx_packed_gemm_requested(void);
/// Floats of the packed activation rows of an (m x k) input (m rounded up to 6-row groups).
size_t sx_packed_rows_count(ptrdiff_t m, ptrdiff_t k);
/// 6-row groups of m rows.
ptrdiff_t sx_packed_row_groups(ptrdiff_t m);
/// Packs the row groups g0..<g1 of x (m x k, stride lda) into apack (sx_packed_rows_count floats), for
/// sx_gemm_packed_panels; disjoint group ranges may be packed concurrently.
void sx_pack_rows(const float *x, ptrdiff_t lda, ptrdiff_t m, ptrdiff_t k, ptrdiff_t g0, ptrdiff_t g1, float *apack);
/// sx_gemm_packed for panels p0..<p1 from rows packed by sx_pack_rows; concurrent calls on disjoint
/// panel ranges share one apack. 0 on success, -2 not available.
int sx_gemm_packed_panels(const float *apack, ptrdiff_t m, ptrdiff_t k, const float *packed, ptrdiff_t n, ptrdiff_t p0,
                          ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc);
/// sx_pack_rows of alpha * op(x), op(x) = x^T when `trans` (element (i, kk) read at x[kk * lda + i]).
void sx_pack_rows_ex(const float *x, ptrdiff_t lda, int trans, float alpha, ptrdiff_t m, ptrdiff_t k, ptrdiff_t g0,
                     ptrdiff_t g1, float *apack);
/// C (m x n) = (alpha * op(A)) * op(B) (+ C when accumulate) on the calling thread, through the packed
/// micro-kernel (both operands packed per call): the one float32 product of the forward pass, so every
/// element is the same operation sequence on every CPU (one FMA chain per 256-deep K block, blocks added in
/// order). op = transpose when the flag is set; alpha scales A as it is packed (exact for powers of two).
/// 0 on success, -1 out of memory.
int sx_sgemm(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a, ptrdiff_t lda,
             const float *b, ptrdiff_t ldb, int accumulate, float *c, ptrdiff_t ldc);
/// sx_gemm_packed_panels for the rows of the 6-row groups g0..<g1 only (rows 6*g0 ..< min(m, 6*g1)), for
/// products too narrow to split by panels; concurrent calls on disjoint group ranges. Same bits.
int sx_gemm_packed_groups(const float *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k, const float *packed,
                          ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc);
/// sx_gemm_packed_panels on the micro-kernel of `level` (to compare the two; same bits); -2 when this CPU
/// lacks it.
int sx_gemm_packed_panels_at(int level, const float *apack, ptrdiff_t m, ptrdiff_t k, const float *packed, ptrdiff_t n,
                             ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc);
/// y[r, j] = sum_kk x[r, kk] * W[j, kk] (+ bias[j]) (+ y[r, j] when accumulate) for rows r < m and the
/// columns of panels p0..<p1; strides lda, ldc. 0 on success, -1 out of memory, -2 not available.
int sx_gemm_packed(const float *x, ptrdiff_t lda, ptrdiff_t m, const float *packed, ptrdiff_t n, ptrdiff_t k,
                   ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc);
/// sx_gemm_packed on the micro-kernel of `level` (tests compare the two); -2 when this CPU lacks it.
int sx_gemm_packed_at(int level, const float *x, ptrdiff_t lda, ptrdiff_t m, const float *packed, ptrdiff_t n, ptrdiff_t k,
                      ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc);

// MARK: bf16 products with float32 accumulation (bf16_gemm.c)

/// The bf16 product's micro-kernels, chosen at run time (sx_bf16_gemm_level). All give the same bits.
enum sx_bf16_level {
    SX_BF16_PORTABLE = 0,  ///< exact emulation of vdpbf16ps in C (fmaf): any CPU, slow
    SX_BF16_AVX512 = 2,    ///< AVX512_BF16 (vdpbf16ps), 12 x 32 tiles
    SX_BF16_AMX = 3,       ///< reserved: AMX-BF16 tiles, not written (no AMX machine at hand)
};

/// float32 -> bf16 bits as vcvtne2ps2bf16 rounds (nearest even, denormals to signed zero, NaN quiet).
void sx_bf16_from_float(const float *x, ptrdiff_t count, uint16_t *out);
/// bf16 elements (uint16) of the packed form of an (n x k) weight: 16-column panels of K pairs.
size_t sx_bf16_packed_weight_count(ptrdiff_t n, ptrdiff_t k);
/// Rounds an nn.Linear weight (n x k, row stride ldw) to bf16 into the packed layout; panels p0..<p1 only
/// (0 and ceil(n/16) for all), so disjoint panel ranges may be packed concurrently.
void sx_bf16_pack_weight(const float *w, ptrdiff_t ldw, ptrdiff_t n, ptrdiff_t k, ptrdiff_t p0, ptrdiff_t p1, uint16_t *packed);
/// bf16 elements of the packed activation rows of an (m x k) input.
size_t sx_bf16_packed_rows_count(ptrdiff_t m, ptrdiff_t k);
/// Rounds the 6-row groups g0..<g1 of x (m x k, stride lda) to bf16 into apack; disjoint ranges concurrently.
void sx_bf16_pack_rows(const float *x, ptrdiff_t lda, ptrdiff_t m, ptrdiff_t k, ptrdiff_t g0, ptrdiff_t g1, uint16_t *apack);
/// 1 when this CPU (and this build) runs the micro-kernel `level` (enum sx_bf16_level).
int sx_bf16_gemm_supported(int level);
/// The micro-kernel the products run on here: SX_BF16_AVX512 where the CPU has AVX512_BF16 and
/// SPECTRALX_SIMD does not cap the kernels below AVX-512, else SX_BF16_PORTABLE.
int sx_bf16_gemm_level(void);
/// y[r, j] = sum_kk bf16(x)[r, kk] * bf16(W)[j, kk] (+ bias[j]) (+ y when accumulate), float32 accumulation,
/// for the rows of groups g0..<g1 and the columns of panels p0..<p1 from rows packed by sx_bf16_pack_rows;
/// concurrent calls on disjoint (group, panel) ranges share one apack. 0 on success, -2 level not supported.
int sx_bf16_gemm_panels_at(int level, const uint16_t *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                           const uint16_t *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate,
                           float *y, ptrdiff_t ldc);
/// The whole product on the calling thread (rows packed per call): tests compare the levels with it.
/// 0 on success, -1 out of memory, -2 level not supported.
int sx_bf16_gemm_at(int level, const float *x, ptrdiff_t lda, ptrdiff_t m, const uint16_t *packed, ptrdiff_t n, ptrdiff_t k,
                    const float *bias, int accumulate, float *y, ptrdiff_t ldc);

// MARK: Float64 products in one operation order (float64_gemm.c)

/// Columns per panel of the float64 products (the unit they are split by).
ptrdiff_t sx_dgemm_panel_columns(void);
/// c[i, j] = float32(sum_kk a[i, kk] * w[j, kk] (+ bias[j])) for the columns of panels p0..<p1: A (m x k)
/// float64, row stride lda; W an nn.Linear weight (n x k float32, row stride ldw) widened exactly. Each sum
/// is one fma chain over kk in order from 0, in float64 (same bits on every CPU); then + bias in float64,
/// rounded once. Disjoint panel ranges may run concurrently. 0 on success, -1 out of memory.
int sx_dgemm_nt_f32(ptrdiff_t m, ptrdiff_t k, const double *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw, ptrdiff_t n,
                    ptrdiff_t p0, ptrdiff_t p1, const float *bias, float *c, ptrdiff_t ldc);
/// sx_dgemm_nt_f32 on the tile of `level` (tests compare them: same bits); -2 when this CPU lacks it.
int sx_dgemm_nt_f32_at(int level, ptrdiff_t m, ptrdiff_t k, const double *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                       ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias, float *c, ptrdiff_t ldc);
/// C = A * B in float64 (A m x k, B k x n, row-major with strides) for the columns of panels p0..<p1, each
/// element one fma chain over k in order. 0 on success, -1 out of memory.
int sx_dgemm_nn(ptrdiff_t m, ptrdiff_t k, const double *a, ptrdiff_t lda, const double *b, ptrdiff_t ldb, ptrdiff_t n,
                ptrdiff_t p0, ptrdiff_t p1, double *c, ptrdiff_t ldc);

// MARK: The worker pool for parallel loops (thread_pool.c)

/// One index of a parallel loop: `fn(ctx, i)`.
typedef void (*sx_task_fn)(void *ctx, ptrdiff_t index);

/// Calls fn(ctx, i) once for every i < count, on the calling thread and the pool's workers (cores - 1
/// threads, started on first use, `SPECTRALX_POOL_THREADS` total), handing indices out dynamically; returns
/// when all are done. Workers spin `SPECTRALX_POOL_SPIN_US` microseconds (default 1000) for the next loop
/// before they park. A call made while another is running, or from inside an index, runs serially on its
/// own thread. Returns 1 when the pool ran the loop, 0 when the calling thread ran it alone.
int sx_parallel_for(ptrdiff_t count, sx_task_fn fn, void *ctx);

/// The pool's worker threads (starting them if need be); 0 on a one-core machine.
int sx_pool_workers(void);

// MARK: The arithmetic counter (flop_count.c)

/// Turns counting on (1) or off (0) for the calling thread. While on, every matrix product the thread
/// runs (the packed kernels here, the Swift side's cblas calls through sx_flops_add) adds its 2·m·n·k,
/// and so do the pool workers running its parallel loops (sx_parallel_for hands the flag over).
void sx_flops_set_counting(int on);

/// Whether the calling thread is counting.
int sx_flops_counting(void);

/// Adds `flops` floating-point operations when the calling thread is counting (a relaxed atomic add).
void sx_flops_add(double flops);

/// The operations counted since the last take, without resetting (for per-stage differences).
unsigned long long sx_flops_peek(void);

/// The operations counted since the last take (by every counting thread), and resets the count to 0.
unsigned long long sx_flops_take(void);

#ifdef __cplusplus
}
#endif
#endif
