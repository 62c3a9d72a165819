/* Attention through cuDNN's fused SDPA ("flash") engines: the CUDA twin of
 * kernels/cpu/attention_sdpa.c, for the bf16 model's blocks with MMUPT_ATTENTION=cudnn.
 *
 * The way into cuDNN's fused attention engines that its frontend (and PyTorch) use on this cuDNN
 * generation is an operation GRAPH - the matmuls, the scale, the masks, the softmax's reductions and
 * pointwise steps, the second matmul - which its runtime fusion recognises and compiles into one
 * kernel (forward) or a few (backward). The graphs below are the ones cuDNN documents for scaled dot-product attention
 * (its frontend's "composite" SDPA nodes, which PyTorch's cuDNN attention builds too), written out
 * in C through src/gpu/cudnn_graph.c:
 *   forward   S = Q K^T; S *= scale; padding: S = row < len_q && col < len_kv ? S : -inf;
 *             causal: S = row >= col ? S : -inf; M = max_row S; E = exp(S - M); Z = sum_row E;
 *             stats = M + log Z; P = bf16(E / Z); O = P V;
 *   backward  sum = rowsum(dO * O); S as forward, less stats, masked; P = exp(S);
 *             dV = P^T dO; dP = dO V^T; dS = P (dP - sum) scale; dK = dS^T Q; dQ = dS K.
 * With GQA (n_heads > n_kv) dK and dV are summed over each kv head's group by a reduction (cuDNN's
 * GQA pattern). dQ is written directly, without the fp32 accumulation buffer cuDNN otherwise adds
 * into out of order: the deterministic form, tried first - this trainer promises runs that repeat -
 * and the accumulating form only where cuDNN plans no deterministic engine (said once).
 *
 * Packed sequences, no copy: every non-empty segment of a call is one batch entry of a RAGGED tensor
 * - q [b, n_heads, S, hd] with strides (-, hd, n_heads*hd, 1) whose entry i starts at element
 * offset[i] = t0_i * n_heads * hd of the model's token-major activations (cuDNN's "THD" layout) - and
 * the padding mask holds each entry to its own length (len_q = len_kv = the segment's length, int32
 * tensors). S, the padded length, is the longest segment rounded up to SDPA_LEN_STEP, and the
 * segments go to cuDNN in calls of power-of-two entry counts (include/mmupt/sdpa_layout.h: 13
 * segments are calls of 8, 4 and 1), so one plan serves every call with that many entries and a
 * longest segment in the same step: micro-batches of varied lengths, and vision towers whose window
 * counts follow the images' sizes, share a handful of plans. stats is ragged too: [T, n_heads], each
 * row's log-sum-exp where attention_flash keeps lse. -inf is the masks' value from cuDNN 9.10 on,
 * the lowest float before (as cuDNN's frontend has it).
 *
 * Plans are kept on the cuBLAS handle (struct sdpa_plans, one per stream): making one compiles
 * kernels, seconds. A shape cuDNN refuses is said once, with cuDNN's reason, and attends as by
 * default from then on; so does every new shape once SDPA_MAX_PLANS are kept. The offsets and
 * lengths go to the device once per segment layout, the last SDPA_LAYOUTS of them kept (every layer of
 * a step shares one; a vision-language step alternates three). */
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cudnn_graph.h"
#include "gpu/sdpa_cudnn.h"
#include "mmupt/cuda_check.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"
#include "mmupt/log.h"
#include "mmupt/sdpa_layout.h"

/* SDPA_LAYOUTS: segment layouts kept on the device - a Qwen2.5-VL step alternates the text's, the
 * vision windows' and the full vision layers' (and, in training, the same again backward), so one
 * kept layout would upload its arrays again at every change. */
enum { SDPA_MAX_PLANS = 64, SDPA_LAYOUTS = 8 };

/* The tensors bound at execution. */
enum {
    U_Q = 1, U_K, U_V, U_O, U_STATS, U_DO, U_DQ, U_DK, U_DV, U_SUM, U_DQ_ACC, U_SCALE, U_NEG_INF, U_ONE, U_LEN_Q,
    U_LEN_KV, U_OFF_Q, U_OFF_K, U_OFF_S
};

struct sdpa_key {
    int b, s, hq, hk, d, causal; /* b entries padded to s rows */
};

