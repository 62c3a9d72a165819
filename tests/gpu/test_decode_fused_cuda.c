/* The bf16 decode step's fused ops (kernels.h: rmsnorm_forward_cast, residual_rmsnorm_forward_cast,
 * swiglu_forward_cast, swiglu_packed_forward_cast, qkv_rope_append_bf16, attention_decode_qkv_bf16_cast
 * (see its case for its tolerances)): each CUDA twin against its
 * CPU reference - the op sequence it replaces - and, where an unfused twin exists, bitwise against
 * that twin run on the same inputs. Skips (exit 77) without a GPU, saying why.
 *
 *   fp32 outputs (out, rstd, q): gpu_test_err < 1e-5, the tolerance of the unfused twins' tests
 *     (test_rmsnorm_cuda.c; SwiGLU's expf and RoPE's products differ from glibc's by last bits);
 *     the residual sum is one rounding per element on both sides: bitwise.
 *   bf16 outputs: each must be exactly the rounding of the twin's own fp32 value (out16 is what
 *     cast_bf16 would write from out), and the cache rows within one bf16 step (2^-8 relative) of the
 *     reference's: the fp32 values differ by last bits, which can move a rounding by one step.
 *   Cache rows the step does not write keep their bits.
 *   out NULL (the four norm and SwiGLU ops: the rounding alone, as a bf16 learner calls them): out16
 *     bitwise the same as with out, on the device and in the CPU reference. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/bf16.h"
#include "mmupt/err.h"
#include "mmupt/kernels.h"

#define TOL 1e-5f

/* 1 when every dev16[i] is the bf16 rounding of the device fp32 value f[i]. */
static int rounds_of(const uint16_t *dev16, const float *dev_f, size_t n)
{
    uint16_t *h16 = mmupt_xmalloc(n * sizeof *h16);
    float *f = gpu_test_download_floats(dev_f, n);
    gpu_test_download(h16, dev16, n * sizeof *h16);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) ok = h16[i] == bf16_from_f32(f[i]);
    free(h16);
    free(f);
    return ok;
}

/* With out NULL the rounding alone: the same bits as d_out16 (device) and ref16 (CPU, out NULL too). */
/* A blocking stream of its own for the programmatic launches (pdl 1), as the decode step has: the
 * legacy stream's copies wait for its work. */
static cudaStream_t pdl_stream(void)
{
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreate(&s));
    return s;
}

static void check_alone(struct test_state *ts, const char *op, const uint16_t *d_alone, const uint16_t *d_out16,
                        const uint16_t *cpu_alone, const uint16_t *ref16, size_t n)
{
    uint16_t *h = mmupt_xmalloc((n ? n : 1) * sizeof *h);
    gpu_test_download(h, d_out16, n * sizeof *h);
    CHECK_MSG(ts, gpu_test_dev_same16_host(d_alone, h, n), "%s with out NULL: out16 differs from the call with out",
              op);
    CHECK_MSG(ts, memcmp(cpu_alone, ref16, n * sizeof *ref16) == 0, "%s_cpu with out NULL: out16 differs", op);
    free(h);
}

