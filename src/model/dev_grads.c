/* Lazy gradient zeroing on the device. A step used to start by filling every gradient with zeros
 * (6 GB of memset on a 1.5B model) that the weight-gradient GEMMs then read back to add to. Now
 * model_dev_zero_grad only marks every parameter tensor fresh; the first writer of a tensor in the
 * step either assigns it (a bf16 weight-gradient GEMM with beta 0: dev_grad_begin returns 0) or has
 * it zeroed first and adds (every accumulating kernel - norms, biases, the embedding - and the fp32
 * GEMMs, which keep the CPU reference's 0 + x). model_dev_grads zeroes what no writer reached (a
 * frozen or unused part of the model) before anything reads the gradients. On the emulator
 * model_dev_zero_grad fills them with NaN instead, so a writer that skips dev_grad_begin, or a reader
 * that skips model_dev_grads, spoils every test that looks at a gradient or a weight. */
#include <stdlib.h>
#include <string.h>

#include "dev_internal.h"

struct model_dev_grads {
    int n;               /* tensors, in offset order */
    int64_t *off, *len;  /* floats */
    unsigned char *fresh; /* not written since the last model_dev_zero_grad */
};

static int by_offset(const void *a, const void *b)
{
    int64_t x = ((const struct model_param *)a)->offset, y = ((const struct model_param *)b)->offset;
    return (x > y) - (x < y);
}

void dev_grads_init(struct model_dev *d)
{
    const struct model_spec *s = &d->m->spec;
    struct model_param *p = mmupt_xmalloc((size_t)(s->n_params ? s->n_params : 1) * sizeof *p);
    memcpy(p, s->params, (size_t)s->n_params * sizeof *p);
    qsort(p, (size_t)s->n_params, sizeof *p, by_offset);
    struct model_dev_grads *z = mmupt_xcalloc(1, sizeof *z);
    z->off = mmupt_xmalloc((size_t)(s->n_params ? s->n_params : 1) * sizeof *z->off);
    z->len = mmupt_xmalloc((size_t)(s->n_params ? s->n_params : 1) * sizeof *z->len);
    z->fresh = mmupt_xcalloc((size_t)(s->n_params ? s->n_params : 1), 1);
    int64_t end = 0;
    for (int i = 0; i < s->n_params; i++) {
        if (z->n > 0 && p[i].offset == z->off[z->n - 1]) continue; /* a tied tensor: one region */
        /* The tensors tile the flat buffer (spec.c appends them back to back): zeroing them all
         * zeroes every gradient. */
        MMUPT_CHECK(p[i].offset == end);
        z->off[z->n] = p[i].offset;
        z->len[z->n] = p[i].numel;
        end += p[i].numel;
        z->n++;
    }
    MMUPT_CHECK(end == s->total);
    free(p);
    d->grad_state = z;
}

void dev_grads_free(struct model_dev *d)
{
    struct model_dev_grads *z = d->grad_state;
    if (!z) return;
    free(z->off), free(z->len), free(z->fresh), free(z);
    d->grad_state = NULL;
}

/* The tensor holding offset off (the last one starting at or before it). */
static int tensor_of(const struct model_dev_grads *z, int64_t off)
{
    int lo = 0, hi = z->n; /* the first tensor starting after off is at lo */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (z->off[mid] <= off) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0 || off >= z->off[lo - 1] + z->len[lo - 1])
        MMUPT_DIE("gradient at offset %lld: outside every tensor", (long long)off);
    return lo - 1;
}

/* Zero the fresh tensors among [first, end) and mark them written: each run of consecutive fresh
 * tensors is one contiguous range of the flat buffer, so one memset (a frozen vision tower's
 * hundreds of tensors are one launch, not hundreds). */