struct sdpa_entry {
    struct sdpa_key key;
    int ok;         /* both graphs planned */
    int accumulate; /* the backward accumulates dQ in fp32 (no deterministic engine planned) */
    struct cudnn_graph fwd, bwd;
};

/* A segment layout's cuDNN calls (include/mmupt/sdpa_layout.h) and their int32 arrays on the device,
 * for the segments in `seg` and the head counts (kept to spot the next call with the same). */
struct sdpa_layout {
    int *seg, n_seg;
    struct sdpa_layout_plan plan;
    int32_t *dev; /* plan.ints on the device */
    int hq, hk, d;
    long long used; /* when it last served a call (the least recent is replaced) */
};

struct sdpa_plans {
    cudnnHandle_t handle;
    int state; /* 0: no handle yet; 1: ready; -1: cuDNN did not start (said once) */
    int version;
    struct sdpa_entry *e[SDPA_MAX_PLANS];
    int n, full_said;
    struct sdpa_layout lay[SDPA_LAYOUTS];
    long long calls; /* layout lookups so far: the clock of `used` */
};

struct sdpa_plans *sdpa_plans_new(void)
{
    return mmupt_xcalloc(1, sizeof(struct sdpa_plans));
}

void sdpa_plans_free(struct sdpa_plans *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        cudnn_graph_free(&p->e[i]->fwd);
        cudnn_graph_free(&p->e[i]->bwd);
        free(p->e[i]);
    }
    for (int i = 0; i < SDPA_LAYOUTS; i++) {
        if (p->lay[i].dev) cudaFree(p->lay[i].dev);
        free(p->lay[i].seg);
        sdpa_layout_free(&p->lay[i].plan);
    }
    if (p->state == 1) cudnnDestroy(p->handle);
    free(p);
}

/* ---- shapes: [b, h, s, d] views ---- */

/* Token-major rows ([T, h, d] memory) as [b, h, s, d]. */
static void view_rows(int64_t dim[4], int64_t st[4], int64_t b, int64_t h, int64_t s, int64_t d)
{
    int64_t v[8] = {b, h, s, d, s * h * d, d, h * d, 1};
    memcpy(dim, v, 4 * sizeof *dim);
    memcpy(st, v + 4, 4 * sizeof *st);
}

/* The same memory transposed: [b, h, d, s] (K^T, V^T). */
static void view_rows_t(int64_t dim[4], int64_t st[4], int64_t b, int64_t h, int64_t s, int64_t d)
{
    int64_t v[8] = {b, h, d, s, s * h * d, d, 1, h * d};
    memcpy(dim, v, 4 * sizeof *dim);
    memcpy(st, v + 4, 4 * sizeof *st);
}

/* A packed [b, h, r, c] tensor (scores, per-row values, the graphs' intermediates). */
static void packed(int64_t dim[4], int64_t st[4], int64_t b, int64_t h, int64_t r, int64_t c)
{
    int64_t v[8] = {b, h, r, c, h * r * c, r * c, c, 1};
    memcpy(dim, v, 4 * sizeof *dim);
    memcpy(st, v + 4, 4 * sizeof *st);
}

/* ---- the graphs ---- */

/* The tensors both graphs share: lengths, offsets, scalars, and the ragged views of q, k, v, o, stats. */
struct sdpa_io {
    cgd_t len_q, len_kv, off_q, off_k, off_s, scale, ninf;
    int64_t dS[4], sS[4], dR[4], sR[4]; /* scores [b, hq, s, s]; per row [b, hq, s, 1] (packed) */
};

static void sdpa_io(struct cudnn_graph *gr, const struct sdpa_key *k, struct sdpa_io *io)
{
    int64_t dN[4] = {k->b, 1, 1, 1}, dO[4] = {k->b + 1, 1, 1, 1}, one[4] = {1, 1, 1, 1};
    io->len_q = cudnn_tensor(gr, U_LEN_Q, CUDNN_DATA_INT32, dN, one);
    io->len_kv = cudnn_tensor(gr, U_LEN_KV, CUDNN_DATA_INT32, dN, one);
    io->off_q = cudnn_tensor(gr, U_OFF_Q, CUDNN_DATA_INT32, dO, one);
    io->off_k = cudnn_tensor(gr, U_OFF_K, CUDNN_DATA_INT32, dO, one);
    io->off_s = cudnn_tensor(gr, U_OFF_S, CUDNN_DATA_INT32, dO, one);
    io->scale = cudnn_scalar(gr, U_SCALE, CUDNN_DATA_FLOAT);
    io->ninf = cudnn_scalar(gr, U_NEG_INF, CUDNN_DATA_FLOAT);
    packed(io->dS, io->sS, k->b, k->hq, k->s, k->s);
    packed(io->dR, io->sR, k->b, k->hq, k->s, 1);
}

