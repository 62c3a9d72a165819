/* Helpers shared by the gpu-suite tests: skip without a device, deterministic random inputs,
 * host<->device copies, and the error measure the tolerances are written in. */
#ifndef MMUPT_GPU_TEST_H
#define MMUPT_GPU_TEST_H

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../test.h"
#include "mmupt/cuda_check.h"
#include "mmupt/gpu.h"

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

/* n floats uniform in [lo, hi) from an LCG keyed by seed: the same inputs on every machine. */
static inline void gpu_test_fill(float *x, size_t n, unsigned seed, float lo, float hi)
{
    unsigned s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)((s >> 8) / 16777216.0);
    }
}

/* A device copy of n host bytes (freed with cudaFree). */
static inline void *gpu_test_upload(const void *host, size_t bytes)
{
    void *d = NULL;
    CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 1));
    if (bytes) CUDA_CHECK(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
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

#endif
