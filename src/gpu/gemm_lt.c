/* bf16 GEMMs through cuBLASLt with one plan per shape (include/mmupt/gpu_blas.h: gemm_lt_bf16).
 *
 * A plan holds the call's cuBLASLt descriptors and the algorithm chosen for it, so a repeated shape
 * (every layer of every step) costs one hash lookup on the host instead of creating six descriptors
 * and asking the heuristic again. Plans live in an open-addressing table keyed by everything that
 * decides which algorithms may run: transposes, sizes, leading dimensions, output type, whether C is
 * read (beta) and a bias added, and the operands' address alignment.
 *
 * Tuning (MMUPT_GEMM_TUNE=1, gpu_blas_set_tune): the first call of a shape outside a graph capture
 * times cuBLASLt's first GEMM_LT_CANDIDATES heuristic answers (a warm-up run, then GEMM_LT_REPS runs,
 * each between two events after the L2 cache was overwritten: in a model the weights come from
 * DRAM, as a decode step's 64-row GEMMs do, where a warm L2 would favour other tilings) and keeps
 * the fastest; one line on stderr says what it chose and against what. The heuristic's first answer is the default: cuBLAS's own choice, which needs no timing. A
 * tuned algorithm is the same product with another tiling or split of k - fp32 accumulation and fp32
 * partial sums either way - so results agree within the summation-order tolerance the tests already
 * allow, but not bit for bit with an untuned run: a run that must repeat exactly leaves tuning off.
 * The timing runs write the call's own output when it is assigned (beta 0: the real call overwrites
 * it next) or reads C from another buffer (cin: out of place), and a temporary buffer when it
 * accumulates in place (beta 1: C must be read once, by the real call);
 * inside a capture nothing is timed (a capture may not synchronise) and the plan is tuned later.
 *
 * A tuning file (MMUPT_GEMM_TUNE_FILE, gemm_lt_plans_load; include/mmupt/gemm_tune_file.h) keeps the
 * choices: a shape it lists takes the listed answer of cuBLASLt's heuristic without timing (when the
 * heuristic still gives as many answers: the same library on the same device lists the same ones),
 * and every shape timed is added and the file rewritten, so runs that share the file run the same
 * algorithms - repeatable bit for bit, as untuned runs are. A file written for another device or
 * cuBLASLt version is set aside (a note on stderr) and replaced by this run's choices. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/err.h"
#include "mmupt/gemm_tune_file.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/log.h"

enum {
    GEMM_LT_CANDIDATES = 16, /* heuristic answers timed per shape */
    GEMM_LT_REPS = 3,       /* timed runs of each, after one warm-up */
};

struct lt_key { /* all ints: compared and hashed as bytes (no padding); the tuning file's key fields */
    int ta, tb, m, n, k, lda, ldb, ldc, ctype, beta, bias, align_a, align_b, align_c;
};
_Static_assert(sizeof(struct lt_key) == GEMM_TUNE_KEY_FIELDS * sizeof(int), "a plan key is the file's key fields");

struct lt_plan {
    struct lt_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
    int usable; /* 0: cuBLASLt offered no algorithm; callers fall back */
    int tuned;  /* the algorithm was chosen by timing (or timing is impossible for it) */
};

struct gemm_lt_plans {
    struct lt_plan **slot; /* open addressing, linear probing; a power of two */
    int cap, count, tuned;
    double tune_ms; /* host time spent tuning */
    void *flush;    /* twice the L2 cache, overwritten before each timed run (made by the first tuning) */
    size_t flush_bytes;
    struct gemm_tune_file choices; /* the tuning file's choices, with this run's added */
    char *choices_path;            /* NULL: no tuning file */
    int from_file;                 /* plans whose algorithm came from the file */
    int save_failed;               /* the file could not be rewritten (said once) */
};

/* The largest power of two (up to 256, cuBLASLt's default assumption) that p's address is a multiple
 * of: a weight inside the flat parameter buffer is only 16-byte aligned, and an algorithm that needs
 * more must not be chosen. */
