// y = x * W^T (+ bias) (+ y) with W, an nn.Linear weight (n x k, row-major), packed once at load.
//
// Why not cblas_sgemm: at the ViT's M = 197 rows per image, OpenBLAS repacks the whole weight on
// every call (its "incopy", ~9 % of a forward in a profile) to use each packed element only 197
// times. Here the weight is packed at load into the layout the micro-kernel streams, and only the
// small activation block is packed per call. AVX-512 only; other CPUs keep OpenBLAS (the Swift
// caller checks sx_packed_gemm_available()).
//
// Layout: K is cut into blocks of SX_KC; inside a block, N into panels of 32 columns; a panel holds
// kc x 32 floats, row kk = the 32 weights of columns j..j+31 at reduction index kk (zero past n).
// Blocking: a 12 x 32 tile of accumulators lives in 24 zmm registers for each 256-deep K block (C is
// written once); one panel (K x 32, L2) is reused by every 12-row group of the packed activations.
#include "spectralx_kernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SX_KC 256
#define SX_NR 32
#define SX_MR 12

static ptrdiff_t sx_panels(ptrdiff_t n) { return (n + SX_NR - 1) / SX_NR; }

size_t sx_packed_weight_count(ptrdiff_t n, ptrdiff_t k) {
    return (size_t)sx_panels(n) * SX_NR * (size_t)k;
}

void sx_pack_weight(const float *w, ptrdiff_t n, ptrdiff_t k, float *packed) {
    const ptrdiff_t panels = sx_panels(n);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        float *block = packed + (size_t)k0 * panels * SX_NR;
        for (ptrdiff_t p = 0; p < panels; p++) {
            float *panel = block + (size_t)p * kc * SX_NR;
            for (ptrdiff_t j = 0; j < SX_NR; j++) {
                const ptrdiff_t col = p * SX_NR + j;
                for (ptrdiff_t kk = 0; kk < kc; kk++)
                    panel[kk * SX_NR + j] = col < n ? w[col * k + k0 + kk] : 0.0f;
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define SX_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))

// Rows r0..r0+R of the activation block, columns k0..k0+kc, as kc x SX_MR (zero rows past R).
SX_AVX512 static void sx_pack_rows(const float *x, ptrdiff_t lda, ptrdiff_t rows, ptrdiff_t k0, ptrdiff_t kc, float *dst) {
    for (ptrdiff_t kk = 0; kk < kc; kk++) {
        float *d = dst + kk * SX_MR;
        ptrdiff_t r = 0;
        for (; r < rows; r++) d[r] = x[r * lda + k0 + kk];
        for (; r < SX_MR; r++) d[r] = 0.0f;
    }
}

// One R x 32 tile over the whole reduction. Each K block (SX_KC deep) is summed in 24 zmm registers
// and the block sums are added into an L1-resident tile total, so the rounding grows like OpenBLAS's
// (block by block) rather than along one 4096-long chain; then C = total + bias, or C += total when
// accumulating, with stores masked to the columns.
SX_AVX512 __attribute__((always_inline)) static inline void sx_tile(
    const int R, const float *apack, ptrdiff_t groups, ptrdiff_t g, const float *packed, ptrdiff_t panels, ptrdiff_t p,
    ptrdiff_t k, float *c, ptrdiff_t ldc, int addC, const float *bias, __mmask16 m0, __mmask16 m1) {
    float total[SX_MR * SX_NR] __attribute__((aligned(64)));
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
        const float *a = apack + k0 * groups * SX_MR + g * SX_MR * kc;
        const float *b = packed + k0 * panels * SX_NR + p * kc * SX_NR;
        __m512 acc0[SX_MR], acc1[SX_MR];
#pragma clang loop unroll(full)
        for (int r = 0; r < SX_MR; r++) {
            if (r < R) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); }
        }
        for (ptrdiff_t kk = 0; kk < kc; kk++) {
            const __m512 b0 = _mm512_load_ps(b + kk * SX_NR), b1 = _mm512_load_ps(b + kk * SX_NR + 16);
            const float *ak = a + kk * SX_MR;
#pragma clang loop unroll(full)
            for (int r = 0; r < SX_MR; r++) {
                if (r < R) {
                    const __m512 av = _mm512_set1_ps(ak[r]);
                    acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
                }
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < SX_MR; r++) {
            if (r < R) {
                float *t = total + r * SX_NR;
                if (k0 == 0) {
                    _mm512_store_ps(t, acc0[r]);
                    _mm512_store_ps(t + 16, acc1[r]);
                } else {
                    _mm512_store_ps(t, _mm512_add_ps(_mm512_load_ps(t), acc0[r]));
                    _mm512_store_ps(t + 16, _mm512_add_ps(_mm512_load_ps(t + 16), acc1[r]));
                }
            }
        }
    }
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (bias) { bias0 = _mm512_maskz_loadu_ps(m0, bias); bias1 = _mm512_maskz_loadu_ps(m1, bias + 16); }
#pragma clang loop unroll(full)
    for (int r = 0; r < SX_MR; r++) {
        if (r < R) {
            float *row = c + r * ldc;
            const float *t = total + r * SX_NR;
            __m512 v0 = _mm512_add_ps(_mm512_load_ps(t), bias0), v1 = _mm512_add_ps(_mm512_load_ps(t + 16), bias1);
            if (addC) {
                v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), v0);
                v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), v1);
            }
            _mm512_mask_storeu_ps(row, m0, v0);
            _mm512_mask_storeu_ps(row + 16, m1, v1);
        }
    }
}

