// y = x * W^T (+ bias) (+ y) with W, an nn.Linear weight (n x k, row-major), packed once at load.
//
// Why not cblas_sgemm everywhere: at the ViT's M = 197 rows per image, OpenBLAS repacks the whole
// weight on every call to use each packed element only 197 times. In the model, where the weights come
// from memory through a file mapping's 4 KiB pages, that copy took a fifth of OpenBLAS's GEMM time
// (Intel Emerald Rapids, SkylakeX kernels); on CPUs without AVX-512 its kernel also runs at ~70 % of the
// FMA peak there (AMD Zen 3: 59-71 GFLOP/s per core against 79-81 for this kernel). Two micro-kernels on
// one layout: 6 x 16 in ymm registers (AVX2) and up to 12 x 32 in zmm (AVX-512), with the same
// per-element operation order, so both give the same bits.
//
// Layout: K is cut into blocks of SX_KC; inside a block, N into panels of SX_NR = 16 columns; a panel
// holds kc x 16 floats, row kk = the weights of columns j..j+15 at reduction index kk (zero past n).
// Blocking (per K block): the activation rows, packed once per call as 6-row groups (kc x 6), are
// taken SX_MC rows at a time (L2); panels SX_NCP at a time (their kc x 16 x SX_NCP floats stay in L2), and
// for each 6-row group (kept in L1) the 6 x 16 micro-kernel runs over those panels. 12 accumulators
// live in ymm registers for one K block; the block sum is added into y, so the rounding grows block by
// block, as OpenBLAS's does.
#include "spectralx_kernels.h"
#include "packed_layout.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


ptrdiff_t sx_packed_panel_columns(void) { return SX_NR; }

ptrdiff_t sx_packed_block_depth(void) { return SX_KC; }

size_t sx_packed_weight_count(ptrdiff_t n, ptrdiff_t k) {
    return (size_t)sx_panels(n) * SX_NR * (size_t)k;
}

void sx_pack_weight(const float *w, ptrdiff_t n, ptrdiff_t k, float *packed) { sx_pack_weight_ld(w, k, n, k, packed); }

void sx_pack_weight_ld(const float *w, ptrdiff_t ldw, ptrdiff_t n, ptrdiff_t k, float *packed) {
    const ptrdiff_t panels = sx_panels(n);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        float *block = packed + (size_t)k0 * panels * SX_NR;
        for (ptrdiff_t p = 0; p < panels; p++) {
            float *panel = block + (size_t)p * kc * SX_NR;
            for (ptrdiff_t j = 0; j < SX_NR; j++) {
                const ptrdiff_t col = p * SX_NR + j;
                for (ptrdiff_t kk = 0; kk < kc; kk++)
                    panel[kk * SX_NR + j] = col < n ? w[col * ldw + k0 + kk] : 0.0f;
            }
        }
    }
}

// The k x n matrix b (row stride ldb) in the packed-weight layout of its transpose: what
// sx_pack_weight gives for W = b^T (n x k), from rows of b, one 16-float copy per (K index, panel).
// For products C = A * B whose left operand A is the constant (a convolution's weight, packed once as
// rows by sx_pack_rows) and whose right operand B is the activation, packed per call like this.
void sx_pack_columns(const float *b, ptrdiff_t ldb, ptrdiff_t k, ptrdiff_t n, float *packed) {
    const ptrdiff_t panels = sx_panels(n);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        float *block = packed + (size_t)k0 * panels * SX_NR;
        for (ptrdiff_t p = 0; p < panels; p++) {
            float *panel = block + (size_t)p * kc * SX_NR;
            const ptrdiff_t j0 = p * SX_NR;
            const ptrdiff_t cols = n - j0 < SX_NR ? n - j0 : SX_NR;
            if (cols == SX_NR) {
                for (ptrdiff_t kk = 0; kk < kc; kk++) memcpy(panel + kk * SX_NR, b + (k0 + kk) * ldb + j0, SX_NR * sizeof(float));
            } else {
                for (ptrdiff_t kk = 0; kk < kc; kk++) {
                    const float *src = b + (k0 + kk) * ldb + j0;
                    for (ptrdiff_t j = 0; j < SX_NR; j++) panel[kk * SX_NR + j] = j < cols ? src[j] : 0.0f;
                }
            }
        }
    }
}

