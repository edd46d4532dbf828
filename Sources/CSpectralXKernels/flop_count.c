// The arithmetic counter (declared in spectralx_kernels.h): floating-point operations of the matrix
// products run by threads that are counting, so `spectralx bench` can report the arithmetic the network
// actually does next to the spec's count of the direct computation (§8).
//
// Counting is a per-thread flag, and the worker pool (thread_pool.c) hands a caller's flag to the workers
// that run its loop, so a count holds only the counting caller's products, never those of another
// thread working meanwhile (a concurrent test, a server's other request). Off, a product pays one read
// of a thread-local.
#include "spectralx_kernels.h"

#include <stdatomic.h>
#include <stdint.h>

static _Atomic uint64_t sx_flops;
static _Thread_local int sx_counting_here;

int sx_flops_counting(void) { return sx_counting_here; }

void sx_flops_set_counting(int on) { sx_counting_here = on != 0; }

void sx_flops_add(double flops) {
    if (!sx_counting_here || !(flops > 0)) return;
    atomic_fetch_add_explicit(&sx_flops, (uint64_t)flops, memory_order_relaxed);
}

unsigned long long sx_flops_peek(void) { return atomic_load_explicit(&sx_flops, memory_order_relaxed); }

unsigned long long sx_flops_take(void) { return atomic_exchange_explicit(&sx_flops, 0, memory_order_relaxed); }