static void rmsnorm_case(struct test_state *ts, int rows, int dim)
{
    size_t n = (size_t)rows * dim;
    float *x = mmupt_xmalloc(n * sizeof *x), *w = mmupt_xmalloc((size_t)dim * sizeof *w);
    float *ref = mmupt_xmalloc(n * sizeof *ref), *rref = mmupt_xmalloc((size_t)rows * sizeof *rref);
    uint16_t *ref16 = mmupt_xmalloc(n * sizeof *ref16);
    gpu_test_fill(x, n, (unsigned)(rows * 7 + dim), -2.0f, 2.0f);
    gpu_test_fill(w, (size_t)dim, (unsigned)(rows * 7 + dim + 1), 0.5f, 1.5f);
    rmsnorm_forward_cast_cpu(ref, ref16, rref, x, w, rows, dim, 1e-6f);

    float *d_x = gpu_test_upload_floats(x, n), *d_w = gpu_test_upload_floats(w, (size_t)dim);
    float *d_out = gpu_test_upload_floats(ref, n), *d_rstd = gpu_test_upload_floats(rref, (size_t)rows);
    uint16_t *d_out16 = gpu_test_upload(ref16, n * sizeof *ref16);
    CUDA_CHECK(cudaMemset(d_out, 0xff, n * sizeof *d_out)); /* NaN: every entry must be written */
    CUDA_CHECK(cudaMemset(d_out16, 0xff, n * sizeof *d_out16));
    rmsnorm_forward_cast_cuda(d_out, d_out16, d_rstd, d_x, d_w, rows, dim, 1e-6f, 0, NULL);
    float eo = gpu_test_dev_err(d_out, ref, n), er = gpu_test_dev_err(d_rstd, rref, (size_t)rows);
    CHECK_MSG(ts, eo < TOL, "rmsnorm_forward_cast rows %d dim %d: out err %g", rows, dim, eo);
    CHECK_MSG(ts, er < TOL, "rmsnorm_forward_cast rows %d dim %d: rstd err %g", rows, dim, er);
    CHECK_MSG(ts, rounds_of(d_out16, d_out, n), "rmsnorm_forward_cast rows %d dim %d: out16 is not out rounded", rows,
              dim);
    /* The plain twin gives the same fp32 bits: the fused kernel is the same kernel. */
    float *d_plain = gpu_test_upload_floats(ref, n);
    rmsnorm_forward_cuda(d_plain, NULL, d_x, d_w, rows, dim, 1e-6f, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_plain, d_out, n), "rmsnorm_forward_cast rows %d dim %d: out differs from "
              "rmsnorm_forward's", rows, dim);
    uint16_t *d_alone = gpu_test_nan16(n), *cpu_alone = mmupt_xmalloc((n ? n : 1) * sizeof *cpu_alone);
    cudaStream_t ps = pdl_stream(); /* launched programmatically: the same bits */
    rmsnorm_forward_cast_cuda(NULL, d_alone, NULL, d_x, d_w, rows, dim, 1e-6f, 1, ps);
    CUDA_CHECK(cudaStreamDestroy(ps));
    rmsnorm_forward_cast_cpu(NULL, cpu_alone, rref, x, w, rows, dim, 1e-6f);
    check_alone(ts, "rmsnorm_forward_cast", d_alone, d_out16, cpu_alone, ref16, n);
    free(cpu_alone);

    void *dev[] = {d_x, d_w, d_out, d_rstd, d_out16, d_plain, d_alone};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(x), free(w), free(ref), free(rref), free(ref16);
}