// Implicit im2col: the column matrix of a convolution (rows: reduction index r = (c, ky, kx), as
// PyTorch's weight (out, in, kh, kw) flattens; columns: output pixels j0 ..< j0 + n of the row-major
// Ho x Wo map) written straight into the packed layout of sx_pack_columns, so a convolution is one
// GEMM with the whole c*kh*kw reduction in the micro-kernel's registers, without a column buffer and
// without a second copy. Panels of 16 pixels inside one output row at stride 1 are 16-float copies.
void sx_pack_conv_columns(const float *x, ptrdiff_t channels, ptrdiff_t h, ptrdiff_t w, int kh, int kw, int sh, int sw,
                          int ph, int pw, ptrdiff_t wo, ptrdiff_t j0, ptrdiff_t n, ptrdiff_t r0, ptrdiff_t r1, float *packed) {
    const ptrdiff_t k = r1, panels = sx_panels(n), taps = (ptrdiff_t)kh * kw;
    for (ptrdiff_t k0 = r0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        float *block = packed + (size_t)(k0 - r0) * panels * SX_NR;
        for (ptrdiff_t p = 0; p < panels; p++) {
            float *panel = block + (size_t)p * kc * SX_NR;
            const ptrdiff_t pix0 = j0 + p * SX_NR;
            const ptrdiff_t cols = n - p * SX_NR < SX_NR ? n - p * SX_NR : SX_NR;
            ptrdiff_t oy[SX_NR], ox[SX_NR];
            for (ptrdiff_t j = 0; j < cols; j++) { oy[j] = (pix0 + j) / wo; ox[j] = (pix0 + j) % wo; }
            const int runs = cols == SX_NR && ox[0] + SX_NR <= wo;  // all 16 pixels in one output row
            ptrdiff_t c = k0 / taps, t = k0 % taps;
            for (ptrdiff_t kk = 0; kk < kc; kk++) {
                const int ky = (int)(t / kw), kx = (int)(t % kw);
                float *d = panel + kk * SX_NR;
                const float *plane = x + c * h * w;
                if (runs) {
                    const ptrdiff_t iy = oy[0] * sh - ph + ky, ix0 = ox[0] * sw - pw + kx;
                    const ptrdiff_t ixLast = ix0 + (SX_NR - 1) * sw;
                    if (iy < 0 || iy >= h) {
                        memset(d, 0, SX_NR * sizeof(float));
                    } else if (ix0 >= 0 && ixLast < w) {
                        const float *row = plane + iy * w + ix0;
                        if (sw == 1) memcpy(d, row, SX_NR * sizeof(float));
                        else if (sw == 2) for (int j = 0; j < SX_NR; j++) d[j] = row[2 * j];
                        else for (int j = 0; j < SX_NR; j++) d[j] = row[j * sw];
                    } else {
                        for (int j = 0; j < SX_NR; j++) {
                            const ptrdiff_t ix = ix0 + j * sw;
                            d[j] = ix >= 0 && ix < w ? plane[iy * w + ix] : 0.0f;
                        }
                    }
                } else {
                    for (ptrdiff_t j = 0; j < SX_NR; j++) {
                        float v = 0.0f;
                        if (j < cols) {
                            const ptrdiff_t iy = oy[j] * sh - ph + ky, ix = ox[j] * sw - pw + kx;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w) v = plane[iy * w + ix];
                        }
                        d[j] = v;
                    }
                }
                if (++t == taps) { t = 0; c++; }
            }
        }
    }
}

// Rows of x as 6-row groups g0..<g1 of every K block: apack + k0 * groups * 6 + g * 6 * kc holds the
// kc x 6 block of group g (zero rows past m).
void sx_pack_rows(const float *x, ptrdiff_t lda, ptrdiff_t m, ptrdiff_t k, ptrdiff_t g0, ptrdiff_t g1, float *apack) {
    sx_pack_rows_ex(x, lda, 0, 1.0f, m, k, g0, g1, apack);
}

