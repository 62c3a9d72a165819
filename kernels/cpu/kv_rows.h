/* The decode ops' shared precondition (attention_decode.c, kv_append.c). */
#ifndef MMUPT_KERNELS_CPU_KV_ROWS_H
#define MMUPT_KERNELS_CPU_KV_ROWS_H

#include "mmupt/err.h"

/* Fatal unless every (slot, pos) lies inside the cache: a caller's bookkeeping bug, not input. */
static inline void kv_check_rows(const int *slot, const int *pos, int n, int n_slots, int max_len)
{
    for (int i = 0; i < n; i++)
        if (slot[i] < 0 || slot[i] >= n_slots || pos[i] < 0 || pos[i] >= max_len)
            MMUPT_DIE("decode row %d: slot %d, position %d outside a cache of %d x %d", i, slot[i], pos[i], n_slots,
                      max_len);
}

#endif