/* A ragged [b, h, s, d] view (transposed: [b, h, d, s]) of token-major rows. */
static cgd_t rows(struct cudnn_graph *gr, int64_t uid, const struct sdpa_key *k, int h, int transposed, cgd_t off)
{
    int64_t dim[4], st[4];
    (transposed ? view_rows_t : view_rows)(dim, st, k->b, h, k->s, k->d);
    return cudnn_ragged(gr, uid, CUDNN_DATA_BFLOAT16, dim, st, off);
}

/* stats: one float a row and head, token-major ([T, hq]) like the rows. */
static cgd_t stats_of(struct cudnn_graph *gr, const struct sdpa_key *k, const struct sdpa_io *io)
{
    int64_t dim[4] = {k->b, k->hq, k->s, 1}, st[4] = {(int64_t)k->s * k->hq, 1, k->hq, 1};
    return cudnn_ragged(gr, U_STATS, CUDNN_DATA_FLOAT, dim, st, io->off_s);
}

/* x with every score outside entry i's len x len block, and (causal) above its diagonal, -inf. */
static cgd_t masked(struct cudnn_graph *gr, const struct sdpa_key *k, const struct sdpa_io *io, cgd_t x,
                    int padding, int causal)
{
    const int64_t *dS = io->dS, *sS = io->sS;
    if (padding) {
        cgd_t row = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS), col = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS);
        cgd_t in_r = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS), in_c = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS);
        cgd_t keep = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS), y = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dS, sS);
        cudnn_pointwise(gr, "padding row index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, 2, x, NULL, NULL, row);
        cudnn_pointwise(gr, "padding col index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, 3, x, NULL, NULL, col);
        cudnn_pointwise(gr, "padding row < len_q", CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, -1, row, io->len_q, NULL,
                        in_r);
        cudnn_pointwise(gr, "padding col < len_kv", CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, -1, col, io->len_kv,
                        NULL, in_c);
        cudnn_pointwise(gr, "padding and", CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, -1, in_r, in_c, NULL, keep);
        cudnn_pointwise(gr, "padding select", CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, -1, x, io->ninf, keep, y);
        x = y;
    }
    if (causal && k->causal) {
        cgd_t row = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS), col = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS);
        cgd_t keep = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS), y = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dS, sS);
        cudnn_pointwise(gr, "causal row index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, 2, x, NULL, NULL, row);
        cudnn_pointwise(gr, "causal col index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, 3, x, NULL, NULL, col);
        cudnn_pointwise(gr, "causal row >= col", CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, -1, row, col, NULL, keep);
        cudnn_pointwise(gr, "causal select", CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, -1, x, io->ninf, keep, y);
        x = y;
    }
    return x;
}

/* y = op(a, b) into a new fp32 virtual tensor shaped (dim, st). */
static cgd_t pw2(struct cudnn_graph *gr, const char *name, cudnnPointwiseMode_t mode, cgd_t a, cgd_t b,
                 const int64_t *dim, const int64_t *st)
{
    cgd_t y = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dim, st);
    cudnn_pointwise(gr, name, mode, CUDNN_DATA_FLOAT, -1, a, b, NULL, y);
    return y;
}

