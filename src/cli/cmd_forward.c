/* mmupt forward: run a model on inputs from a safetensors file and write the logits (and, on
 * request, hidden states) to another. For checking a checkpoint against another implementation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/safetensors.h"

static const char usage[] =
    "usage: mmupt forward --model DIR --inputs IN.safetensors --out OUT.safetensors [--hidden]\n"
    "\n"
    "Run the model in DIR (config.json + *.safetensors, Hugging Face layout) on the batch in IN and\n"
    "write OUT with:\n"
    "  logits        F32 [batch, seq, vocab]\n"
    "  position_ids  I64 [3, batch, seq]  (the t, h, w rotary positions; equal for text)\n"
    "  rope_deltas   I64 [batch]\n"
    "  with --hidden also hidden.embed, hidden.layer.I, hidden.norm  F32 [batch, seq, hidden]\n"
    "Padded positions (attention_mask 0) are written as zeros.\n"
    "\n"
    "IN holds: input_ids I64 [batch, seq]; optional attention_mask I64 [batch, seq] (1 = token,\n"
    "0 = padding; default all 1); for vision models pixel_values F32 [patches, 3*T*P*P] and\n"
    "image_grid_thw I64 [images, 3]. 3-D positions are computed from the token ids as transformers\n"
    "does. Runs on the CPU reference implementation (fp32).\n";

struct fwd_inputs {
    int64_t B, S;
    int64_t *ids, *mask;
    int *seq_len;
    int64_t *packed, *row_of, T;
    float *pixels;
    int64_t *grid;
    int n_images;
};

static int read_tensor_i64(const struct st_set *in, const char *name, int64_t **out, int64_t *numel,
                           struct mmupt_err *err)
{
    const struct st_tensor *t = st_find(in, name);
    if (!t) return 1; /* absent: the caller decides whether that is an error */
    *out = mmupt_xmalloc((size_t)(t->numel ? t->numel : 1) * sizeof **out);
    *numel = t->numel;
    return st_copy_i64(t, *out, t->numel, err) ? -1 : 0;
}

static int load_inputs(struct fwd_inputs *x, const struct st_set *in, const char *path, struct mmupt_err *err)
{
    const struct st_tensor *ids = st_find(in, "input_ids");
    if (!ids) return mmupt_fail(err, "%s: no tensor 'input_ids'", path);
    if (ids->ndim != 2 || ids->shape[0] < 1 || ids->shape[1] < 1)
        return mmupt_fail(err, "%s: input_ids must be [batch, seq] with batch, seq >= 1", path);
    x->B = ids->shape[0];
    x->S = ids->shape[1];
    int64_t n = 0;
    if (read_tensor_i64(in, "input_ids", &x->ids, &n, err) < 0) return -1;
    int rc = read_tensor_i64(in, "attention_mask", &x->mask, &n, err);
    if (rc < 0) return -1;
    if (rc == 1) {
        x->mask = mmupt_xmalloc((size_t)(x->B * x->S) * sizeof *x->mask);
        for (int64_t i = 0; i < x->B * x->S; i++) x->mask[i] = 1;
    } else if (n != x->B * x->S) {
        return mmupt_fail(err, "%s: attention_mask must have the shape of input_ids", path);
    }
    x->seq_len = mmupt_xcalloc((size_t)x->B, sizeof *x->seq_len);
    x->packed = mmupt_xmalloc((size_t)(x->B * x->S) * sizeof *x->packed);
    x->row_of = mmupt_xmalloc((size_t)(x->B * x->S) * sizeof *x->row_of);
    for (int64_t i = 0; i < x->B * x->S; i++) {
        if (x->mask[i] != 0 && x->mask[i] != 1) return mmupt_fail(err, "%s: attention_mask values must be 0 or 1", path);
        if (!x->mask[i]) continue;
        x->packed[x->T] = x->ids[i];
        x->row_of[x->T++] = i;
        x->seq_len[i / x->S]++;
    }
    const struct st_tensor *pix = st_find(in, "pixel_values");
    if (!pix) return 0;
    if (read_tensor_i64(in, "image_grid_thw", &x->grid, &n, err) != 0 || n % 3 != 0)
        return mmupt_fail(err, "%s: pixel_values needs image_grid_thw I64 [images, 3]%s%s", path, err->msg[0] ? ": " : "",
                          err->msg);
    x->n_images = (int)(n / 3);
    x->pixels = mmupt_xmalloc((size_t)(pix->numel ? pix->numel : 1) * sizeof *x->pixels);
    return st_copy_f32(pix, x->pixels, pix->numel, err);
}

static void free_inputs(struct fwd_inputs *x)
{
    free(x->ids);
    free(x->mask);
    free(x->seq_len);
    free(x->packed);
    free(x->row_of);
    free(x->pixels);
    free(x->grid);
}

/* Scatter packed rows [T, C] to a zero-filled padded [B, S, C] tensor. */
static float *unpack(const struct fwd_inputs *x, const float *rows, int64_t C)
{
    float *out = mmupt_xcalloc((size_t)(x->B * x->S * C), sizeof *out);
    for (int64_t t = 0; t < x->T; t++) memcpy(out + x->row_of[t] * C, rows + t * C, (size_t)C * sizeof *out);
    return out;
}

struct outputs {
    struct st_entry e[1100];
    void *owned[1100];
    char names[1100][64];
    size_t n;
};

