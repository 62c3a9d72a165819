/* seed-N/synth_data.json: the summary `mmupt synth` writes beside the split of questions the warm
 * start wrote itself (docs/synth.md). The report prints its counts in the run facts, so a reader sees
 * how much of what the model wrote survived the filters, and why the rest did not. */
#include <jansson.h>
#include <string.h>

#include "mmupt/json.h"
#include "mmupt/report.h"
#include "internal.h"
#include "mmupt/strutil.h"

static int read_mode(const char *name, const json_t *root, struct report_synth_data *s, struct mmupt_err *err)
{
    const json_t *settings = json_object_get(root, "settings");
    if (!settings) return mmupt_fail(err, "%s: settings: missing", name);
    if (!json_is_object(settings)) return mmupt_fail(err, "%s: settings: not an object", name);
    const json_t *mode = json_object_get(settings, "mode");
    if (!mode) return mmupt_fail(err, "%s: settings.mode: missing", name);
    if (!json_is_string(mode) || json_string_length(mode) == 0 ||
        strlen(json_string_value(mode)) != json_string_length(mode))
        return mmupt_fail(err, "%s: settings.mode: not a non-empty string", name);
    if (str_copy(s->mode, sizeof s->mode, json_string_value(mode)))
        return mmupt_fail(err, "%s: settings.mode: longer than %d bytes", name, REPORT_MAX_NAME - 1);
    return 0;
}

/* counts.rejected_by_reason: reason -> count, in the file's order; returns the sum in *total. */
static int read_reasons(const char *name, const json_t *by, struct report_synth_data *s, int64_t *total,
                        struct mmupt_err *err)
{
    if (json_object_size(by) > REPORT_MAX_REASONS)
        return mmupt_fail(err, "%s: counts.rejected_by_reason: %zu reasons, more than %d", name,
                          json_object_size(by), REPORT_MAX_REASONS);
    const char *key;
    const json_t *v;
    *total = 0;
    json_object_foreach((json_t *)by, key, v) {
        struct report_synth_reason *r = &s->reasons[s->n_reasons];
        if (key[0] == '\0' || str_copy(r->name, sizeof r->name, key))
            return mmupt_fail(err, "%s: counts.rejected_by_reason: a reason's name is empty or longer than %d bytes",
                              name, REPORT_MAX_NAME - 1);
        if (report_get_count(by, key, &r->n, name, "counts.rejected_by_reason", err)) return -1;
        if (r->n > s->candidates - *total)
            return mmupt_fail(err, "%s: counts.rejected_by_reason: more rejections than counts.candidates (%lld)", name,
                              (long long)s->candidates);
        *total += r->n;
        s->n_reasons++;
    }
    return 0;
}

static int read_synth(const char *name, const json_t *root, struct report_synth_data *s, struct mmupt_err *err)
{
    if (!json_is_object(root)) return mmupt_fail(err, "%s: not a JSON object (an `mmupt synth` summary)", name);
    const json_t *counts, *by;
    int64_t rejected = 0;
    if (read_mode(name, root, s, err) || !(counts = report_get_object(root, "counts", name, err))) return -1;
    if (report_get_count(counts, "items_used", &s->items_used, name, "counts", err) ||
        report_get_count(counts, "candidates", &s->candidates, name, "counts", err) ||
        report_get_count(counts, "kept", &s->kept, name, "counts", err))
        return -1;
    if (s->kept > s->candidates)
        return mmupt_fail(err, "%s: counts.kept: %lld is more than counts.candidates (%lld)", name, (long long)s->kept,
                          (long long)s->candidates);
    by = json_object_get(counts, "rejected_by_reason");
    if (!by) return mmupt_fail(err, "%s: counts.rejected_by_reason: missing", name);
    if (!json_is_object(by)) return mmupt_fail(err, "%s: counts.rejected_by_reason: not an object", name);
    if (read_reasons(name, by, s, &rejected, err)) return -1;
    /* synth counts every candidate exactly once: kept, or rejected for its first failed filter. */
    if (s->kept + rejected != s->candidates)
        return mmupt_fail(err, "%s: counts: kept (%lld) plus rejected_by_reason (%lld) is not candidates (%lld)", name,
                          (long long)s->kept, (long long)rejected, (long long)s->candidates);
    return 0;
}

int report_parse_synth(const char *name, const char *text, size_t len, struct report_synth_data *out,
                       struct mmupt_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *root;
    if (json_parse_text(name, text, len, &root, err)) return -1;
    int rc = read_synth(name, root, out, err);
    json_decref(root);
    if (rc) memset(out, 0, sizeof *out);
    return rc;
}
