/* Which compute a run uses (cluster.backend, `--device`): shared by the trainer and the commands
 * that decode (eval, synth), so they refuse and explain the same way. */
#include "mmupt/config.h"
#include "mmupt/gpu.h"
#include "mmupt/gpu_mem.h"

static const char *const NO_CUDA =
    "this mmupt was built without CUDA (meson setup -Dcuda=enabled on a machine with the CUDA toolkit); "
    "the emulator backend runs the device code path on the CPU, for testing";

int gpu_backend_resolve(int want, struct mmupt_err *err)
{
    if (want == BACKEND_CPU) return 0;
    if (want == BACKEND_EMULATOR) {
        if (!gpu_emulated())
            return mmupt_fail(err, "this build has the real CUDA backend; the emulator exists only in CPU-only "
                                   "builds (use cuda)");
        return 1;
    }
    if (want == BACKEND_CUDA && gpu_emulated()) return mmupt_fail(err, "%s", NO_CUDA);
    struct gpu_info gi;
    gpu_query(&gi);
    if (want == BACKEND_AUTO) return !gpu_emulated() && gi.device_count > 0;
    if (gi.device_count == 0) return mmupt_fail(err, "%s", gi.reason);
    return 1;
}

int gpu_device_for_rank(int local_rank, int local_size, int count, int *shared)
{
    *shared = count > 0 && local_size > count;
    return count > 1 ? local_rank % count : 0;
}
