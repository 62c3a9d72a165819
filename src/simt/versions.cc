/* The libraries the SIMT interpreter does not model (src/simt/README.md). */
#include "cudnn.h"
#include "nccl.h"

/* No cuDNN and no NCCL in the interpreter: version 0 says so where mmupt reports versions. */
extern "C" size_t cudnnGetVersion(void) { return 0; }
extern "C" ncclResult_t ncclGetVersion(int *version)
{
    *version = 0;
    return ncclSuccess;
}
