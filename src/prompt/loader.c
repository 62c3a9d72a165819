/* The prompt stream with skip-and-count (see loader.h). */
#include <string.h>

#include "mmupt/loader.h"

void prompt_loader_init(struct prompt_loader *L, struct ds_reader *ds, struct prompt_builder *pb,
                        const struct log_ctx *lg, const struct ds_cursor *cursor, int skip_bad)
{
    memset(L, 0, sizeof *L);
    L->ds = ds;
    L->pb = pb;
    L->lg = lg;
    L->cursor = *cursor;
    L->skip_bad = skip_bad;
}

/* Read and build one item; on failure err names the item. */
static int try_item(struct prompt_loader *L, int64_t index, struct prompt_item *out, struct ds_item *item,
                    struct mmupt_err *err)
{
    if (ds_read(L->ds, index, item, err)) return -1;
    if (prompt_build(L->pb, item->problem, (const uint8_t *const *)item->image, item->image_len, item->n_images, out,
                     err)) {
        mmupt_err_prefix(err, "item %lld (id '%.100s')", (long long)index, item->id);
        ds_item_free(item);
        return -1;
    }
    return 0;
}

int prompt_loader_next(struct prompt_loader *L, struct prompt_item *out, struct ds_item *item, struct mmupt_err *err)
{
    int64_t n = ds_count(L->ds);
    /* A run of bad items as long as the split means there is nothing usable left to find. */
    for (int64_t tries = 0; tries <= n; tries++) {
        int64_t index = ds_cursor_next(&L->cursor, n);
        if (index < 0)
            return mmupt_fail(err, "the split has %lld item(s), too few for %d rank(s)", (long long)n, L->cursor.world);
        if (try_item(L, index, out, item, err) == 0) {
            L->served++;
            return 0;
        }
        if (!L->skip_bad) {
            mmupt_err_prefix(err, "bad dataset item (set data.skip_bad_items: true to skip such items)");
            return -1;
        }
        L->skipped++;
        if (L->lg) log_warn(L->lg, "skipping %s (%lld skipped so far)", err->msg, (long long)L->skipped);
    }
    char last[MMUPT_ERR_MSG_MAX];
    memcpy(last, err->msg, sizeof last);
    return mmupt_fail(err, "%lld consecutive dataset items were unusable; the last: %.700s", (long long)(n + 1), last);
}