/* sum = a + b then the norm, with sum separate from a and b or aliasing a (the decode step's use). */
static void residual_rmsnorm_case(struct test_state *ts, int rows, int dim, int alias)
{
    size_t n = (size_t)rows * dim;
    float *a = mmupt_xmalloc(n * sizeof *a), *b = mmupt_xmalloc(n * sizeof *b);
    float *w = mmupt_xmalloc((size_t)dim * sizeof *w);
    float *sum = mmupt_xmalloc(n * sizeof *sum), *ref = mmupt_xmalloc(n * sizeof *ref);
    float *rref = mmupt_xmalloc((size_t)rows * sizeof *rref);
    uint16_t *ref16 = mmupt_xmalloc(n * sizeof *ref16);
    unsigned seed = (unsigned)(rows * 11 + dim + alias);
    gpu_test_fill(a, n, seed, -2.0f, 2.0f);
    gpu_test_fill(b, n, seed + 1, -2.0f, 2.0f);
    gpu_test_fill(w, (size_t)dim, seed + 2, 0.5f, 1.5f);
    residual_rmsnorm_forward_cast_cpu(sum, ref, ref16, rref, a, b, w, rows, dim, 1e-6f);

    float *d_a = gpu_test_upload_floats(a, n), *d_b = gpu_test_upload_floats(b, n);
    float *d_w = gpu_test_upload_floats(w, (size_t)dim);
    float *d_sum = alias ? d_a : gpu_test_upload_floats(ref, n), *d_out = gpu_test_upload_floats(ref, n);
    float *d_rstd = gpu_test_upload_floats(rref, (size_t)rows);
    uint16_t *d_out16 = gpu_test_upload(ref16, n * sizeof *ref16);
    if (!alias) CUDA_CHECK(cudaMemset(d_sum, 0xff, n * sizeof *d_sum)); /* NaN: every entry must be written */
    CUDA_CHECK(cudaMemset(d_out, 0xff, n * sizeof *d_out));
    CUDA_CHECK(cudaMemset(d_out16, 0xff, n * sizeof *d_out16));
    residual_rmsnorm_forward_cast_cuda(d_sum, d_out, d_out16, d_rstd, d_a, d_b, d_w, rows, dim, 1e-6f, 0, NULL);
    const char *how = alias ? "sum aliasing a" : "separate sum";
    CHECK_MSG(ts, gpu_test_dev_same_host(d_sum, sum, n), "residual_rmsnorm_forward_cast rows %d dim %d, %s: sum is "
              "not a + b", rows, dim, how);
    float eo = gpu_test_dev_err(d_out, ref, n), er = gpu_test_dev_err(d_rstd, rref, (size_t)rows);
    CHECK_MSG(ts, eo < TOL, "residual_rmsnorm_forward_cast rows %d dim %d, %s: out err %g", rows, dim, how, eo);
    CHECK_MSG(ts, er < TOL, "residual_rmsnorm_forward_cast rows %d dim %d, %s: rstd err %g", rows, dim, how, er);
    CHECK_MSG(ts, rounds_of(d_out16, d_out, n), "residual_rmsnorm_forward_cast rows %d dim %d, %s: out16 is not out "
              "rounded", rows, dim, how);
    /* The norm part is rmsnorm_forward's arithmetic on the sum: the same bits. */
    float *d_plain = gpu_test_upload_floats(ref, n);
    rmsnorm_forward_cuda(d_plain, NULL, d_sum, d_w, rows, dim, 1e-6f, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_plain, d_out, n), "residual_rmsnorm_forward_cast rows %d dim %d, %s: out "
              "differs from rmsnorm_forward's of the sum", rows, dim, how);
    uint16_t *d_alone = NULL;
    if (!alias) { /* (aliased, the first call changed a) */
        float *sum2 = mmupt_xmalloc(n * sizeof *sum2);
        uint16_t *cpu_alone = mmupt_xmalloc((n ? n : 1) * sizeof *cpu_alone);
        d_alone = gpu_test_nan16(n);
        cudaStream_t ps = pdl_stream(); /* launched programmatically: the same bits */
        residual_rmsnorm_forward_cast_cuda(d_sum, NULL, d_alone, NULL, d_a, d_b, d_w, rows, dim, 1e-6f, 1, ps);
        CUDA_CHECK(cudaStreamDestroy(ps));
        residual_rmsnorm_forward_cast_cpu(sum2, NULL, cpu_alone, rref, a, b, w, rows, dim, 1e-6f);
        check_alone(ts, "residual_rmsnorm_forward_cast", d_alone, d_out16, cpu_alone, ref16, n);
        free(sum2), free(cpu_alone);
    }

    void *dev[] = {d_a, d_b, d_w, alias ? NULL : d_sum, d_out, d_rstd, d_out16, d_plain, d_alone};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(a), free(b), free(w), free(sum), free(ref), free(rref), free(ref16);
}

/* swiglu over rows of one gate/up GEMM's output: against the reference, and bitwise against
 * swiglu_forward_cuda on the gate and up halves copied apart. */
static void swiglu_packed_case(struct test_state *ts, long rows, long inner)
{
    size_t n = (size_t)(rows * inner);
    float *gu = mmupt_xmalloc(2 * n * sizeof *gu), *g = mmupt_xmalloc(n * sizeof *g), *u = mmupt_xmalloc(n * sizeof *u);
    float *ref = mmupt_xmalloc(n * sizeof *ref);
    uint16_t *ref16 = mmupt_xmalloc(n * sizeof *ref16);
    gpu_test_fill(gu, 2 * n, (unsigned)(rows * 31 + inner), -8.0f, 8.0f);
    for (long r = 0; r < rows; r++) {
        memcpy(g + r * inner, gu + r * 2 * inner, (size_t)inner * sizeof *g);
        memcpy(u + r * inner, gu + r * 2 * inner + inner, (size_t)inner * sizeof *u);
    }
    swiglu_packed_forward_cast_cpu(ref, ref16, gu, rows, inner);
    float *d_gu = gpu_test_upload_floats(gu, 2 * n), *d_g = gpu_test_upload_floats(g, n);
    float *d_u = gpu_test_upload_floats(u, n);
    float *d_out = gpu_test_upload_floats(ref, n), *d_plain = gpu_test_upload_floats(ref, n);
    uint16_t *d_out16 = gpu_test_upload(ref16, n * sizeof *ref16);
    CUDA_CHECK(cudaMemset(d_out, 0xff, n * sizeof *d_out));
    CUDA_CHECK(cudaMemset(d_out16, 0xff, n * sizeof *d_out16));
    swiglu_packed_forward_cast_cuda(d_out, d_out16, d_gu, rows, inner, 0, NULL);
    float e = gpu_test_dev_err(d_out, ref, n);
    CHECK_MSG(ts, e < TOL, "swiglu_packed_forward_cast %ld x %ld: out err %g", rows, inner, e);
    CHECK_MSG(ts, rounds_of(d_out16, d_out, n), "swiglu_packed_forward_cast %ld x %ld: out16 is not out rounded", rows,
              inner);
    swiglu_forward_cuda(d_plain, d_g, d_u, (long)n, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_plain, d_out, n), "swiglu_packed_forward_cast %ld x %ld: out differs from "
              "swiglu_forward's on the halves", rows, inner);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_gu, gu, 2 * n), "swiglu_packed_forward_cast: gu was written");
    uint16_t *d_alone = gpu_test_nan16(n), *cpu_alone = mmupt_xmalloc((n ? n : 1) * sizeof *cpu_alone);
    cudaStream_t ps = pdl_stream(); /* launched programmatically: the same bits */
    swiglu_packed_forward_cast_cuda(NULL, d_alone, d_gu, rows, inner, 1, ps);
    CUDA_CHECK(cudaStreamDestroy(ps));
    swiglu_packed_forward_cast_cpu(NULL, cpu_alone, gu, rows, inner);
    check_alone(ts, "swiglu_packed_forward_cast", d_alone, d_out16, cpu_alone, ref16, n);
    free(cpu_alone);
    void *dev[] = {d_gu, d_g, d_u, d_out, d_plain, d_out16, d_alone};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(gu), free(g), free(u), free(ref), free(ref16);
}

