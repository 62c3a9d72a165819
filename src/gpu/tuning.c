/* The device path's switches from the environment (include/mmupt/gpu_mem.h, struct gpu_tuning): read
 * once when a device context starts, each value checked - a misspelt switch is an error with its
 * name, not a silent default (benchmarks/gpu_ab.sh and the *_cuda.sh scripts measure both settings
 * of each side by side). MMUPT_GEMM_SKINNY belongs to the cuBLAS handle (blas_cuda.c); gpu_ctx_init
 * hands MMUPT_GEMM_TUNE's setting to it. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/gpu_mem.h"

/* *on = 1 for `yes`, 0 for `no`, `dflt` for an unset or empty variable; an error for anything else. */
static int switch_from_env(const char *name, const char *yes, const char *no, int dflt, int *on, struct mmupt_err *err)
{
    const char *v = getenv(name);
    *on = dflt;
    if (!v || !*v) return 0;
    if (strcmp(v, yes) == 0 || strcmp(v, no) == 0) {
        *on = strcmp(v, yes) == 0;
        return 0;
    }
    return mmupt_fail(err, "%s must be %s or %s, not '%s'", name, yes, no, v);
}

/* MMUPT_ATTENTION: cudnn (the default, also when unset or empty; a shape cuDNN does not plan, or a
 * build without it, attends through cuBLAS), cublas or flash. */
static int attention_from_env(struct gpu_tuning *t, struct mmupt_err *err)
{
    const char *v = getenv("MMUPT_ATTENTION");
    if (!v || !*v || strcmp(v, "cudnn") == 0) t->cudnn_attention = 1;
    else if (strcmp(v, "flash") == 0) t->flash_attention = 1;
    else if (strcmp(v, "cublas") != 0)
        return mmupt_fail(err, "MMUPT_ATTENTION must be cudnn, cublas or flash, not '%s'", v);
    return 0;
}

int gpu_tuning_from_env(struct gpu_tuning *t, struct mmupt_err *err)
{
    memset(t, 0, sizeof *t);
    if (attention_from_env(t, err)) return -1;
    if (switch_from_env("MMUPT_GEMM_TUNE", "1", "0", 0, &t->gemm_tune, err)) return -1;
    if (switch_from_env("MMUPT_DECODE_STAGE", "1", "0", 1, &t->decode_stage, err)) return -1;
    if (switch_from_env("MMUPT_DECODE_PDL", "1", "0", 0, &t->decode_pdl, err)) return -1;
    if (switch_from_env("MMUPT_DECODE_MMA", "1", "0", 1, &t->decode_mma, err)) return -1;
    if (switch_from_env("MMUPT_DECODE_SPLIT", "1", "0", 0, &t->decode_split, err)) return -1;
    if (switch_from_env("MMUPT_GEMM_RESIDUAL", "1", "0", 1, &t->gemm_residual, err)) return -1;
    const char *file = getenv("MMUPT_GEMM_TUNE_FILE");
    if (!file || !*file) return 0;
    const char *tune = getenv("MMUPT_GEMM_TUNE");
    if (tune && strcmp(tune, "0") == 0)
        return mmupt_fail(err, "MMUPT_GEMM_TUNE_FILE=%s asks for tuning, MMUPT_GEMM_TUNE=0 turns it off: unset one", file);
    if (strlen(file) >= sizeof t->gemm_tune_file)
        return mmupt_fail(err, "MMUPT_GEMM_TUNE_FILE: the path is longer than %zu bytes", sizeof t->gemm_tune_file - 1);
    memcpy(t->gemm_tune_file, file, strlen(file) + 1);
    t->gemm_tune = 1;
    return 0;
}