static void zero_fresh(struct model_dev *d, int first, int end)
{
    struct model_dev_grads *z = d->grad_state;
    for (int i = first; i < end;) {
        if (!z->fresh[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < end && z->fresh[j]) z->fresh[j++] = 0;
        int64_t len = z->off[j - 1] + z->len[j - 1] - z->off[i];
        gpu_zero(d->g, d->grads + z->off[i], (size_t)len * sizeof(float));
        i = j;
    }
}

/* A range may be whole tensors (a projection's weight, q/k/v packed back to back) or part of one
 * (the vision tower's fused qkv tensor, written as three projections in fp32): only whole fresh
 * tensors can be assigned; otherwise the fresh tensors it touches are zeroed whole, and every later
 * write of them adds. */
float dev_grad_begin(struct model_dev *d, int64_t off, int64_t n, int can_assign)
{
    struct model_dev_grads *z = d->grad_state;
    if (off < 0 || n <= 0) return 1.0f;
    int first = tensor_of(z, off), end = first, all_fresh = 1;
    while (end < z->n && z->off[end] < off + n) all_fresh &= z->fresh[end++];
    int whole = z->off[first] == off && z->off[end - 1] + z->len[end - 1] == off + n;
    if (can_assign && whole && all_fresh) {
        memset(z->fresh + first, 0, (size_t)(end - first));
        return 0.0f;
    }
    zero_fresh(d, first, end);
    return 1.0f;
}

/* ---- stages: what a backward pass has finished (the learners' gradient buckets) ---- */

int model_dev_grad_stages(const struct model_dev *d)
{
    return (int)d->m->cfg.text.n_layers + 2 + (d->m->spec.L.patch_embed >= 0);
}

/* The layout (spec.c) is embed | layer 0 .. layer L-1 | final norm | lm_head (untied) | vision; the
 * backward finishes lm_head and the final norm first, the layers last to first, then the embedding
 * table (tied: lm_head's gradient is also the table's) and the vision tower. */
void model_dev_grad_stage(const struct model_dev *d, int k, int64_t *off, int64_t *n)
{
    const struct model_layout *L = &d->m->spec.L;
    int64_t nl = d->m->cfg.text.n_layers, text_end = L->patch_embed >= 0 ? L->patch_embed : d->m->spec.total;
    MMUPT_CHECK(k >= 0 && k < model_dev_grad_stages(d));
    int64_t lo, hi;
    if (k == 0) {
        lo = L->final_norm, hi = text_end;
    } else if (k <= nl) {
        int64_t l = nl - k;
        lo = L->layers[l].ln1, hi = l + 1 < nl ? L->layers[l + 1].ln1 : L->final_norm;
    } else if (k == nl + 1) {
        lo = L->embed, hi = nl > 0 ? L->layers[0].ln1 : L->final_norm;
    } else {
        lo = text_end, hi = d->m->spec.total;
    }
    *off = lo;
    *n = hi - lo;
}

void dev_grads_stage_done(struct model_dev *d, int k)
{
    if (!d->grads_done) return;
    struct model_dev_grads *z = d->grad_state;
    int64_t off, n;
    model_dev_grad_stage(d, k, &off, &n);
    if (n <= 0) return;
    int first = tensor_of(z, off), end = first;
    while (end < z->n && z->off[end] < off + n) end++;
    zero_fresh(d, first, end);
    d->grads_done(d->grads_done_ctx, off, n);
}

void model_dev_grads_done_all(struct model_dev *d)
{
    for (int k = 0; k < model_dev_grad_stages(d); k++) dev_grads_stage_done(d, k);
}

void model_dev_zero_grad(struct model_dev *d)
{
    struct model_dev_grads *z = d->grad_state;
    memset(z->fresh, 1, (size_t)z->n);
    if (gpu_emulated()) { /* NaN where nothing has written yet: a missed dev_grad_begin shows */
        size_t bytes = (size_t)d->m->spec.total * sizeof(float);
        void *nan = mmupt_xmalloc(bytes ? bytes : 1);
        memset(nan, 0xff, bytes);
        gpu_upload(d->g, d->grads, nan, bytes);
        free(nan);
    }
}

float *model_dev_grads(struct model_dev *d)
{
    zero_fresh(d, 0, d->grad_state->n);
    return d->grads;
}

void model_dev_download_grads(struct model_dev *d, float *grads)
{
    gpu_download(d->g, grads, model_dev_grads(d), (size_t)d->m->spec.total * sizeof(float));
}
