// Float64 products with one fixed operation order: every element of C is one fused multiply-add chain
// over k in increasing order, starting from 0 (then + bias), whatever the CPU, the vector width or how
// the work is split. Replaces cblas_dgemm, whose kernels (and so summation orders) change with the CPU:
// DINOv3's q/k are rounded to bfloat16 after this product, so a last-bit difference in the float32 result
// can become a whole bf16 step and move a routing near-tie.
//
// Layout: B is taken 16 columns at a time as a k x 16 panel of doubles (packed from a float32 weight or a
// float64 matrix); A stays in place (row stride lda). Micro-tile: 4 rows x 16 columns (two 8-double
// vectors per row: one zmm each under AVX-512, two ymm under AVX2, four xmm elsewhere), the same source
// compiled per instruction set; the fma is explicit, so all of them give the same bits.
#include "spectralx_kernels.h"

#include <stdlib.h>
#include <string.h>

#define SX_DMR 4
#define SX_DNR 16

typedef double sx_d8 __attribute__((vector_size(64)));

#define SX_DTILE_BODY                                                                                     \
    {                                                                                                     \
        sx_d8 acc[SX_DMR][2];                                                                             \
        for (int r = 0; r < SX_DMR; r++) { acc[r][0] = (sx_d8){0}; acc[r][1] = (sx_d8){0}; }              \
        for (ptrdiff_t kk = 0; kk < k; kk++) {                                                            \
            sx_d8 b0, b1;                                                                                 \
            memcpy(&b0, panel + kk * SX_DNR, sizeof b0);                                                  \
            memcpy(&b1, panel + kk * SX_DNR + 8, sizeof b1);                                              \
            for (int r = 0; r < SX_DMR; r++) {                                                            \
                const sx_d8 av = (sx_d8){0} + rows[r][kk];                                                \
                acc[r][0] = __builtin_elementwise_fma(av, b0, acc[r][0]);                                 \
                acc[r][1] = __builtin_elementwise_fma(av, b1, acc[r][1]);                                 \
            }                                                                                             \
        }                                                                                                 \
        for (int r = 0; r < SX_DMR; r++) {                                                                \
            memcpy(out + r * SX_DNR, &acc[r][0], sizeof acc[r][0]);                                       \
            memcpy(out + r * SX_DNR + 8, &acc[r][1], sizeof acc[r][1]);                                   \
        }                                                                                                 \
    }

typedef void (*sx_dtile_fn)(ptrdiff_t k, const double *const rows[SX_DMR], const double *panel, double *out);

static void sx_dtile_generic(ptrdiff_t k, const double *const rows[SX_DMR], const double *panel, double *out) SX_DTILE_BODY
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void sx_dtile_avx2(ptrdiff_t k, const double *const rows[SX_DMR],
                                                              const double *panel, double *out) SX_DTILE_BODY
__attribute__((target("avx512f,fma"))) static void sx_dtile_avx512(ptrdiff_t k, const double *const rows[SX_DMR],
                                                                   const double *panel, double *out) SX_DTILE_BODY
#endif

static sx_dtile_fn sx_dtile_at(int level) {
    if (!sx_kernels_at(level)) return NULL;
#if defined(__x86_64__)
    if (level >= SX_SIMD_AVX512) return sx_dtile_avx512;
    if (level >= SX_SIMD_AVX2) return sx_dtile_avx2;
#endif
    return sx_dtile_generic;
}

// The panels p0..<p1 of C: `pack(p, panel)` fills panel p of B, `emit(i0, rows, j0, cols, out)` stores a tile.
static int sx_dgemm_panels(sx_dtile_fn tile, ptrdiff_t m, ptrdiff_t k, const double *a, ptrdiff_t lda, ptrdiff_t n, ptrdiff_t p0,
                           ptrdiff_t p1, const float *wf, ptrdiff_t ldw, const double *bd, ptrdiff_t ldb,
                           const float *bias, float *cf, double *cd, ptrdiff_t ldc) {
    double *panel = NULL;
    if (posix_memalign((void **)&panel, 64, (size_t)k * SX_DNR * sizeof(double)) != 0) return -1;
    double out[SX_DMR * SX_DNR] __attribute__((aligned(64)));
    for (ptrdiff_t p = p0; p < p1; p++) {
        const ptrdiff_t j0 = p * SX_DNR, cols = n - j0 < SX_DNR ? n - j0 : SX_DNR;
        for (ptrdiff_t kk = 0; kk < k; kk++) {
            double *d = panel + kk * SX_DNR;
            for (ptrdiff_t j = 0; j < SX_DNR; j++) {
                if (j >= cols) d[j] = 0.0;
                else if (wf) d[j] = (double)wf[(j0 + j) * ldw + kk];
                else d[j] = bd[kk * ldb + j0 + j];
            }
        }
        for (ptrdiff_t i0 = 0; i0 < m; i0 += SX_DMR) {
            const ptrdiff_t rowsValid = m - i0 < SX_DMR ? m - i0 : SX_DMR;
            const double *rows[SX_DMR];
            for (int r = 0; r < SX_DMR; r++) rows[r] = a + (i0 + (r < rowsValid ? r : rowsValid - 1)) * lda;
            tile(k, rows, panel, out);
            for (ptrdiff_t r = 0; r < rowsValid; r++) {
                for (ptrdiff_t j = 0; j < cols; j++) {
                    const double v = out[r * SX_DNR + j];
                    if (cf) cf[(i0 + r) * ldc + j0 + j] = (float)(bias ? v + (double)bias[j0 + j] : v);
                    else cd[(i0 + r) * ldc + j0 + j] = v;
                }
            }
        }
    }
    free(panel);
    return 0;
}

ptrdiff_t sx_dgemm_panel_columns(void) { return SX_DNR; }

int sx_dgemm_nt_f32_at(int level, ptrdiff_t m, ptrdiff_t k, const double *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw,
                       ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias, float *c, ptrdiff_t ldc) {
    const sx_dtile_fn tile = sx_dtile_at(level);
    if (!tile) return -2;
    if (m <= 0 || p0 >= p1) return 0;
    sx_flops_add(2.0 * (double)m * (double)((p1 * SX_DNR < n ? p1 * SX_DNR : n) - p0 * SX_DNR) * (double)k);
    return sx_dgemm_panels(tile, m, k, a, lda, n, p0, p1, w, ldw, NULL, 0, bias, c, NULL, ldc);
}

int sx_dgemm_nt_f32(ptrdiff_t m, ptrdiff_t k, const double *a, ptrdiff_t lda, const float *w, ptrdiff_t ldw, ptrdiff_t n,
                    ptrdiff_t p0, ptrdiff_t p1, const float *bias, float *c, ptrdiff_t ldc) {
    return sx_dgemm_nt_f32_at(sx_kernels_best()->level, m, k, a, lda, w, ldw, n, p0, p1, bias, c, ldc);
}

int sx_dgemm_nn(ptrdiff_t m, ptrdiff_t k, const double *a, ptrdiff_t lda, const double *b, ptrdiff_t ldb, ptrdiff_t n,
                ptrdiff_t p0, ptrdiff_t p1, double *c, ptrdiff_t ldc) {
    if (m <= 0 || p0 >= p1) return 0;
    sx_flops_add(2.0 * (double)m * (double)((p1 * SX_DNR < n ? p1 * SX_DNR : n) - p0 * SX_DNR) * (double)k);
    return sx_dgemm_panels(sx_dtile_at(sx_kernels_best()->level), m, k, a, lda, n, p0, p1, NULL, 0, b, ldb, NULL, NULL, c, ldc);
}
