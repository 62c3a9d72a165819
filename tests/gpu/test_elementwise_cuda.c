/* RoPE (and its packed q/k/v form), SwiGLU, exact GELU, quick GELU and the embedding: every CUDA
 * twin, forward and backward, against its CPU reference on the same inputs. Skips (exit 77) without a GPU, saying why.
 *
 * Tolerances, in gpu_test_err's measure max |got - want| / (1 + |want|):
 *   - RoPE: 1e-6 (fp32 elementwise). Two products and a sum per element; nvcc may fuse them into an
 *     FMA where gcc rounds each product, which moves results of size <= 4 by a few ulp (~5e-7).
 *   - activations: 1e-5. CUDA's expf/erff and glibc's each differ from the exact value by up to
 *     2 ulp, and the formulas chain several of them (sigmoid, then products with the input).
 *   - embedding: 0, bitwise. The forward copies, and the backward makes the same fp32 additions in
 *     the same order (token order) as the reference.
 *   - swiglu_packed16_forward_cast and _backward16 (gate/up and dout in bf16): bitwise the fp32-input
 *     twins on the same values widened, on the device and in the CPU references;
 *   - swiglu_packed_backward_bf16: bitwise against swiglu_packed_backward_cuda on a zeroed buffer,
 *     rounded on the host (the kernels share their per-element math, and bf16 rounding of equal
 *     floats is equal). Against its CPU reference not bitwise: the fp32 values differ as the
 *     activations' do (expf, FMA), and a rounding boundary between them puts the two on
 *     neighbouring bf16 values; so each element must be equal or adjacent to the reference, or
 *     within TOL_ACT in the measure above - where silu' cancels (gate near -1.28) the fp32 error
 *     is absolute, not relative, and can exceed a bf16 step of such a small value. A wrong half,
 *     sign or rounding rule is off by far more. Every element is assigned (the buffer starts as
 *     NaN bits), and a -0 term is +0 as on the zeroed buffer (gates 0 and -100 make such terms).
 * Forward outputs start as NaN on the device so an element the kernel never writes fails the test,
 * and gradients start from the same random values on both sides so accumulation (+=) is checked. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"
#include "mmupt/bf16.h"
#include "mmupt/kernels.h"

#define TOL_ROPE 1e-6f
#define TOL_ACT 1e-5f

/* Blocks * threads of one launch is capped at 65535 * 256 = 16,776,960 in every kernel here; sizes
 * above that run the grid-stride loop more than once. */
#define GRID_STRIDE_N (65535L * 256 + 12345)

static float *alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    MMUPT_CHECK(p != NULL);
    return p;
}

static float *nan_floats(size_t n)
{
    float *p = alloc_floats(n);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* ---- RoPE ---- */

/* Tables of real angles as the model builds them: angle = pos * theta^(-2j/hd), the same angle in
 * both halves; positions up to 32768 so large angles occur. With proper=0 the two halves get
 * unrelated values instead, so a kernel that reads cos[i] where it should read cos[i + half]
 * (invisible with proper tables) fails. */
static void rope_tables(float *cos, float *sin, int rows, int hd, int proper, unsigned seed)
{
    int half = hd / 2;
    if (!proper) {
        gpu_test_fill(cos, (size_t)rows * hd, seed, -1.0f, 1.0f);
        gpu_test_fill(sin, (size_t)rows * hd, seed + 1, -1.0f, 1.0f);
        return;
    }
    unsigned s = seed;
    for (int r = 0; r < rows; r++) {
        s = s * 1664525u + 1013904223u;
        float pos = (float)(s >> 17); /* 0 .. 32767 */
        for (int j = 0; j < half; j++) {
            float inv_freq = 1.0f / powf(1000000.0f, (float)(2 * j) / (float)hd);
            float ang = pos * inv_freq;
            cos[(long)r * hd + j] = cos[(long)r * hd + j + half] = cosf(ang);
            sin[(long)r * hd + j] = sin[(long)r * hd + j + half] = sinf(ang);
        }
    }
}

static void rope_case(struct test_state *ts, int rows, int heads, int hd, int proper)
{
    size_t n = (size_t)rows * heads * hd, nt = (size_t)rows * hd;
    unsigned seed = (unsigned)(rows * 1000 + heads * 10 + hd + proper);
    float *x = alloc_floats(n), *cs = alloc_floats(nt), *sn = alloc_floats(nt);
    gpu_test_fill(x, n, seed, -2.0f, 2.0f);
    rope_tables(cs, sn, rows, hd, proper, seed + 7);
    float *dx = gpu_test_upload(x, n * sizeof *x);
    float *dcos = gpu_test_upload(cs, nt * sizeof *cs), *dsin = gpu_test_upload(sn, nt * sizeof *sn);

    rope_forward_cpu(x, cs, sn, rows, heads, hd);
    rope_forward_cuda(dx, dcos, dsin, rows, heads, hd, NULL);
    float e = gpu_test_dev_err(dx, x, n);
    CHECK_MSG(ts, e < TOL_ROPE, "rope forward rows %d heads %d hd %d proper %d: err %g", rows, heads, hd, proper, e);

    /* The backward maps a gradient onto itself in place: start both from the same random dy. */
    gpu_test_fill(x, n, seed + 3, -2.0f, 2.0f);
    CUDA_CHECK(cudaMemcpy(dx, x, n * sizeof *x, cudaMemcpyHostToDevice));
    rope_backward_cpu(x, cs, sn, rows, heads, hd);
    rope_backward_cuda(dx, dcos, dsin, rows, heads, hd, NULL);
    e = gpu_test_dev_err(dx, x, n);
    CHECK_MSG(ts, e < TOL_ROPE, "rope backward rows %d heads %d hd %d proper %d: err %g", rows, heads, hd, proper, e);

    cudaFree(dx); cudaFree(dcos); cudaFree(dsin);
    free(x); free(cs); free(sn);
}

static void test_rope(struct test_state *ts)
{
    static const int rows[] = {1, 7, 33}, heads[] = {1, 2, 14}, hds[] = {2, 80, 128};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 3; c++)
                for (int proper = 0; proper < 2; proper++) rope_case(ts, rows[a], heads[b], hds[c], proper);
}

