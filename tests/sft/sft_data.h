/* A tiny supervised split for the sft tests: items of tests/fixtures/datasets/small.h5 (their problems
 * and images: one, two, none and one image) with their answers replaced by short responses. */
#ifndef MMUPT_TEST_SFT_DATA_H
#define MMUPT_TEST_SFT_DATA_H

#include <stdlib.h>
#include <string.h>

#include "mmupt/dataset.h"

#define SFT_N_ITEMS 4

static const int64_t sft_item_index[SFT_N_ITEMS] = {0, 1, 2, 4};
static const char *const sft_responses[SFT_N_ITEMS] = {
    "x = 15 \\boxed{15}",
    "bar B \\boxed{B}",
    "2+2=4 \\boxed{4}",
    "red \\boxed{red}",
};

/* Write the split to path; with_answers 0 leaves the `answer` field out (a prompt-only split).
 * Returns 0, or -1 with err set. */
static inline int sft_write_split(const char *small_h5, const char *path, int with_answers, struct mmupt_err *err)
{
    struct ds_reader *r;
    struct ds_writer *w;
    if (ds_open(&r, small_h5, err)) return -1;
    if (ds_writer_open(&w, path, with_answers, err)) {
        ds_close(r);
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < SFT_N_ITEMS && rc == 0; k++) {
        struct ds_item it = {0};
        if ((rc = ds_read(r, sft_item_index[k], &it, err)) != 0) break;
        free(it.answer);
        it.answer = with_answers ? strdup(sft_responses[k]) : NULL;
        rc = ds_writer_add(w, &it, err);
        ds_item_free(&it);
    }
    ds_close(r);
    if (rc) {
        struct mmupt_err ignored;
        ds_writer_close(w, &ignored);
        return -1;
    }
    return ds_writer_close(w, err);
}

#endif
