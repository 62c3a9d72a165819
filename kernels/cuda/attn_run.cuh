// Runs of equal-length segments: how the attention twins (attention.cu, attention_flash.cu) walk a
// packed batch's segments - one round of launches per run, since seg lives on the host.
#ifndef MMUPT_KERNELS_CUDA_ATTN_RUN_CUH
#define MMUPT_KERNELS_CUDA_ATTN_RUN_CUH

#include <math.h>

#include "mmupt/err.h"

// A run: `count` consecutive segments of one length `len` starting at row t0 - the learner's and the
// prefill's usual layout (every sequence of a micro-batch, every prompt of a rollout, padded to one
// length), and a lone segment otherwise. A run is one batch of count * n_heads (segment, head)
// products per GEMM, entry b = s * n_heads + h: a 1.5B learner step's attention was 16 small GEMMs
// (8 segments x 2 kv heads) per product and a rollout prefill's 128 (64 prompts x 2), each a few
// microseconds of launch latency for far less work (the H200 profile: 160 launches per layer).
struct attn_run {
    int t0, len, count, n_heads, n_kv, group, hd, causal;
    float scale;
};

// Host-side argument checks, the same as the CPU reference's.
static void attn_check_args(const int *seg, int n_seg, int n_heads, int n_kv, int hd)
{
    MMUPT_CHECK(n_seg >= 0 && seg[0] == 0);
    for (int s = 0; s < n_seg; s++) MMUPT_CHECK(seg[s + 1] >= seg[s]);
    MMUPT_CHECK(n_heads > 0 && n_kv > 0 && n_heads % n_kv == 0 && hd > 0);
    MMUPT_CHECK(n_heads <= 65535); // grid y of the row kernels
}

// The run that starts at segment *s (skipping empty segments), advancing *s past it; count 0 when
// none is left. A run stops where the length changes, at an empty segment, and at 65535 / n_heads
// segments (the row kernels' grid y).
static struct attn_run attn_next_run(const int *seg, int n_seg, int *s, int n_heads, int n_kv, int hd, int causal)
{
    struct attn_run r = {};
    while (*s < n_seg && seg[*s + 1] == seg[*s]) (*s)++;
    if (*s == n_seg) return r;
    r.t0 = seg[*s];
    r.len = seg[*s + 1] - seg[*s];
    int max_count = 65535 / n_heads;
    while (*s < n_seg && seg[*s + 1] - seg[*s] == r.len && r.count < max_count) {
        r.count++;
        (*s)++;
    }
    r.n_heads = n_heads;
    r.n_kv = n_kv;
    r.group = n_heads / n_kv;
    r.hd = hd;
    r.causal = causal != 0;
    r.scale = (float)(1.0 / sqrt((double)hd)); // as the CPU reference computes it
    return r;
}

#endif