/* rope_qkv_backward_cast with and without the fp32 output: dqkv the plain backward's bits (want:
 * device, ref: its CPU reference), dqkv16 their bf16 rounding as cast_bf16 makes it, every output
 * NaN before; the CPU twin against rope_qkv_backward_cpu + cast_bf16_cpu. */
static void rope_qkv_backward_cast_check(struct test_state *ts, const float *want, const float *ref,
                                         const float *d_q, const float *d_k, const float *d_v, const float *q,
                                         const float *k, const float *v, const float *d_cs, const float *d_sn,
                                         const float *cs, const float *sn, int rows, int nh, int nkv, int hd)
{
    size_t np = (size_t)rows * (nh + 2 * nkv) * hd;
    uint16_t *want16 = gpu_test_nan16(np), *d16 = gpu_test_nan16(np);
    cast_bf16_cuda(want16, want, (long)np, NULL);
    for (int with_fp32 = 0; with_fp32 < 2; with_fp32++) {
        float *d_dqkv = NULL;
        if (with_fp32) {
            CUDA_CHECK(cudaMalloc((void **)&d_dqkv, np * sizeof *d_dqkv));
            CUDA_CHECK(cudaMemset(d_dqkv, 0xff, np * sizeof *d_dqkv));
        }
        CUDA_CHECK(cudaMemset(d16, 0xff, np * sizeof *d16));
        rope_qkv_backward_cast_cuda(d_dqkv, d16, d_q, d_k, d_v, d_cs, d_sn, rows, nh, nkv, hd, NULL);
        CHECK_MSG(ts, gpu_test_dev_same16(d16, want16, np),
                  "rope_qkv_backward_cast rows %d heads %d/%d hd %d fp32 %d: dqkv16 is not dqkv rounded", rows, nh,
                  nkv, hd, with_fp32);
        CHECK_MSG(ts, !d_dqkv || gpu_test_dev_same(d_dqkv, want, np),
                  "rope_qkv_backward_cast rows %d heads %d/%d hd %d: dqkv differs from rope_qkv_backward's", rows, nh,
                  nkv, hd);
        if (d_dqkv) CUDA_CHECK(cudaFree(d_dqkv));
    }
    uint16_t *h16 = mmupt_xmalloc(np * sizeof *h16), *h16_parts = mmupt_xmalloc(np * sizeof *h16_parts);
    float *dqkv = alloc_floats(np);
    rope_qkv_backward_cast_cpu(NULL, h16, q, k, v, cs, sn, rows, nh, nkv, hd);
    cast_bf16_cpu(h16_parts, ref, (long)np);
    rope_qkv_backward_cast_cpu(dqkv, h16, q, k, v, cs, sn, rows, nh, nkv, hd);
    CHECK_MSG(ts, memcmp(h16, h16_parts, np * sizeof *h16) == 0 && memcmp(dqkv, ref, np * sizeof *dqkv) == 0,
              "rope_qkv_backward_cast_cpu rows %d: not rope_qkv_backward_cpu + cast_bf16_cpu", rows);
    free(h16), free(h16_parts), free(dqkv);
    CUDA_CHECK(cudaFree(want16));
    CUDA_CHECK(cudaFree(d16));
}

/* rope_qkv_forward_cast (q, k, v and their bf16 rounding, cuDNN's attention's operands): k and v (and q
 * when asked for) the plain forward's bits (d_q, d_k, d_v), q16/k16/v16 their rounding as cast_bf16
 * makes it, every output NaN before; its CPU twin against rope_qkv_forward_cpu + cast_bf16_cpu. */
