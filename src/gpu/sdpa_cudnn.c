/* Attention through cuDNN's fused SDPA ("flash") engines: the CUDA twin of
 * kernels/cpu/attention_sdpa.c, for the bf16 model's blocks with MMUPT_ATTENTION=cudnn.
 *
 * cuDNN has no one-call attention for this cuDNN generation: its fused attention engines take an
 * operation GRAPH - the matmuls, the scale, the mask, the softmax's reductions and pointwise steps,
 * the second matmul - which its runtime fusion recognises and compiles into one kernel (forward) or
 * a few (backward). The graphs below are the ones cuDNN documents for scaled dot-product attention
 * (its frontend's "composite" SDPA nodes, which PyTorch's cuDNN attention builds too), written out
 * in C through src/gpu/cudnn_graph.c:
 *   forward   S = Q K^T; S *= scale; causal: S = row >= col ? S : -inf; M = max_row S; E = exp(S - M);
 *             Z = sum_row E; stats = M + log Z; P = bf16(E / Z); O = P V;
 *   backward  sum = rowsum(dO * O); S as forward; P = exp(S - stats) (masked as forward);
 *             dV = P^T dO; dP = dO V^T; dS = P (dP - sum) scale; dK = dS^T Q; dQ = dS K.
 * With GQA (n_heads > n_kv) dK and dV are summed over each kv head's group by a reduction (cuDNN's
 * GQA pattern). dQ is written directly, without the fp32 accumulation buffer cuDNN otherwise adds
 * into out of order: the deterministic form, tried first - this trainer promises runs that repeat -
 * and the accumulating form only where cuDNN plans no deterministic engine (said once).
 *
 * Tensors are the model's token-major activations as strided 4-D views: a run of `count` segments of
 * `len` rows from row t0 is the batch, q [count, n_heads, len, hd] with strides (len*n_heads*hd, hd,
 * n_heads*hd, 1) - no copy. Known cuDNN limits, from its release notes and frontend: cuDNN up to
 * 9.15 needs the padding-mask form of the backward when len is not a multiple of 128 (the row and
 * column counts as tensors, the matmuls' sizes overridden by them); -inf as the mask's value from
 * 9.10 on, the lowest float before.
 *
 * Plans are made once per run shape (count, len, heads, kv heads, head size, causal) and kept on the
 * cuBLAS handle (struct sdpa_plans, one per stream): making one compiles kernels, about a second. A
 * shape cuDNN refuses is said once, with cuDNN's reason, and attends as by default from then on; so
 * does every new shape once SDPA_MAX_PLANS are kept. */
#include <cuda_runtime.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cudnn_graph.h"
#include "gpu/sdpa_cudnn.h"
#include "mmupt/cuda_check.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/kernels.h"

enum { SDPA_MAX_PLANS = 64 };

/* The tensors bound at execution. */
enum {
    U_Q = 1, U_K, U_V, U_O, U_STATS, U_DO, U_DQ, U_DK, U_DV, U_SUM, U_DQ_ACC, U_SCALE, U_NEG_INF, U_ONE, U_SEQ_Q,
    U_SEQ_KV
};

struct sdpa_key {
    int b, s, hq, hk, d, causal;
};

struct sdpa_entry {
    struct sdpa_key key;
    int ok;            /* both graphs planned */
    int pad;           /* the backward's padding-mask form (cuDNN <= 9.15, len % 128 != 0) */
    int accumulate;    /* the backward accumulates dQ in fp32 (no deterministic engine planned) */
    int32_t *seq;      /* pad: device [b] row counts, then (16-byte aligned) [b] column counts */
    struct cudnn_graph fwd, bwd;
};