static void add_output(struct outputs *o, const char *name, enum st_dtype dt, int ndim, const int64_t *shape, void *data)
{
    if (o->n == sizeof o->e / sizeof o->e[0]) MMUPT_DIE("too many output tensors");
    snprintf(o->names[o->n], sizeof o->names[0], "%s", name);
    o->e[o->n] = (struct st_entry){.name = o->names[o->n], .dtype = dt, .ndim = ndim, .data = data};
    for (int i = 0; i < ndim; i++) o->e[o->n].shape[i] = shape[i];
    o->owned[o->n++] = data;
}

static void collect_outputs(struct outputs *o, const struct model *m, const struct fwd_inputs *x, int hidden)
{
    int64_t V = m->cfg.text.vocab, H = m->cfg.text.hidden, rows, cols;
    add_output(o, "logits", ST_F32, 3, (const int64_t[]){x->B, x->S, V}, unpack(x, m->logits, V));
    int64_t *pos = mmupt_xcalloc((size_t)(3 * x->B * x->S), sizeof *pos);
    for (int a = 0; a < 3; a++)
        for (int64_t t = 0; t < x->T; t++) pos[a * x->B * x->S + x->row_of[t]] = m->positions[a * x->T + t];
    add_output(o, "position_ids", ST_I64, 3, (const int64_t[]){3, x->B, x->S}, pos);
    int64_t *deltas = mmupt_xmalloc((size_t)x->B * sizeof *deltas);
    memcpy(deltas, m->rope_deltas, (size_t)x->B * sizeof *deltas);
    add_output(o, "rope_deltas", ST_I64, 1, (const int64_t[]){x->B}, deltas);
    if (!hidden) return;
    const int64_t shape[3] = {x->B, x->S, H};
    add_output(o, "hidden.embed", ST_F32, 3, shape, unpack(x, model_tap(m, "hidden.embed", &rows, &cols), H));
    for (int64_t l = 0; l < m->cfg.text.n_layers; l++) {
        char name[64];
        snprintf(name, sizeof name, "hidden.layer.%lld", (long long)l);
        add_output(o, name, ST_F32, 3, shape, unpack(x, model_tap(m, name, &rows, &cols), H));
    }
    add_output(o, "hidden.norm", ST_F32, 3, shape, unpack(x, model_tap(m, "hidden.norm", &rows, &cols), H));
}

static int parse_flags(int argc, char **argv, const char **model, const char **inputs, const char **out, int *hidden)
{
    for (int i = 1; i < argc; i++) {
        const char **dst = NULL;
        if (strcmp(argv[i], "--model") == 0) dst = model;
        else if (strcmp(argv[i], "--inputs") == 0) dst = inputs;
        else if (strcmp(argv[i], "--out") == 0) dst = out;
        else if (strcmp(argv[i], "--hidden") == 0) {
            *hidden = 1;
            continue;
        } else {
            cli_error("forward", "unknown argument '%s'\n\n%s", argv[i], usage);
            return -1;
        }
        if (i + 1 >= argc) {
            cli_error("forward", "%s needs a value", argv[i]);
            return -1;
        }
        *dst = argv[++i];
    }
    if (!*model || !*inputs || !*out) {
        cli_error("forward", "--model, --inputs and --out are required\n\n%s", usage);
        return -1;
    }
    return 0;
}

int cmd_forward(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    const char *model_dir = NULL, *in_path = NULL, *out_path = NULL;
    int hidden = 0;
    if (parse_flags(argc, argv, &model_dir, &in_path, &out_path, &hidden)) return MMUPT_EXIT_USAGE;
    struct log_ctx lg;
    log_init(&lg, LOG_INFO, 0, stderr);
    struct model m;
    struct st_set in;
    struct fwd_inputs x;
    memset(&x, 0, sizeof x);
    struct mmupt_err err = {{0}};
    int rc = MMUPT_EXIT_ERROR;
    if (model_open(&m, model_dir, &err)) {
        cli_error("forward", "%s", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    log_info(&lg, "model %s: %s, %lld parameters", model_dir, model_arch_name(m.cfg.arch), (long long)m.spec.total);
    if (st_open(&in, in_path, &err)) {
        cli_error("forward", "%s", err.msg);
        model_free(&m);
        return MMUPT_EXIT_ERROR;
    }
    struct outputs *o = mmupt_xcalloc(1, sizeof *o);
    if (load_inputs(&x, &in, in_path, &err) == 0) {
        struct model_batch b = {.n_seq = (int)x.B, .seq_len = x.seq_len, .tokens = x.packed, .n_images = x.n_images,
                                .grid_thw = x.grid, .pixels = x.pixels};
        double t0 = mmupt_now();
        if (model_forward(&m, &b, &err) == 0) {
            log_info(&lg, "forward: %lld tokens, %d image(s) in %.3f s", (long long)x.T, x.n_images, mmupt_now() - t0);
            collect_outputs(o, &m, &x, hidden);
            if (st_write_file(out_path, o->e, o->n, NULL, &err) == 0) {
                log_info(&lg, "wrote %zu tensors to %s", o->n, out_path);
                rc = MMUPT_EXIT_OK;
            }
        } else {
            mmupt_err_prefix(&err, "%s", in_path);
        }
    }
    if (rc != MMUPT_EXIT_OK) cli_error("forward", "%s", err.msg);
    for (size_t i = 0; i < o->n; i++) free(o->owned[i]);
    free(o);
    free_inputs(&x);
    st_close(&in);
    model_free(&m);
    return rc;
}