static void swiglu_case(struct test_state *ts, long n)
{
    float *g = mmupt_xmalloc((size_t)n * sizeof *g), *u = mmupt_xmalloc((size_t)n * sizeof *u);
    float *ref = mmupt_xmalloc((size_t)n * sizeof *ref);
    uint16_t *ref16 = mmupt_xmalloc((size_t)n * sizeof *ref16);
    gpu_test_fill(g, (size_t)n, (unsigned)n, -8.0f, 8.0f);
    gpu_test_fill(u, (size_t)n, (unsigned)n + 1, -2.0f, 2.0f);
    swiglu_forward_cast_cpu(ref, ref16, g, u, n);
    float *d_g = gpu_test_upload_floats(g, (size_t)n), *d_u = gpu_test_upload_floats(u, (size_t)n);
    float *d_out = gpu_test_upload_floats(ref, (size_t)n), *d_plain = gpu_test_upload_floats(ref, (size_t)n);
    uint16_t *d_out16 = gpu_test_upload(ref16, (size_t)n * sizeof *ref16);
    CUDA_CHECK(cudaMemset(d_out, 0xff, (size_t)n * sizeof *d_out));
    CUDA_CHECK(cudaMemset(d_out16, 0xff, (size_t)n * sizeof *d_out16));
    swiglu_forward_cast_cuda(d_out, d_out16, d_g, d_u, n, NULL);
    float e = gpu_test_dev_err(d_out, ref, (size_t)n);
    CHECK_MSG(ts, e < TOL, "swiglu_forward_cast n %ld: out err %g", n, e);
    CHECK_MSG(ts, rounds_of(d_out16, d_out, (size_t)n), "swiglu_forward_cast n %ld: out16 is not out rounded", n);
    swiglu_forward_cuda(d_plain, d_g, d_u, n, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_plain, d_out, (size_t)n), "swiglu_forward_cast n %ld: out differs from "
              "swiglu_forward's", n);
    uint16_t *d_alone = gpu_test_nan16((size_t)n);
    uint16_t *cpu_alone = mmupt_xmalloc((size_t)(n ? n : 1) * sizeof *cpu_alone);
    swiglu_forward_cast_cuda(NULL, d_alone, d_g, d_u, n, NULL);
    swiglu_forward_cast_cpu(NULL, cpu_alone, g, u, n);
    check_alone(ts, "swiglu_forward_cast", d_alone, d_out16, cpu_alone, ref16, (size_t)n);
    free(cpu_alone);
    void *dev[] = {d_g, d_u, d_out, d_out16, d_plain, d_alone};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(g), free(u), free(ref), free(ref16);
}

/* n rows into a cache of n_slots x max_len: row i goes to slot (i * 3) % n_slots at position
 * (i * 5) % max_len (distinct (slot, position) pairs for the sizes below). */