struct sdpa_plans {
    cudnnHandle_t handle;
    int state; /* 0: no handle yet; 1: ready; -1: cuDNN did not start (said once) */
    int version;
    struct sdpa_entry *e[SDPA_MAX_PLANS];
    int n, full_said;
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
        if (p->e[i]->seq) cudaFree(p->e[i]->seq);
        free(p->e[i]);
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

/* x with every score above the diagonal (col > row) replaced by ninf. */
static cgd_t causal_mask(struct cudnn_graph *gr, cgd_t x, cgd_t ninf, const int64_t *dS, const int64_t *sS)
{
    cgd_t row = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS), col = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS);
    cgd_t keep = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS), y = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dS, sS);
    cudnn_pointwise(gr, "causal row index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, 2, x, NULL, NULL, row);
    cudnn_pointwise(gr, "causal col index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, 3, x, NULL, NULL, col);
    cudnn_pointwise(gr, "causal row >= col", CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, -1, row, col, NULL, keep);
    cudnn_pointwise(gr, "causal select", CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, -1, x, ninf, keep, y);
    return y;
}

/* x with every score outside the rows seq_q and columns seq_kv replaced by ninf. */
static cgd_t padding_mask(struct cudnn_graph *gr, cgd_t x, cgd_t ninf, cgd_t seq_q, cgd_t seq_kv, const int64_t *dS,
                          const int64_t *sS)
{
    cgd_t row = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS), col = cudnn_virtual(gr, CUDNN_DATA_INT32, dS, sS);
    cgd_t in_r = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS), in_c = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS);
    cgd_t keep = cudnn_virtual(gr, CUDNN_DATA_BOOLEAN, dS, sS), y = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dS, sS);
    cudnn_pointwise(gr, "padding row index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, 2, x, NULL, NULL, row);
    cudnn_pointwise(gr, "padding col index", CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, 3, x, NULL, NULL, col);
    cudnn_pointwise(gr, "padding row < seq_q", CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, -1, row, seq_q, NULL, in_r);
    cudnn_pointwise(gr, "padding col < seq_kv", CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, -1, col, seq_kv, NULL,
                    in_c);
    cudnn_pointwise(gr, "padding and", CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, -1, in_r, in_c, NULL, keep);
    cudnn_pointwise(gr, "padding select", CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, -1, x, ninf, keep, y);
    return y;
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
    int64_t b = k->b, s = k->s, hq = k->hq, hk = k->hk, d = k->d;
    int64_t dQ[4], sQ[4], dKT[4], sKT[4], dV[4], sV[4], dS[4], sS[4], dR[4], sR[4];
    view_rows(dQ, sQ, b, hq, s, d);
    view_rows_t(dKT, sKT, b, hk, s, d);
    view_rows(dV, sV, b, hk, s, d);
    packed(dS, sS, b, hq, s, s);
    packed(dR, sR, b, hq, s, 1);
    cgd_t Q = cudnn_tensor(gr, U_Q, CUDNN_DATA_BFLOAT16, dQ, sQ), KT = cudnn_tensor(gr, U_K, CUDNN_DATA_BFLOAT16, dKT, sKT);
    cgd_t V = cudnn_tensor(gr, U_V, CUDNN_DATA_BFLOAT16, dV, sV), O = cudnn_tensor(gr, U_O, CUDNN_DATA_BFLOAT16, dQ, sQ);
    cgd_t stats = cudnn_tensor(gr, U_STATS, CUDNN_DATA_FLOAT, dR, sR);
    cgd_t scale = cudnn_scalar(gr, U_SCALE, CUDNN_DATA_FLOAT), ninf = cudnn_scalar(gr, U_NEG_INF, CUDNN_DATA_FLOAT);
    cgd_t S = cudnn_virtual(gr, CUDNN_DATA_FLOAT, dS, sS);
    cudnn_matmul(gr, "Q K^T", Q, KT, S, NULL, NULL, NULL);
    S = pw2(gr, "scale", CUDNN_POINTWISE_MUL, S, scale, dS, sS);
    if (k->causal) S = causal_mask(gr, S, ninf, dS, sS);
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
    cudnn_matmul(gr, "P V", P, V, O, NULL, NULL, NULL);
}

/* The backward's dK or dV: the product a b into out, through a per-q-head bf16 tensor summed over
 * each group when the heads are grouped (GQA). m, k: the padding form's size overrides. */
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