static void rope_qkv_forward_cast_check(struct test_state *ts, const float *d_qkv, const float *d_cs,
                                        const float *d_sn, const float *d_q, const float *d_k, const float *d_v,
                                        const float *qkv, const float *cs, const float *sn, int rows, int nh, int nkv,
                                        int hd)
{
    size_t nq = (size_t)rows * nh * hd, nk = (size_t)rows * nkv * hd;
    uint16_t *want = gpu_test_nan16(nq + 2 * nk), *got = gpu_test_nan16(nq + 2 * nk);
    cast_bf16_cuda(want, d_q, (long)nq, NULL), cast_bf16_cuda(want + nq, d_k, (long)nk, NULL);
    cast_bf16_cuda(want + nq + nk, d_v, (long)nk, NULL);
    float *fq = NULL, *fk = NULL, *fv = NULL;
    CUDA_CHECK(cudaMalloc((void **)&fq, nq * sizeof *fq));
    CUDA_CHECK(cudaMalloc((void **)&fk, nk * sizeof *fk));
    CUDA_CHECK(cudaMalloc((void **)&fv, nk * sizeof *fv));
    for (int with_q = 0; with_q < 2; with_q++) {
        CUDA_CHECK(cudaMemset(got, 0xff, (nq + 2 * nk) * sizeof *got));
        CUDA_CHECK(cudaMemset(fq, 0xff, nq * sizeof *fq));
        CUDA_CHECK(cudaMemset(fk, 0xff, nk * sizeof *fk));
        CUDA_CHECK(cudaMemset(fv, 0xff, nk * sizeof *fv));
        rope_qkv_forward_cast_cuda(with_q ? fq : NULL, fk, fv, got, got + nq, got + nq + nk, d_qkv, d_cs, d_sn, rows, nh,
                                   nkv, hd, NULL);
        CHECK_MSG(ts,
                  gpu_test_dev_same16(got, want, nq + 2 * nk) && gpu_test_dev_same(fk, d_k, nk) &&
                      gpu_test_dev_same(fv, d_v, nk) && (!with_q || gpu_test_dev_same(fq, d_q, nq)),
                  "rope_qkv_forward_cast rows %d heads %d/%d hd %d q %d: not rope_qkv_forward's bits and their rounding",
                  rows, nh, nkv, hd, with_q);
    }
    float *q = alloc_floats(nq), *k = alloc_floats(nk), *v = alloc_floats(nk), *k2 = alloc_floats(nk);
    float *v2 = alloc_floats(nk);
    uint16_t *h16 = mmupt_xmalloc((nq + 2 * nk) * sizeof *h16), *w16 = mmupt_xmalloc((nq + 2 * nk) * sizeof *w16);
    rope_qkv_forward_cpu(q, k, v, qkv, cs, sn, rows, nh, nkv, hd);
    cast_bf16_cpu(w16, q, (long)nq), cast_bf16_cpu(w16 + nq, k, (long)nk), cast_bf16_cpu(w16 + nq + nk, v, (long)nk);
    rope_qkv_forward_cast_cpu(NULL, k2, v2, h16, h16 + nq, h16 + nq + nk, qkv, cs, sn, rows, nh, nkv, hd);
    CHECK_MSG(ts,
              memcmp(h16, w16, (nq + 2 * nk) * sizeof *h16) == 0 && memcmp(k2, k, nk * sizeof *k) == 0 &&
                  memcmp(v2, v, nk * sizeof *v) == 0,
              "rope_qkv_forward_cast_cpu rows %d: not rope_qkv_forward_cpu + cast_bf16_cpu", rows);
    void *dev[] = {want, got, fq, fk, fv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(q), free(k), free(v), free(k2), free(v2), free(h16), free(w16);
}

/* rope_qkv16_backward_cast (gradients in bf16, cuDNN's attention's): bitwise the fp32 kernel on the
 * widened gradients, with and without the fp32 output, every output NaN before; its CPU twin likewise
 * against rope_qkv_backward_cast_cpu. */
static void rope_qkv16_backward_check(struct test_state *ts, const float *q, const float *k, const float *v,
                                      const float *d_cs, const float *d_sn, const float *cs, const float *sn, int rows,
                                      int nh, int nkv, int hd)
{
    size_t nq = (size_t)rows * nh * hd, nk = (size_t)rows * nkv * hd, np = nq + 2 * nk;
    uint16_t *h16 = mmupt_xmalloc(np * sizeof *h16); /* q, k, v rounded, back to back */
    cast_bf16_cpu(h16, q, (long)nq), cast_bf16_cpu(h16 + nq, k, (long)nk), cast_bf16_cpu(h16 + nq + nk, v, (long)nk);
    float *w = bf16_widened(h16, (long)np);
    uint16_t *d_g16 = gpu_test_upload(h16, np * sizeof *h16);
    float *d_w = gpu_test_upload(w, np * sizeof *w), *d_ref = NULL, *d_got = NULL;
    uint16_t *ref16 = gpu_test_nan16(np), *got16 = gpu_test_nan16(np);
    CUDA_CHECK(cudaMalloc((void **)&d_ref, np * sizeof *d_ref));
    CUDA_CHECK(cudaMalloc((void **)&d_got, np * sizeof *d_got));
    CUDA_CHECK(cudaMemset(d_got, 0xff, np * sizeof *d_got));
    rope_qkv_backward_cast_cuda(d_ref, ref16, d_w, d_w + nq, d_w + nq + nk, d_cs, d_sn, rows, nh, nkv, hd, NULL);
    for (int with_fp32 = 0; with_fp32 < 2; with_fp32++) {
        CUDA_CHECK(cudaMemset(got16, 0xff, np * sizeof *got16));
        rope_qkv16_backward_cast_cuda(with_fp32 ? d_got : NULL, got16, d_g16, d_g16 + nq, d_g16 + nq + nk, d_cs, d_sn,
                                      rows, nh, nkv, hd, NULL);
        CHECK_MSG(ts, gpu_test_dev_same16(got16, ref16, np) && (!with_fp32 || gpu_test_dev_same(d_got, d_ref, np)),
                  "rope_qkv16_backward_cast rows %d heads %d/%d hd %d fp32 %d: not the fp32 kernel's bits", rows, nh,
                  nkv, hd, with_fp32);
    }
    uint16_t *c16 = mmupt_xmalloc(np * sizeof *c16), *c16_ref = mmupt_xmalloc(np * sizeof *c16_ref);
    float *c = alloc_floats(np), *c_ref = alloc_floats(np);
    rope_qkv16_backward_cast_cpu(c, c16, h16, h16 + nq, h16 + nq + nk, cs, sn, rows, nh, nkv, hd);
    rope_qkv_backward_cast_cpu(c_ref, c16_ref, w, w + nq, w + nq + nk, cs, sn, rows, nh, nkv, hd);
    CHECK_MSG(ts, memcmp(c16, c16_ref, np * sizeof *c16) == 0 && memcmp(c, c_ref, np * sizeof *c) == 0,
              "rope_qkv16_backward_cast_cpu rows %d: not rope_qkv_backward_cast_cpu of the widened", rows);
    void *dev[] = {d_g16, d_w, d_ref, d_got, ref16, got16};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(h16), free(w), free(c16), free(c16_ref), free(c), free(c_ref);
}

/* The packed ops' two kernels agree bit for bit: 4 pairs a thread where half is a multiple of 4 and
 * the arrays aligned (as every caller's are), one pair a thread otherwise - here forced by packed
 * rows one float off alignment. The backward's inputs are d_q, d_k, d_v. */
static void rope_qkv_paths_check(struct test_state *ts, const float *d_qkv, const float *d_q, const float *d_k,
                                 const float *d_v, const float *d_cs, const float *d_sn, int rows, int nh, int nkv,
                                 int hd)
{
    size_t nq = (size_t)rows * nh * hd, nk = (size_t)rows * nkv * hd, np = nq + 2 * nk;
    float *d_off = NULL, *d_a = NULL, *d_b = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_off, (np + 1) * sizeof *d_off));
    CUDA_CHECK(cudaMalloc((void **)&d_a, np * sizeof *d_a));
    CUDA_CHECK(cudaMalloc((void **)&d_b, np * sizeof *d_b));
    CUDA_CHECK(cudaMemcpy(d_off + 1, d_qkv, np * sizeof *d_off, cudaMemcpyDeviceToDevice));
    rope_qkv_forward_cuda(d_a, d_a + nq, d_a + nq + nk, d_qkv, d_cs, d_sn, rows, nh, nkv, hd, NULL);
    rope_qkv_forward_cuda(d_b, d_b + nq, d_b + nq + nk, d_off + 1, d_cs, d_sn, rows, nh, nkv, hd, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_a, d_b, np),
              "rope_qkv forward rows %d heads %d/%d hd %d: one pair a thread differs from 4", rows, nh, nkv, hd);
    rope_qkv_backward_cuda(d_a, d_q, d_k, d_v, d_cs, d_sn, rows, nh, nkv, hd, NULL);
    rope_qkv_backward_cuda(d_off + 1, d_q, d_k, d_v, d_cs, d_sn, rows, nh, nkv, hd, NULL);
    CHECK_MSG(ts, gpu_test_dev_same(d_off + 1, d_a, np),
              "rope_qkv backward rows %d heads %d/%d hd %d: one pair a thread differs from 4", rows, nh, nkv, hd);
    CUDA_CHECK(cudaFree(d_off));
    CUDA_CHECK(cudaFree(d_a));
    CUDA_CHECK(cudaFree(d_b));
}