static void qkv_case(struct test_state *ts, int n, int nh, int nkv, int hd, int with_bias)
{
    int n_slots = n + 2, max_len = 7, qd = nh * hd, kvd = nkv * hd, w = qd + 2 * kvd;
    size_t cache = (size_t)n_slots * max_len * kvd, nq = (size_t)n * qd;
    float *qkv = mmupt_xmalloc((size_t)n * w * sizeof *qkv), *q = mmupt_xmalloc(nq * sizeof *q);
    float *b = mmupt_xmalloc((size_t)w * sizeof *b);
    float *cs = mmupt_xmalloc((size_t)n * hd * sizeof *cs), *sn = mmupt_xmalloc((size_t)n * hd * sizeof *sn);
    uint16_t *ck = mmupt_xmalloc(cache * sizeof *ck), *cv = mmupt_xmalloc(cache * sizeof *cv);
    int *idx = mmupt_xmalloc(2 * (size_t)n * sizeof *idx); /* [slot | pos] */
    unsigned seed = (unsigned)(n * 1000 + nh * 100 + hd + with_bias);
    gpu_test_fill(qkv, (size_t)n * w, seed, -2.0f, 2.0f);
    gpu_test_fill(b, (size_t)w, seed + 3, -0.5f, 0.5f);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < hd; i++) {
            double a = (r + 1) * pow(10000.0, -(double)(i % (hd / 2)) / (hd / 2));
            cs[r * hd + i] = (float)cos(a);
            sn[r * hd + i] = (float)sin(a);
        }
    for (size_t i = 0; i < cache; i++) ck[i] = cv[i] = (uint16_t)(0x3f80 + i % 64); /* untouched rows keep these */
    for (int i = 0; i < n; i++) {
        idx[i] = (i * 3) % n_slots;
        idx[n + i] = (i * 5) % max_len;
    }
    float *d_qkv = gpu_test_upload_floats(qkv, (size_t)n * w), *d_q = gpu_test_upload_floats(qkv, nq);
    float *d_b = gpu_test_upload_floats(b, (size_t)w);
    float *d_cs = gpu_test_upload_floats(cs, (size_t)n * hd), *d_sn = gpu_test_upload_floats(sn, (size_t)n * hd);
    uint16_t *d_ck = gpu_test_upload(ck, cache * sizeof *ck), *d_cv = gpu_test_upload(cv, cache * sizeof *cv);
    int *d_idx = gpu_test_upload(idx, 2 * (size_t)n * sizeof *idx);
    CUDA_CHECK(cudaMemset(d_q, 0xff, nq * sizeof *d_q)); /* NaN: every entry must be written */
    const float *bq = with_bias ? b : NULL, *bk = with_bias ? b + qd : NULL, *bv = with_bias ? b + qd + kvd : NULL;
    qkv_rope_append_bf16_cpu(q, qkv, bq, bk, bv, cs, sn, ck, cv, idx, idx + n, n, nh, nkv, hd, n_slots, max_len);
    qkv_rope_append_bf16_cuda(d_q, d_qkv, with_bias ? d_b : NULL, with_bias ? d_b + qd : NULL,
                              with_bias ? d_b + qd + kvd : NULL, d_cs, d_sn, d_ck, d_cv, d_idx, d_idx + n, n, nh, nkv,
                              hd, n_slots, max_len, NULL);
    float e = gpu_test_dev_err(d_q, q, nq);
    CHECK_MSG(ts, e < TOL, "qkv_rope_append_bf16 n %d heads %d/%d hd %d bias %d: q err %g", n, nh, nkv, hd, with_bias,
              e);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_qkv, qkv, (size_t)n * w), "qkv_rope_append_bf16: qkv was written");
    uint16_t *gk = mmupt_xmalloc(cache * sizeof *gk), *gv = mmupt_xmalloc(cache * sizeof *gv);
    gpu_test_download(gk, d_ck, cache * sizeof *gk);
    gpu_test_download(gv, d_cv, cache * sizeof *gv);
    long off = 0;
    for (size_t i = 0; i < cache; i++) {
        float a[2] = {bf16_to_f32(gk[i]), bf16_to_f32(gv[i])}, r[2] = {bf16_to_f32(ck[i]), bf16_to_f32(cv[i])};
        for (int j = 0; j < 2; j++)
            if (fabsf(a[j] - r[j]) > ldexpf(fabsf(r[j]), -8)) off++;
    }
    CHECK_MSG(ts, off == 0, "qkv_rope_append_bf16 n %d heads %d/%d hd %d bias %d: %ld cache entries off", n, nh, nkv,
              hd, with_bias, off);
    void *dev[] = {d_qkv, d_q, d_b, d_cs, d_sn, d_ck, d_cv, d_idx};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(qkv), free(q), free(b), free(cs), free(sn), free(ck), free(cv), free(idx), free(gk), free(gv);
}