// sx_pack_rows of op(x) * alpha, op = transpose when `trans` (element (i, kk) at x[kk * lda + i]).
void sx_pack_rows_ex(const float *x, ptrdiff_t lda, int trans, float alpha, ptrdiff_t m, ptrdiff_t k, ptrdiff_t g0,
                     ptrdiff_t g1, float *apack) {
    const ptrdiff_t groups = sx_groups(m);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        for (ptrdiff_t g = g0; g < g1; g++) {
            float *d = apack + k0 * groups * SX_MR + g * SX_MR * kc;
            const ptrdiff_t r0 = g * SX_MR;
            const int rows = m - r0 < SX_MR ? (int)(m - r0) : SX_MR;
            for (int r = 0; r < rows; r++) {
                if (trans) {
                    for (ptrdiff_t kk = 0; kk < kc; kk++) d[kk * SX_MR + r] = x[(k0 + kk) * lda + r0 + r] * alpha;
                } else if (alpha == 1.0f) {
                    const float *src = x + (r0 + r) * lda + k0;
                    for (ptrdiff_t kk = 0; kk < kc; kk++) d[kk * SX_MR + r] = src[kk];
                } else {
                    const float *src = x + (r0 + r) * lda + k0;
                    for (ptrdiff_t kk = 0; kk < kc; kk++) d[kk * SX_MR + r] = src[kk] * alpha;
                }
            }
            for (int r = rows; r < SX_MR; r++)
                for (ptrdiff_t kk = 0; kk < kc; kk++) d[kk * SX_MR + r] = 0.0f;
        }
    }
}

// The portable micro-kernel: the AVX2/AVX-512 tiles' per-element operations one element at a time (one
// fmaf chain per K block from 0, then y + it, then + bias), so it gives their bits on any CPU; slow (a
// libm call per multiply-add where the build has no FMA instructions). Runs where neither tile can
// (SPECTRALX_SIMD=generic, other architectures) instead of another library's differently ordered sums.
static void sx_gemm_panels_scalar(const float *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                                  const float *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias,
                                  int accumulate, float *y, ptrdiff_t ldc) {
    const ptrdiff_t panels = sx_panels(n), groups = sx_groups(m);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        const int add = k0 > 0 || accumulate, last = k0 + kc >= k;
        const float *block = packed + (size_t)k0 * panels * SX_NR;
        const float *ablock = apack + k0 * groups * SX_MR;
        for (ptrdiff_t g = g0; g < g1; g++) {
            const ptrdiff_t r0 = g * SX_MR;
            const int rows = m - r0 < SX_MR ? (int)(m - r0) : SX_MR;
            const float *a = ablock + g * SX_MR * kc;
            for (ptrdiff_t p = p0; p < p1; p++) {
                const ptrdiff_t j0 = p * SX_NR;
                const int cols = n - j0 < SX_NR ? (int)(n - j0) : SX_NR;
                const float *b = block + (size_t)p * kc * SX_NR;
                for (int r = 0; r < rows; r++) {
                    for (int j = 0; j < cols; j++) {
                        float acc = 0.0f;
                        for (ptrdiff_t kk = 0; kk < kc; kk++) acc = __builtin_fmaf(a[kk * SX_MR + r], b[kk * SX_NR + j], acc);
                        float *c = y + (r0 + r) * ldc + j0 + j;
                        float v = add ? *c + acc : acc;
                        if (last && bias) v = v + bias[j0 + j];
                        *c = v;
                    }
                }
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define SX_AVX2 __attribute__((target("avx2,fma")))

// One 6 x 16 tile over one K block: a = kc x 6 packed rows, b = kc x 16 packed panel. `add`: y += the
// block sum (later K blocks, or accumulate); `bias` (last block only) is added after. Tiles cut by the
// last row group or the last panel go through a stack copy.
SX_AVX2 static inline void sx_tile(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                                   int rows, int cols, int add, const float *bias) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma clang loop unroll_count(4)
    for (ptrdiff_t kk = 0; kk < kc; kk++) {
        // Unaligned loads: per-call panels come from the Swift allocator (16-byte aligned), and an aligned
        // 32-byte load of one faults (the SPECTRALX_SIMD=avx2 crash under HyperT's implicit im2col).
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
        a += SX_MR;
        b += SX_NR;
    }
    const __m256 acc[2 * SX_MR] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    if (rows == SX_MR && cols == SX_NR) {
        __m256 bias0 = _mm256_setzero_ps(), bias1 = bias0;
        if (bias) { bias0 = _mm256_loadu_ps(bias); bias1 = _mm256_loadu_ps(bias + 8); }
        for (int r = 0; r < SX_MR; r++) {
            float *row = c + r * ldc;
            __m256 v0 = acc[2 * r], v1 = acc[2 * r + 1];
            if (add) { v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1); }
            if (bias) { v0 = _mm256_add_ps(v0, bias0); v1 = _mm256_add_ps(v1, bias1); }
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row + 8, v1);
        }
        return;
    }
    float t[SX_MR * SX_NR] __attribute__((aligned(32)));
    for (int r = 0; r < SX_MR; r++) {
        _mm256_store_ps(t + r * SX_NR, acc[2 * r]);
        _mm256_store_ps(t + r * SX_NR + 8, acc[2 * r + 1]);
    }
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < cols; j++) {
            float v = t[r * SX_NR + j];
            if (add) v = c[r * ldc + j] + v;
            if (bias) v = v + bias[j];
            c[r * ldc + j] = v;
        }
    }
}

