/* The SIMT interpreter has no cuDNN (src/simt/README.md): no SDPA plans, and every call attends as
 * by default (attention_sdpa_supported says no). The CPU reference, kernels/cpu/attention_sdpa.c,
 * is tested in the unit suite; the emulator runs the model's cuDNN path on it. */
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"

struct sdpa_plans *sdpa_plans_new(void)
{
    return NULL;
}

void sdpa_plans_free(struct sdpa_plans *p)
{
    (void)p;
}

int attention_sdpa_supported(const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                             const struct gpu_blas *blas)
{
    (void)seg, (void)n_seg, (void)n_heads, (void)n_kv, (void)hd, (void)causal, (void)blas;
    return 0;
}

void attention_sdpa_forward_cuda(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal, const struct gpu_blas *blas)
{
    (void)o16, (void)stats, (void)q16, (void)k16, (void)v16, (void)seg, (void)n_seg, (void)n_heads, (void)n_kv;
    (void)hd, (void)causal, (void)blas;
    MMUPT_DIE("attention_sdpa: the SIMT interpreter has no cuDNN (attention_sdpa_supported says so)");
}

void attention_sdpa_backward_cuda(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                  const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                  const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                  int causal, const struct gpu_blas *blas)
{
    (void)dq16, (void)dk16, (void)dv16, (void)dout16, (void)o16, (void)stats, (void)q16, (void)k16, (void)v16;
    (void)seg, (void)n_seg, (void)n_heads, (void)n_kv, (void)hd, (void)causal, (void)blas;
    MMUPT_DIE("attention_sdpa: the SIMT interpreter has no cuDNN (attention_sdpa_supported says so)");
}
