// OpenBLAS's CBLAS interface (Debian: libopenblas-dev puts cblas.h on the default include path).
#include <cblas.h>
// OpenBLAS extensions used to pin the thread count next to our own Dispatch parallelism.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
// The kernel family OpenBLAS chose at load ("Prescott", "Haswell", "SkylakeX", …).
char *openblas_get_corename(void);