// Panels p0..<p1 from packed rows. Per K block: row chunks of SX_MC rows (L2), panel chunks of SX_NCP
// (L2), one 6-row group (L1) against each panel of the chunk.
SX_AVX2 static void sx_gemm_panels_avx2(const float *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                                        const float *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias,
                                        int accumulate, float *y, ptrdiff_t ldc) {
    const ptrdiff_t panels = sx_panels(n), groups = sx_groups(m), chunkGroups = SX_MC / SX_MR;
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        const int add = k0 > 0 || accumulate, last = k0 + kc >= k;
        const float *block = packed + (size_t)k0 * panels * SX_NR;
        const float *ablock = apack + k0 * groups * SX_MR;
        for (ptrdiff_t c0 = g0; c0 < g1; c0 += chunkGroups) {
            const ptrdiff_t c1 = c0 + chunkGroups < g1 ? c0 + chunkGroups : g1;
            for (ptrdiff_t pc = p0; pc < p1; pc += SX_NCP) {
                const ptrdiff_t pe = pc + SX_NCP < p1 ? pc + SX_NCP : p1;
                for (ptrdiff_t g = c0; g < c1; g++) {
                    const ptrdiff_t r0 = g * SX_MR;
                    const int rows = m - r0 < SX_MR ? (int)(m - r0) : SX_MR;
                    for (ptrdiff_t p = pc; p < pe; p++) {
                        const ptrdiff_t j0 = p * SX_NR;
                        const int cols = n - j0 < SX_NR ? (int)(n - j0) : SX_NR;
                        sx_tile(kc, ablock + g * SX_MR * kc, block + (size_t)p * kc * SX_NR, y + r0 * ldc + j0, ldc,
                                rows, cols, add, last && bias ? bias + j0 : NULL);
                    }
                }
            }
        }
    }
}

#define SX_AVX512 __attribute__((target("avx512f,fma")))

