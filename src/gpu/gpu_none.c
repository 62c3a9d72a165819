/* The GPU query of a build without the CUDA backend. */
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/gpu.h"

void gpu_query(struct gpu_info *info)
{
    memset(info, 0, sizeof *info);
    strcpy(info->reason, "this build has no CUDA backend (configure with -Dcuda=enabled on a machine with the CUDA toolkit)");
}

int gpu_use_device(int device, struct mmupt_err *err)
{
    return device == 0 ? 0 : mmupt_fail(err, "CUDA device %d: this build has no CUDA backend", device);
}