/* 10000 x 28 x 64 = 17.9M rotated pairs: more than one launch's threads. */
/* RoPE over packed q/k/v rows: the split-and-rotate forward (v bitwise: a copy) and the
 * rotate-and-pack backward (dq, dk, dv unchanged), every output starting as NaN. */
static void rope_qkv_case(struct test_state *ts, int rows, int nh, int nkv, int hd)
{
    size_t nq = (size_t)rows * nh * hd, nk = (size_t)rows * nkv * hd, np = nq + 2 * nk, nt = (size_t)rows * hd;
    unsigned seed = (unsigned)(rows * 100 + nh * 10 + nkv + hd);
    float *qkv = alloc_floats(np), *q = alloc_floats(nq), *k = alloc_floats(nk), *v = alloc_floats(nk);
    float *cs = alloc_floats(nt), *sn = alloc_floats(nt), *ref = alloc_floats(np);
    gpu_test_fill(qkv, np, seed, -2.0f, 2.0f);
    rope_tables(cs, sn, rows, hd, 1, seed + 1);
    rope_qkv_forward_cpu(q, k, v, qkv, cs, sn, rows, nh, nkv, hd);
    float *nan = nan_floats(np);
    float *d_qkv = gpu_test_upload(qkv, np * sizeof *qkv), *d_cs = gpu_test_upload(cs, nt * sizeof *cs);
    float *d_sn = gpu_test_upload(sn, nt * sizeof *sn), *d_q = gpu_test_upload(nan, nq * sizeof *nan);
    float *d_k = gpu_test_upload(nan, nk * sizeof *nan), *d_v = gpu_test_upload(nan, nk * sizeof *nan);
    rope_qkv_forward_cuda(d_q, d_k, d_v, d_qkv, d_cs, d_sn, rows, nh, nkv, hd, NULL);
    float eq = gpu_test_dev_err(d_q, q, nq), ek = gpu_test_dev_err(d_k, k, nk);
    CHECK_MSG(ts, eq < TOL_ROPE && ek < TOL_ROPE, "rope_qkv forward rows %d heads %d/%d hd %d: err q %g k %g", rows, nh,
              nkv, hd, eq, ek);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_v, v, nk), "rope_qkv forward rows %d heads %d/%d hd %d: v is not the copy",
              rows, nh, nkv, hd);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_qkv, qkv, np), "rope_qkv forward: qkv was written");
    rope_qkv_forward_cast_check(ts, d_qkv, d_cs, d_sn, d_q, d_k, d_v, qkv, cs, sn, rows, nh, nkv, hd);

    /* Backward from random gradients (the forward's outputs serve as such), into a NaN dqkv. */
    rope_qkv_backward_cpu(ref, q, k, v, cs, sn, rows, nh, nkv, hd);
    float *d_dqkv = gpu_test_upload(nan, np * sizeof *nan);
    CUDA_CHECK(cudaMemcpy(d_q, q, nq * sizeof *q, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_k, k, nk * sizeof *k, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_v, v, nk * sizeof *v, cudaMemcpyHostToDevice));
    rope_qkv_backward_cuda(d_dqkv, d_q, d_k, d_v, d_cs, d_sn, rows, nh, nkv, hd, NULL);
    float e = gpu_test_dev_err(d_dqkv, ref, np);
    CHECK_MSG(ts, e < TOL_ROPE, "rope_qkv backward rows %d heads %d/%d hd %d: err %g", rows, nh, nkv, hd, e);
    CHECK_MSG(ts, gpu_test_dev_same_host(d_q, q, nq) && gpu_test_dev_same_host(d_k, k, nk) &&
                  gpu_test_dev_same_host(d_v, v, nk), "rope_qkv backward: an input gradient was written");
    rope_qkv_backward_cast_check(ts, d_dqkv, ref, d_q, d_k, d_v, q, k, v, d_cs, d_sn, cs, sn, rows, nh, nkv, hd);
    rope_qkv16_backward_check(ts, q, k, v, d_cs, d_sn, cs, sn, rows, nh, nkv, hd);
    rope_qkv_paths_check(ts, d_qkv, d_q, d_k, d_v, d_cs, d_sn, rows, nh, nkv, hd);
    float *dev[] = {d_qkv, d_cs, d_sn, d_q, d_k, d_v, d_dqkv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(qkv), free(q), free(k), free(v), free(cs), free(sn), free(ref), free(nan);
}

static void test_rope_qkv(struct test_state *ts)
{
    rope_qkv_case(ts, 1, 1, 1, 2);
    rope_qkv_case(ts, 7, 4, 2, 16);     /* the fixtures' layout */
    rope_qkv_case(ts, 33, 14, 2, 64);   /* 0.5B */
    rope_qkv_case(ts, 5, 16, 16, 80);   /* a vision block: no GQA */
    rope_qkv_case(ts, 9, 12, 2, 128);   /* 1.5B */
}

static void test_rope_grid_stride(struct test_state *ts)
{
    rope_case(ts, 10000, 28, 128, 1);
}

/* ---- Activations ---- */

/* Inputs over a wide range, with the values that stress the formulas first: 0, and |x| = 100 where
 * expf overflows (sigmoid must give exactly 0, not NaN). */
static void act_inputs(float *x, long n, unsigned seed, float lo, float hi)
{
    static const float special[] = {0.0f, -100.0f, 100.0f, -20.0f, 20.0f};
    gpu_test_fill(x, (size_t)n, seed, lo, hi);
    for (long i = 0; i < n && i < 5; i++) x[i] = special[i];
}

/* One unary activation (GELU or quick GELU): forward, then backward accumulating into dx. */
struct act_unary {
    const char *name;
    void (*fwd_cpu)(float *, const float *, long);
    void (*bwd_cpu)(float *, const float *, const float *, long);
    void (*fwd_cuda)(float *, const float *, long, void *);
    void (*bwd_cuda)(float *, const float *, const float *, long, void *);
};