// The AVX-512 tile: G 6-row groups (a0, a1) against P panels (b0, b1), G and P 1 or 2 and constant at
// each call site, so each of the four variants compiles to straight-line code: up to 12 x 32 in 24 zmm
// accumulators, 12 broadcasts and 2 loads per 24 FMAs. Same packed layouts as the AVX2 tile and the same
// per-element operation order (one FMA chain per K block, then + y, then + bias), so both give the same
// bits. `rows`/`cols`: the valid part; cut tiles go through a stack copy.
SX_AVX512 static inline __attribute__((always_inline)) void
sx_tile512(const int G, const int P, ptrdiff_t kc, const float *a0, const float *a1, const float *b0, const float *b1,
           float *c, ptrdiff_t ldc, int rows, int cols, int add, const float *bias) {
    __m512 acc[2 * SX_MR][2];
    for (int r = 0; r < 2 * SX_MR; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = acc[r][0]; }
#pragma clang loop unroll_count(2)
    for (ptrdiff_t kk = 0; kk < kc; kk++) {
        const __m512 x0 = _mm512_loadu_ps(b0 + kk * SX_NR);
        const __m512 x1 = P == 2 ? _mm512_loadu_ps(b1 + kk * SX_NR) : x0;
#pragma clang loop unroll(full)
        for (int r = 0; r < SX_MR; r++) {
            const __m512 av = _mm512_set1_ps(a0[kk * SX_MR + r]);
            acc[r][0] = _mm512_fmadd_ps(av, x0, acc[r][0]);
            if (P == 2) acc[r][1] = _mm512_fmadd_ps(av, x1, acc[r][1]);
        }
        if (G == 2) {
#pragma clang loop unroll(full)
            for (int r = 0; r < SX_MR; r++) {
                const __m512 av = _mm512_set1_ps(a1[kk * SX_MR + r]);
                acc[SX_MR + r][0] = _mm512_fmadd_ps(av, x0, acc[SX_MR + r][0]);
                if (P == 2) acc[SX_MR + r][1] = _mm512_fmadd_ps(av, x1, acc[SX_MR + r][1]);
            }
        }
    }
    sx_store_tile512(G, P, acc, c, ldc, rows, cols, add, bias);
}

// Rows per chunk of the AVX-512 nest: as many as keep a chunk's y tiles (rows x SX_NCP panels x 16
// floats) in half the L2, in whole 6-row group pairs, at least SX_MC512. The chunk only orders the loops
// (each element still takes its K blocks in order), so it never changes the bits. Why: at batch 4 (788
// rows) one 2 MiB L2 holds all rows' tiles, and 240-row chunks streamed every weight 4 times (Emerald
// Rapids: 0.93x the time per image at batch 4, eight interleaved pairs); a 512 KiB L2 keeps ~240.
ptrdiff_t sx_rows_per_chunk512(void) {
    static _Atomic ptrdiff_t cached = 0;
    ptrdiff_t rows = atomic_load_explicit(&cached, memory_order_relaxed);
    if (rows) return rows;
    long l2 = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    rows = SX_MC512;
    if (l2 > 0) {
        const ptrdiff_t fit = (ptrdiff_t)(l2 / 2) / (SX_NCP * SX_NR * (ptrdiff_t)sizeof(float));
        const ptrdiff_t pairs = fit / (2 * SX_MR);
        if (pairs * 2 * SX_MR > rows) rows = pairs * 2 * SX_MR;
    }
    atomic_store_explicit(&cached, rows, memory_order_relaxed);
    return rows;
}

// The AVX2 loop nest with group pairs and panel pairs (SX_MC and SX_NCP are even, so pairs never straddle
// a chunk); a lone last group or panel takes the narrower variant.
SX_AVX512 static void sx_gemm_panels_avx512(const float *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                                            const float *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias,
                                            int accumulate, float *y, ptrdiff_t ldc) {
    const ptrdiff_t panels = sx_panels(n), groups = sx_groups(m), chunkGroups = sx_rows_per_chunk512() / SX_MR;
    // Row chunks outermost: a chunk's y tiles (rows x 16 SX_NCP floats) stay in L2 across the K blocks
    // instead of streaming the whole y once per K block (the difference at 788 rows). The K blocks still
    // reach each element in order, so the bits are those of the AVX2 nest.
    for (ptrdiff_t c0 = g0; c0 < g1; c0 += chunkGroups) {
        const ptrdiff_t c1 = c0 + chunkGroups < g1 ? c0 + chunkGroups : g1;
        for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
            const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
            const int add = k0 > 0 || accumulate, last = k0 + kc >= k;
            const float *block = packed + (size_t)k0 * panels * SX_NR;
            const float *ablock = apack + k0 * groups * SX_MR;
            for (ptrdiff_t pc = p0; pc < p1; pc += SX_NCP) {
                const ptrdiff_t pe = pc + SX_NCP < p1 ? pc + SX_NCP : p1;
                for (ptrdiff_t g = c0; g < c1; g += 2) {
                    const int twoGroups = g + 1 < c1;
                    const ptrdiff_t r0 = g * SX_MR;
                    const ptrdiff_t rowCap = twoGroups ? 2 * SX_MR : SX_MR;
                    const int rows = m - r0 < rowCap ? (int)(m - r0) : (int)rowCap;
                    const float *a0 = ablock + g * SX_MR * kc, *a1 = a0 + SX_MR * kc;
                    for (ptrdiff_t p = pc; p < pe; p += 2) {
                        const int twoPanels = p + 1 < pe;
                        const ptrdiff_t j0 = p * SX_NR;
                        const ptrdiff_t colCap = twoPanels ? 2 * SX_NR : SX_NR;
                        const int cols = n - j0 < colCap ? (int)(n - j0) : (int)colCap;
                        const float *b0 = block + (size_t)p * kc * SX_NR, *b1 = b0 + kc * SX_NR;
                        float *cp = y + r0 * ldc + j0;
                        const float *bp = last && bias ? bias + j0 : NULL;
                        if (twoGroups && twoPanels) sx_tile512(2, 2, kc, a0, a1, b0, b1, cp, ldc, rows, cols, add, bp);
                        else if (twoGroups) sx_tile512(2, 1, kc, a0, a1, b0, b0, cp, ldc, rows, cols, add, bp);
                        else if (twoPanels) sx_tile512(1, 2, kc, a0, a0, b0, b1, cp, ldc, rows, cols, add, bp);
                        else sx_tile512(1, 1, kc, a0, a0, b0, b0, cp, ldc, rows, cols, add, bp);
                    }
                }
            }
        }
    }
}
#endif

