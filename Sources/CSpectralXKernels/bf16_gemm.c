// y = bf16(x) * bf16(W)^T (+ bias) (+ y) with float32 accumulation: the bf16 twin of packed_gemm.c.
//
// Rounding: W is rounded to bf16 once, when it is packed; x as its rows are packed per call; both as
// `vcvtne2ps2bf16` rounds (nearest-even, float32 denormals to signed zero, NaN quiet), in C on every CPU
// (packing is O(m k), the product O(m n k)), so the operands have the same bits whatever the kernel.
//
// Arithmetic: one `vdpbf16ps` per K pair, whose per-lane operation (measured on AMD Zen 5 against an
// emulation, 2e7 random operands including denormals, overflow and signed zeros, see
// Tests/SpectralXTensorTests/BF16WeightTests.swift) is two fused multiply-adds, the odd K index first:
//     acc = ftz(fma(daz(a[2i+1]), daz(b[2i+1]), acc));  acc = ftz(fma(daz(a[2i]), daz(b[2i]), acc))
// (a bf16 product is exact in float32, so while products stay in float32's normal range this is also the
// unfused `acc += a*b` of Intel's documentation: the readings differ only for products that underflow or
// overflow, which the model's values never come near). The portable micro-kernel computes exactly that
// with fmaf, so it gives the instruction's bits.
//
// Layouts: those of packed_gemm.c with K taken in pairs. K blocks of SX_KC (even); inside a block, panels of
// SX_NR = 16 columns; a panel holds ceil(kc/2) rows of 16 (even, odd) bf16 pairs: the 64 bytes of one
// `vdpbf16ps` operand (zero past n, and the odd element of a last odd K). Activation rows: per K block,
// 6-row groups holding per K pair the 6 rows' (even, odd) pairs, one 32-bit broadcast each. Per element:
// one dot-product chain per K block from 0, then y + it, then + bias: as the float32 kernel, so an element's
// bits depend neither on the rows beside it (the batch) nor on the split across threads.
#include "spectralx_kernels.h"
#include "packed_layout.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/// The bf16 nearest to x as `vcvtne2ps2bf16` gives it: round to nearest even, denormals to signed zero
/// (the instruction treats them as zero), NaN kept quiet.
static inline uint16_t sx_bf16_round(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7F800000u) == 0x7F800000u && (b & 0x007FFFFFu)) return (uint16_t)((b >> 16) | 0x0040u);
    if ((b & 0x7F800000u) == 0) return (uint16_t)((b >> 16) & 0x8000u);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

void sx_bf16_from_float(const float *x, ptrdiff_t count, uint16_t *out) {
    for (ptrdiff_t i = 0; i < count; i++) out[i] = sx_bf16_round(x[i]);
}

/// K rounded up to whole pairs.
static inline ptrdiff_t sx_kpad(ptrdiff_t k) { return k + (k & 1); }

size_t sx_bf16_packed_weight_count(ptrdiff_t n, ptrdiff_t k) { return (size_t)sx_panels(n) * SX_NR * (size_t)sx_kpad(k); }

size_t sx_bf16_packed_rows_count(ptrdiff_t m, ptrdiff_t k) { return (size_t)sx_groups(m) * SX_MR * (size_t)sx_kpad(k); }

void sx_bf16_pack_weight(const float *w, ptrdiff_t ldw, ptrdiff_t n, ptrdiff_t k, ptrdiff_t p0, ptrdiff_t p1, uint16_t *packed) {
    const ptrdiff_t panels = sx_panels(n);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC, kcp = (kc + 1) / 2;
        uint16_t *block = packed + (size_t)k0 * panels * SX_NR;  // earlier blocks are whole (SX_KC even)
        for (ptrdiff_t p = p0; p < p1; p++) {
            uint16_t *panel = block + (size_t)p * kcp * 2 * SX_NR;
            for (ptrdiff_t j = 0; j < SX_NR; j++) {
                const ptrdiff_t col = p * SX_NR + j;
                for (ptrdiff_t kk = 0; kk < 2 * kcp; kk++)
                    panel[(kk / 2) * 2 * SX_NR + 2 * j + (kk & 1)] =
                        col < n && kk < kc ? sx_bf16_round(w[col * ldw + k0 + kk]) : 0;
            }
        }
    }
}