static void unary_case(struct test_state *ts, const struct act_unary *op, long n)
{
    size_t sz = (size_t)n * sizeof(float);
    float *x = alloc_floats((size_t)n), *dout = alloc_floats((size_t)n);
    float *out = alloc_floats((size_t)n), *grad = alloc_floats((size_t)n), *nan = nan_floats((size_t)n);
    act_inputs(x, n, (unsigned)n + 11, -8.0f, 8.0f);
    gpu_test_fill(dout, (size_t)n, (unsigned)n + 12, -1.0f, 1.0f);
    gpu_test_fill(grad, (size_t)n, (unsigned)n + 13, -1.0f, 1.0f);
    float *d_x = gpu_test_upload(x, sz), *d_dout = gpu_test_upload(dout, sz);
    float *d_out = gpu_test_upload(nan, sz), *d_grad = gpu_test_upload(grad, sz);

    op->fwd_cpu(out, x, n);
    op->fwd_cuda(d_out, d_x, n, NULL);
    float e = gpu_test_dev_err(d_out, out, (size_t)n);
    CHECK_MSG(ts, e < TOL_ACT, "%s forward n %ld: err %g", op->name, n, e);

    op->bwd_cpu(grad, dout, x, n);
    op->bwd_cuda(d_grad, d_dout, d_x, n, NULL);
    e = gpu_test_dev_err(d_grad, grad, (size_t)n);
    CHECK_MSG(ts, e < TOL_ACT, "%s backward n %ld: err %g", op->name, n, e);

    cudaFree(d_x); cudaFree(d_dout); cudaFree(d_out); cudaFree(d_grad);
    free(x); free(dout); free(out); free(grad); free(nan);
}

static const long act_sizes[] = {1, 1000, (1L << 20) + 3, GRID_STRIDE_N};

static void test_gelu(struct test_state *ts)
{
    const struct act_unary op = {"gelu", gelu_forward_cpu, gelu_backward_cpu, gelu_forward_cuda, gelu_backward_cuda};
    for (int i = 0; i < 4; i++) unary_case(ts, &op, act_sizes[i]);
}

static void test_quick_gelu(struct test_state *ts)
{
    const struct act_unary op = {"quick_gelu", quick_gelu_forward_cpu, quick_gelu_backward_cpu,
                                 quick_gelu_forward_cuda, quick_gelu_backward_cuda};
    for (int i = 0; i < 4; i++) unary_case(ts, &op, act_sizes[i]);
}

/* SwiGLU forward, then the backward three times: both gradients, dgate only (dup NULL), dup only
 * (dgate NULL); each accumulates into pre-filled values. */
static void swiglu_case(struct test_state *ts, long n)
{
    size_t sz = (size_t)n * sizeof(float);
    float *gate = alloc_floats((size_t)n), *up = alloc_floats((size_t)n), *dout = alloc_floats((size_t)n);
    float *out = alloc_floats((size_t)n), *nan = nan_floats((size_t)n);
    float *dg0 = alloc_floats((size_t)n), *du0 = alloc_floats((size_t)n);
    float *dg = alloc_floats((size_t)n), *du = alloc_floats((size_t)n);
    act_inputs(gate, n, (unsigned)n + 21, -8.0f, 8.0f);
    gpu_test_fill(up, (size_t)n, (unsigned)n + 22, -2.0f, 2.0f);
    gpu_test_fill(dout, (size_t)n, (unsigned)n + 23, -1.0f, 1.0f);
    gpu_test_fill(dg0, (size_t)n, (unsigned)n + 24, -1.0f, 1.0f);
    gpu_test_fill(du0, (size_t)n, (unsigned)n + 25, -1.0f, 1.0f);
    float *d_gate = gpu_test_upload(gate, sz), *d_up = gpu_test_upload(up, sz), *d_dout = gpu_test_upload(dout, sz);
    float *d_out = gpu_test_upload(nan, sz);

    swiglu_forward_cpu(out, gate, up, n);
    swiglu_forward_cuda(d_out, d_gate, d_up, n, NULL);
    float e = gpu_test_dev_err(d_out, out, (size_t)n);
    CHECK_MSG(ts, e < TOL_ACT, "swiglu forward n %ld: err %g", n, e);

    for (int mode = 0; mode < 3; mode++) { /* 0: both, 1: dgate only, 2: dup only */
        int want_g = mode != 2, want_u = mode != 1;
        memcpy(dg, dg0, sz);
        memcpy(du, du0, sz);
        float *d_dg = gpu_test_upload(dg0, sz), *d_du = gpu_test_upload(du0, sz);
        swiglu_backward_cpu(want_g ? dg : NULL, want_u ? du : NULL, dout, gate, up, n);
        swiglu_backward_cuda(want_g ? d_dg : NULL, want_u ? d_du : NULL, d_dout, d_gate, d_up, n, NULL);
        /* A gradient passed as NULL stays as it was on the CPU side (dg0/du0), so this comparison
         * also checks that the device buffer was not touched through some other path. */
        e = gpu_test_dev_err(d_dg, dg, (size_t)n);
        CHECK_MSG(ts, e < TOL_ACT, "swiglu dgate n %ld mode %d: err %g", n, mode, e);
        e = gpu_test_dev_err(d_du, du, (size_t)n);
        CHECK_MSG(ts, e < TOL_ACT, "swiglu dup n %ld mode %d: err %g", n, mode, e);
        cudaFree(d_dg); cudaFree(d_du);
    }

    cudaFree(d_gate); cudaFree(d_up); cudaFree(d_dout); cudaFree(d_out);
    free(gate); free(up); free(dout); free(out); free(nan); free(dg0); free(du0); free(dg); free(du);
}

/* The gradient over packed [gate | up] rows (accumulating into random dgu): against the reference,
 * and bitwise against swiglu_backward_cuda on the halves copied apart. */
