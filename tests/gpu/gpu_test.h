/* Helpers shared by the gpu-suite tests: skip without a device, deterministic random inputs,
 * host<->device copies, and the error measure the tolerances are written in. */
#ifndef MMUPT_GPU_TEST_H
#define MMUPT_GPU_TEST_H

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/cuda_check.h"
#include "mmupt/err.h"
#include "mmupt/gpu.h"
#include "mmupt/gpu_blas.h"

/* Exit 77 (meson's skip) with the reason when no usable GPU is present; else print the device. */
static inline void gpu_test_require_device(void)
{
    struct gpu_info g;
    gpu_query(&g);
    if (g.device_count == 0) {
        printf("SKIP: %s\n", g.reason);
        exit(TEST_SKIP);
    }
    printf("device: %s\n", g.device_name);
}

/* The start of a test that launches on a stream: skip without a device, then a BLOCKING stream,
 * so it waits for the synchronous uploads on the legacy default stream. */
static inline cudaStream_t gpu_test_begin_stream(void)
{
    gpu_test_require_device();
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreate(&st));
    return st;
}

/* A test main's cuBLAS handle on a fresh stream (gpu_test_begin_stream: skips without a device):
 * 0, or 1 with the reason on stderr when the handle cannot start; gpu_test_blas_close frees both. */
static inline int gpu_test_blas_open(struct gpu_blas *blas, cudaStream_t *st)
{
    struct mmupt_err err = {0};
    *st = gpu_test_begin_stream();
    if (gpu_blas_init(blas, *st, &err) == 0) return 0;
    fprintf(stderr, "gpu_blas_init: %s\n", err.msg);
    return 1;
}

static inline void gpu_test_blas_close(struct gpu_blas *blas, cudaStream_t st)
{
    gpu_blas_free(blas);
    CUDA_CHECK(cudaStreamDestroy(st));
}

/* 1 when a product of shapes may be covered sparsely: on the SIMT interpreter (src/simt), which
 * checks the kernels' logic, not their rounding at scale, and runs each thread as a CPU fiber, a test
 * keeps only the combinations whose index sum is 0 modulo `period` (the largest dimension's size,
 * so every combination of the other dimensions still meets exactly one of its values). On a GPU
 * every combination runs. */
static inline int gpu_test_keep(int index_sum, int period)
{
#ifdef MMUPT_SIMT
    return index_sum % period == 0;
#else
    (void)index_sum, (void)period;
    return 1;
#endif
}

/* n floats uniform in [lo, hi) from an LCG keyed by seed: the same inputs on every machine. */
static inline void gpu_test_fill(float *x, size_t n, unsigned seed, float lo, float hi)
{
    unsigned s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)((s >> 8) / 16777216.0);
    }
}

/* A device copy of n host bytes (freed with cudaFree), complete on return: cudaMemcpy from pageable
 * memory may return before the copy has landed, and a test's work on a non-blocking stream is not
 * ordered after the legacy stream's copy. */
static inline void *gpu_test_upload(const void *host, size_t bytes)
{
    void *d = NULL;
    CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 1));
    if (bytes) CUDA_CHECK(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaDeviceSynchronize());
    return d;
}

static inline void gpu_test_download(void *host, const void *dev, size_t bytes)
{
    CUDA_CHECK(cudaDeviceSynchronize());
    if (bytes) CUDA_CHECK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
}

/* max_i |got - want| / (1 + |want|): relative for large values, absolute near zero. */
static inline float gpu_test_err(const float *got, const float *want, size_t n)
{
    float worst = 0;
    for (size_t i = 0; i < n; i++) {
        float e = fabsf(got[i] - want[i]) / (1.0f + fabsf(want[i]));
        if (!(e <= worst)) worst = e; /* NaN propagates as a failure */
    }
    return worst;
}

/* Float-array conveniences the tests share. */
static inline float *gpu_test_upload_floats(const float *h, size_t n) { return gpu_test_upload(h, n * sizeof *h); }

/* A malloc'd host copy of n host floats (inputs a kernel updates in place, kept for the reference). */
static inline float *gpu_test_host_copy(const float *h, size_t n)
{
    float *c = mmupt_xmalloc((n ? n : 1) * sizeof *c);
    if (n) memcpy(c, h, n * sizeof *c);
    return c;
}

/* A malloc'd host copy of n device floats (after the device finished its work). */
static inline float *gpu_test_download_floats(const float *dev, size_t n)
{
    float *h = mmupt_xmalloc((n ? n : 1) * sizeof *h);
    gpu_test_download(h, dev, n * sizeof *h);
    return h;
}

/* gpu_test_err of n device floats against a host reference. */
static inline float gpu_test_dev_err(const float *dev, const float *want, size_t n)
{
    float *got = gpu_test_download_floats(dev, n);
    float e = gpu_test_err(got, want, n);
    free(got);
    return e;
}

/* 1 when n device floats hold the same bits as a host array, a NaN matching any NaN: a GPU's
 * arithmetic returns the canonical NaN (0x7fffffff) where x86 carries an operand's payload
 * (0x7fc00000 for NAN), and no op of the project gives a payload a meaning. */
static inline int gpu_test_dev_same_host(const float *dev, const float *host, size_t n)
{
    float *got = gpu_test_download_floats(dev, n);
    int same = 1;
    for (size_t i = 0; i < n && same; i++)
        same = memcmp(&got[i], &host[i], sizeof *got) == 0 || (isnan(got[i]) && isnan(host[i]));
    free(got);
    return same;
}

/* 1 when two device arrays of n floats hold the same bits. */
static inline int gpu_test_dev_same(const float *a, const float *b, size_t n)
{
    float *hb = gpu_test_download_floats(b, n);
    int same = gpu_test_dev_same_host(a, hb, n);
    free(hb);
    return same;
}

/* The same for bf16 buffers (uint16_t): device against host, and device against device. */
static inline int gpu_test_dev_same16_host(const uint16_t *dev, const uint16_t *host, size_t n)
{
    uint16_t *got = (uint16_t *)malloc((n ? n : 1) * sizeof *got);
    gpu_test_download(got, dev, n * sizeof *got);
    int same = memcmp(got, host, n * sizeof *got) == 0;
    free(got);
    return same;
}

static inline int gpu_test_dev_same16(const uint16_t *a, const uint16_t *b, size_t n)
{
    uint16_t *hb = (uint16_t *)malloc((n ? n : 1) * sizeof *hb);
    gpu_test_download(hb, b, n * sizeof *hb);
    int same = gpu_test_dev_same16_host(a, hb, n);
    free(hb);
    return same;
}

/* A device buffer of n bf16 values filled with NaN (0xffff): every value a kernel must write. */
static inline uint16_t *gpu_test_nan16(size_t n)
{
    uint16_t *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, (n ? n : 1) * sizeof *d));
    CUDA_CHECK(cudaMemset(d, 0xff, (n ? n : 1) * sizeof *d));
    return d;
}

#endif