static void build_backward(struct cudnn_graph *gr, const struct sdpa_key *k, int pad, int accumulate)
{
    int64_t b = k->b, s = k->s, hq = k->hq, hk = k->hk, d = k->d;
    int64_t dQ[4], sQ[4], dK[4], sK[4], dKT[4], sKT[4], dS[4], sS[4], dST[4], sST[4], dR[4], sR[4], dF[4], sF[4];
    int64_t dN[4] = {b, 1, 1, 1}, sN[4] = {1, 1, 1, 1};
    view_rows(dQ, sQ, b, hq, s, d);
    view_rows(dK, sK, b, hk, s, d);
    view_rows_t(dKT, sKT, b, hk, s, d);
    packed(dS, sS, b, hq, s, s);
    packed(dR, sR, b, hq, s, 1);
    packed(dF, sF, b, hq, s, d);
    memcpy(dST, dS, sizeof dST); /* P^T and dS^T: the scores' memory read transposed */
    int64_t tst[4] = {hq * s * s, s * s, 1, s};
    memcpy(sST, tst, sizeof sST);
    const cudnnDataType_t bf = CUDNN_DATA_BFLOAT16, f32 = CUDNN_DATA_FLOAT;
    cgd_t Q = cudnn_tensor(gr, U_Q, bf, dQ, sQ), KT = cudnn_tensor(gr, U_K, bf, dKT, sKT);
    cgd_t VT = cudnn_tensor(gr, U_V, bf, dKT, sKT), O = cudnn_tensor(gr, U_O, bf, dQ, sQ);
    cgd_t dO = cudnn_tensor(gr, U_DO, bf, dQ, sQ), stats = cudnn_tensor(gr, U_STATS, f32, dR, sR);
    cgd_t gQ = cudnn_tensor(gr, U_DQ, bf, dQ, sQ), gK = cudnn_tensor(gr, U_DK, bf, dK, sK);
    cgd_t gV = cudnn_tensor(gr, U_DV, bf, dK, sK), sum = cudnn_tensor(gr, U_SUM, f32, dR, sR);
    cgd_t one = cudnn_scalar(gr, U_ONE, f32), scale = cudnn_scalar(gr, U_SCALE, f32);
    cgd_t ninf = cudnn_scalar(gr, U_NEG_INF, f32);
    cgd_t sq = pad ? cudnn_tensor(gr, U_SEQ_Q, CUDNN_DATA_INT32, dN, sN) : NULL;
    cgd_t skv = pad ? cudnn_tensor(gr, U_SEQ_KV, CUDNN_DATA_INT32, dN, sN) : NULL;
    /* sum = rowsum(dO * O), kept in memory: every dS tile reads it */
    cgd_t t = pw2(gr, "dO * O", CUDNN_POINTWISE_MUL, dO, O, dF, sF);
    cgd_t r = cudnn_virtual(gr, f32, dR, sR);
    cudnn_reduction(gr, "rowsum(dO * O)", CUDNN_REDUCE_TENSOR_ADD, t, r);
    cudnn_pointwise(gr, "softmax sum", CUDNN_POINTWISE_MUL, f32, -1, r, one, NULL, sum);
    /* P = exp(scale Q K^T - stats), masked */
    cgd_t S = cudnn_virtual(gr, f32, dS, sS);
    cudnn_matmul(gr, "Q K^T", Q, KT, S, sq, skv, NULL);
    S = pw2(gr, "scale", CUDNN_POINTWISE_MUL, S, scale, dS, sS);
    if (pad) S = padding_mask(gr, S, ninf, sq, skv, dS, sS);
    S = pw2(gr, "S - stats", CUDNN_POINTWISE_SUB, S, stats, dS, sS);
    if (k->causal) S = causal_mask(gr, S, ninf, dS, sS);
    cgd_t P = cudnn_virtual(gr, f32, dS, sS), PT = cudnn_virtual(gr, bf, dST, sST);
    cudnn_pointwise(gr, "exp", CUDNN_POINTWISE_EXP, f32, -1, S, NULL, NULL, P);
    cudnn_reshape(gr, "P^T", P, PT);
    grouped_product(gr, "P^T dO", k, PT, dO, gV, skv, sq);
    /* dS = P (dO V^T - sum) scale */
    cgd_t dP = cudnn_virtual(gr, f32, dS, sS);
    cudnn_matmul(gr, "dO V^T", dO, VT, dP, sq, skv, NULL);
    dP = pw2(gr, "dP - sum", CUDNN_POINTWISE_SUB, dP, sum, dS, sS);
    dP = pw2(gr, "* P", CUDNN_POINTWISE_MUL, dP, P, dS, sS);
    cgd_t dSc = pw2(gr, "* scale", CUDNN_POINTWISE_MUL, dP, scale, dS, sS), dSt = cudnn_virtual(gr, bf, dST, sST);
    cudnn_reshape(gr, "dS^T", dSc, dSt);
    grouped_product(gr, "dS^T Q", k, dSt, Q, gK, skv, sq);
    /* dQ = dS K */
    cgd_t K = cudnn_virtual(gr, bf, dK, sK);
    cudnn_reshape(gr, "K", KT, K);
    if (!accumulate) {
        cudnn_matmul(gr, "dS K", dSc, K, gQ, sq, NULL, skv);
        return;
    }
    cgd_t acc = cudnn_tensor(gr, U_DQ_ACC, f32, dF, sF);
    cudnn_matmul(gr, "dS K", dSc, K, acc, sq, NULL, skv);
    cudnn_pointwise(gr, "dQ", CUDNN_POINTWISE_IDENTITY, f32, -1, acc, NULL, NULL, gQ);
}

