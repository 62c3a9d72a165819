/* How a packed batch's attention becomes cuDNN SDPA calls (src/gpu/sdpa_cudnn.c), host side only so
 * that it builds and is tested everywhere (tests/unit/test_sdpa_layout.c).
 *
 * Every non-empty segment is one entry of a ragged batch; a plan is compiled per (entries, padded
 * length) and compiling takes seconds, so the entry count is bucketed too: the segments are split, in
 * order, into calls of power-of-two entry counts, largest first (13 segments: 8, 4, 1). However the
 * segment counts of a run vary - a vision tower's windows follow the images' sizes - the plans stay
 * a handful: one per power of two and padded length. Each call binds its own int32 arrays: the
 * lengths [b] and the ragged offsets of q/o, k/v and the statistics [b + 1] (element offsets into the
 * token-major [T, heads, hd] and [T, heads] buffers; the last, where the call's rows end), every array
 * starting at a multiple of 4 ints (16 bytes, as cuDNN's tensors are declared aligned). */
#ifndef MMUPT_SDPA_LAYOUT_H
#define MMUPT_SDPA_LAYOUT_H

#include <stdint.h>

enum {
    SDPA_LEN_STEP = 128, /* padded lengths are multiples of this */
    SDPA_MAX_CALLS = 31, /* the bits of a positive int */
};

struct sdpa_call_layout {
    int first;                        /* its first entry, counting the batch's non-empty segments */
    int b, s;                         /* entries (a power of two) and padded length */
    int64_t len, off_q, off_k, off_s; /* where its arrays start in the plan's ints */
};

struct sdpa_layout_plan {
    int n_calls; /* 0: no rows */
    struct sdpa_call_layout call[SDPA_MAX_CALLS];
    int32_t *ints; /* every call's arrays (NULL with no calls) */
    int64_t n_ints;
};

/* The calls of segments seg[0..n_seg] (row boundaries, non-decreasing) with hq query and hk key/value
 * heads of hd: 0, or -1 when an offset does not fit int32 (p then holds no calls). */
int sdpa_layout_make(struct sdpa_layout_plan *p, const int *seg, int n_seg, int hq, int hk, int hd);
void sdpa_layout_free(struct sdpa_layout_plan *p);

#endif
