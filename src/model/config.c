/* config.json -> struct model_config, for the two layouts in circulation: hub files put the text
 * fields at the top level next to vision_config; files re-saved by transformers >= 4.5x nest them
 * under text_config and may write rope_parameters instead of rope_scaling. Sizes are required;
 * optional fields take transformers' class defaults. Everything is range-checked here, because
 * these numbers size every allocation of the model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/json.h"
#include "mmupt/model.h"
#include "mmupt/strutil.h"

#define CONFIG_FILE_MAX (4u << 20)

struct reader {
    const json_t *root, *text; /* text == root for flat configs */
    const char *name;          /* file name for messages */
    struct mmupt_err *err;
};

const char *model_arch_name(enum model_arch a)
{
    switch (a) {
    case MODEL_QWEN2: return "qwen2";
    case MODEL_QWEN2_VL: return "qwen2_vl";
    case MODEL_QWEN2_5_VL: return "qwen2_5_vl";
    }
    return "?";
}

int64_t model_patch_dim(const struct model_config *c)
{
    return 3 * c->vision.temporal_patch * c->vision.patch * c->vision.patch;
}

/* A value from the first object that has the key (text_config first, then the top level). */
static const json_t *lookup(const struct reader *r, const json_t *first, const json_t *second, const char *key)
{
    const json_t *v = first ? json_object_get(first, key) : NULL;
    if (!v && second && second != first) v = json_object_get(second, key);
    (void)r;
    return v && !json_is_null(v) ? v : NULL;
}