/* 1 when two device buffers hold the same bytes. */
static int dev_same_bytes(const void *a, const void *b, size_t bytes)
{
    char *ha = mmupt_xmalloc(bytes ? bytes : 1), *hb = mmupt_xmalloc(bytes ? bytes : 1);
    gpu_test_download(ha, a, bytes);
    gpu_test_download(hb, b, bytes);
    int same = memcmp(ha, hb, bytes) == 0;
    free(ha), free(hb);
    return same;
}

/* attention_decode_qkv_bf16_cast against the two launches it replaces (qkv_rope_append_bf16, then
 * attention_decode_bf16_cast) on the same inputs: out, out16 and both caches bitwise equal (the same
 * arithmetic); and against the CPU reference within 1e-2 (gpu_test_err): the new row's k and v may
 * round one bf16 step (2^-8 relative) apart from the reference's (last-bit differences in RoPE's
 * products), and that row carries up to all of a head's weight. A wrong head, position or bias is off
 * by O(1). Rows sit in reversed slots at positions 0 (a lone row: only itself to attend to) up to
 * max_len - 1, over caches of random bf16 values. */
static void qkv_attention_case(struct test_state *ts, int n, int nh, int nkv, int hd, int with_bias, int max_len,
                               int mode)
{
    int stage = mode == 1, mma = mode == 2;
    int n_slots = n + 1, qd = nh * hd, kvd = nkv * hd, w = qd + 2 * kvd;
    size_t cache = (size_t)n_slots * max_len * kvd, nq = (size_t)n * qd, sc = (size_t)n * nh * max_len;
    float *qkv = mmupt_xmalloc((size_t)n * w * sizeof *qkv), *b = mmupt_xmalloc((size_t)w * sizeof *b);
    float *cs = mmupt_xmalloc((size_t)n * hd * sizeof *cs), *sn = mmupt_xmalloc((size_t)n * hd * sizeof *sn);
    float *out = mmupt_xmalloc(nq * sizeof *out), *cache_f = mmupt_xmalloc(cache * sizeof *cache_f);
    uint16_t *ck = mmupt_xmalloc(cache * sizeof *ck), *cv = mmupt_xmalloc(cache * sizeof *cv);
    uint16_t *out16 = mmupt_xmalloc(nq * sizeof *out16);
    int *idx = mmupt_xmalloc(2 * (size_t)n * sizeof *idx); /* [slot | pos] */
    unsigned seed = (unsigned)(n * 1000 + nh * 100 + hd + with_bias + max_len);
    gpu_test_fill(qkv, (size_t)n * w, seed, -2.0f, 2.0f);
    gpu_test_fill(b, (size_t)w, seed + 3, -0.5f, 0.5f);
    gpu_test_fill(cache_f, cache, seed + 5, -2.0f, 2.0f);
    for (size_t i = 0; i < cache; i++) ck[i] = bf16_from_f32(cache_f[i]);
    gpu_test_fill(cache_f, cache, seed + 7, -2.0f, 2.0f);
    for (size_t i = 0; i < cache; i++) cv[i] = bf16_from_f32(cache_f[i]);
    for (int i = 0; i < n; i++) {
        idx[i] = n_slots - 1 - i;
        idx[n + i] = i == 0 ? 0 : (i * 37 + max_len / 2) % max_len;
        for (int e = 0; e < hd; e++) {
            double a = (idx[n + i] + 1) * pow(10000.0, -(double)(e % (hd / 2)) / (hd / 2));
            cs[i * hd + e] = (float)cos(a);
            sn[i * hd + e] = (float)sin(a);
        }
    }
    float *d_qkv = gpu_test_upload_floats(qkv, (size_t)n * w), *d_b = gpu_test_upload_floats(b, (size_t)w);
    float *d_cs = gpu_test_upload_floats(cs, (size_t)n * hd), *d_sn = gpu_test_upload_floats(sn, (size_t)n * hd);
    int *d_idx = gpu_test_upload(idx, 2 * (size_t)n * sizeof *idx);
    uint16_t *d_k[2], *d_v[2], *d_o16[2];
    float *d_out[2], *d_q = gpu_test_upload_floats(out, nq), *d_sc = gpu_test_upload_floats(cache_f, 1);
    CUDA_CHECK(cudaFree(d_sc));
    CUDA_CHECK(cudaMalloc((void **)&d_sc, sc * sizeof *d_sc));
    for (int r = 0; r < 2; r++) {
        d_k[r] = gpu_test_upload(ck, cache * sizeof *ck);
        d_v[r] = gpu_test_upload(cv, cache * sizeof *cv);
        CUDA_CHECK(cudaMalloc((void **)&d_out[r], nq * sizeof(float)));
        CUDA_CHECK(cudaMalloc((void **)&d_o16[r], nq * sizeof(uint16_t)));
        CUDA_CHECK(cudaMemset(d_out[r], 0xff, nq * sizeof(float))); /* NaN: every entry must be written */
    }
    const float *hb[3] = {with_bias ? b : NULL, with_bias ? b + qd : NULL, with_bias ? b + qd + kvd : NULL};
    const float *db[3] = {with_bias ? d_b : NULL, with_bias ? d_b + qd : NULL, with_bias ? d_b + qd + kvd : NULL};
    qkv_rope_append_bf16_cuda(d_q, d_qkv, db[0], db[1], db[2], d_cs, d_sn, d_k[0], d_v[0], d_idx, d_idx + n, n, nh,
                              nkv, hd, n_slots, max_len, NULL);
    /* Split counters, as the decode step passes them: a long cache's rows over several blocks, the new
     * row appended by the block whose rows hold it. Staged (the fused call only): no counters - a
     * staged call runs unsplit - against the unsplit pair, and the rows must really stage. */
    unsigned *d_count = NULL;
    if (!stage && !mma) {
        CUDA_CHECK(cudaMalloc((void **)&d_count, (size_t)n * nkv * sizeof *d_count));
        CUDA_CHECK(cudaMemset(d_count, 0, (size_t)n * nkv * sizeof *d_count));
    } else if (stage)
        CHECK_MSG(ts, attention_decode_stage_fits(nh, nkv, hd, max_len, 1), "heads %d/%d hd %d max_len %d: not staged",
                  nh, nkv, hd, max_len);
    attention_decode_bf16_cast_cuda(d_out[0], d_o16[0], d_q, d_k[0], d_v[0], d_idx, d_idx + n, n, n_slots, max_len, nh,
                                    nkv, hd, d_sc, d_count, 0, NULL);
    /* staged and tensor cores: also launched programmatically (on a stream of its own, as in the
     * decode step) */
    cudaStream_t ps = stage || mma ? pdl_stream() : NULL;
    int flags = stage ? ATTN_DECODE_STAGE | ATTN_DECODE_PDL : mma ? ATTN_DECODE_MMA | ATTN_DECODE_PDL : 0;
    attention_decode_qkv_bf16_cast_cuda(d_out[1], d_o16[1], d_qkv, db[0], db[1], db[2], d_cs, d_sn, d_k[1], d_v[1],
                                        d_idx, d_idx + n, n, n_slots, max_len, nh, nkv, hd, d_sc, d_count, flags, ps);
    if (ps) CUDA_CHECK(cudaStreamDestroy(ps));
    CUDA_CHECK(cudaFree(d_count));
    attention_decode_qkv_bf16_cast_cpu(out, out16, qkv, hb[0], hb[1], hb[2], cs, sn, ck, cv, idx, idx + n, n, n_slots,
                                       max_len, nh, nkv, hd);
    const char *what = mma ? "attention_decode_qkv_bf16_cast (tensor cores)" : "attention_decode_qkv_bf16_cast";
    float tol = mma ? 2e-2f : 1e-2f;
    if (mma) { /* other arithmetic: near the pair's out, not its bits */
        float *pair = gpu_test_download_floats(d_out[0], nq), ep = gpu_test_dev_err(d_out[1], pair, nq);
        free(pair);
        CHECK_MSG(ts, ep < tol, "%s n %d heads %d/%d hd %d: err %g vs the pair's", what, n, nh, nkv, hd, ep);
    } else {
        CHECK_MSG(ts, gpu_test_dev_same(d_out[1], d_out[0], nq),
                  "%s n %d heads %d/%d hd %d: out differs from the pair's", what, n, nh, nkv, hd);
        CHECK_MSG(ts, dev_same_bytes(d_o16[1], d_o16[0], nq * sizeof(uint16_t)), "%s: out16 differs from the pair's",
                  what);
    }
    CHECK_MSG(ts,
              dev_same_bytes(d_k[1], d_k[0], cache * sizeof *ck) && dev_same_bytes(d_v[1], d_v[0], cache * sizeof *cv),
              "%s n %d heads %d/%d hd %d: the cache differs from the pair's", what, n, nh, nkv, hd);
    CHECK_MSG(ts, rounds_of(d_o16[1], d_out[1], nq), "%s: out16 is not out's rounding", what);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_qkv, qkv, (size_t)n * w), "%s: qkv was written", what);
    float e = gpu_test_dev_err(d_out[1], out, nq);
    CHECK_MSG(ts, e < tol, "%s n %d heads %d/%d hd %d bias %d max_len %d: err %g vs the CPU reference", what, n, nh,
              nkv, hd, with_bias, max_len, e);
    void *dev[] = {d_qkv, d_b, d_cs, d_sn, d_idx, d_q, d_sc, d_k[0], d_k[1], d_v[0], d_v[1], d_out[0], d_out[1],
                   d_o16[0], d_o16[1]};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(qkv), free(b), free(cs), free(sn), free(out), free(cache_f), free(ck), free(cv), free(out16), free(idx);
}