static void build_forward(struct cudnn_graph *gr, const struct sdpa_key *k)
{
    struct sdpa_io io;
    sdpa_io(gr, k, &io);
    const int64_t *dS = io.dS, *sS = io.sS, *dR = io.dR, *sR = io.sR;
    cgd_t Q = rows(gr, U_Q, k, k->hq, 0, io.off_q), KT = rows(gr, U_K, k, k->hk, 1, io.off_k);
    cgd_t V = rows(gr, U_V, k, k->hk, 0, io.off_k), O = rows(gr, U_O, k, k->hq, 0, io.off_q);
    cgd_t stats = stats_of(gr, k, &io);
    cgd_t S = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dS, sS);
    cudnn_matmul(gr, "Q K^T", Q, KT, S, io.len_q, io.len_kv, NULL);
    S = pw2(gr, "scale", CUDNN_POINTWISE_MUL, S, io.scale, dS, sS);
    S = masked(gr, k, &io, S, 1, 1);
    cgd_t M = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dR, sR), Z = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dR, sR);
    cudnn_reduction(gr, "row max", CUDNN_REDUCE_TENSOR_MAX, S, M);
    cgd_t E = pw2(gr, "S - max", CUDNN_POINTWISE_SUB, S, M, dS, sS);
    cgd_t E2 = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dS, sS);
    cudnn_pointwise(gr, "exp", CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, -1, E, NULL, NULL, E2);
    cudnn_reduction(gr, "row sum", CUDNN_REDUCE_TENSOR_ADD, E2, Z);
    cgd_t logZ = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dR, sR);
    cudnn_pointwise(gr, "log", CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, -1, Z, NULL, NULL, logZ);
    cudnn_pointwise(gr, "stats", CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, -1, M, logZ, NULL, stats);
    cgd_t P = cudnn_virtual(gr, CUDNN_DATA_BFLOAT16, dS, sS); /* the second product's operand: bf16 */
    cudnn_pointwise(gr, "softmax", CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, -1, E2, Z, NULL, P);
    cudnn_matmul(gr, "P V", P, V, O, io.len_q, NULL, io.len_kv);
}

/* The backward's dK or dV: the product a b into out, through a per-q-head bf16 tensor summed over
 * each group when the heads are grouped (GQA). m, kk: the size overrides (the lengths). */
static void grouped_product(struct cudnn_graph *gr, const char *name, const struct sdpa_key *k, cgd_t a, cgd_t b,
                            cgd_t out, cgd_t m, cgd_t kk)
{
    if (k->hq == k->hk) {
        cudnn_matmul(gr, name, a, b, out, m, NULL, kk);
        return;
    }
    int64_t dF[4], sF[4];
    packed(dF, sF, k->b, k->hq, k->s, k->d);
    cgd_t full = cudnn_virtual(gr, CUDNN_DATA_BFLOAT16, dF, sF);
    cudnn_matmul(gr, name, a, b, full, m, NULL, kk);
    cudnn_reduction(gr, "group sum", CUDNN_REDUCE_TENSOR_ADD, full, out);
}

