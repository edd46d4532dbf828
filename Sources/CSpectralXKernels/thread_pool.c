// The process's one worker pool for parallel loops (declared in spectralx_kernels.h).
//
// Why not libdispatch's concurrentPerform: a forward pass has hundreds of short parallel regions
// (each GEMM slice set, each LayerNorm or GELU over the rows), with a little serial work between
// them. Dispatch's workers go to sleep in between, and on this project's VMs (cpuidle haltpoll with
// guest polling switched off) waking a sleeping thread on the other vCPU costs a median of
// 0.1-0.3 ms and up to several ms, so every region began with one core idle. These workers spin for
// a bounded time after a region (`SPECTRALX_POOL_SPIN_US`, microseconds) before parking on a condition
// variable, as OpenBLAS's own pool does; an idle process parks them all within that time.
//
// Protocol (all atomics sequentially consistent where ordering matters):
//   caller: publish `current` -> bump `generation` -> wake parked workers if any -> run indices ->
//           clear `current` -> wait until `active` is 0.
//   worker: see `generation` change -> `active += 1` -> load `current` -> run indices -> `active -= 1`.
// A worker counts itself active before it loads the job pointer, so once the caller has cleared the
// pointer and then seen `active == 0`, no worker holds (or can still obtain) a pointer to its job,
// which lives on the caller's stack. A worker that arrives late sees NULL or finds every index taken.
// One caller at a time: a second concurrent (or nested) caller runs its loop on its own thread, so the
// process never has more runnable compute threads than cores.

#include "spectralx_kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SX_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define SX_RELAX() __asm__ __volatile__("yield")
#else
#define SX_RELAX() ((void)0)
#endif

typedef struct sx_job {
    sx_task_fn fn;
    void *ctx;
    ptrdiff_t count;
    int counting;  // the caller's arithmetic-counting flag (flop_count.c), taken on by the workers
    _Atomic ptrdiff_t next;
} sx_job;

static struct {
    pthread_once_t once;
    pthread_mutex_t caller;       // held by the one caller whose job the workers may join
    pthread_mutex_t park_lock;
    pthread_cond_t park;
    _Atomic(sx_job *) current;
    _Atomic uint64_t generation;  // bumped once per job
    _Atomic int parked;           // workers waiting (or about to wait) on `park`
    _Atomic int active;           // workers between `generation` seen and job done
    int workers;                  // threads started (cores - 1)
    int64_t spin_ns;
} pool = {
    .once = PTHREAD_ONCE_INIT,
    .caller = PTHREAD_MUTEX_INITIALIZER,
    .park_lock = PTHREAD_MUTEX_INITIALIZER,
    .park = PTHREAD_COND_INITIALIZER,
};

static _Thread_local int in_pool_job;  // this thread is running a pool job's index (worker or caller)

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void run_indices(sx_job *job) {
    for (;;) {
        ptrdiff_t i = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (i >= job->count) return;
        job->fn(job->ctx, i);
    }
}

static void *worker_main(void *unused) {
    (void)unused;
    in_pool_job = 1;  // a worker's nested loops run inline
    uint64_t seen = atomic_load(&pool.generation);
    for (;;) {
        uint64_t g = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (g == seen) {
            // Spin for the budget, reading the clock every 64 relax instructions, then park.
            int64_t deadline = now_ns() + pool.spin_ns;
            for (;;) {
                for (int r = 0; r < 64 && (g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen; r++)
                    SX_RELAX();
                if (g != seen || now_ns() >= deadline) break;
            }
            if (g == seen) {
                pthread_mutex_lock(&pool.park_lock);
                atomic_fetch_add(&pool.parked, 1);
                // The caller bumps `generation` then reads `parked`; this thread did the reverse, so
                // at least one of the two sees the other's write and no wake-up is lost.
                while ((g = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.park, &pool.park_lock);
                atomic_fetch_sub(&pool.parked, 1);
                pthread_mutex_unlock(&pool.park_lock);
            }
        }
        seen = g;
        atomic_fetch_add(&pool.active, 1);
        sx_job *job = atomic_load(&pool.current);
        if (job) {
            sx_flops_set_counting(job->counting);
            run_indices(job);
            sx_flops_set_counting(0);
        }
        atomic_fetch_sub_explicit(&pool.active, 1, memory_order_release);
    }
    return NULL;
}

static void pool_start(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *threads = getenv("SPECTRALX_POOL_THREADS");  // total including the caller
    if (threads && *threads) cores = strtol(threads, NULL, 10);
    if (cores < 1) cores = 1;
    if (cores > 256) cores = 256;
    int64_t spin_us = 1000;
    const char *spin = getenv("SPECTRALX_POOL_SPIN_US");
    if (spin && *spin) spin_us = strtoll(spin, NULL, 10);
    if (spin_us < 0) spin_us = 0;
    if (spin_us > 1000000) spin_us = 1000000;
    pool.spin_ns = spin_us * 1000;
    int started = 0;
    for (long t = 0; t + 1 < cores; t++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 8u << 20);
        pthread_t thread;
        if (pthread_create(&thread, &attr, worker_main, NULL) == 0) started++;
        pthread_attr_destroy(&attr);
    }
    pool.workers = started;
}

int sx_pool_workers(void) {
    pthread_once(&pool.once, pool_start);
    return pool.workers;
}

int sx_parallel_for(ptrdiff_t count, sx_task_fn fn, void *ctx) {
    if (count <= 0) return 0;
    pthread_once(&pool.once, pool_start);
    if (count == 1 || pool.workers == 0 || in_pool_job || pthread_mutex_trylock(&pool.caller) != 0) {
        for (ptrdiff_t i = 0; i < count; i++) fn(ctx, i);
        return 0;
    }
    sx_job job = {.fn = fn, .ctx = ctx, .count = count, .counting = sx_flops_counting()};
    atomic_init(&job.next, 0);
    atomic_store(&pool.current, &job);
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.parked) > 0) {
        pthread_mutex_lock(&pool.park_lock);
        pthread_cond_broadcast(&pool.park);
        pthread_mutex_unlock(&pool.park_lock);
    }
    in_pool_job = 1;
    run_indices(&job);
    in_pool_job = 0;
    atomic_store(&pool.current, (sx_job *)NULL);
    // The workers' last indices: usually microseconds; yield if one is descheduled.
    for (int spins = 0; atomic_load(&pool.active) != 0; spins++) {
        if (spins < 4096) SX_RELAX(); else sched_yield();
    }
    pthread_mutex_unlock(&pool.caller);
    return 1;
}
