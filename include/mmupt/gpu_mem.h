/* Device memory, copies and the execution context of the device model, in plain C: the callers
 * (src/model/dev*.c) include no CUDA header and never dereference a device pointer.
 *
 * Two implementations share this interface:
 *   src/gpu/mem_cuda.c - the CUDA runtime (a CUDA build);
 *   src/gpu/mem_emu.c  - an emulator in CPU-only builds: "device" memory is host memory that is
 *                        mprotect'ed PROT_NONE except while an emulated kernel or copy runs, every
 *                        kernel checks that its pointer arguments lie inside live device allocations
 *                        of the right extent, and fresh allocations are filled with NaN. It runs the
 *                        device model's drivers in CI against the CPU model, so everything of the GPU
 *                        path except the kernels themselves (checked one by one in the gpu suite)
 *                        is tested on every commit.
 *
 * Work is ordered on the context's one stream. Uploads may return before the copy finishes (the
 * host source can be reused at once: pageable memory is staged); downloads return when the host
 * destination holds the data. Running out of device memory is fatal (it names the size). */
#ifndef MMUPT_GPU_MEM_H
#define MMUPT_GPU_MEM_H

#include <stddef.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct gpu_blas;

/* A stream and the GEMM handle bound to it. */
/* Performance switches of the device path, from the environment (src/gpu/tuning.c), each off by default
 * until a GPU run shows it faster (docs/performance.md has the runs; three are on since, and gemm_residual
 * is on from the start - the same sums, a switch for its A/B row and as a way back):
 *   cudnn_attention  MMUPT_ATTENTION=cudnn (ON by default since 2026-11-28: the 1.5B learner step
 *                    0.060 s against 0.067 with cuBLAS on an H200, the VL-3B step 0.173 against
 *                    0.195): the bf16 model's blocks attend through cuDNN's fused SDPA graphs
 *                    (attention_sdpa_*: bf16 q/k/v/out and gradients) where cuDNN plans the shapes,
 *                    else - and with MMUPT_ATTENTION=cublas - through cuBLAS GEMMs around softmax kernels;
 *   flash_attention  MMUPT_ATTENTION=flash: the same blocks attend with the fused kernels
 *                    (attention_flash_*) instead (2026-11-28, H200: the 1.5B learner step 0.071 s
 *                    against cuDNN's 0.060 - stays off);
 *   decode_split     MMUPT_DECODE_SPLIT=1 (or 0): decode attention splits a long cache's rows over
 *                    several blocks (attention_decode_cuda's count);
 *   decode_stage     MMUPT_DECODE_STAGE=1 (or 0; ON by default since 2026-11-28: the 0.5B decode step
 *                    1.360 against 1.399 ms on an H200, the same bits): decode attention first copies
 *                    each block's cached rows into shared memory (one memory round trip) when they fit
 *                    (attention_decode's stage);
 *   decode_pdl       MMUPT_DECODE_PDL=1 (or 0): the bf16 decode step's own kernels that follow its GEMMs
 *                    (attention, norms, SwiGLU) launch programmatically, their launches overlapping
 *                    the GEMMs' ends (kernels/cuda/pdl.cuh);
 *   decode_mma       MMUPT_DECODE_MMA=1 (or 0; ON by default since 2026-11-28: the 0.5B rollout
 *                    46,834 against 41,068 tokens/s on an H200): bf16 decode attention on tensor cores
 *                    where the shape allows (ATTN_DECODE_MMA; within bf16 rounding of the fp32
 *                    kernel, not its bits; 0 brings the fp32 kernel back);
 *   gemm_residual    MMUPT_GEMM_RESIDUAL=1 (or 0; ON by default, written 2026-11-28 without a GPU:
 *                    the emulator's results are the same bits either way): a bias-free bf16 block's
 *                    o- and down projections add the residual stream in cuBLASLt's epilogue
 *                    (matmul_forward_bf16_res) instead of a separate add - 0 for the A/B row of
 *                    benchmarks/learner_cuda.sh, or should cuBLASLt's choice for it prove slower;
 *   gemm_tune        MMUPT_GEMM_TUNE=1 (or 0): the bf16 GEMMs go through cuBLASLt plans whose
 *                    algorithm is chosen by timing the candidates once per shape (src/gpu/gemm_lt.c;
 *                    CUDA builds: the emulator's GEMMs are the CPU references). 2% faster on an H200
 *                    (2026-11-28) but off: the choice can differ between runs, and with it the last
 *                    bits of every result;
 *   gemm_tune_file   MMUPT_GEMM_TUNE_FILE=PATH: tuning with the choices kept in PATH (read if it
 *                    exists, rewritten as shapes are timed; include/mmupt/gemm_tune_file.h), so that
 *                    runs sharing the file run the same algorithms and repeat bit for bit; turns
 *                    gemm_tune on (MMUPT_GEMM_TUNE=0 beside it is an error). "" when unset. */