static void build_backward(struct cudnn_graph *gr, const struct sdpa_key *k, int accumulate)
{
    struct sdpa_io io;
    sdpa_io(gr, k, &io);
    const int64_t *dS = io.dS, *sS = io.sS, *dR = io.dR, *sR = io.sR;
    int64_t dST[4], sST[4], dK[4], sK[4], dF[4], sF[4];
    memcpy(dST, dS, sizeof dST); /* P^T and dS^T: the scores' memory read transposed */
    int64_t tst[4] = {(int64_t)k->hq * k->s * k->s, (int64_t)k->s * k->s, 1, k->s};
    memcpy(sST, tst, sizeof sST);
    view_rows(dK, sK, k->b, k->hk, k->s, k->d);
    packed(dF, sF, k->b, k->hq, k->s, k->d);
    const cudnnDataType_t bf = CUDNN_DATA_BFLOAT16, f32 = CUDNN_DATA_FLOAT;
    cgd_t Q = rows(gr, U_Q, k, k->hq, 0, io.off_q), KT = rows(gr, U_K, k, k->hk, 1, io.off_k);
    cgd_t VT = rows(gr, U_V, k, k->hk, 1, io.off_k), O = rows(gr, U_O, k, k->hq, 0, io.off_q);
    cgd_t dO = rows(gr, U_DO, k, k->hq, 0, io.off_q), gQ = rows(gr, U_DQ, k, k->hq, 0, io.off_q);
    cgd_t gK = rows(gr, U_DK, k, k->hk, 0, io.off_k), gV = rows(gr, U_DV, k, k->hk, 0, io.off_k);
    cgd_t stats = stats_of(gr, k, &io), sum = cudnn_tensor(gr, U_SUM, f32, dR, sR);
    cgd_t one = cudnn_scalar(gr, U_ONE, f32);
    /* sum = rowsum(dO * O), kept in memory (padded [b, hq, s]): every dS tile reads it */
    cgd_t t = pw2(gr, "dO * O", CUDNN_POINTWISE_MUL, dO, O, dF, sF);
    cgd_t r = cudnn_virtual(gr, f32, dR, sR);
    cudnn_reduction(gr, "rowsum(dO * O)", CUDNN_REDUCE_TENSOR_ADD, t, r);
    cudnn_pointwise(gr, "softmax sum", CUDNN_POINTWISE_MUL, f32, -1, r, one, NULL, sum);
    /* P = exp(scale Q K^T - stats), masked */
    cgd_t S = cudnn_virtual(gr, f32, dS, sS);
    cudnn_matmul(gr, "Q K^T", Q, KT, S, io.len_q, io.len_kv, NULL);
    S = pw2(gr, "scale", CUDNN_POINTWISE_MUL, S, io.scale, dS, sS);
    S = masked(gr, k, &io, S, 1, 0);
    S = pw2(gr, "S - stats", CUDNN_POINTWISE_SUB, S, stats, dS, sS);
    S = masked(gr, k, &io, S, 0, 1);
    cgd_t P = cudnn_virtual(gr, f32, dS, sS), PT = cudnn_virtual(gr, bf, dST, sST);
    cudnn_pointwise(gr, "exp", CUDNN_POINTWISE_EXP, f32, -1, S, NULL, NULL, P);
    cudnn_reshape(gr, "P^T", P, PT);
    grouped_product(gr, "P^T dO", k, PT, dO, gV, io.len_kv, io.len_q);
    /* dS = P (dO V^T - sum) scale */
    cgd_t dP = cudnn_virtual(gr, f32, dS, sS);
    cudnn_matmul(gr, "dO V^T", dO, VT, dP, io.len_q, io.len_kv, NULL);
    dP = pw2(gr, "dP - sum", CUDNN_POINTWISE_SUB, dP, sum, dS, sS);
    dP = pw2(gr, "* P", CUDNN_POINTWISE_MUL, dP, P, dS, sS);
    cgd_t dSc = pw2(gr, "* scale", CUDNN_POINTWISE_MUL, dP, io.scale, dS, sS), dSt = cudnn_virtual(gr, bf, dST, sST);
    cudnn_reshape(gr, "dS^T", dSc, dSt);
    grouped_product(gr, "dS^T Q", k, dSt, Q, gK, io.len_kv, io.len_q);
    /* dQ = dS K */
    cgd_t K = cudnn_virtual(gr, bf, dK, sK);
    cudnn_reshape(gr, "K", KT, K);
    if (!accumulate) {
        cudnn_matmul(gr, "dS K", dSc, K, gQ, io.len_q, NULL, io.len_kv);
        return;
    }
    cgd_t acc = cudnn_tensor(gr, U_DQ_ACC, f32, dF, sF);
    cudnn_matmul(gr, "dS K", dSc, K, acc, io.len_q, NULL, io.len_kv);
    cudnn_pointwise(gr, "dQ", CUDNN_POINTWISE_IDENTITY, f32, -1, acc, NULL, NULL, gQ);
}

/* ---- plans ---- */

static int handle_ready(struct sdpa_plans *p, const struct gpu_blas *blas)
{
    if (p->state) return p->state > 0;
    cudnnStatus_t st = cudnnCreate(&p->handle);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnSetStream(p->handle, blas->stream);
    if (st != CUDNN_STATUS_SUCCESS) {
        fprintf(stderr, "mmupt: cuDNN did not start (%s): attention runs through cuBLAS (as MMUPT_ATTENTION=cublas)\n",
                cudnnGetErrorString(st));
        p->state = -1;
        return 0;
    }
    p->version = (int)cudnnGetVersion();
    p->state = 1;
    return 1;
}