/* ---- plans ---- */

static int handle_ready(struct sdpa_plans *p, const struct gpu_blas *blas)
{
    if (p->state) return p->state > 0;
    cudnnStatus_t st = cudnnCreate(&p->handle);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnSetStream(p->handle, blas->stream);
    if (st != CUDNN_STATUS_SUCCESS) {
        fprintf(stderr, "mmupt: cuDNN did not start (%s): attention runs as by default (MMUPT_ATTENTION=cublas)\n",
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
        build_backward(&e->bwd, &e->key, e->pad, e->accumulate);
        if (cudnn_graph_plan(&e->bwd, p->handle, NULL) == 0) break;
        if (e->accumulate == 1) return -1;
        fprintf(stderr, "mmupt: cuDNN SDPA: no deterministic backward engine (%s); dQ accumulates out of order\n",
                e->bwd.error);
        cudnn_graph_free(&e->bwd);
    }
    if (e->pad) { /* the row and column counts, all len */
        int nb = (e->key.b + 3) / 4 * 4;
        int32_t *h = mmupt_xmalloc((size_t)2 * nb * sizeof *h);
        for (int i = 0; i < 2 * nb; i++) h[i] = e->key.s;
        CUDA_CHECK(cudaMalloc((void **)&e->seq, (size_t)2 * nb * sizeof *h));
        CUDA_CHECK(cudaMemcpy(e->seq, h, (size_t)2 * nb * sizeof *h, cudaMemcpyHostToDevice));
        free(h);
    }
    return 0;
}

/* The entry of a shape, planned now if new; NULL where it cannot run (said once). */
static struct sdpa_entry *entry_of(struct sdpa_plans *p, const struct sdpa_key *key)
{
    for (int i = 0; i < p->n; i++)
        if (memcmp(&p->e[i]->key, key, sizeof *key) == 0) return p->e[i]->ok ? p->e[i] : NULL;
    if (p->n == SDPA_MAX_PLANS) {
        if (!p->full_said)
            fprintf(stderr, "mmupt: cuDNN SDPA: %d shapes planned, the most kept; new shapes attend as by default\n",
                    SDPA_MAX_PLANS);
        p->full_said = 1;
        return NULL;
    }
    struct sdpa_entry *e = mmupt_xcalloc(1, sizeof *e);
    e->key = *key;
    e->pad = p->version <= 91500 && key->s % 128 != 0;
    e->ok = plan_entry(p, e) == 0;
    if (!e->ok) {
        const char *why = e->fwd.status != CUDNN_STATUS_SUCCESS ? e->fwd.error : e->bwd.error;
        fprintf(stderr,
                "mmupt: cuDNN %d.%d.%d SDPA refused %d segment(s) of %d rows, %d/%d heads of %d, %s (%s graph): %s; "
                "this shape attends as by default\n",
                p->version / 10000, p->version / 100 % 100, p->version % 100, key->b, key->s, key->hq, key->hk, key->d,
                key->causal ? "causal" : "not causal", e->fwd.status != CUDNN_STATUS_SUCCESS ? "forward" : "backward",
                why);
        cudnn_graph_free(&e->fwd);
        cudnn_graph_free(&e->bwd);
    }
    p->e[p->n++] = e;
    return e->ok ? e : NULL;
}

static struct sdpa_key key_of(const struct sdpa_run *r, int n_heads, int n_kv, int hd, int causal)
{
    struct sdpa_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp */
    k.b = r->count, k.s = r->len, k.hq = n_heads, k.hk = n_kv, k.d = hd, k.causal = causal != 0;
    return k;
}

int attention_sdpa_supported(const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                             const struct gpu_blas *blas)
{
    struct sdpa_plans *p = blas->sdpa;
    if (!p || !attention_sdpa_shape_ok(seg, n_seg, n_heads, n_kv, hd) || !handle_ready(p, blas)) return 0;
    struct sdpa_run r;
    for (int s = 0; attention_sdpa_next_run(seg, n_seg, &s, &r);) {
        struct sdpa_key k = key_of(&r, n_heads, n_kv, hd, causal);
        if (!entry_of(p, &k)) return 0;
    }
    return 1;
}

/* The planned entry of a run (attention_sdpa_supported said yes: it is there). */
static struct sdpa_entry *planned(const struct gpu_blas *blas, const struct sdpa_run *r, int n_heads, int n_kv,
                                  int hd, int causal)
{
    struct sdpa_key k = key_of(r, n_heads, n_kv, hd, causal);
    struct sdpa_entry *e = blas->sdpa && blas->sdpa->state > 0 ? entry_of(blas->sdpa, &k) : NULL;
    if (!e) MMUPT_DIE("attention_sdpa: a shape attention_sdpa_supported did not accept (%d x %d rows)", r->count, r->len);
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

void attention_sdpa_forward_cuda(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal, const struct gpu_blas *blas)
{
    float scale = (float)(1.0 / sqrt((double)hd)), ninf = blas->sdpa ? neg_inf(blas->sdpa) : 0.0f;
    struct sdpa_run r;
    for (int s = 0; attention_sdpa_next_run(seg, n_seg, &s, &r);) {
        struct sdpa_entry *e = planned(blas, &r, n_heads, n_kv, hd, causal);
        long q0 = (long)r.t0 * n_heads * hd, k0 = (long)r.t0 * n_kv * hd;
        const int64_t uids[] = {U_Q, U_K, U_V, U_O, U_STATS, U_SCALE, U_NEG_INF};
        void *const ptrs[] = {(void *)(q16 + q0), (void *)(k16 + k0), (void *)(v16 + k0), o16 + q0,
                              stats + (long)r.t0 * n_heads, &scale, &ninf};
        run(&e->fwd, blas, 7, uids, ptrs);
    }
}

void attention_sdpa_backward_cuda(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                  const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                  const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                  int causal, const struct gpu_blas *blas)
{
    float scale = (float)(1.0 / sqrt((double)hd)), one = 1.0f, ninf = blas->sdpa ? neg_inf(blas->sdpa) : 0.0f;
    cudaStream_t st = blas->stream;
    struct sdpa_run r;
    for (int s = 0; attention_sdpa_next_run(seg, n_seg, &s, &r);) {
        struct sdpa_entry *e = planned(blas, &r, n_heads, n_kv, hd, causal);
        long q0 = (long)r.t0 * n_heads * hd, k0 = (long)r.t0 * n_kv * hd, rows = (long)r.count * n_heads * r.len;
        float *sum = NULL, *acc = NULL;
        CUDA_CHECK(cudaMallocAsync((void **)&sum, (size_t)rows * sizeof *sum, st));
        if (e->accumulate) {
            CUDA_CHECK(cudaMallocAsync((void **)&acc, (size_t)rows * hd * sizeof *acc, st));
            CUDA_CHECK(cudaMemsetAsync(acc, 0, (size_t)rows * hd * sizeof *acc, st));
        }
        int nb = (r.count + 3) / 4 * 4;
        int64_t uids[16] = {U_Q, U_K, U_V, U_O, U_DO, U_STATS, U_DQ, U_DK, U_DV, U_SUM, U_ONE, U_SCALE, U_NEG_INF};
        void *ptrs[16] = {(void *)(q16 + q0), (void *)(k16 + k0), (void *)(v16 + k0), (void *)(o16 + q0),
                          (void *)(dout16 + q0), (void *)(stats + (long)r.t0 * n_heads), dq16 + q0, dk16 + k0,
                          dv16 + k0, sum, &one, &scale, &ninf};
        int n = 13;
        if (acc) uids[n] = U_DQ_ACC, ptrs[n++] = acc;
        if (e->pad) {
            uids[n] = U_SEQ_Q, ptrs[n++] = e->seq;
            uids[n] = U_SEQ_KV, ptrs[n++] = e->seq + nb;
        }
        run(&e->bwd, blas, n, uids, ptrs);
        CUDA_CHECK(cudaFreeAsync(sum, st));
        if (acc) CUDA_CHECK(cudaFreeAsync(acc, st));
    }
}

int sdpa_plan_for_device(cudnnBackendDescriptor_t prop, int b, int s, int hq, int hk, int d, int causal, int backward,
                         int pad, int accumulate, char *why, size_t why_size)
{
    struct sdpa_key k;
    memset(&k, 0, sizeof k);
    k.b = b, k.s = s, k.hq = hq, k.hk = hk, k.d = d, k.causal = causal != 0;
    struct cudnn_graph gr;
    cudnn_graph_init(&gr);
    if (backward) build_backward(&gr, &k, pad, accumulate);
    else build_forward(&gr, &k);
    int rc = cudnn_graph_plan(&gr, NULL, prop);
    snprintf(why, why_size, "%s", rc ? gr.error : "");
    cudnn_graph_free(&gr);
    return rc;
}
