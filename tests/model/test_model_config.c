/* config.json parsing and the parameter table, against transformers: for each config in
 * tests/fixtures/model_configs (tools/make_config_fixtures.py) the hub (flat) and re-saved (nested)
 * forms must parse to the same model, whose parameter table lists exactly the tensors, shapes and
 * total that transformers instantiates. Then every kind of bad config, and weight loading/saving.
 * usage: test_model_config FIXTURES_DIR (tests/fixtures) */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/json.h"
#include "mmupt/model.h"
#include "mmupt/safetensors.h"

static const char *fixtures;

static const char *const names[] = {"qwen2_5_vl_7b", "qwen2_5_vl_3b", "qwen2_vl_2b", "qwen2_0_5b"};

static int same_config(const struct model_config *a, const struct model_config *b)
{
    const struct model_text_config *x = &a->text, *y = &b->text;
    int ok = a->arch == b->arch && a->has_vision == b->has_vision && x->hidden == y->hidden &&
             x->intermediate == y->intermediate && x->n_layers == y->n_layers && x->n_heads == y->n_heads &&
             x->n_kv_heads == y->n_kv_heads && x->vocab == y->vocab && x->rope_theta == y->rope_theta &&
             x->rms_eps == y->rms_eps && x->tied == y->tied && x->has_mrope == y->has_mrope &&
             memcmp(x->mrope_section, y->mrope_section, sizeof x->mrope_section) == 0;
    if (!a->has_vision) return ok;
    const struct model_vision_config *v = &a->vision, *w = &b->vision;
    return ok && v->depth == w->depth && v->hidden == w->hidden && v->intermediate == w->intermediate &&
           v->n_heads == w->n_heads && v->out_hidden == w->out_hidden && v->window_size == w->window_size &&
           v->n_fullatt == w->n_fullatt && memcmp(v->fullatt, w->fullatt, sizeof v->fullatt) == 0 &&
           v->norm == w->norm && v->mlp == w->mlp && v->tokens_per_second == w->tokens_per_second &&
           a->image_token_id == b->image_token_id && a->vision_start_token_id == b->vision_start_token_id;
}

static void check_spec(struct test_state *ts, const char *name, const struct model_config *c)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/model_configs/%s.params.json", fixtures, name);
    json_t *ref;
    struct mmupt_err err;
    CHECK_MSG(ts, json_parse_file(path, 1 << 24, &ref, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    struct model_spec s;
    model_spec_build(&s, c);
    const json_t *tensors = json_object_get(ref, "tensors");
    CHECK_MSG(ts, s.total == json_integer_value(json_object_get(ref, "total")), "%s: total %lld vs transformers %lld", name,
              (long long)s.total, (long long)json_integer_value(json_object_get(ref, "total")));
    CHECK_MSG(ts, (size_t)s.n_params == json_object_size(tensors), "%s: %d tensors vs transformers %zu", name, s.n_params,
              json_object_size(tensors));
    for (int i = 0; i < s.n_params; i++) {
        const struct model_param *p = &s.params[i];
        const json_t *shape = json_object_get(tensors, p->name);
        CHECK_MSG(ts, shape != NULL, "%s: transformers has no tensor '%s'", name, p->name);
        if (!shape) continue;
        int same = (int)json_array_size(shape) == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = json_integer_value(json_array_get(shape, (size_t)d)) == p->shape[d];
        CHECK_MSG(ts, same, "%s: shape of '%s' differs from transformers", name, p->name);
    }
    /* Offsets tile the buffer exactly. */
    int64_t next = 0;
    for (int i = 0; i < s.n_params; i++) {
        CHECK(ts, s.params[i].offset == next);
        next += s.params[i].numel;
    }
    CHECK(ts, next == s.total);
    model_spec_free(&s);
    json_decref(ref);
}

static void test_real_configs(struct test_state *ts)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char flat[1024], nested[1024];
        snprintf(flat, sizeof flat, "%s/model_configs/%s.json", fixtures, names[i]);
        snprintf(nested, sizeof nested, "%s/model_configs/%s.v5.json", fixtures, names[i]);
        struct model_config a, b;
        struct mmupt_err err;
        CHECK_MSG(ts, model_config_load(&a, flat, &err) == 0, "%s", err.msg);
        CHECK_MSG(ts, model_config_load(&b, nested, &err) == 0, "%s", err.msg);
        if (ts->current_failed) return;
        CHECK_MSG(ts, same_config(&a, &b), "%s: flat and nested configs differ", names[i]);
        check_spec(ts, names[i], &a);
    }
    struct model_config c;
    struct mmupt_err err;
    char path[1024];
    snprintf(path, sizeof path, "%s/model_configs/qwen2_5_vl_7b.json", fixtures);
    CHECK(ts, model_config_load(&c, path, &err) == 0);
    CHECK(ts, c.arch == MODEL_QWEN2_5_VL && c.text.head_dim == 128 && c.vision.head_dim == 80 && !c.text.tied);
    CHECK(ts, c.text.mrope_section[0] == 16 && c.vision.n_fullatt == 4 && c.vision.fullatt[3] == 31);
    CHECK(ts, model_patch_dim(&c) == 1176 && c.vision.tokens_per_second == 2);
    snprintf(path, sizeof path, "%s/model_configs/qwen2_5_vl_3b.v5.json", fixtures);
    CHECK(ts, model_config_load(&c, path, &err) == 0 && c.text.tied);
    snprintf(path, sizeof path, "%s/model_configs/qwen2_vl_2b.json", fixtures);
    CHECK(ts, model_config_load(&c, path, &err) == 0);
    CHECK(ts, c.vision.norm == NORM_LAYER && c.vision.mlp == MLP_QUICK_GELU && c.vision.intermediate == 5120);
    CHECK(ts, c.vision.out_hidden == 1536 && c.vision.window_size == 0);
}

