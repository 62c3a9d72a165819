/* shapes: whole dataset items, the statistics of what was written, and writing a split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mmupt/grade.h"
#include "mmupt/synth.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = mmupt_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

int shapes_make_item(const struct shapes_config *c, enum shapes_split split, uint64_t index, struct ds_item *out,
                     struct shapes_facts *facts, struct mmupt_err *err)
{
    struct shapes_facts f;
    shapes_draw(c, split, index, &f);
    struct img_rgb im;
    shapes_render(c, split, index, &f, &im);
    uint8_t *png;
    size_t png_len;
    int rc = img_png_encode(&im, &png, &png_len, err);
    img_free(&im);
    if (rc) return -1;

    struct ds_item it;
    memset(&it, 0, sizeof it);
    char id[48];
    snprintf(id, sizeof id, "%s-%llu", shapes_split_name(split), (unsigned long long)index);
    it.index = (int64_t)index;
    it.id = dup_str(id);
    if (f.ask) {
        /* Built by synth's own function, not retyped: the warm start must see byte for byte the
         * request that `mmupt synth --mode direct` will send it. */
        it.source = dup_str("ask");
        it.problem = synth_build_request(SYNTH_PROMPT_DIRECT, NULL, NULL, 1);
    } else {
        it.source = dup_str(shapes_kind_name(f.kind));
        it.problem = dup_str(shapes_question(f.kind));
    }
    it.answer = dup_str(split == SHAPES_SFT ? f.response : f.answer);
    it.n_images = 1;
    it.image = mmupt_xmalloc(sizeof *it.image);
    it.image_len = mmupt_xmalloc(sizeof *it.image_len);
    it.image[0] = png;
    it.image_len[0] = png_len;
    *out = it;
    if (facts) *facts = f;
    return 0;
}

/* Hard for the shortcut: where the direct answer is biased. */
static int is_hard(const struct shapes_config *c, const struct shapes_facts *f)
{
    int d = f->red - f->blue;
    if (f->kind == SHAPES_TOTAL) return f->red + f->blue >= c->crowded_min;
    if (f->kind == SHAPES_MORE) return d <= c->close_max_diff && -d <= c->close_max_diff;
    return 0;
}

void shapes_stats_add(struct shapes_stats *s, const struct shapes_config *c, enum shapes_split split,
                      const struct shapes_facts *f, const char *written_answer)
{
    s->n++;
    if (f->red + f->blue >= c->crowded_min) s->crowded++;
    if (f->ask) {
        /* A written question, not an answer: it has no kind, strategy or \boxed{} to measure. */
        int form = shapes_ask_form(written_answer);
        s->ask++;
        s->ask_form[form < 0 ? SHAPES_N_ASK_FORMS : form]++;
        return;
    }
    s->kind[f->kind]++;
    if (split != SHAPES_SFT) return;
    int st = shapes_response_strategy(written_answer);
    if (st < 0) st = SHAPES_N_STRATEGIES;
    char *got = NULL;
    struct mmupt_err err;
    int found = grade_extract(written_answer, strlen(written_answer), GRADE_BOXED, &got, &err);
    int wrong = found != 1 || strcmp(got, f->answer) != 0;
    if (found != 1) s->unparsed++;
    free(got);
    s->strategy[f->kind][st]++;
    s->wrong[f->kind][st] += wrong;
    if (st == SHAPES_DIRECT && is_hard(c, f)) {
        s->hard_direct[f->kind]++;
        s->hard_direct_wrong[f->kind] += wrong;
    }
}

/* Items are made in parallel batches (each is independent, and PNG encoding is most of the cost)
 * and written in order by this thread: HDF5 is used from one thread only. */
#define WRITE_BATCH 256

struct made_item {
    struct ds_item it;
    struct shapes_facts f;
    int rc;
    struct mmupt_err err;
};

static void make_batch(const struct shapes_config *c, enum shapes_split split, int64_t first, int n,
                       struct made_item *out)
{
#pragma omp parallel for schedule(dynamic, 16)
    for (int k = 0; k < n; k++) {
        memset(&out[k].it, 0, sizeof out[k].it);
        out[k].rc = shapes_make_item(c, split, (uint64_t)(first + k), &out[k].it, &out[k].f, &out[k].err);
    }
}

/* Closing publishes what was written; remove it so a failed split leaves no file. */
static void abandon(struct ds_writer *w, const char *path)
{
    struct mmupt_err ignored;
    if (ds_writer_close(w, &ignored) == 0) remove(path);
}

int shapes_write_split(const struct shapes_config *c, enum shapes_split split, int64_t n, const char *path,
                       const struct shapes_progress *progress, struct shapes_stats *stats, struct mmupt_err *err)
{
    if (shapes_config_check(c, err)) return -1;
    if (n < 0) return mmupt_fail(err, "%s: %lld items requested", path, (long long)n);
    struct ds_writer *w;
    if (ds_writer_open(&w, path, 1, err)) return -1;
    struct made_item *batch = mmupt_xmalloc(sizeof *batch * WRITE_BATCH);
    int rc = 0;
    for (int64_t first = 0; first < n && rc == 0; first += WRITE_BATCH) {
        int m = n - first < WRITE_BATCH ? (int)(n - first) : WRITE_BATCH;
        make_batch(c, split, first, m, batch);
        for (int k = 0; k < m; k++) {
            int64_t i = first + k;
            if (rc == 0 && batch[k].rc) rc = mmupt_fail(err, "%s: item %lld: %s", path, (long long)i, batch[k].err.msg);
            if (rc == 0 && ds_writer_add(w, &batch[k].it, err)) rc = -1;
            if (rc == 0 && stats) shapes_stats_add(stats, c, split, &batch[k].f, batch[k].it.answer);
            ds_item_free(&batch[k].it);
            if (rc == 0 && progress && progress->fn && progress->every > 0 && (i + 1) % progress->every == 0 && i + 1 < n)
                progress->fn(progress->ctx, split, i + 1, n);
        }
    }
    free(batch);
    if (rc) {
        abandon(w, path);
        return -1;
    }
    if (ds_writer_close(w, err)) return -1;
    if (progress && progress->fn) progress->fn(progress->ctx, split, n, n);
    return 0;
}