static int lt_alignment(const void *p)
{
    int a = 256;
    while (a > 1 && (uintptr_t)p % (uintptr_t)a != 0) a /= 2;
    return a;
}

static struct lt_key key_of(const struct gemm_lt_call *c)
{
    struct lt_key k;
    memset(&k, 0, sizeof k);
    k.ta = (int)c->ta;
    k.tb = (int)c->tb;
    k.m = c->m;
    k.n = c->n;
    k.k = c->k;
    k.lda = c->lda;
    k.ldb = c->ldb;
    k.ldc = c->ldc;
    k.ctype = (int)c->ctype;
    k.beta = c->beta != 0.0f;
    k.bias = c->bias != NULL;
    k.align_a = lt_alignment(c->a);
    k.align_b = lt_alignment(c->b);
    k.align_c = lt_alignment(c->c);
    if (c->cin && lt_alignment(c->cin) < k.align_c) k.align_c = lt_alignment(c->cin); /* C's and D's alike */
    return k;
}

static uint64_t key_hash(const struct lt_key *k)
{
    const unsigned char *b = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static struct lt_plan **find_slot(struct gemm_lt_plans *t, const struct lt_key *k)
{
    size_t mask = (size_t)t->cap - 1, i = (size_t)key_hash(k) & mask;
    while (t->slot[i] && memcmp(&t->slot[i]->key, k, sizeof *k) != 0) i = (i + 1) & mask;
    return &t->slot[i];
}

static void table_grow(struct gemm_lt_plans *t)
{
    struct lt_plan **old = t->slot;
    int old_cap = t->cap;
    t->cap = old_cap ? 2 * old_cap : 64;
    t->slot = mmupt_xcalloc((size_t)t->cap, sizeof *t->slot);
    for (int i = 0; i < old_cap; i++)
        if (old[i]) *find_slot(t, &old[i]->key) = old[i];
    free(old);
}

static void plan_free(struct lt_plan *p)
{
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    free(p);
}

void gemm_lt_plans_free(struct gemm_lt_plans *t)
{
    if (!t) return;
    for (int i = 0; i < t->cap; i++)
        if (t->slot[i]) plan_free(t->slot[i]);
    free(t->slot);
    cudaFree(t->flush);
    gemm_tune_free(&t->choices);
    free(t->choices_path);
    free(t);
}

/* The call's descriptors: op(A) m x k, op(B) k x n, C m x n, all column-major. */
static int plan_describe(struct lt_plan *p, const struct gemm_lt_call *c)
{
    int32_t ta = (int32_t)c->ta, tb = (int32_t)c->tb, bias_type = CUDA_R_32F;
    uint32_t epilogue = c->bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    uint64_t ar = c->ta == CUBLAS_OP_N ? c->m : c->k, ac = c->ta == CUBLAS_OP_N ? c->k : c->m;
    uint64_t br = c->tb == CUBLAS_OP_N ? c->k : c->n, bc = c->tb == CUBLAS_OP_N ? c->n : c->k;
    return cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
           cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == CUBLAS_STATUS_SUCCESS &&
           cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == CUBLAS_STATUS_SUCCESS &&
           cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue) ==
               CUBLAS_STATUS_SUCCESS &&
           (!c->bias || cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                       sizeof bias_type) == CUBLAS_STATUS_SUCCESS) &&
           cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, ar, ac, c->lda) == CUBLAS_STATUS_SUCCESS &&
           cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, br, bc, c->ldb) == CUBLAS_STATUS_SUCCESS &&
           cublasLtMatrixLayoutCreate(&p->lc, c->ctype, (uint64_t)c->m, (uint64_t)c->n, c->ldc) == CUBLAS_STATUS_SUCCESS;
}

/* Up to `want` algorithms for the plan, best first by cuBLASLt's heuristic; how many. Split-K
 * partial sums stay fp32: a bf16 output allows only the reduction in the compute type. */