static void test_qkv_attention(struct test_state *ts)
{
    qkv_attention_case(ts, 1, 2, 2, 8, 1, 5, 0);
    qkv_attention_case(ts, 5, 14, 2, 64, 1, 300, 0);  /* 0.5B heads */
    qkv_attention_case(ts, 4, 14, 2, 64, 0, 40, 0);   /* no biases */
    qkv_attention_case(ts, 3, 12, 2, 128, 1, 700, 0); /* 1.5B heads; caches longer than the block */
    qkv_attention_case(ts, 2, 17, 1, 6, 1, 9, 0);     /* a group of 17: three head chunks; hd without vector loads */
    /* staged (MMUPT_DECODE_STAGE): the new row made in shared memory beside the copied ones */
    qkv_attention_case(ts, 1, 2, 2, 8, 1, 5, 1);
    qkv_attention_case(ts, 4, 14, 2, 64, 0, 40, 1);
#ifndef MMUPT_SIMT
    qkv_attention_case(ts, 5, 14, 2, 64, 1, 385, 1); /* the rollout's cache: more than 48 KiB of shared memory */
#endif
    /* tensor cores (MMUPT_DECODE_MMA): the cache bitwise the pair's, out within bf16 rounding of it */
    qkv_attention_case(ts, 5, 14, 2, 64, 1, 300, 2);
    qkv_attention_case(ts, 3, 12, 2, 128, 1, 70, 2);
    qkv_attention_case(ts, 1, 2, 2, 32, 0, 5, 2);
}