size_t sx_packed_rows_count(ptrdiff_t m, ptrdiff_t k) { return (size_t)sx_groups(m) * SX_MR * (size_t)k; }

ptrdiff_t sx_packed_row_groups(ptrdiff_t m) { return sx_groups(m); }

int sx_packed_gemm_level(void) {
    const sx_kernels *best = sx_kernels_best();
    if (!best || best->level < SX_SIMD_AVX2) return SX_SIMD_GENERIC;
    return best->level >= SX_SIMD_AVX512 ? SX_SIMD_AVX512 : SX_SIMD_AVX2;
}

int sx_packed_gemm_available(void) { return sx_packed_gemm_level() >= SX_SIMD_AVX2; }

int sx_packed_gemm_requested(void) {
    const char *env = getenv("SPECTRALX_GEMM");
    if (env && strcmp(env, "packed") == 0) return 1;
    if (env && (strcmp(env, "mapped") == 0 || strcmp(env, "openblas") == 0)) return 0;  // "openblas": the old name
    return -1;
}

int sx_packed_gemm_preferred(void) {
    // Weights packed once at load are faster than packing them per call (at the ViT's 197 rows that copy is
    // a fifth of the product's time); the bits are the same. SPECTRALX_GEMM=mapped keeps the mapped weights
    // and packs per call; whether a process packs at all is decided by its caller (PackedWeight.isPreferred:
    // packed copies are private memory).
    return sx_packed_gemm_requested() != 0 && sx_packed_gemm_available();
}

static int sx_gemm_packed_block_at(int level, const float *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                                   const float *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias,
                                   int accumulate, float *y, ptrdiff_t ldc) {
#if defined(__x86_64__)
    const sx_kernels *at = sx_kernels_at(level);
    if (at && level >= SX_SIMD_AVX2) {
        // The valid rows and columns of this call's groups and panels (the last ones may be cut).
        const ptrdiff_t r1 = g1 * SX_MR < m ? g1 * SX_MR : m, c1 = p1 * SX_NR < n ? p1 * SX_NR : n;
        if (r1 > g0 * SX_MR && c1 > p0 * SX_NR) sx_flops_add(2.0 * (double)(r1 - g0 * SX_MR) * (double)(c1 - p0 * SX_NR) * (double)k);
    }
    if (at && level >= SX_SIMD_AVX512) {
        sx_gemm_panels_avx512(apack, m, g0, g1, k, packed, n, p0, p1, bias, accumulate, y, ldc);
        return 0;
    }
    if (at && level >= SX_SIMD_AVX2) {
        sx_gemm_panels_avx2(apack, m, g0, g1, k, packed, n, p0, p1, bias, accumulate, y, ldc);
        return 0;
    }
#endif
    if (level == SX_SIMD_GENERIC) {
        const ptrdiff_t r1 = g1 * SX_MR < m ? g1 * SX_MR : m, c1 = p1 * SX_NR < n ? p1 * SX_NR : n;
        if (r1 > g0 * SX_MR && c1 > p0 * SX_NR) sx_flops_add(2.0 * (double)(r1 - g0 * SX_MR) * (double)(c1 - p0 * SX_NR) * (double)k);
        sx_gemm_panels_scalar(apack, m, g0, g1, k, packed, n, p0, p1, bias, accumulate, y, ldc);
        return 0;
    }
    return -2;
}

