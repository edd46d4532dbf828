#include "spectralx_kernels.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SX_LANES 4
#define SX_SUFFIX _generic
#define SX_LEVEL SX_SIMD_GENERIC
#define SX_NAME "generic"
#include "kernels_body.h"
#undef SX_LANES
#undef SX_SUFFIX
#undef SX_LEVEL
#undef SX_NAME

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define SX_LANES 8
#define SX_SUFFIX _avx2
#define SX_LEVEL SX_SIMD_AVX2
#define SX_NAME "avx2"
#include "kernels_body.h"
#undef SX_LANES
#undef SX_SUFFIX
#undef SX_LEVEL
#undef SX_NAME
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma"))), apply_to = function)
#define SX_LANES 16
#define SX_SUFFIX _avx512
#define SX_LEVEL SX_SIMD_AVX512
#define SX_NAME "avx512"
#include "kernels_body.h"
#undef SX_LANES
#undef SX_SUFFIX
#undef SX_LEVEL
#undef SX_NAME
#pragma clang attribute pop
#endif

static int sx_supported(int level) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    switch (level) {
    case SX_SIMD_GENERIC: return 1;
    case SX_SIMD_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SX_SIMD_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
    default: return 0;
    }
#else
    return level == SX_SIMD_GENERIC;
#endif
}

const sx_kernels *sx_kernels_at(int level) {
    if (!sx_supported(level)) return NULL;
    switch (level) {
    case SX_SIMD_GENERIC: return &table_generic;
#if defined(__x86_64__)
    case SX_SIMD_AVX2: return &table_avx2;
    case SX_SIMD_AVX512: return &table_avx512;
#endif
    default: return NULL;
    }
}

static _Atomic(const sx_kernels *) sx_best = NULL;

const sx_kernels *sx_kernels_best(void) {
    const sx_kernels *k = atomic_load_explicit(&sx_best, memory_order_acquire);
    if (k) return k;
    int cap = SX_SIMD_AVX512;
    const char *env = getenv("SPECTRALX_SIMD");
    if (env && strcmp(env, "generic") == 0) cap = SX_SIMD_GENERIC;
    else if (env && strcmp(env, "avx2") == 0) cap = SX_SIMD_AVX2;
    for (int level = cap; level >= SX_SIMD_GENERIC && !k; level--) k = sx_kernels_at(level);
    atomic_store_explicit(&sx_best, k, memory_order_release);
    return k;
}