static void test_rmsnorm_cast(struct test_state *ts)
{
    rmsnorm_case(ts, 1, 1);
    rmsnorm_case(ts, 3, 80);
    rmsnorm_case(ts, 64, 896); /* a 0.5B decode step */
    rmsnorm_case(ts, 3, 3584); /* 7B hidden: wider than the kernel keeps in registers */
}

static void test_residual_rmsnorm_cast(struct test_state *ts)
{
    for (int alias = 0; alias < 2; alias++) {
        residual_rmsnorm_case(ts, 1, 1, alias);
        residual_rmsnorm_case(ts, 3, 80, alias);
        residual_rmsnorm_case(ts, 64, 896, alias); /* a 0.5B decode step */
        residual_rmsnorm_case(ts, 3, 3584, alias); /* 7B hidden: wider than the kernel keeps in registers */
    }
}

static void test_swiglu_packed_cast(struct test_state *ts)
{
    swiglu_packed_case(ts, 1, 1);
    swiglu_packed_case(ts, 3, 88);
    swiglu_packed_case(ts, 64, 4864); /* a 0.5B decode step */
}

static void test_swiglu_cast(struct test_state *ts)
{
    swiglu_case(ts, 1);
    swiglu_case(ts, 1000);
    swiglu_case(ts, 64L * 4864); /* a 0.5B decode step */
}

static void test_qkv(struct test_state *ts)
{
    qkv_case(ts, 1, 2, 2, 8, 1);
    qkv_case(ts, 5, 14, 2, 64, 1); /* 0.5B heads */
    qkv_case(ts, 5, 14, 2, 64, 0); /* no biases */
    qkv_case(ts, 3, 12, 2, 128, 1); /* 1.5B heads */
}

int main(void)
{
    gpu_test_require_device();
    struct test_state ts = {0};
    RUN(&ts, test_rmsnorm_cast);
    RUN(&ts, test_residual_rmsnorm_cast);
    RUN(&ts, test_swiglu_cast);
    RUN(&ts, test_swiglu_packed_cast);
    RUN(&ts, test_qkv);
    RUN(&ts, test_qkv_attention);
    return test_summary(&ts);
}
