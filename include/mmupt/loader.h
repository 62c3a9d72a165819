/* The prompt stream a rollout rank consumes: dataset items in cursor order, turned into prompts;
 * unusable items (corrupt or missing images, <image> markers that do not match the images, invalid
 * text, prompts over the token limit) are skipped with a warning and counted by reason, or - with
 * skip_bad off (config data.skip_bad_items: false) - stop the run with the item named. */
#ifndef MMUPT_LOADER_H
#define MMUPT_LOADER_H

#include <stdint.h>

#include "mmupt/dataset.h"
#include "mmupt/log.h"
#include "mmupt/prompt.h"

struct prompt_loader {
    struct ds_reader *ds;          /* borrowed */
    struct prompt_builder *pb;     /* borrowed */
    const struct log_ctx *lg;      /* borrowed; warnings for skipped items */
    struct ds_cursor cursor;       /* the whole resumable position */
    int skip_bad;
    int64_t served, skipped;       /* counters since init */
};

void prompt_loader_init(struct prompt_loader *L, struct ds_reader *ds, struct prompt_builder *pb,
                        const struct log_ctx *lg, const struct ds_cursor *cursor, int skip_bad);
/* The next usable item as a prompt; *item receives the dataset item (its answer is for metrics and
 * supervised baselines only). Fails when skipping is off and an item is bad, when a whole epoch's
 * worth of items in a row were bad, or when the split cannot give this rank any item. */
int prompt_loader_next(struct prompt_loader *L, struct prompt_item *out, struct ds_item *item, struct mmupt_err *err);

#endif