/* Plan both graphs of e's shape: the deterministic backward first. */
static int plan_entry(struct sdpa_plans *p, struct sdpa_entry *e)
{
    cudnn_graph_init(&e->fwd);
    build_forward(&e->fwd, &e->key);
    if (cudnn_graph_plan(&e->fwd, p->handle, NULL)) return -1;
    for (e->accumulate = 0; e->accumulate < 2; e->accumulate++) {
        cudnn_graph_init(&e->bwd);
        build_backward(&e->bwd, &e->key, e->accumulate);
        if (cudnn_graph_plan(&e->bwd, p->handle, NULL) == 0) return 0;
        if (e->accumulate == 1) return -1;
        fprintf(stderr, "mmupt: cuDNN SDPA: no deterministic backward engine (%s); dQ accumulates out of order\n",
                e->bwd.error);
        cudnn_graph_free(&e->bwd);
    }
    return -1;
}

/* The entry of a shape, planned now if new; NULL where it cannot run (said once). */
static struct sdpa_entry *entry_of(struct sdpa_plans *p, const struct sdpa_key *key)
{
    for (int i = 0; i < p->n; i++)
        if (memcmp(&p->e[i]->key, key, sizeof *key) == 0) return p->e[i]->ok ? p->e[i] : NULL;
    if (p->n == SDPA_MAX_PLANS) {
        if (!p->full_said)
            fprintf(stderr, "mmupt: cuDNN SDPA: %d shapes planned, the most kept; new shapes attend through cuBLAS\n",
                    SDPA_MAX_PLANS);
        p->full_said = 1;
        return NULL;
    }
    struct sdpa_entry *e = mmupt_xcalloc(1, sizeof *e);
    e->key = *key;
    double t0 = mmupt_now();
    e->ok = plan_entry(p, e) == 0;
    if (e->ok) /* seconds of kernel compiling the first time a shape comes: said, so a step does not look stuck */
        fprintf(stderr,
                "mmupt: cuDNN SDPA planned %d segment(s) of up to %d rows, %d/%d heads of %d, %s in %.1f s%s\n",
                key->b, key->s, key->hq, key->hk, key->d, key->causal ? "causal" : "not causal", mmupt_now() - t0,
                e->accumulate ? " (dQ accumulated: not bitwise repeatable)" : "");
    if (!e->ok) {
        int fwd = e->fwd.status != CUDNN_STATUS_SUCCESS;
        fprintf(stderr,
                "mmupt: cuDNN %d.%d.%d SDPA refused %d segment(s) of up to %d rows, %d/%d heads of %d, %s (%s graph): "
                "%s; this shape attends through cuBLAS\n",
                p->version / 10000, p->version / 100 % 100, p->version % 100, key->b, key->s, key->hq, key->hk, key->d,
                key->causal ? "causal" : "not causal", fwd ? "forward" : "backward", fwd ? e->fwd.error : e->bwd.error);
        cudnn_graph_free(&e->fwd);
        cudnn_graph_free(&e->bwd);
    }
    p->e[p->n++] = e;
    return e->ok ? e : NULL;
}

/* The plan key of one of a layout's calls. */
static struct sdpa_key key_of(const struct sdpa_call_layout *c, int n_heads, int n_kv, int hd, int causal)
{
    struct sdpa_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp */
    k.b = c->b, k.s = c->s, k.hq = n_heads, k.hk = n_kv, k.d = hd, k.causal = causal != 0;
    return k;
}

static int layout_is(const struct sdpa_layout *l, const int *seg, int n_seg, int hq, int hk, int d)
{
    return l->seg && l->n_seg == n_seg && l->hq == hq && l->hk == hk && l->d == d &&
           memcmp(l->seg, seg, (size_t)(n_seg + 1) * sizeof *seg) == 0;
}

/* The calls of a segment layout, their arrays on the device (kept: uploaded the first time the layout
 * comes, into the least recently used of the kept ones - its arrays freed in stream order, after the
 * calls that read them); NULL where an offset overflows int32. */