void sx_bf16_pack_rows(const float *x, ptrdiff_t lda, ptrdiff_t m, ptrdiff_t k, ptrdiff_t g0, ptrdiff_t g1, uint16_t *apack) {
    const ptrdiff_t groups = sx_groups(m);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC, kcp = (kc + 1) / 2;
        for (ptrdiff_t g = g0; g < g1; g++) {
            uint16_t *d = apack + (size_t)k0 * groups * SX_MR + (size_t)g * SX_MR * 2 * kcp;
            const ptrdiff_t r0 = g * SX_MR;
            const int rows = m - r0 < SX_MR ? (int)(m - r0) : SX_MR;
            for (int r = 0; r < SX_MR; r++) {
                const float *src = x + (r0 + r) * lda + k0;
                for (ptrdiff_t kk = 0; kk < 2 * kcp; kk++)
                    d[(kk / 2) * 2 * SX_MR + 2 * r + (kk & 1)] = r < rows && kk < kc ? sx_bf16_round(src[kk]) : 0;
            }
        }
    }
}

static inline float sx_bf16_widen(uint16_t h) {
    const uint32_t b = (h & 0x7F80u) ? (uint32_t)h << 16 : ((uint32_t)h & 0x8000u) << 16;  // DAZ
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline float sx_ftz(float v) { return fabsf(v) < 0x1p-126f ? copysignf(0.0f, v) : v; }

// The portable micro-kernel: `vdpbf16ps`'s per-lane operations one element at a time (see the top), then the
// float32 kernel's epilogue. Exact, and slow (an fmaf call per multiply-add where the build has no FMA).
static void sx_bf16_panels_scalar(const uint16_t *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                                  const uint16_t *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias,
                                  int accumulate, float *y, ptrdiff_t ldc) {
    const ptrdiff_t panels = sx_panels(n), groups = sx_groups(m);
    for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
        const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC, kcp = (kc + 1) / 2;
        const int add = k0 > 0 || accumulate, last = k0 + kc >= k;
        const uint16_t *block = packed + (size_t)k0 * panels * SX_NR;
        const uint16_t *ablock = apack + (size_t)k0 * groups * SX_MR;
        for (ptrdiff_t g = g0; g < g1; g++) {
            const ptrdiff_t r0 = g * SX_MR;
            const int rows = m - r0 < SX_MR ? (int)(m - r0) : SX_MR;
            const uint16_t *a = ablock + (size_t)g * SX_MR * 2 * kcp;
            for (ptrdiff_t p = p0; p < p1; p++) {
                const ptrdiff_t j0 = p * SX_NR;
                const int cols = n - j0 < SX_NR ? (int)(n - j0) : SX_NR;
                const uint16_t *b = block + (size_t)p * kcp * 2 * SX_NR;
                for (int r = 0; r < rows; r++) {
                    for (int j = 0; j < cols; j++) {
                        float acc = 0.0f;
                        for (ptrdiff_t q = 0; q < kcp; q++) {
                            const uint16_t *ap = a + q * 2 * SX_MR + 2 * r, *bp = b + q * 2 * SX_NR + 2 * j;
                            acc = sx_ftz(fmaf(sx_bf16_widen(ap[1]), sx_bf16_widen(bp[1]), acc));
                            acc = sx_ftz(fmaf(sx_bf16_widen(ap[0]), sx_bf16_widen(bp[0]), acc));
                        }
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
#define SX_AVX512BF16 __attribute__((target("avx512f,avx512bf16,fma")))

// A K pair of one activation row, read from the uint16 layout (may_alias: the buffer's type is uint16_t).
typedef uint32_t sx_pair __attribute__((may_alias));

// The vdpbf16ps tile: G 6-row groups against P panels (each 1 or 2, constant at each call site), up to
// 12 x 32 in 24 zmm accumulators, 12 broadcasts and 2 loads per 24 dot-product pairs: sx_tile512 on pairs.
SX_AVX512BF16 static inline __attribute__((always_inline)) void
sx_bf16_tile512(const int G, const int P, ptrdiff_t kcp, const sx_pair *a0, const sx_pair *a1, const uint16_t *b0,
                const uint16_t *b1, float *c, ptrdiff_t ldc, int rows, int cols, int add, const float *bias) {
    __m512 acc[2 * SX_MR][2];
    for (int r = 0; r < 2 * SX_MR; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = acc[r][0]; }
#pragma clang loop unroll_count(2)
    for (ptrdiff_t q = 0; q < kcp; q++) {
        const __m512bh x0 = (__m512bh)_mm512_loadu_si512(b0 + q * 2 * SX_NR);
        const __m512bh x1 = P == 2 ? (__m512bh)_mm512_loadu_si512(b1 + q * 2 * SX_NR) : x0;
#pragma clang loop unroll(full)
        for (int r = 0; r < SX_MR; r++) {
            const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a0[q * SX_MR + r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, x0);
            if (P == 2) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, x1);
        }
        if (G == 2) {
#pragma clang loop unroll(full)
            for (int r = 0; r < SX_MR; r++) {
                const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a1[q * SX_MR + r]);
                acc[SX_MR + r][0] = _mm512_dpbf16_ps(acc[SX_MR + r][0], av, x0);
                if (P == 2) acc[SX_MR + r][1] = _mm512_dpbf16_ps(acc[SX_MR + r][1], av, x1);
            }
        }
    }
    sx_store_tile512(G, P, acc, c, ldc, rows, cols, add, bias);
}

// sx_gemm_panels_avx512's loop nest (row chunks, K blocks, panel chunks, group and panel pairs) on pairs.
SX_AVX512BF16 static void sx_bf16_panels_avx512(const uint16_t *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                                                const uint16_t *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1,
                                                const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
    const ptrdiff_t panels = sx_panels(n), groups = sx_groups(m), chunkGroups = sx_rows_per_chunk512() / SX_MR;
    for (ptrdiff_t c0 = g0; c0 < g1; c0 += chunkGroups) {
        const ptrdiff_t c1 = c0 + chunkGroups < g1 ? c0 + chunkGroups : g1;
        for (ptrdiff_t k0 = 0; k0 < k; k0 += SX_KC) {
            const ptrdiff_t kc = k - k0 < SX_KC ? k - k0 : SX_KC, kcp = (kc + 1) / 2;
            const int add = k0 > 0 || accumulate, last = k0 + kc >= k;
            const uint16_t *block = packed + (size_t)k0 * panels * SX_NR;
            const uint16_t *ablock = apack + (size_t)k0 * groups * SX_MR;
            for (ptrdiff_t pc = p0; pc < p1; pc += SX_NCP) {
                const ptrdiff_t pe = pc + SX_NCP < p1 ? pc + SX_NCP : p1;
                for (ptrdiff_t g = c0; g < c1; g += 2) {
                    const int twoGroups = g + 1 < c1;
                    const ptrdiff_t r0 = g * SX_MR;
                    const ptrdiff_t rowCap = twoGroups ? 2 * SX_MR : SX_MR;
                    const int rows = m - r0 < rowCap ? (int)(m - r0) : (int)rowCap;
                    const sx_pair *a0 = (const sx_pair *)(ablock + (size_t)g * SX_MR * 2 * kcp), *a1 = a0 + SX_MR * kcp;
                    for (ptrdiff_t p = pc; p < pe; p += 2) {
                        const int twoPanels = p + 1 < pe;
                        const ptrdiff_t j0 = p * SX_NR;
                        const ptrdiff_t colCap = twoPanels ? 2 * SX_NR : SX_NR;
                        const int cols = n - j0 < colCap ? (int)(n - j0) : (int)colCap;
                        const uint16_t *b0 = block + (size_t)p * kcp * 2 * SX_NR, *b1 = b0 + kcp * 2 * SX_NR;
                        float *cp = y + r0 * ldc + j0;
                        const float *bp = last && bias ? bias + j0 : NULL;
                        if (twoGroups && twoPanels) sx_bf16_tile512(2, 2, kcp, a0, a1, b0, b1, cp, ldc, rows, cols, add, bp);
                        else if (twoGroups) sx_bf16_tile512(2, 1, kcp, a0, a1, b0, b0, cp, ldc, rows, cols, add, bp);
                        else if (twoPanels) sx_bf16_tile512(1, 2, kcp, a0, a0, b0, b1, cp, ldc, rows, cols, add, bp);
                        else sx_bf16_tile512(1, 1, kcp, a0, a0, b0, b0, cp, ldc, rows, cols, add, bp);
                    }
                }
            }
        }
    }
}
#endif

int sx_bf16_gemm_supported(int level) {
    switch (level) {
    case SX_BF16_PORTABLE: return 1;
#if defined(__x86_64__)
    case SX_BF16_AVX512:
        __builtin_cpu_init();
        return sx_kernels_at(SX_SIMD_AVX512) != NULL && __builtin_cpu_supports("avx512bf16");
#endif
    // SX_BF16_AMX: the dispatch point for AMX-BF16 tiles (Intel Sapphire/Emerald Rapids). Not written: no
    // machine this project runs on has had AMX to test it. It needs the CPU flag and the kernel's permission
    // (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA), and its tiles must keep the per-element order above
    // (TDPBF16PS sums 16 K pairs per instruction, so it would be a different order: a distinct precision).
    default: return 0;
    }
}

int sx_bf16_gemm_level(void) {
    // SPECTRALX_SIMD caps this as it caps the float32 kernels (sx_kernels_best).
    const sx_kernels *best = sx_kernels_best();
    if (best && best->level >= SX_SIMD_AVX512 && sx_bf16_gemm_supported(SX_BF16_AVX512)) return SX_BF16_AVX512;
    return SX_BF16_PORTABLE;
}

int sx_bf16_gemm_panels_at(int level, const uint16_t *apack, ptrdiff_t m, ptrdiff_t g0, ptrdiff_t g1, ptrdiff_t k,
                           const uint16_t *packed, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1, const float *bias, int accumulate,
                           float *y, ptrdiff_t ldc) {
    if (!sx_bf16_gemm_supported(level)) return -2;
    const ptrdiff_t r1 = g1 * SX_MR < m ? g1 * SX_MR : m, c1 = p1 * SX_NR < n ? p1 * SX_NR : n;
    if (r1 > g0 * SX_MR && c1 > p0 * SX_NR) sx_flops_add(2.0 * (double)(r1 - g0 * SX_MR) * (double)(c1 - p0 * SX_NR) * (double)k);
#if defined(__x86_64__)
    if (level == SX_BF16_AVX512) {
        sx_bf16_panels_avx512(apack, m, g0, g1, k, packed, n, p0, p1, bias, accumulate, y, ldc);
        return 0;
    }
#endif
    sx_bf16_panels_scalar(apack, m, g0, g1, k, packed, n, p0, p1, bias, accumulate, y, ldc);
    return 0;
}

int sx_bf16_gemm_at(int level, const float *x, ptrdiff_t lda, ptrdiff_t m, const uint16_t *packed, ptrdiff_t n, ptrdiff_t k,
                    const float *bias, int accumulate, float *y, ptrdiff_t ldc) {
    if (!sx_bf16_gemm_supported(level)) return -2;
    uint16_t *apack = NULL;
    if (posix_memalign((void **)&apack, 64, sx_bf16_packed_rows_count(m, k) * sizeof(uint16_t)) != 0) return -1;
    sx_bf16_pack_rows(x, lda, m, k, 0, sx_groups(m), apack);
    const int status = sx_bf16_gemm_panels_at(level, apack, m, 0, sx_groups(m), k, packed, n, 0, sx_panels(n), bias, accumulate, y, ldc);
    free(apack);
    return status;
}
