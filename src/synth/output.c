/* The outputs of `mmupt synth`: the new split (HDF5, no answers, a provenance string per item) and
 * the summary (JSON: counts by reason, settings, the prompt). Rank 0 writes both; the new items
 * take their id, source and images from the input split, read again item by item, so no image
 * travels between ranks. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/strutil.h"
#include "mmupt/synth.h"

char *synth_provenance(const struct synth_config *c, const char *id, const struct synth_question *q)
{
    const char *policy = c->policy ? c->policy : "unknown";
    size_t n = strlen(id) + strlen(policy) + 128;
    char *s = mmupt_xmalloc(n);
    snprintf(s, n, "mode=%s item=%s policy=%s seed=%llu sample=%d", synth_mode_name(c->mode), id, policy,
             (unsigned long long)c->seed, q->sample);
    return s;
}

/* Item q->item's synthetic twin: the original's source and images, a new id, problem and provenance. */
static int add_item(struct ds_writer *w, const struct synth_config *c, const struct ds_item *orig,
                    const struct synth_question *q, struct mmupt_err *err)
{
    size_t n = strlen(orig->id) + 64;
    char *id = mmupt_xmalloc(n);
    snprintf(id, n, "%s/synth-%s-%d", orig->id, synth_mode_name(c->mode), q->k);
    struct ds_item it = {
        .index = q->item, .id = id, .source = orig->source, .problem = synth_new_problem(q->text, orig->n_images),
        .provenance = synth_provenance(c, orig->id, q), .n_images = orig->n_images, .image = orig->image,
        .image_len = orig->image_len,
    };
    int rc = ds_writer_add(w, &it, err);
    free(id);
    free(it.problem);
    free(it.provenance);
    return rc;
}

int synth_write(const struct synth_config *c, struct ds_reader *ds, const struct synth_result *r, const char *out_path,
                struct mmupt_err *err)
{
    struct ds_writer *w;
    if (ds_writer_open(&w, out_path, 0, err)) return -1;
    if (ds_writer_enable_provenance(w, err)) {
        struct mmupt_err ignored;
        ds_writer_close(w, &ignored);
        return -1;
    }
    struct ds_item orig = {0};
    int have = 0, rc = 0;
    for (int64_t i = 0; i < r->n && rc == 0; i++) {
        const struct synth_question *q = &r->q[i];
        if (!have || orig.index != q->item) {
            ds_item_free(&orig);
            have = 0;
            if (ds_read(ds, q->item, &orig, err)) {
                rc = -1;
                break;
            }
            have = 1;
        }
        rc = add_item(w, c, &orig, q, err);
    }
    ds_item_free(&orig);
    if (rc) {
        /* An item synth_run read has become unreadable (the file changed under us). The writer has
         * no abort, so the partial split is published by close and removed at once. */
        struct mmupt_err ignored;
        if (ds_writer_close(w, &ignored) == 0) remove(out_path);
        return -1;
    }
    return ds_writer_close(w, err);
}

void synth_summary_path(const char *out_path, char *buf, size_t n)
{
    size_t len = strlen(out_path);
    const char *exts[] = {".h5", ".hdf5"};
    for (size_t k = 0; k < 2; k++) {
        size_t e = strlen(exts[k]);
        if (len > e && strcmp(out_path + len - e, exts[k]) == 0) {
            snprintf(buf, n, "%.*s.json", (int)(len - e), out_path);
            return;
        }
    }
    snprintf(buf, n, "%s.json", out_path);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A float setting as the user typed it (0.9, not 0.899999976158). */
static json_t *real6(double x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", x);
    return json_real(strtod(buf, NULL));
}

static json_t *settings_json(const struct synth_config *c)
{
    json_t *s = json_object();
    json_object_set_new(s, "mode", json_string(synth_mode_name(c->mode)));
    json_object_set_new(s, "n", json_integer(c->n));
    json_object_set_new(s, "keep", json_integer(c->filter.keep));
    json_object_set_new(s, "temperature", real6(c->temperature));
    json_object_set_new(s, "top_p", real6(c->top_p));
    json_object_set_new(s, "max_new_tokens", json_integer(c->max_new));
    if (c->seed <= (uint64_t)INT64_MAX) json_object_set_new(s, "seed", json_integer((json_int_t)c->seed));
    else { /* beyond jansson's int64: a string */
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
        json_object_set_new(s, "seed", json_string(seed));
    }
    json_object_set_new(s, "limit", json_integer(c->limit));
    json_object_set_new(s, "min_chars", json_integer(c->filter.min_chars));
    json_object_set_new(s, "max_chars", json_integer(c->filter.max_chars));
    json_object_set_new(s, "max_overlap", real6(c->filter.max_overlap));
    json_object_set_new(s, "require_question", json_boolean(c->filter.require_question));
    json_object_set_new(s, "min_pixels", json_integer(c->min_pixels));
    json_object_set_new(s, "max_pixels", json_integer(c->max_pixels));
    json_object_set_new(s, "ranks", json_integer(c->shard_count));
    return s;
}

static json_t *counts_json(const struct synth_counts *k)
{
    json_t *o = json_object(), *rej = json_object();
    json_object_set_new(o, "items", json_integer(k->items));
    json_object_set_new(o, "items_used", json_integer(k->used));
    json_object_set_new(o, "skipped_no_image", json_integer(k->skipped_no_image));
    json_object_set_new(o, "skipped_no_answer", json_integer(k->skipped_no_answer));
    json_object_set_new(o, "skipped_bad", json_integer(k->skipped_bad));
    json_object_set_new(o, "candidates", json_integer(k->candidates));
    json_object_set_new(o, "kept", json_integer(k->verdicts[SYNTH_KEEP]));
    int64_t total = 0;
    for (int v = 1; v < SYNTH_N_VERDICTS; v++) {
        json_object_set_new(rej, synth_verdict_name((enum synth_verdict)v), json_integer(k->verdicts[v]));
        total += k->verdicts[v];
    }
    json_object_set_new(o, "rejected", json_integer(total));
    json_object_set_new(o, "rejected_by_reason", rej);
    json_object_set_new(o, "mean_response_tokens", json_real(k->candidates ? k->tokens / (double)k->candidates : 0.0));
    return o;
}

int synth_write_summary(const char *path, const struct synth_config *c, const struct synth_result *r,
                        const char *model_path, const char *data_path, const char *out_path, struct mmupt_err *err)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", str_or_null(model_path));
    json_object_set_new(o, "policy", str_or_null(c->policy));
    json_object_set_new(o, "data", str_or_null(data_path));
    json_object_set_new(o, "out", str_or_null(out_path));
    json_object_set_new(o, "settings", settings_json(c));
    json_object_set_new(o, "prompt", json_string(c->prompt ? c->prompt : synth_default_prompt(c->mode)));
    json_object_set_new(o, "prompt_is_default", json_boolean(c->prompt == NULL));
    json_object_set_new(o, "counts", counts_json(&r->counts));
    json_object_set_new(o, "seconds", json_real(r->seconds));
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text) MMUPT_DIE("out of memory writing the synth summary");
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps' NUL becomes the final newline */
    int rc = file_write_atomic(path, text, n + 1, err);
    free(text);
    return rc;
}