/* An integer in [lo, hi], required or with a default (required when def < lo). */
static int int_field(const struct reader *r, const json_t *obj, const json_t *alt, const char *key, int64_t def,
                     int64_t lo, int64_t hi, int64_t *out)
{
    const json_t *v = lookup(r, obj, alt, key);
    if (!v) {
        if (def < lo) return mmupt_fail(r->err, "%s: missing field '%s'", r->name, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v)) return mmupt_fail(r->err, "%s: field '%s' must be an integer", r->name, key);
    int64_t x = (int64_t)json_integer_value(v);
    if (x < lo || x > hi)
        return mmupt_fail(r->err, "%s: field '%s' = %lld is out of range [%lld, %lld]", r->name, key, (long long)x,
                          (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static int num_field(const struct reader *r, const json_t *obj, const json_t *alt, const char *key, double def,
                     double lo, double hi, double *out)
{
    const json_t *v = lookup(r, obj, alt, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) return mmupt_fail(r->err, "%s: field '%s' must be a number", r->name, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) return mmupt_fail(r->err, "%s: field '%s' = %g is out of range [%g, %g]", r->name, key, x, lo, hi);
    *out = x;
    return 0;
}

static int bool_field(const struct reader *r, const json_t *obj, const json_t *alt, const char *key, int def, int *out)
{
    const json_t *v = lookup(r, obj, alt, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return mmupt_fail(r->err, "%s: field '%s' must be true or false", r->name, key);
    *out = json_is_true(v);
    return 0;
}

/* rope_theta lives at the top level, in text_config, or inside rope_parameters. */
static const json_t *rope_object(const struct reader *r)
{
    static const char *const keys[] = {"rope_parameters", "rope_scaling"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = lookup(r, r->text, r->root, keys[i]);
        if (v && json_is_object(v)) return v;
    }
    return NULL;
}

static int read_rope(const struct reader *r, struct model_config *c, double default_theta)
{
    struct model_text_config *t = &c->text;
    const json_t *rope = rope_object(r);
    /* rope_theta: at the top level or in text_config (older files), else inside the rope object. */
    if (lookup(r, r->text, r->root, "rope_theta")) {
        if (num_field(r, r->text, r->root, "rope_theta", default_theta, 1.0, 1e12, &t->rope_theta)) return -1;
    } else if (num_field(r, rope, NULL, "rope_theta", default_theta, 1.0, 1e12, &t->rope_theta)) {
        return -1;
    }
    if (!rope) {
        if (c->has_vision) return mmupt_fail(r->err, "%s: missing rope_scaling/rope_parameters with mrope_section", r->name);
        return 0;
    }
    const json_t *type = json_object_get(rope, "rope_type");
    if (!type) type = json_object_get(rope, "type");
    const char *ty = type && json_is_string(type) ? json_string_value(type) : "default";
    if (strcmp(ty, "default") != 0 && strcmp(ty, "mrope") != 0)
        return mmupt_fail(r->err, "%s: rope type '%s' is not supported (default and mrope are)", r->name, ty);
    if (!c->has_vision) return 0;
    int n = 0;
    struct mmupt_err e;
    if (json_get_int_array(rope, "mrope_section", t->mrope_section, 3, &n, r->name, &e))
        return mmupt_fail(r->err, "%s (in rope parameters)", e.msg);
    if (n != 3) return mmupt_fail(r->err, "%s: mrope_section must have 3 entries, has %d", r->name, n);
    t->has_mrope = 1;
    return 0;
}

static int read_text(const struct reader *r, struct model_config *c)
{
    struct model_text_config *t = &c->text;
    const json_t *tx = r->text, *rt = r->root;
    if (int_field(r, tx, rt, "hidden_size", -1, 1, 65536, &t->hidden) ||
        int_field(r, tx, rt, "intermediate_size", -1, 1, 1 << 20, &t->intermediate) ||
        int_field(r, tx, rt, "num_hidden_layers", -1, 1, 1024, &t->n_layers) ||
        int_field(r, tx, rt, "num_attention_heads", -1, 1, 1024, &t->n_heads) ||
        int_field(r, tx, rt, "num_key_value_heads", t->n_heads, 1, 1024, &t->n_kv_heads) ||
        int_field(r, tx, rt, "vocab_size", -1, 1, 16 << 20, &t->vocab) ||
        num_field(r, tx, rt, "rms_norm_eps", 1e-6, 0.0, 1.0, &t->rms_eps))
        return -1;
    /* Qwen2.5-VL moved tie_word_embeddings to the top level in v5; older saves kept it inside. */
    int tied_root = 0, tied_text = 0;
    if (bool_field(r, rt, NULL, "tie_word_embeddings", 0, &tied_root) ||
        bool_field(r, tx, NULL, "tie_word_embeddings", 0, &tied_text))
        return -1;
    t->tied = tied_root || tied_text;
    if (t->hidden % t->n_heads != 0)
        return mmupt_fail(r->err, "%s: hidden_size %lld is not divisible by num_attention_heads %lld", r->name,
                          (long long)t->hidden, (long long)t->n_heads);
    t->head_dim = t->hidden / t->n_heads;
    int64_t hd = t->head_dim;
    if (int_field(r, tx, rt, "head_dim", hd, 1, 4096, &hd)) return -1;
    if (hd != t->head_dim)
        return mmupt_fail(r->err, "%s: head_dim %lld differs from hidden_size / num_attention_heads = %lld (not supported)",
                          r->name, (long long)hd, (long long)t->head_dim);
    if (t->head_dim % 2 != 0) return mmupt_fail(r->err, "%s: head_dim %lld must be even for rotary embeddings", r->name, (long long)t->head_dim);
    if (t->n_heads % t->n_kv_heads != 0)
        return mmupt_fail(r->err, "%s: num_attention_heads %lld is not divisible by num_key_value_heads %lld", r->name,
                          (long long)t->n_heads, (long long)t->n_kv_heads);
    if (read_rope(r, c, c->has_vision ? 1e6 : 10000.0)) return -1;
    if (t->has_mrope) {
        int64_t sum = 0;
        for (int i = 0; i < 3; i++) {
            if (t->mrope_section[i] < 0) return mmupt_fail(r->err, "%s: mrope_section has a negative entry", r->name);
            sum += t->mrope_section[i];
        }
        if (sum * 2 != t->head_dim)
            return mmupt_fail(r->err, "%s: mrope_section sums to %lld but head_dim / 2 = %lld", r->name, (long long)sum,
                              (long long)(t->head_dim / 2));
    }
    return 0;
}

static int read_fullatt(const struct reader *r, const json_t *vc, struct model_vision_config *v)
{
    const json_t *f = json_object_get(vc, "fullatt_block_indexes");
    if (!f || json_is_null(f)) {
        static const int64_t def[] = {7, 15, 23, 31};
        v->n_fullatt = 0;
        for (int i = 0; i < 4; i++)
            if (def[i] < v->depth) v->fullatt[v->n_fullatt++] = def[i];
        return 0;
    }
    if (json_get_int_array(vc, "fullatt_block_indexes", v->fullatt, MODEL_MAX_FULLATT, &v->n_fullatt, r->name, r->err))
        return -1;
    for (int i = 0; i < v->n_fullatt; i++)
        if (v->fullatt[i] < 0 || v->fullatt[i] >= v->depth)
            return mmupt_fail(r->err, "%s: fullatt_block_indexes entry %lld is not a block index (depth %lld)", r->name,
                              (long long)v->fullatt[i], (long long)v->depth);
    return 0;
}

static int read_vision(const struct reader *r, struct model_config *c)
{
    struct model_vision_config *v = &c->vision;
    const json_t *vc = json_object_get(r->root, "vision_config");
    if (!vc || !json_is_object(vc)) return mmupt_fail(r->err, "%s: missing object 'vision_config'", r->name);
    struct reader vr = *r;
    char where[600];
    snprintf(where, sizeof where, "%s (vision_config)", r->name);
    vr.name = where;
    v->eps = 1e-6;
    const json_t *vrope = json_object_get(vc, "rope_parameters");
    if (num_field(&vr, vc, NULL, "rope_theta", 10000.0, 1.0, 1e12, &v->rope_theta) ||
        (vrope && json_is_object(vrope) && num_field(&vr, vrope, NULL, "rope_theta", v->rope_theta, 1.0, 1e12, &v->rope_theta)))
        return -1;
    if (int_field(&vr, vc, NULL, "depth", -1, 1, 1024, &v->depth) ||
        int_field(&vr, vc, NULL, "num_heads", -1, 1, 1024, &v->n_heads) ||
        int_field(&vr, vc, NULL, "patch_size", 14, 1, 1024, &v->patch) ||
        int_field(&vr, vc, NULL, "temporal_patch_size", 2, 1, 64, &v->temporal_patch) ||
        int_field(&vr, vc, NULL, "spatial_merge_size", 2, 1, 64, &v->merge))
        return -1;
    if (c->arch == MODEL_QWEN2_5_VL) {
        v->norm = NORM_RMS;
        v->mlp = MLP_SWIGLU;
        if (int_field(&vr, vc, NULL, "hidden_size", -1, 1, 65536, &v->hidden) ||
            int_field(&vr, vc, NULL, "intermediate_size", -1, 1, 1 << 20, &v->intermediate) ||
            int_field(&vr, vc, NULL, "out_hidden_size", -1, 1, 65536, &v->out_hidden) ||
            int_field(&vr, vc, NULL, "window_size", 112, 1, 1 << 20, &v->window_size) ||
            num_field(&vr, vc, NULL, "tokens_per_second", 4, 0, 1e6, &v->tokens_per_second) ||
            read_fullatt(&vr, vc, v))
            return -1;
        const json_t *act = json_object_get(vc, "hidden_act");
        if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
            return mmupt_fail(r->err, "%s: hidden_act must be silu for qwen2_5_vl", where);
        if (v->window_size % (v->patch * v->merge) != 0)
            return mmupt_fail(r->err, "%s: window_size %lld is not a multiple of patch_size * spatial_merge_size", where,
                              (long long)v->window_size);
    } else { /* Qwen2-VL: embed_dim is the tower width, hidden_size the output width */
        int64_t ratio;
        v->norm = NORM_LAYER;
        v->mlp = MLP_QUICK_GELU;
        v->window_size = 0;
        v->n_fullatt = 0;
        if (int_field(&vr, vc, NULL, "embed_dim", -1, 1, 65536, &v->hidden) ||
            int_field(&vr, vc, NULL, "hidden_size", -1, 1, 65536, &v->out_hidden) ||
            int_field(&vr, vc, NULL, "mlp_ratio", 4, 1, 64, &ratio))
            return -1;
        v->intermediate = v->hidden * ratio;
        const json_t *act = json_object_get(vc, "hidden_act");
        if (act && (!json_is_string(act) || strcmp(json_string_value(act), "quick_gelu") != 0))
            return mmupt_fail(r->err, "%s: hidden_act must be quick_gelu for qwen2_vl", where);
    }
    if (v->hidden % v->n_heads != 0)
        return mmupt_fail(r->err, "%s: vision width %lld is not divisible by num_heads %lld", where, (long long)v->hidden,
                          (long long)v->n_heads);
    v->head_dim = v->hidden / v->n_heads;
    if (v->head_dim % 4 != 0)
        return mmupt_fail(r->err, "%s: vision head_dim %lld must be a multiple of 4 (row and column rotary halves)", where,
                          (long long)v->head_dim);
    if (v->out_hidden != c->text.hidden)
        return mmupt_fail(r->err, "%s: vision output width %lld differs from the text hidden_size %lld", where,
                          (long long)v->out_hidden, (long long)c->text.hidden);
    return 0;
}

static int read_token_ids(const struct reader *r, struct model_config *c)
{
    int64_t v = c->text.vocab - 1;
    if (int_field(r, r->root, NULL, "image_token_id", 151655, 0, v, &c->image_token_id) ||
        int_field(r, r->root, NULL, "video_token_id", 151656, 0, v, &c->video_token_id) ||
        int_field(r, r->root, NULL, "vision_start_token_id", 151652, 0, v, &c->vision_start_token_id) ||
        int_field(r, r->root, NULL, "vision_end_token_id", 151653, 0, v, &c->vision_end_token_id))
        return -1;
    return 0;
}

int model_config_parse(struct model_config *c, const char *name, const char *text, size_t len, struct mmupt_err *err)
{
    json_t *root;
    if (json_parse_text(name, text, len, &root, err)) return -1;
    struct model_config out;
    memset(&out, 0, sizeof out);
    struct reader r = {.root = root, .text = root, .name = name, .err = err};
    int rc = -1;
    const char *type = NULL;
    if (!json_is_object(root)) {
        mmupt_fail(err, "%s: expected a JSON object", name);
        goto done;
    }
    if (json_get_string(root, "model_type", &type, name, err)) goto done;
    if (strcmp(type, "qwen2_5_vl") == 0) out.arch = MODEL_QWEN2_5_VL;
    else if (strcmp(type, "qwen2_vl") == 0) out.arch = MODEL_QWEN2_VL;
    else if (strcmp(type, "qwen2") == 0) out.arch = MODEL_QWEN2;
    else {
        mmupt_fail(err, "%s: model_type '%.100s' is not supported (qwen2_5_vl, qwen2_vl, qwen2)", name, type);
        goto done;
    }
    out.has_vision = out.arch != MODEL_QWEN2;
    const json_t *tc = json_object_get(root, "text_config");
    if (tc && json_is_object(tc)) r.text = tc;
    if (read_text(&r, &out)) goto done;
    if (out.has_vision && (read_vision(&r, &out) || read_token_ids(&r, &out))) goto done;
    *c = out;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

int model_config_load(struct model_config *c, const char *path, struct mmupt_err *err)
{
    char file[4096];
    size_t n = strlen(path);
    if (n > 5 && strcmp(path + n - 5, ".json") == 0) snprintf(file, sizeof file, "%s", path);
    else snprintf(file, sizeof file, "%s/config.json", path);
    char *text;
    size_t len;
    if (file_read_all(file, CONFIG_FILE_MAX, &text, &len, err)) return -1;
    int rc = model_config_parse(c, file, text, len, err);
    free(text);
    return rc;
}