static const struct sdpa_layout *layout_of(struct sdpa_plans *p, const struct gpu_blas *blas, const int *seg,
                                           int n_seg, int hq, int hk, int d)
{
    struct sdpa_layout *l = &p->lay[0];
    for (int i = 0; i < SDPA_LAYOUTS; i++) {
        if (layout_is(&p->lay[i], seg, n_seg, hq, hk, d)) {
            p->lay[i].used = ++p->calls;
            return &p->lay[i];
        }
        if (p->lay[i].used < l->used) l = &p->lay[i];
    }
    l->used = ++p->calls;
    if (l->dev) CUDA_CHECK(cudaFreeAsync(l->dev, blas->stream));
    l->dev = NULL;
    free(l->seg);
    l->seg = NULL;
    sdpa_layout_free(&l->plan);
    if (sdpa_layout_make(&l->plan, seg, n_seg, hq, hk, d)) return NULL;
    l->seg = mmupt_xmalloc((size_t)(n_seg + 1) * sizeof *seg);
    memcpy(l->seg, seg, (size_t)(n_seg + 1) * sizeof *seg);
    l->n_seg = n_seg, l->hq = hq, l->hk = hk, l->d = d;
    if (l->plan.n_calls) {
        size_t bytes = (size_t)l->plan.n_ints * sizeof *l->plan.ints;
        CUDA_CHECK(cudaMallocAsync((void **)&l->dev, bytes, blas->stream));
        /* pageable: staged before the copy returns, and the plan's host copy outlives it anyway */
        CUDA_CHECK(cudaMemcpyAsync(l->dev, l->plan.ints, bytes, cudaMemcpyHostToDevice, blas->stream));
    }
    return l;
}

int attention_sdpa_supported(const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                             const struct gpu_blas *blas)
{
    struct sdpa_plans *p = blas->sdpa;
    if (!p || !attention_sdpa_shape_ok(seg, n_seg, n_heads, n_kv, hd) || !handle_ready(p, blas)) return 0;
    const struct sdpa_layout *l = layout_of(p, blas, seg, n_seg, n_heads, n_kv, hd);
    if (!l) return 0; /* the ragged offsets are int32 */
    for (int c = 0; c < l->plan.n_calls; c++) {
        struct sdpa_key k = key_of(&l->plan.call[c], n_heads, n_kv, hd, causal);
        if (!entry_of(p, &k)) return 0;
    }
    return 1;
}

/* The planned entry of a call (attention_sdpa_supported said yes: it is there). */
static struct sdpa_entry *planned(const struct gpu_blas *blas, const struct sdpa_key *k)
{
    struct sdpa_entry *e = blas->sdpa && blas->sdpa->state > 0 ? entry_of(blas->sdpa, k) : NULL;
    if (!e) MMUPT_DIE("attention_sdpa: a shape attention_sdpa_supported did not accept (%d x %d rows)", k->b, k->s);
    return e;
}

/* Run a planned graph with a stream-ordered workspace; a failure is fatal (it names cuDNN's reason). */
static void run(struct cudnn_graph *gr, const struct gpu_blas *blas, int n, const int64_t *uids, void *const *ptrs)
{
    void *ws = NULL;
    if (gr->workspace > 0) CUDA_CHECK(cudaMallocAsync(&ws, (size_t)gr->workspace, blas->stream));
    if (cudnn_graph_run(gr, blas->sdpa->handle, n, uids, ptrs, ws)) MMUPT_DIE("cuDNN SDPA: %s", gr->error);
    if (ws) CUDA_CHECK(cudaFreeAsync(ws, blas->stream));
}

static float neg_inf(const struct sdpa_plans *p)
{
    return p->version < 91000 ? -FLT_MAX : -INFINITY;
}

/* One call: its planned entry and the tensors it binds - the lengths, offsets and scalars every graph
 * has (call_begin), then the graph's own (bind). The scalars live here: cuDNN reads them by pointer. */
enum { SDPA_MAX_BIND = 24 };
struct sdpa_call {
    struct sdpa_entry *e;
    float scale, ninf, one;
    int64_t uids[SDPA_MAX_BIND];
    void *ptrs[SDPA_MAX_BIND];
    int n;
};

static void bind(struct sdpa_call *c, int64_t uid, const void *ptr)
{
    MMUPT_CHECK(c->n < SDPA_MAX_BIND);
    c->uids[c->n] = uid;
    c->ptrs[c->n++] = (void *)ptr;
}

/* The layout of a call's segments (attention_sdpa_supported said yes: it fits). */
static const struct sdpa_layout *layout_for_call(const struct gpu_blas *blas, const int *seg, int n_seg, int n_heads,
                                                 int n_kv, int hd)
{
    const struct sdpa_layout *l = blas->sdpa ? layout_of(blas->sdpa, blas, seg, n_seg, n_heads, n_kv, hd) : NULL;
    if (!l) MMUPT_DIE("attention_sdpa: a layout attention_sdpa_supported did not accept (%d rows)", seg[n_seg]);
    return l;
}