SX_AVX512 static void sx_tile_rows(int R, const float *apack, ptrdiff_t groups, ptrdiff_t g, const float *packed,
                                   ptrdiff_t panels, ptrdiff_t p, ptrdiff_t k, float *c, ptrdiff_t ldc, int addC,
                                   const float *bias, __mmask16 m0, __mmask16 m1) {
    switch (R) {
#define SX_CASE(n) case n: sx_tile(n, apack, groups, g, packed, panels, p, k, c, ldc, addC, bias, m0, m1); break;
    SX_CASE(1) SX_CASE(2) SX_CASE(3) SX_CASE(4) SX_CASE(5) SX_CASE(6)
    SX_CASE(7) SX_CASE(8) SX_CASE(9) SX_CASE(10) SX_CASE(11) SX_CASE(12)
#undef SX_CASE
    default: break;
    }
}

// Rows are taken in chunks whose packed activations (chunk x K floats) fit in a core's L2 (1 MiB),
// so every 12-row group of a chunk is reused from L2 against each panel, and each weight panel is
// streamed (from L3) once per chunk: at 197 rows x 1024 that is one chunk; at 788 rows or K = 4096,
// several.
#define SX_CHUNK_FLOATS (1 << 18)

SX_AVX512 static int sx_gemm_packed_avx512(const float *x, ptrdiff_t lda, ptrdiff_t m, const float *packed, ptrdiff_t n,
                                           ptrdiff_t k, ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate,
                                           float *y, ptrdiff_t ldc) {
    const ptrdiff_t panels = sx_panels(n);
    ptrdiff_t chunk = SX_CHUNK_FLOATS / k / SX_MR * SX_MR;
    if (chunk < SX_MR) chunk = SX_MR;
    if (chunk > m) chunk = (m + SX_MR - 1) / SX_MR * SX_MR;
    const ptrdiff_t maxGroups = chunk / SX_MR;
    float *apack = NULL;
    if (posix_memalign((void **)&apack, 64, (size_t)maxGroups * SX_MR * (size_t)k * sizeof(float)) != 0) return -1;
    for (ptrdiff_t c0 = 0; c0 < m; c0 += chunk) {
        const ptrdiff_t cm = m - c0 < chunk ? m - c0 : chunk, groups = (cm + SX_MR - 1) / SX_MR;
        const float *xc = x + c0 * lda;
        float *yc = y + c0 * ldc;
        // The chunk's activations, packed: per K block, per 12-row group, kc x SX_MR.
        for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
            const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC;
            for (ptrdiff_t g = 0; g < groups; g++) {
                const ptrdiff_t r0 = g * SX_MR, rows = cm - r0 < SX_MR ? cm - r0 : SX_MR;
                sx_pack_rows(xc + r0 * lda, lda, rows, k0, kc, apack + k0 * groups * SX_MR + g * SX_MR * kc);
            }
        }
        for (ptrdiff_t p = p0; p < p1; p++) {
            const ptrdiff_t j0 = p * SX_NR, cols = n - j0 < SX_NR ? n - j0 : SX_NR;
            const __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
            const __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
            const float *bj = bias ? bias + j0 : NULL;
            for (ptrdiff_t g = 0; g < groups; g++) {
                const ptrdiff_t r0 = g * SX_MR, rows = cm - r0 < SX_MR ? cm - r0 : SX_MR;
                sx_tile_rows((int)rows, apack, groups, g, packed, panels, p, k, yc + r0 * ldc + j0, ldc, accumulate, bj, m0, m1);
            }
        }
    }
    free(apack);
    return 0;
}
#endif

int sx_packed_gemm_available(void) {
    const sx_kernels *k = sx_kernels_best();
    return k && k->level >= SX_SIMD_AVX512;
}

int sx_gemm_packed(const float *x, ptrdiff_t lda, ptrdiff_t m, const float *packed, ptrdiff_t n, ptrdiff_t k,
                   ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
#if defined(__x86_64__)
    if (sx_packed_gemm_available()) return sx_gemm_packed_avx512(x, lda, m, packed, n, k, p0, p1, bias, accumulate, y, ldc);
#endif
    (void)x; (void)lda; (void)m; (void)packed; (void)n; (void)k; (void)p0; (void)p1; (void)bias; (void)accumulate; (void)y; (void)ldc;
    return -2;
}