static int plan_candidates(const struct gpu_blas *blas, const struct lt_plan *p, int want,
                           cublasLtMatmulHeuristicResult_t *res)
{
    cublasLtMatmulPreference_t pref = NULL;
    uint64_t ws = GPU_BLAS_LT_WORKSPACE;
    uint32_t al[3] = {(uint32_t)p->key.align_a, (uint32_t)p->key.align_b, (uint32_t)p->key.align_c};
    uint32_t schemes = p->key.ctype == CUDA_R_32F ? (uint32_t)CUBLASLT_REDUCTION_SCHEME_MASK
                                                  : (uint32_t)CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    int found = 0;
    int ok = cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) ==
                 CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                  sizeof schemes) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0],
                                                  sizeof al[0]) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1],
                                                  sizeof al[1]) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2],
                                                  sizeof al[2]) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[2],
                                                  sizeof al[2]) == CUBLAS_STATUS_SUCCESS &&
             cublasLtMatmulAlgoGetHeuristic(blas->lt, p->op, p->la, p->lb, p->lc, p->lc, pref, want, res, &found) ==
                 CUBLAS_STATUS_SUCCESS;
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    int usable = 0; /* the answers in state SUCCESS, in order */
    for (int i = 0; ok && i < found; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS) res[usable++] = res[i];
    return usable;
}

/* One product with algorithm `algo` into d (C = D = d, or C = c->cin): 0 when cuBLASLt takes it. */
static int plan_run(const struct gpu_blas *blas, const struct lt_plan *p, const struct gemm_lt_call *c,
                    const cublasLtMatmulAlgo_t *algo, void *d)
{
    const float one = 1.0f, beta = c->beta;
    if (c->bias && cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &c->bias,
                                                  sizeof c->bias) != CUBLAS_STATUS_SUCCESS)
        return -1;
    const void *cin = c->cin ? c->cin : d;
    return cublasLtMatmul(blas->lt, p->op, &one, c->a, p->la, c->b, p->lb, &beta, cin, p->lc, d, p->lc, algo,
                          blas->lt_ws, GPU_BLAS_LT_WORKSPACE, blas->stream) == CUBLAS_STATUS_SUCCESS
               ? 0
               : -1;
}

/* The buffer that evicts L2 between timed runs (none when the device does not say its L2 size or
 * there is no room: the runs are then timed warm). */
static void flush_ready(struct gemm_lt_plans *t)
{
    int dev = 0;
    struct cudaDeviceProp prop;
    if (t->flush || cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess ||
        prop.l2CacheSize <= 0) {
        cudaGetLastError();
        return;
    }
    t->flush_bytes = 2 * (size_t)prop.l2CacheSize;
    if (cudaMalloc(&t->flush, t->flush_bytes) != cudaSuccess) {
        cudaGetLastError();
        t->flush = NULL;
    }
}

/* Milliseconds per run of one candidate, each run timed alone after an L2 flush (FLT_MAX when
 * cuBLASLt refuses it). */
static float time_candidate(const struct gpu_blas *blas, const struct gemm_lt_plans *t, const struct lt_plan *p,
                            const struct gemm_lt_call *c, const cublasLtMatmulAlgo_t *algo, void *d, cudaEvent_t e0,
                            cudaEvent_t e1)
{
    if (plan_run(blas, p, c, algo, d)) return FLT_MAX; /* the warm-up */
    float sum = 0.0f;
    for (int r = 0; r < GEMM_LT_REPS; r++) {
        float ms = 0.0f;
        int ok = (!t->flush || cudaMemsetAsync(t->flush, r, t->flush_bytes, blas->stream) == cudaSuccess) &&
                 cudaEventRecord(e0, blas->stream) == cudaSuccess && plan_run(blas, p, c, algo, d) == 0 &&
                 cudaEventRecord(e1, blas->stream) == cudaSuccess && cudaEventSynchronize(e1) == cudaSuccess &&
                 cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess;
        if (!ok) return FLT_MAX;
        sum += ms;
    }
    return sum / GEMM_LT_REPS;
}