/* A small valid config; each bad case edits one thing in it. */
static const char tiny[] =
    "{\"model_type\": \"qwen2_5_vl\", \"image_token_id\": 300, \"video_token_id\": 301,"
    " \"vision_start_token_id\": 302, \"vision_end_token_id\": 303, \"tie_word_embeddings\": true,"
    " \"text_config\": {\"hidden_size\": 64, \"intermediate_size\": 88, \"num_hidden_layers\": 2,"
    "  \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 320, \"rms_norm_eps\": 1e-6,"
    "  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000000.0, \"mrope_section\": [2, 3, 3]}},"
    " \"vision_config\": {\"depth\": 2, \"hidden_size\": 32, \"intermediate_size\": 40, \"num_heads\": 2,"
    "  \"out_hidden_size\": 64, \"patch_size\": 14, \"temporal_patch_size\": 2, \"spatial_merge_size\": 2,"
    "  \"window_size\": 56, \"fullatt_block_indexes\": [1], \"hidden_act\": \"silu\"}}";

struct bad_case {
    const char *from, *to; /* replace `from` in tiny by `to` */
    const char *expect;
};

static void test_bad_configs(struct test_state *ts)
{
    static const struct bad_case cases[] = {
        {"\"hidden_size\": 64", "\"hidden_sizes\": 64", "tiny.json: missing field 'hidden_size'"},
        {"\"hidden_size\": 64", "\"hidden_size\": 66", "hidden_size 66 is not divisible by num_attention_heads 4"},
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "field 'hidden_size' must be an integer"},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 0", "field 'num_hidden_layers' = 0 is out of range"},
        {"\"vocab_size\": 320", "\"vocab_size\": 99999999999", "field 'vocab_size' = 99999999999 is out of range"},
        {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "not divisible by num_key_value_heads 3"},
        {"[2, 3, 3]", "[2, 3, 4]", "mrope_section sums to 9 but head_dim / 2 = 8"},
        {"[2, 3, 3]", "[2, 6]", "mrope_section must have 3 entries"},
        {"\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"", "rope type 'yarn' is not supported"},
        {"\"qwen2_5_vl\"", "\"llama\"", "model_type 'llama' is not supported"},
        {"\"out_hidden_size\": 64", "\"out_hidden_size\": 32", "vision output width 32 differs from the text hidden_size 64"},
        {"\"fullatt_block_indexes\": [1]", "\"fullatt_block_indexes\": [2]", "fullatt_block_indexes entry 2 is not a block index"},
        {"\"window_size\": 56", "\"window_size\": 50", "window_size 50 is not a multiple of patch_size * spatial_merge_size"},
        {"\"num_heads\": 2", "\"num_heads\": 16", "vision head_dim 2 must be a multiple of 4"},
        {"\"image_token_id\": 300", "\"image_token_id\": 320", "field 'image_token_id' = 320 is out of range"},
        {"\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act must be silu for qwen2_5_vl"},
        {"\"depth\": 2,", "", "(vision_config): missing field 'depth'"},
        {"\"model_type\": \"qwen2_5_vl\",", "\"model_type\": \"qwen2_5_vl\", \"vision_config\": 3,", "invalid JSON: duplicate object key"},
        {"\"vocab_size\": 320,", "\"vocab_size\": 320,,", "tiny.json:1:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[4096];
        const char *at = strstr(tiny, cases[i].from);
        CHECK_MSG(ts, at != NULL, "case %zu: '%s' not in the base config", i, cases[i].from);
        if (!at) continue;
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - tiny), tiny, cases[i].to, at + strlen(cases[i].from));
        struct model_config c;
        struct mmupt_err err = {{0}};
        CHECK_MSG(ts, model_config_parse(&c, "tiny.json", buf, strlen(buf), &err) == -1, "case %zu accepted", i);
        CHECK_CONTAINS(ts, err.msg, cases[i].expect);
    }
    struct model_config c;
    struct mmupt_err err;
    CHECK(ts, model_config_parse(&c, "tiny.json", tiny, strlen(tiny), &err) == 0);
    CHECK(ts, model_config_parse(&c, "x.json", "[1, 2]", 6, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "x.json: expected a JSON object");
    CHECK(ts, model_config_parse(&c, "x.json", "{\"a\": 2\0}", 9, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "x.json:1:8: invalid JSON: NUL byte");
    CHECK(ts, model_config_parse(&c, "x.json", "{}", 2, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "missing field 'model_type'");
    CHECK(ts, model_config_load(&c, "/nonexistent/dir", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "/nonexistent/dir/config.json: cannot open");
}

/* Weights: save -> load is exact; the newer key layout loads too; missing, unexpected and
 * mis-shaped tensors are errors naming the tensor. */
static void test_weights(struct test_state *ts)
{
    struct model_config c;
    struct mmupt_err err;
    CHECK(ts, model_config_parse(&c, "tiny.json", tiny, strlen(tiny), &err) == 0);
    struct model_spec s;
    model_spec_build(&s, &c);
    float *w = malloc((size_t)s.total * sizeof *w), *back = calloc((size_t)s.total, sizeof *back);
    for (int64_t i = 0; i < s.total; i++) w[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    char dir[] = "/tmp/mmupt_weights_XXXXXX";
    CHECK(ts, mkdtemp(dir) != NULL);
    CHECK_MSG(ts, model_weights_save(&s, w, dir, 1 << 20, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_weights_load(&s, back, dir, &err) == 0, "%s", err.msg);
    CHECK(ts, memcmp(w, back, (size_t)s.total * sizeof *w) == 0);
    /* Sharded (a tiny shard limit) loads back the same. */
    char sharded[1100];
    snprintf(sharded, sizeof sharded, "%s/sharded", dir);
    memset(back, 0, (size_t)s.total * sizeof *back);
    CHECK_MSG(ts, model_weights_save(&s, w, sharded, 20000, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_weights_load(&s, back, sharded, &err) == 0, "%s", err.msg);
    CHECK(ts, memcmp(w, back, (size_t)s.total * sizeof *w) == 0);

    /* The same tensors under the transformers 4.52 names, one of them in bf16. */
    struct st_entry *e = calloc((size_t)s.n_params + 1, sizeof *e);
    char (*nm)[MODEL_NAME_MAX + 32] = calloc((size_t)s.n_params + 1, sizeof *nm);
    uint16_t *bf = NULL;
    for (int i = 0; i < s.n_params; i++) {
        const struct model_param *p = &s.params[i];
        if (strncmp(p->name, "model.", 6) == 0) snprintf(nm[i], sizeof nm[i], "model.language_model.%s", p->name + 6);
        else snprintf(nm[i], sizeof nm[i], "model.%s", p->name);
        e[i] = (struct st_entry){.name = nm[i], .dtype = ST_F32, .ndim = p->ndim, .data = w + p->offset};
        for (int d = 0; d < p->ndim; d++) e[i].shape[d] = p->shape[d];
        if (strcmp(p->name, "model.norm.weight") == 0) {
            bf = malloc((size_t)p->numel * sizeof *bf);
            for (int64_t k = 0; k < p->numel; k++) bf[k] = st_f32_to_bf16(w[p->offset + k]);
            e[i].dtype = ST_BF16;
            e[i].data = bf;
        }
    }
    char file[1100];
    snprintf(file, sizeof file, "%s/new_layout.safetensors", dir);
    CHECK_MSG(ts, st_write_file(file, e, (size_t)s.n_params, NULL, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, model_weights_load(&s, back, file, &err) == 0, "%s", err.msg);
    const struct model_param *norm = model_spec_find(&s, "model.norm.weight");
    CHECK(ts, norm && back[norm->offset] == st_bf16_to_f32(st_f32_to_bf16(w[norm->offset])));

    /* Drop one tensor: missing. */
    CHECK(ts, st_write_file(file, e + 1, (size_t)s.n_params - 1, NULL, &err) == 0);
    CHECK(ts, model_weights_load(&s, back, file, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "missing tensor 'model.embed_tokens.weight'");
    /* Add a stranger: unexpected. */
    float extra = 1;
    e[s.n_params] = (struct st_entry){.name = "model.layers.9.mlp.up_proj.weight", .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = &extra};
    CHECK(ts, st_write_file(file, e, (size_t)s.n_params + 1, NULL, &err) == 0);
    CHECK(ts, model_weights_load(&s, back, file, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "unexpected tensor 'model.layers.9.mlp.up_proj.weight'");
    /* Wrong shape. */
    e[0].shape[0] -= 1;
    CHECK(ts, st_write_file(file, e, (size_t)s.n_params, NULL, &err) == 0);
    CHECK(ts, model_weights_load(&s, back, file, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "tensor 'model.language_model.embed_tokens.weight' has shape [319, 64], the config implies [320, 64]");
    /* Not a float tensor. */
    e[0].shape[0] += 1;
    e[0].dtype = ST_I32;
    CHECK(ts, st_write_file(file, e, (size_t)s.n_params, NULL, &err) == 0);
    CHECK(ts, model_weights_load(&s, back, file, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "embed_tokens");

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(ts, system(cmd) == 0);
    free(e);
    free(nm);
    free(bf);
    free(w);
    free(back);
    model_spec_free(&s);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    struct test_state ts = {0};
    RUN(&ts, test_real_configs);
    RUN(&ts, test_bad_configs);
    RUN(&ts, test_weights);
    return test_summary(&ts);
}