static void swiglu_packed_backward_case(struct test_state *ts, long rows, long inner)
{
    size_t n = (size_t)(rows * inner);
    float *gu = alloc_floats(2 * n), *dgu = alloc_floats(2 * n), *dout = alloc_floats(n);
    float *g = alloc_floats(n), *u = alloc_floats(n), *dg = alloc_floats(n), *du = alloc_floats(n);
    unsigned seed = (unsigned)(rows * 17 + inner);
    gpu_test_fill(gu, 2 * n, seed, -8.0f, 8.0f);
    gpu_test_fill(dgu, 2 * n, seed + 1, -1.0f, 1.0f);
    gpu_test_fill(dout, n, seed + 2, -1.0f, 1.0f);
    for (long r = 0; r < rows; r++) {
        memcpy(g + r * inner, gu + r * 2 * inner, (size_t)inner * sizeof *g);
        memcpy(u + r * inner, gu + r * 2 * inner + inner, (size_t)inner * sizeof *u);
        memcpy(dg + r * inner, dgu + r * 2 * inner, (size_t)inner * sizeof *dg);
        memcpy(du + r * inner, dgu + r * 2 * inner + inner, (size_t)inner * sizeof *du);
    }
    float *d_gu = gpu_test_upload(gu, 2 * n * sizeof *gu), *d_dgu = gpu_test_upload(dgu, 2 * n * sizeof *dgu);
    float *d_dout = gpu_test_upload(dout, n * sizeof *dout), *d_g = gpu_test_upload(g, n * sizeof *g);
    float *d_u = gpu_test_upload(u, n * sizeof *u), *d_dg = gpu_test_upload(dg, n * sizeof *dg);
    float *d_du = gpu_test_upload(du, n * sizeof *du);
    swiglu_packed_backward_cpu(dgu, dout, gu, rows, inner);
    swiglu_packed_backward_cuda(d_dgu, d_dout, d_gu, rows, inner, NULL);
    float e = gpu_test_dev_err(d_dgu, dgu, 2 * n);
    CHECK_MSG(ts, e < TOL_ACT, "swiglu_packed_backward %ld x %ld: err %g", rows, inner, e);
    swiglu_backward_cuda(d_dg, d_du, d_dout, d_g, d_u, (long)n, NULL);
    float *got = gpu_test_download_floats(d_dgu, 2 * n), *pg = gpu_test_download_floats(d_dg, n);
    float *pu = gpu_test_download_floats(d_du, n);
    int same = 1;
    for (long r = 0; r < rows && same; r++)
        same = memcmp(got + r * 2 * inner, pg + r * inner, (size_t)inner * sizeof *got) == 0 &&
               memcmp(got + r * 2 * inner + inner, pu + r * inner, (size_t)inner * sizeof *got) == 0;
    CHECK_MSG(ts, same, "swiglu_packed_backward %ld x %ld: differs from swiglu_backward on the halves", rows, inner);
    float *dev[] = {d_gu, d_dgu, d_dout, d_g, d_u, d_dg, d_du};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(gu), free(dgu), free(dout), free(g), free(u), free(dg), free(du), free(got), free(pg), free(pu);
}

/* A bf16 value's place on the number line (+0 and -0 both 0): neighbours differ by 1. */
static int bf16_order(uint16_t h) { return h & 0x8000u ? -(int)(h & 0x7fffu) : (int)h; }

/* The packed gradient rounded to bf16 and assigned (see the header for what is compared). */
static void swiglu_packed_backward_bf16_case(struct test_state *ts, long rows, long inner)
{
    size_t n = (size_t)(rows * inner);
    float *gu = alloc_floats(2 * n), *dout = alloc_floats(n), *zeros = alloc_floats(2 * n);
    uint16_t *want = mmupt_xmalloc(2 * n * sizeof *want), *got = mmupt_xmalloc(2 * n * sizeof *got);
    unsigned seed = (unsigned)(rows * 31 + inner);
    gpu_test_fill(gu, 2 * n, seed, -8.0f, 8.0f);
    gpu_test_fill(dout, n, seed + 1, -1.0f, 1.0f);
    memset(zeros, 0, 2 * n * sizeof *zeros);
    gu[0] = 0.0f, dout[0] = -0.5f; /* dup = -0.5 * 0 * s = -0 */
    if (inner > 1) gu[1] = -100.0f, gu[inner + 1] = -1.0f, dout[1] = 0.5f; /* sigmoid 0: dgate, dup -0 */
    float *d_gu = gpu_test_upload_floats(gu, 2 * n), *d_dout = gpu_test_upload_floats(dout, n);
    float *d_dgu = gpu_test_upload_floats(zeros, 2 * n);
    uint16_t *d_dgu16 = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d_dgu16, 2 * n * sizeof *d_dgu16));
    CUDA_CHECK(cudaMemset(d_dgu16, 0xff, 2 * n * sizeof *d_dgu16)); /* NaN: every element must be written */
    swiglu_packed_backward_bf16_cuda(d_dgu16, d_dout, d_gu, rows, inner, NULL);
    gpu_test_download(got, d_dgu16, 2 * n * sizeof *got);

    swiglu_packed_backward_cuda(d_dgu, d_dout, d_gu, rows, inner, NULL);
    float *f32 = gpu_test_download_floats(d_dgu, 2 * n);
    size_t differ = 2 * n;
    for (size_t i = 0; i < 2 * n && differ == 2 * n; i++)
        if (got[i] != bf16_from_f32(f32[i])) differ = i;
    CHECK_MSG(ts, differ == 2 * n, "swiglu_packed_backward_bf16 %ld x %ld: element %zu is %#x, the fp32 twin's %#x",
              rows, inner, differ, differ < 2 * n ? got[differ] : 0,
              differ < 2 * n ? bf16_from_f32(f32[differ]) : 0);

    swiglu_packed_backward_bf16_cpu(want, dout, gu, rows, inner);
    size_t bad = 2 * n;
    int worst = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        float g = bf16_to_f32(got[i]), w = bf16_to_f32(want[i]);
        int d = abs(bf16_order(got[i]) - bf16_order(want[i]));
        int close = d <= 1 || fabsf(g - w) <= TOL_ACT * (1.0f + fabsf(w));
        if (!(g == g) || (!close && bad == 2 * n)) bad = i; /* NaN: not written */
        if (d > worst) worst = d;
    }
    CHECK_MSG(ts, bad == 2 * n, "swiglu_packed_backward_bf16 %ld x %ld: element %zu is %#x, want %#x (%d ulp at worst)",
              rows, inner, bad, bad < 2 * n ? got[bad] : 0, bad < 2 * n ? want[bad] : 0, worst);
    CHECK_MSG(ts, got[inner] == 0 && (inner == 1 || (got[1] == 0 && got[inner + 1] == 0)),
              "swiglu_packed_backward_bf16 %ld x %ld: a -0 term is not +0", rows, inner);

    void *dev[] = {d_gu, d_dout, d_dgu, d_dgu16};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(gu), free(dout), free(zeros), free(want), free(got), free(f32);
}

