/* Device memory, copies and graphs on the CUDA runtime (include/mmupt/gpu_mem.h). Allocation is
 * stream-ordered (cudaMallocAsync): the device model allocates per forward pass, and the pool makes
 * that cheap after the first step without a hand-written arena - provided the pool keeps what is
 * freed (its default release threshold of 0 hands memory back to the driver at every
 * synchronisation, and the next step maps it again), so gpu_ctx_init raises the threshold. */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/cuda_check.h"
#include "mmupt/gpu_blas.h"
#include "mmupt/gpu_mem.h"

int gpu_ctx_init(struct gpu_ctx *g, struct mmupt_err *err)
{
    g->stream = NULL;
    g->blas = NULL;
    if (gpu_tuning_from_env(&g->tuning, err)) return -1;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        return mmupt_fail(err, "no usable CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    }
    CUDA_CHECK(cudaGetDevice(&g->device));
    cudaMemPool_t pool;
    uint64_t keep = UINT64_MAX;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, g->device));
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    uint64_t zero = 0; /* the high-water mark gpu_mem_stats reports starts here */
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    g->stream = st;
    g->blas = mmupt_xmalloc(sizeof *g->blas);
    if (gpu_blas_init(g->blas, st, err)) {
        free(g->blas);
        g->blas = NULL;
        cudaStreamDestroy(st);
        g->stream = NULL;
        return -1;
    }
    gpu_blas_set_tune(g->blas, g->tuning.gemm_tune);
    if (g->tuning.gemm_tune_file[0] && gpu_blas_set_tune_file(g->blas, g->tuning.gemm_tune_file, err)) {
        gpu_ctx_free(g);
        return -1;
    }
    return 0;
}

void gpu_ctx_free(struct gpu_ctx *g)
{
    if (g->blas) {
        gpu_blas_free(g->blas);
        free(g->blas);
    }
    if (g->stream) {
        CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)g->stream));
        cudaStreamDestroy((cudaStream_t)g->stream);
    }
    g->blas = NULL;
    g->stream = NULL;
}

void *gpu_alloc(const struct gpu_ctx *g, size_t bytes)
{
    void *p = NULL;
    cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, (cudaStream_t)g->stream);
    if (e != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        mmupt_die_at(__FILE__, __LINE__, "out of GPU memory: %zu bytes requested, %zu of %zu free (%s)", bytes, free_b,
                     total_b, cudaGetErrorString(e));
    }
    return p;
}

void gpu_free(const struct gpu_ctx *g, void *p)
{
    if (p) CUDA_CHECK(cudaFreeAsync(p, (cudaStream_t)g->stream));
}

void gpu_upload(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes)
{
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)g->stream));
}

void gpu_download(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes)
{
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, (cudaStream_t)g->stream));
    CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)g->stream));
}

void gpu_copy(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes)
{
    if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)g->stream));
}

void gpu_copy_2d(const struct gpu_ctx *g, void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                 size_t height)
{
    if (width && height)
        CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, height, cudaMemcpyDeviceToDevice,
                                     (cudaStream_t)g->stream));
}

void gpu_zero(const struct gpu_ctx *g, void *p, size_t bytes)
{
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, (cudaStream_t)g->stream));
}

int gpu_emulated(void)
{
    return 0;
}

void gpu_mem_stats(const struct gpu_ctx *g, struct gpu_mem_stats *s)
{
    memset(s, 0, sizeof *s);
    cudaMemPool_t pool;
    uint64_t now = 0, high = 0;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, g->device));
    CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &now));
    CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high));
    s->live_bytes = (size_t)now;
    s->peak_bytes = (size_t)high;
}

void gpu_release_cached(const struct gpu_ctx *g)
{
    cudaMemPool_t pool;
    CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)g->stream));
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, g->device));
    CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
}

struct gpu_graph {
    cudaGraphExec_t exec;
};

struct gpu_graph *gpu_graph_record(const struct gpu_ctx *g, gpu_work_fn fn, void *ctx, size_t ctx_bytes,
                                   struct mmupt_err *err)
{
    (void)ctx_bytes; /* the graph holds the addresses; ctx is not needed after this */
    cudaStream_t st = (cudaStream_t)g->stream;
    /* thread-local: other threads (MPI progress, OpenMP) may use CUDA meanwhile */
    cudaError_t e = cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        cudaGetLastError();
        mmupt_fail(err, "cannot start a CUDA graph capture: %s", cudaGetErrorString(e));
        return NULL;
    }
    fn(ctx);
    cudaGraph_t graph = NULL;
    e = cudaStreamEndCapture(st, &graph);
    cudaGraphExec_t exec = NULL;
    if (e == cudaSuccess) e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
        cudaGetLastError();
        mmupt_fail(err, "CUDA graph capture failed: %s", cudaGetErrorString(e));
        return NULL;
    }
    struct gpu_graph *gr = mmupt_xmalloc(sizeof *gr);
    gr->exec = exec;
    return gr;
}

void gpu_graph_launch(const struct gpu_ctx *g, const struct gpu_graph *gr)
{
    CUDA_CHECK(cudaGraphLaunch(gr->exec, (cudaStream_t)g->stream));
}

void gpu_graph_free(struct gpu_graph *gr)
{
    if (!gr) return;
    cudaGraphExecDestroy(gr->exec);
    free(gr);
}

void gpu_sync(const struct gpu_ctx *g)
{
    CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)g->stream));
    CUDA_CHECK(cudaGetLastError());
}