static const char *op_name(int t) { return t == CUBLAS_OP_N ? "n" : "t"; }

/* The choice of answer `pick` of `found` for p's shape into the tuning file, rewritten at once (a run
 * that stops early keeps what it timed); without a file, nothing. */
static void choices_add(struct gemm_lt_plans *t, const struct lt_plan *p, int pick, int found)
{
    if (!t->choices_path) return;
    gemm_tune_set(&t->choices, (const int *)&p->key, pick, found);
    struct mmupt_err err;
    if (gemm_tune_write(&t->choices, t->choices_path, &err) && !t->save_failed) {
        t->save_failed = 1;
        fprintf(stderr, "mmupt: gemm tuning: the choices could not be saved (%s); this run goes on with them\n",
                err.msg);
    }
}

/* Time the candidates and keep the fastest in p->algo; says what it chose on stderr. */
static void plan_tune(const struct gpu_blas *blas, struct gemm_lt_plans *t, struct lt_plan *p,
                      const struct gemm_lt_call *c, const cublasLtMatmulHeuristicResult_t *res, int found)
{
    double t0 = mmupt_now();
    p->tuned = 1;
    if (found < 2) return; /* nothing to choose between */
    size_t bytes = (size_t)c->ldc * (size_t)c->n * (c->ctype == CUDA_R_32F ? 4 : 2);
    void *d = c->c, *tmp = NULL;
    if (c->beta != 0.0f && !c->cin) { /* C is read: time into a zeroed copy, never the real accumulator */
        if (cudaMalloc(&tmp, bytes) != cudaSuccess || cudaMemsetAsync(tmp, 0, bytes, blas->stream) != cudaSuccess) {
            cudaGetLastError();
            cudaFree(tmp);
            fprintf(stderr, "mmupt: gemm tuning: no room for a %zu-byte timing buffer; %s%s m=%d n=%d k=%d keeps "
                            "cuBLASLt's first choice\n", bytes, op_name(c->ta), op_name(c->tb), c->m, c->n, c->k);
            return;
        }
        d = tmp;
    }
    flush_ready(t);
    cudaEvent_t e0 = NULL, e1 = NULL;
    float ms[GEMM_LT_CANDIDATES];
    int best = 0;
    if (cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess) {
        for (int i = 0; i < found; i++) {
            ms[i] = time_candidate(blas, t, p, c, &res[i].algo, d, e0, e1);
            if (ms[i] < ms[best]) best = i;
        }
        if (ms[best] < FLT_MAX) {
            p->algo = res[best].algo;
            t->tuned++;
            choices_add(t, p, best, found);
            char first[48] = "refused";
            if (ms[0] < FLT_MAX)
                snprintf(first, sizeof first, "%.1f us (%.2fx)", 1e3 * ms[0], ms[best] > 0.0f ? ms[0] / ms[best] : 1.0);
            fprintf(stderr, "mmupt: gemm tuned %s%s m=%d n=%d k=%d (%s out%s%s): cuBLASLt algorithm %d of %d, %.1f us; "
                            "its first choice %s\n",
                    op_name(c->ta), op_name(c->tb), c->m, c->n, c->k, c->ctype == CUDA_R_32F ? "fp32" : "bf16",
                    c->beta != 0.0f ? ", accumulated" : "", c->bias ? ", bias" : "", best + 1, found, 1e3 * ms[best],
                    first);
        }
    }
    cudaGetLastError();
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (tmp) {
        cudaStreamSynchronize(blas->stream); /* the timing runs are done with it */
        cudaFree(tmp);
    }
    t->tune_ms += 1e3 * (mmupt_now() - t0);
}

