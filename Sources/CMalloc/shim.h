// glibc allocator tuning (mallopt), not exposed by the Glibc module.
#include <malloc.h>