/* cuDNN call i of layout l: its plan, lengths, offsets and scalars. */
static void call_begin(struct sdpa_call *c, const struct gpu_blas *blas, const struct sdpa_layout *l, int i,
                       int n_heads, int n_kv, int hd, int causal)
{
    const struct sdpa_call_layout *k = &l->plan.call[i];
    struct sdpa_key key = key_of(k, n_heads, n_kv, hd, causal);
    c->e = planned(blas, &key);
    c->scale = (float)(1.0 / sqrt((double)hd)), c->ninf = neg_inf(blas->sdpa), c->one = 1.0f;
    c->n = 0;
    bind(c, U_LEN_Q, l->dev + k->len), bind(c, U_LEN_KV, l->dev + k->len);
    bind(c, U_OFF_Q, l->dev + k->off_q), bind(c, U_OFF_K, l->dev + k->off_k), bind(c, U_OFF_S, l->dev + k->off_s);
    bind(c, U_SCALE, &c->scale), bind(c, U_NEG_INF, &c->ninf);
}

void attention_sdpa_forward_cuda(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal, const struct gpu_blas *blas)
{
    const struct sdpa_layout *l = layout_for_call(blas, seg, n_seg, n_heads, n_kv, hd);
    for (int i = 0; i < l->plan.n_calls; i++) {
        struct sdpa_call c;
        call_begin(&c, blas, l, i, n_heads, n_kv, hd, causal);
        bind(&c, U_Q, q16), bind(&c, U_K, k16), bind(&c, U_V, v16), bind(&c, U_O, o16), bind(&c, U_STATS, stats);
        run(&c.e->fwd, blas, c.n, c.uids, c.ptrs);
    }
}

void attention_sdpa_backward_cuda(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                  const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                  const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                  int causal, const struct gpu_blas *blas)
{
    const struct sdpa_layout *l = layout_for_call(blas, seg, n_seg, n_heads, n_kv, hd);
    cudaStream_t st = blas->stream;
    for (int i = 0; i < l->plan.n_calls; i++) {
        struct sdpa_call c;
        call_begin(&c, blas, l, i, n_heads, n_kv, hd, causal);
        long rows = (long)c.e->key.b * n_heads * c.e->key.s; /* the padded [b, hq, s] of the row sums (and dQ's fp32) */
        float *sum = NULL, *acc = NULL;
        CUDA_CHECK(cudaMallocAsync((void **)&sum, (size_t)rows * sizeof *sum, st));
        if (c.e->accumulate) {
            CUDA_CHECK(cudaMallocAsync((void **)&acc, (size_t)rows * hd * sizeof *acc, st));
            CUDA_CHECK(cudaMemsetAsync(acc, 0, (size_t)rows * hd * sizeof *acc, st));
            bind(&c, U_DQ_ACC, acc);
        }
        bind(&c, U_Q, q16), bind(&c, U_K, k16), bind(&c, U_V, v16), bind(&c, U_O, o16), bind(&c, U_DO, dout16);
        bind(&c, U_STATS, stats), bind(&c, U_DQ, dq16), bind(&c, U_DK, dk16), bind(&c, U_DV, dv16);
        bind(&c, U_SUM, sum), bind(&c, U_ONE, &c.one);
        run(&c.e->bwd, blas, c.n, c.uids, c.ptrs);
        CUDA_CHECK(cudaFreeAsync(sum, st));
        if (acc) CUDA_CHECK(cudaFreeAsync(acc, st));
    }
}

int sdpa_plan_for_device(cudnnBackendDescriptor_t prop, int b, int s, int hq, int hk, int d, int causal, int backward,
                         int accumulate, char *why, size_t why_size)
{
    struct sdpa_key k;
    memset(&k, 0, sizeof k);
    k.b = b, k.s = s, k.hq = hq, k.hk = hk, k.d = d, k.causal = causal != 0;
    struct cudnn_graph gr;
    cudnn_graph_init(&gr);
    if (backward) build_backward(&gr, &k, accumulate);
    else build_forward(&gr, &k);
    int rc = cudnn_graph_plan(&gr, NULL, prop);
    snprintf(why, why_size, "%s", rc ? gr.error : "");
    cudnn_graph_free(&gr);
    return rc;
}