int sx_gemm_packed_panels_at(int level, const float *apack, ptrdiff_t m, ptrdiff_t k, const float *packed, ptrdiff_t n,
                             ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
    return sx_gemm_packed_block_at(level, apack, m, 0, sx_groups(m), k, packed, n, p0, p1, bias, accumulate, y, ldc);
}

int sx_gemm_packed_groups(const float *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k, const float *packed,
                          ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
    return sx_gemm_packed_block_at(sx_packed_gemm_level(), apack, m, g0, g1, k, packed, n, p0, p1, bias, accumulate, y, ldc);
}

int sx_gemm_packed_panels(const float *apack, ptrdiff_t m, ptrdiff_t k, const float *packed, ptrdiff_t n, ptrdiff_t p0,
                          ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
    return sx_gemm_packed_panels_at(sx_packed_gemm_level(), apack, m, k, packed, n, p0, p1, bias, accumulate, y, ldc);
}

int sx_gemm_packed_at(int level, const float *x, ptrdiff_t lda, ptrdiff_t m, const float *packed, ptrdiff_t n, ptrdiff_t k,
                      ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
    if (!sx_kernels_at(level)) return -2;
    float *apack = NULL;
    if (posix_memalign((void **)&apack, 64, sx_packed_rows_count(m, k) * sizeof(float)) != 0) return -1;
    sx_pack_rows(x, lda, m, k, 0, sx_groups(m), apack);
    const int status = sx_gemm_packed_panels_at(level, apack, m, k, packed, n, p0, p1, bias, accumulate, y, ldc);
    free(apack);
    return status;
}

int sx_gemm_packed(const float *x, ptrdiff_t lda, ptrdiff_t m, const float *packed, ptrdiff_t n, ptrdiff_t k,
                   ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
    return sx_gemm_packed_at(sx_packed_gemm_level(), x, lda, m, packed, n, k, p0, p1, bias, accumulate, y, ldc);
}

static __thread float *sx_scratch_a, *sx_scratch_b;
static __thread size_t sx_scratch_a_count, sx_scratch_b_count;

/// A 64-byte aligned buffer of at least `count` floats in *p (grown, never shrunk); NULL when out of memory.
static float *sx_scratch(float **p, size_t *capacity, size_t count) {
    if (*capacity >= count && *p) return *p;
    free(*p);
    *p = NULL;
    *capacity = 0;
    if (posix_memalign((void **)p, 64, (count ? count : 1) * sizeof(float)) != 0) { *p = NULL; return NULL; }
    *capacity = count;
    return *p;
}

int sx_sgemm(int transA, int transB, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a, ptrdiff_t lda,
             const float *b, ptrdiff_t ldb, int accumulate, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) {
        if (!accumulate) for (ptrdiff_t i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
        return 0;
    }
    // Per-thread packing buffers, kept between calls: the attention heads call this hundreds of times a
    // forward with the same small sizes (two allocations a call otherwise).
    float *apack = sx_scratch(&sx_scratch_a, &sx_scratch_a_count, sx_packed_rows_count(m, k));
    float *bpack = sx_scratch(&sx_scratch_b, &sx_scratch_b_count, sx_packed_weight_count(n, k));
    if (!apack || !bpack) return -1;
    sx_pack_rows_ex(a, lda, transA, alpha, m, k, 0, sx_groups(m), apack);
    if (transB) sx_pack_weight_ld(b, ldb, n, k, bpack);
    else sx_pack_columns(b, ldb, k, n, bpack);
    return sx_gemm_packed_panels(apack, m, k, bpack, n, 0, sx_panels(n), NULL, accumulate, c, ldc);
}