/* SwiGLU from bf16 gate/up (the swiglu_packed16 ops; the backward with a bf16 dout too): bitwise the
 * fp32-input twins fed the same values widened, forward and backward, on the device and in the CPU
 * references. */
static void swiglu_packed16_case(struct test_state *ts, long rows, long inner)
{
    size_t n = (size_t)(rows * inner);
    float *gu = alloc_floats(2 * n), *dout = alloc_floats(n);
    uint16_t *gu16 = mmupt_xmalloc(2 * n * sizeof *gu16), *dout16 = mmupt_xmalloc(n * sizeof *dout16);
    gpu_test_fill(gu, 2 * n, (unsigned)(rows * 17 + inner), -8.0f, 8.0f);
    gpu_test_fill(dout, n, (unsigned)(rows * 17 + inner + 1), -1.0f, 1.0f);
    cast_bf16_cpu(gu16, gu, (long)(2 * n));
    cast_bf16_cpu(dout16, dout, (long)n);
    for (size_t i = 0; i < 2 * n; i++) gu[i] = bf16_to_f32(gu16[i]); /* the same values in fp32 */
    for (size_t i = 0; i < n; i++) dout[i] = bf16_to_f32(dout16[i]);
    float *d_gu = gpu_test_upload_floats(gu, 2 * n), *d_dout = gpu_test_upload_floats(dout, n);
    uint16_t *d_gu16 = gpu_test_upload(gu16, 2 * n * sizeof *gu16), *d_dout16 = gpu_test_upload(dout16, n * sizeof *dout16);
    uint16_t *d_a = gpu_test_nan16(n), *d_b = gpu_test_nan16(n);
    uint16_t *d_da = gpu_test_nan16(2 * n), *d_db = gpu_test_nan16(2 * n);
    swiglu_packed16_forward_cast_cuda(d_a, d_gu16, rows, inner, NULL);
    swiglu_packed_forward_cast_cuda(NULL, d_b, d_gu, rows, inner, 0, NULL);
    CHECK_MSG(ts, gpu_test_dev_same16(d_a, d_b, n),
              "swiglu_packed16_forward_cast %ld x %ld differs from the fp32-input twin", rows, inner);
    swiglu_packed16_backward16_cuda(d_da, d_dout16, d_gu16, rows, inner, NULL);
    swiglu_packed_backward_bf16_cuda(d_db, d_dout, d_gu, rows, inner, NULL);
    CHECK_MSG(ts, gpu_test_dev_same16(d_da, d_db, 2 * n),
              "swiglu_packed16_backward16 %ld x %ld differs from the fp32-input twin", rows, inner);
    uint16_t *ca = mmupt_xmalloc(2 * n * sizeof *ca), *cb = mmupt_xmalloc(2 * n * sizeof *cb);
    swiglu_packed16_forward_cast_cpu(ca, gu16, rows, inner);
    swiglu_packed_forward_cast_cpu(NULL, cb, gu, rows, inner);
    CHECK_MSG(ts, memcmp(ca, cb, n * sizeof *ca) == 0, "swiglu_packed16_forward_cast_cpu %ld x %ld differs", rows,
              inner);
    swiglu_packed16_backward16_cpu(ca, dout16, gu16, rows, inner);
    swiglu_packed_backward_bf16_cpu(cb, dout, gu, rows, inner);
    CHECK_MSG(ts, memcmp(ca, cb, 2 * n * sizeof *ca) == 0, "swiglu_packed16_backward16_cpu %ld x %ld differs", rows,
              inner);
    void *dev[] = {d_gu, d_dout, d_gu16, d_dout16, d_a, d_b, d_da, d_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) CUDA_CHECK(cudaFree(dev[i]));
    free(gu), free(dout), free(gu16), free(dout16), free(ca), free(cb);
}

static void test_swiglu(struct test_state *ts)
{
    for (int i = 0; i < 4; i++) swiglu_case(ts, act_sizes[i]);
    swiglu_packed_backward_case(ts, 1, 1);
    swiglu_packed_backward_case(ts, 3, 88);
    swiglu_packed_backward_case(ts, 64, 4864);
    swiglu_packed_backward_bf16_case(ts, 1, 1);
    swiglu_packed_backward_bf16_case(ts, 3, 88);
    swiglu_packed_backward_bf16_case(ts, 64, 4864);
    swiglu_packed_backward_bf16_case(ts, 5, 12); /* rows not whole 16-byte packs: element by element */
    swiglu_packed16_case(ts, 1, 1);
    swiglu_packed16_case(ts, 3, 88);
    swiglu_packed16_case(ts, 64, 4864);
    swiglu_packed16_case(ts, 5, 12);
    swiglu_packed16_case(ts, 4, 8);
}

/* ---- Embedding ---- */

/* n tokens drawn from a vocabulary of `vocab` rows (vocab < n forces repeats; the first and last
 * token are made equal so a repeat exists even for small n). */