/* A new plan for c's key: descriptors and cuBLASLt's first choice (and, tuning, the candidates). */
static struct lt_plan *plan_new(const struct gpu_blas *blas, const struct gemm_lt_call *c, const struct lt_key *k,
                                cublasLtMatmulHeuristicResult_t *res, int *found)
{
    struct lt_plan *p = mmupt_xcalloc(1, sizeof *p);
    p->key = *k;
    *found = plan_describe(p, c) ? plan_candidates(blas, p, blas->tune ? GEMM_LT_CANDIDATES : 1, res) : 0;
    p->usable = *found > 0;
    if (p->usable) p->algo = res[0].algo;
    p->tuned = !blas->tune;
    const struct gemm_tune_entry *e = blas->tune ? gemm_tune_find(&blas->plans->choices, (const int *)k) : NULL;
    if (p->usable && e && e->found == *found) { /* the file's choice, untimed */
        p->algo = res[e->pick].algo;
        p->tuned = 1;
        blas->plans->from_file++;
    }
    return p;
}

/* Outside a capture only: a capture may not synchronise (the timing does). */
static int stream_capturing(cudaStream_t st)
{
    enum cudaStreamCaptureStatus s = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(st, &s) != cudaSuccess) {
        cudaGetLastError();
        return 1; /* unknown: do not synchronise */
    }
    return s != cudaStreamCaptureStatusNone;
}

int gemm_lt_bf16(const struct gpu_blas *blas, const struct gemm_lt_call *c)
{
    MMUPT_CHECK(blas->plans && c->m > 0 && c->n > 0 && c->k > 0);
    MMUPT_CHECK(c->beta == 0.0f || c->beta == 1.0f);
    struct gemm_lt_plans *t = blas->plans;
    struct lt_key k = key_of(c);
    if (2 * (t->count + 1) > t->cap) table_grow(t);
    struct lt_plan **at = find_slot(t, &k), *p = *at;
    cublasLtMatmulHeuristicResult_t res[GEMM_LT_CANDIDATES];
    int found = -1; /* candidates not asked for yet */
    if (!p) {
        p = *at = plan_new(blas, c, &k, res, &found);
        t->count++;
    }
    if (!p->usable) return -1;
    if (!p->tuned && !stream_capturing(blas->stream)) {
        if (found < 0) found = plan_candidates(blas, p, GEMM_LT_CANDIDATES, res);
        plan_tune(blas, t, p, c, res, found);
    }
    return plan_run(blas, p, c, &p->algo, c->c);
}

int gemm_lt_plans_load(struct gemm_lt_plans *t, const char *path, struct mmupt_err *err)
{
    struct gemm_tune_file f;
    if (gemm_tune_read(path, &f, err)) return -1;
    int dev = 0;
    struct cudaDeviceProp prop;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
        cudaGetLastError();
        gemm_tune_free(&f);
        return mmupt_fail(err, "%s: no device to tune GEMMs for", path);
    }
    int version = (int)cublasLtGetVersion();
    int ours = f.device[0] && strcmp(f.device, prop.name) == 0 && f.cublaslt == version;
    if (f.device[0] && !ours)
        fprintf(stderr, "mmupt: gemm tuning: %s holds choices for %s with cuBLASLt %d, not this %s with %d: timing "
                        "again, and the file will hold this run's choices\n",
                path, f.device, f.cublaslt, prop.name, version);
    if (!ours) gemm_tune_reset(&f, prop.name, version);
    gemm_tune_free(&t->choices);
    t->choices = f;
    size_t n = strlen(path) + 1;
    free(t->choices_path);
    t->choices_path = mmupt_xmalloc(n);
    memcpy(t->choices_path, path, n);
    return 0;
}

struct gemm_lt_plans *gemm_lt_plans_new(void)
{
    return mmupt_xcalloc(1, sizeof(struct gemm_lt_plans));
}

void gemm_lt_stats(const struct gpu_blas *blas, struct gemm_lt_stats *s)
{
    memset(s, 0, sizeof *s);
    if (!blas->plans) return;
    s->plans = blas->plans->count;
    s->tuned = blas->plans->tuned;
    s->from_file = blas->plans->from_file;
    s->tune_ms = blas->plans->tune_ms;
}
