// The packed layouts' block sizes and the parts of the loop nests that the float32 (packed_gemm.c) and
// bf16 (bf16_gemm.c) products share; private to this target (not in include/).
#ifndef SPECTRALX_PACKED_LAYOUT_H
#define SPECTRALX_PACKED_LAYOUT_H

#include <stddef.h>

#define SX_KC 256
#define SX_NR 16
#define SX_MR 6
#define SX_MC 120
#define SX_NCP 16
#define SX_MC512 240  // AVX-512 nest: rows per chunk where the L2 size is unknown (see sx_rows_per_chunk512)

static inline ptrdiff_t sx_panels(ptrdiff_t n) { return (n + SX_NR - 1) / SX_NR; }
static inline ptrdiff_t sx_groups(ptrdiff_t m) { return (m + SX_MR - 1) / SX_MR; }

/// Rows per row chunk of the AVX-512 loop nests (packed_gemm.c).
ptrdiff_t sx_rows_per_chunk512(void);

#if defined(__x86_64__)
#include <immintrin.h>

// The end of one AVX-512 tile (G 6-row groups x P 16-column panels of block sums in acc): y = y + sum when
// `add`, then + bias; `rows`/`cols` the valid part, cut tiles through a stack copy. One per-element
// operation order for the float32 and the bf16 tiles.
__attribute__((target("avx512f,fma"))) static inline __attribute__((always_inline)) void
sx_store_tile512(const int G, const int P, __m512 acc[2 * SX_MR][2], float *c, ptrdiff_t ldc, int rows, int cols, int add,
                 const float *bias) {
    if (rows == G * SX_MR && cols == P * SX_NR) {
        const __m512 bias0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
        const __m512 bias1 = bias && P == 2 ? _mm512_loadu_ps(bias + SX_NR) : _mm512_setzero_ps();
        for (int r = 0; r < G * SX_MR; r++) {
            float *row = c + r * ldc;
            __m512 v0 = acc[r][0], v1 = acc[r][1];
            if (add) { v0 = _mm512_add_ps(_mm512_loadu_ps(row), v0); if (P == 2) v1 = _mm512_add_ps(_mm512_loadu_ps(row + SX_NR), v1); }
            if (bias) { v0 = _mm512_add_ps(v0, bias0); v1 = _mm512_add_ps(v1, bias1); }
            _mm512_storeu_ps(row, v0);
            if (P == 2) _mm512_storeu_ps(row + SX_NR, v1);
        }
        return;
    }
    float t[2 * SX_MR * 2 * SX_NR] __attribute__((aligned(64)));
    for (int r = 0; r < G * SX_MR; r++) {
        _mm512_store_ps(t + r * 2 * SX_NR, acc[r][0]);
        _mm512_store_ps(t + r * 2 * SX_NR + SX_NR, acc[r][1]);
    }
    for (int r = 0; r < rows; r++) {
        for (int j = 0; j < cols; j++) {
            float v = t[r * 2 * SX_NR + j];
            if (add) v = c[r * ldc + j] + v;
            if (bias) v = v + bias[j];
            c[r * ldc + j] = v;
        }
    }
}
#endif

#endif