static void embedding_case(struct test_state *ts, int n, int dim, int vocab)
{
    size_t no = (size_t)n * dim, nt = (size_t)vocab * dim;
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    MMUPT_CHECK(ids != NULL);
    unsigned s = (unsigned)(n * 7 + dim);
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        ids[i] = (int64_t)((s >> 8) % (unsigned)vocab);
    }
    ids[n - 1] = ids[0];
    float *table = alloc_floats(nt), *out = alloc_floats(no), *nan = nan_floats(no);
    float *dout = alloc_floats(no), *dtable = alloc_floats(nt);
    gpu_test_fill(table, nt, s + 1, -1.0f, 1.0f);
    gpu_test_fill(dout, no, s + 2, -1.0f, 1.0f);
    gpu_test_fill(dtable, nt, s + 3, -1.0f, 1.0f);
    int64_t *d_ids = gpu_test_upload(ids, (size_t)n * sizeof *ids);
    float *d_table = gpu_test_upload(table, nt * sizeof *table), *d_out = gpu_test_upload(nan, no * sizeof *nan);
    float *d_dout = gpu_test_upload(dout, no * sizeof *dout), *d_dtable = gpu_test_upload(dtable, nt * sizeof *dtable);

    embedding_forward_cpu(out, ids, table, n, dim);
    embedding_forward_cuda(d_out, d_ids, d_table, n, dim, NULL);
    float e = gpu_test_dev_err(d_out, out, no);
    CHECK_MSG(ts, e == 0.0f, "embedding forward n %d dim %d: err %g (must be bitwise equal)", n, dim, e);

    embedding_backward_cpu(dtable, dout, ids, n, dim);
    embedding_backward_cuda(d_dtable, d_dout, d_ids, n, dim, NULL);
    e = gpu_test_dev_err(d_dtable, dtable, nt);
    CHECK_MSG(ts, e == 0.0f, "embedding backward n %d dim %d: err %g (must be bitwise equal)", n, dim, e);

    cudaFree(d_ids); cudaFree(d_table); cudaFree(d_out); cudaFree(d_dout); cudaFree(d_dtable);
    free(ids); free(table); free(out); free(nan); free(dout); free(dtable);
}

static void test_embedding(struct test_state *ts)
{
    embedding_case(ts, 1, 1, 1);
    embedding_case(ts, 7, 80, 3);
    embedding_case(ts, 300, 896, 50);   /* 0.5B hidden, ~6 uses per row */
    embedding_case(ts, 64, 1000, 1000); /* dim not a multiple of the block: a partial last block */
    embedding_case(ts, 5000, 3584, 151); /* 7B hidden; 17.9M outputs run the grid-stride loop */
}

/* ---- Launch details ---- */

/* Empty inputs launch nothing (a zero-block launch is a CUDA error, which would end the test), and
 * a NULL gradient is "not needed": none of these may touch memory, so NULL pointers are fine. */
/* add_bf16 (cuDNN's bf16 attention gradients into the fp32 accumulators): bit for bit the reference,
 * over a length that is not a multiple of the launch's block, NaN and infinities carried. */
static void test_add_bf16(struct test_state *ts)
{
    long n = 70001;
    float *y = malloc((size_t)n * sizeof *y), *x = malloc((size_t)n * sizeof *x);
    uint16_t *x16 = malloc((size_t)n * sizeof *x16);
    gpu_test_fill(y, (size_t)n, 71, -3.0f, 3.0f);
    gpu_test_fill(x, (size_t)n, 72, -3.0f, 3.0f);
    x[5] = NAN, x[6] = INFINITY, x[7] = -INFINITY;
    cast_bf16_cpu(x16, x, n);
    float *d_y = gpu_test_upload_floats(y, (size_t)n);
    uint16_t *d_x = gpu_test_upload(x16, (size_t)n * sizeof *x16);
    add_bf16_cuda(d_y, d_x, n, NULL);
    add_bf16_cpu(y, x16, n);
    CUDA_CHECK(cudaDeviceSynchronize());
    CHECK(ts, gpu_test_dev_same_host(d_y, y, (size_t)n));
    CHECK(ts, isnan(y[5]) && isinf(y[6]) && y[6] > 0 && isinf(y[7]) && y[7] < 0);
    CUDA_CHECK(cudaFree(d_y));
    CUDA_CHECK(cudaFree(d_x));
    free(y), free(x), free(x16);
}

static void test_empty_and_null(struct test_state *ts)
{
    rope_forward_cuda(NULL, NULL, NULL, 0, 14, 128, NULL);
    rope_backward_cuda(NULL, NULL, NULL, 5, 0, 128, NULL);
    swiglu_forward_cuda(NULL, NULL, NULL, 0, NULL);
    swiglu_backward_cuda(NULL, NULL, NULL, NULL, NULL, 0, NULL);
    swiglu_backward_cuda(NULL, NULL, NULL, NULL, NULL, 1000, NULL);
    gelu_forward_cuda(NULL, NULL, 0, NULL);
    gelu_backward_cuda(NULL, NULL, NULL, 1000, NULL);
    quick_gelu_forward_cuda(NULL, NULL, 0, NULL);
    quick_gelu_backward_cuda(NULL, NULL, NULL, 1000, NULL);
    embedding_forward_cuda(NULL, NULL, NULL, 0, 896, NULL);
    embedding_backward_cuda(NULL, NULL, NULL, 10, 896, NULL);
    embedding_backward_cuda(NULL, NULL, NULL, 0, 896, NULL);
    cudaError_t st = cudaDeviceSynchronize();
    CHECK_MSG(ts, st == cudaSuccess, "%s", cudaGetErrorString(st));
}

/* The stream argument is honoured: work queued on a non-default stream gives the same result. */
static void test_stream(struct test_state *ts)
{
    long n = 4096;
    size_t sz = (size_t)n * sizeof(float);
    float *x = alloc_floats((size_t)n), *want = alloc_floats((size_t)n), *got = alloc_floats((size_t)n);
    act_inputs(x, n, 99, -8.0f, 8.0f);
    quick_gelu_forward_cpu(want, x, n);
    cudaStream_t stream;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    float *d_x = gpu_test_upload(x, sz), *d_out;
    CUDA_CHECK(cudaMalloc((void **)&d_out, sz));
    quick_gelu_forward_cuda(d_out, d_x, n, stream);
    CUDA_CHECK(cudaMemcpyAsync(got, d_out, sz, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    float e = gpu_test_err(got, want, (size_t)n);
    CHECK_MSG(ts, e < TOL_ACT, "quick_gelu on a stream: err %g", e);
    CUDA_CHECK(cudaStreamDestroy(stream));
    cudaFree(d_x); cudaFree(d_out);
    free(x); free(want); free(got);
}

int main(void)
{
    gpu_test_require_device();
    struct test_state ts = {0};
    RUN(&ts, test_rope);
    RUN(&ts, test_rope_grid_stride);
    RUN(&ts, test_rope_qkv);
    RUN(&ts, test_swiglu);
    RUN(&ts, test_gelu);
    RUN(&ts, test_quick_gelu);
    RUN(&ts, test_embedding);
    RUN(&ts, test_add_bf16);
    RUN(&ts, test_empty_and_null);
    RUN(&ts, test_stream);
    return test_summary(&ts);
}