struct gpu_tuning {
    int flash_attention, cudnn_attention, decode_split, decode_stage, decode_pdl, decode_mma, gemm_residual, gemm_tune;
    char gemm_tune_file[1024];
};
int gpu_tuning_from_env(struct gpu_tuning *t, struct mmupt_err *err);

struct gpu_ctx {
    void *stream;          /* cudaStream_t */
    struct gpu_blas *blas; /* for matmul_*_cuda */
    int device;
    struct gpu_tuning tuning;
};

/* Start on the current device: -1 with err (the reason: no driver, no device, a bad switch in the
 * environment) when there is none. */
int gpu_ctx_init(struct gpu_ctx *g, struct mmupt_err *err);
void gpu_ctx_free(struct gpu_ctx *g);

void *gpu_alloc(const struct gpu_ctx *g, size_t bytes);
void gpu_free(const struct gpu_ctx *g, void *p); /* NULL is a no-op */
void gpu_upload(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes);
void gpu_download(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes);
void gpu_copy(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes); /* device to device */
/* height rows of width bytes, device to device: row r from src + r * spitch to dst + r * dpitch (one
 * call for what would be height gpu_copy calls, e.g. a cache slot in every layer). */
void gpu_copy_2d(const struct gpu_ctx *g, void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                 size_t height);
void gpu_zero(const struct gpu_ctx *g, void *p, size_t bytes);
/* Wait until everything queued on the stream has run; a failed kernel is fatal here. */
void gpu_sync(const struct gpu_ctx *g);

/* 1 when this build's device is the emulator (a CPU-only build), 0 with CUDA. */
int gpu_emulated(void);

/* Memory and work counters. The emulator counts everything; with CUDA, live_bytes and peak_bytes
 * are the stream-ordered pool's bytes in use now and at most since the context started (launches
 * and live_allocs are 0: not counted). */
struct gpu_mem_stats {
    long long launches;   /* emulated kernels and copies */
    int live_allocs;
    size_t live_bytes, peak_bytes;
};
void gpu_mem_stats(const struct gpu_ctx *g, struct gpu_mem_stats *s);

/* Hand the memory the stream-ordered pool keeps (everything freed: gpu_ctx_init tells it to keep
 * it) back to the driver, after the stream's work is done. For libraries that allocate outside the
 * pool - NCCL's communicator buffers - which could otherwise find the device full of freed memory.
 * A no-op on the emulator. */
void gpu_release_cached(const struct gpu_ctx *g);

/* CUDA graphs: the work of fn(ctx) on the context's stream (a decode step) recorded once and
 * replayed with one launch, which removes the per-kernel launch cost that dominates small decode
 * batches. Recording does NOT run the work. The work must be capturable: no copy to or from the host,
 * no synchronisation, no allocation (device-to-device copies and zeroing are fine; the twins that
 * copy launch metadata from the host, sync or take stream-ordered scratch - rows, sample, sumsq,
 * grpo_loss, the norm backwards, attention_backward, embedding_backward, matmul_backward with a bias
 * gradient - cannot be recorded, and a CUDA_CHECK inside them dies before the capture could fail softly), and every
 * address it uses is baked into the graph, so each buffer must stay where it was while the graph
 * lives. gpu_graph_record returns NULL with err when the capture failed (the caller runs fn itself).
 *
 * The emulator records too, checking the rules: a host copy, synchronisation or allocation inside a
 * recording is fatal, and a launch runs fn again on a copy of ctx (ctx_bytes of it, taken at record
 * time) and dies unless it issues the same kernels on the same device addresses and extents as the
 * recording did - what a real replay would have used. */
struct gpu_graph;
typedef void (*gpu_work_fn)(void *ctx);
struct gpu_graph *gpu_graph_record(const struct gpu_ctx *g, gpu_work_fn fn, void *ctx, size_t ctx_bytes,
                                   struct mmupt_err *err);
void gpu_graph_launch(const struct gpu_ctx *g, const struct gpu_graph *gr);
void gpu_graph_free(struct gpu_graph *gr); /* NULL is a no-op */

/* Typed conveniences: n floats. */
static inline float *gpu_alloc_floats(const struct gpu_ctx *g, long long n)
{
    return (float *)gpu_alloc(g, (size_t)(n > 0 ? n : 1) * sizeof(float));
}

/* n floats set to 0 (the backward ops accumulate into what they are given). */
static inline float *gpu_zeros_floats(const struct gpu_ctx *g, long long n)
{
    float *p = gpu_alloc_floats(g, n);
    gpu_zero(g, p, (size_t)(n > 0 ? n : 1) * sizeof(float));
    return p;
}

#ifdef __cplusplus
}
#endif

#endif
