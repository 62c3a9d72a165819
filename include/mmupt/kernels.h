/* Compute kernels. Each op has a CPU reference (kernels/cpu/NAME.c, the truth every test runs) and
 * a CUDA twin with the same name and argument order (kernels/cuda/NAME.cu), which takes device
 * pointers and a stream and is tested against the reference on a GPU.
 *
 * Conventions of the CPU reference (fp32, row-major, OpenMP):
 *   - forward outputs are overwritten;
 *   - every backward ACCUMULATES (+=) into each gradient it is given, because tied weights and
 *     residual streams receive gradient from several places; a NULL gradient means "not needed";
 *   - results do not depend on the number of OpenMP threads: every output element has one writer
 *     and every reduction runs in a fixed order (OpenBLAS GEMMs excepted, see matmul). */
#ifndef MMUPT_KERNELS_H
#define MMUPT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RMSNorm over the last dimension: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight.
 * rstd[r] (may be NULL) receives 1 / sqrt(mean + eps) for the backward pass.
 * x, out: [rows, dim]; weight: [dim]; rstd: [rows]. out may alias x. */
void rmsnorm_forward_cpu(float *out, float *rstd, const float *x, const float *weight, int rows, int dim, float eps);

/* Decode attention over ONE layer of a slot-major KV cache, cache_k/cache_v: [n_slots, max_len, n_kv,
 * hd]. New row i (q, out: [n, n_heads, hd]) belongs to sequence slot[i] and sits at position pos[i]:
 * it attends to that slot's rows 0..pos[i] (its own key, appended by kv_append, included); GQA as in
 * attention_forward_cpu; scale 1/sqrt(hd). slot and pos are index arrays in the kernel's memory (device
 * for the twin): built once per decode step and shared by every layer, so a step needs no per-layer
 * host tables (and can be captured in a CUDA graph). */
void attention_decode_cpu(float *out, const float *q, const float *cache_k, const float *cache_v, const int *slot,
                          const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv, int hd);
/* The new rows' keys and values into the cache layer: cache[slot[i], pos[i], :] = k[i, :] (and v).
 * k, v: [n, kvd]; cache_k, cache_v: [n_slots, max_len, kvd]. */
void kv_append_cpu(float *cache_k, float *cache_v, const float *k, const float *v, const int *slot, const int *pos, int n,
                   int n_slots, int max_len, int kvd);
/* The same over a bf16 cache (half the bytes a decode step reads): the append rounds k and v to bf16
 * (nearest even), the attention widens them; everything else is the fp32 reference's. */
void attention_decode_bf16_cpu(float *out, const float *q, const uint16_t *cache_k, const uint16_t *cache_v,
                               const int *slot, const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv,
                               int hd);
/* attention_decode_bf16, and out rounded to bf16 into out16 as cast_bf16 would (the o-projection's
 * operand: the bf16 decode step skips a cast). out16: [n, n_heads, hd]. */
void attention_decode_bf16_cast_cpu(float *out, uint16_t *out16, const float *q, const uint16_t *cache_k,
                                    const uint16_t *cache_v, const int *slot, const int *pos, int n, int n_slots,
                                    int max_len, int n_heads, int n_kv, int hd);
void kv_append_bf16_cpu(uint16_t *cache_k, uint16_t *cache_v, const float *k, const float *v, const int *slot,
                        const int *pos, int n, int n_slots, int max_len, int kvd);

/* The bf16 decode step's fused ops (src/model/dev_decode.c), each the op sequence it replaces - one
 * launch instead of several on the device:
 *   rmsnorm_forward_cast: rmsnorm_forward, and out rounded to bf16 into out16 as cast_bf16 would
 *     (the next GEMM's operand);
 *   residual_rmsnorm_forward_cast: sum = a + b (residual_forward; sum may alias a or b), then
 *     rmsnorm_forward_cast of sum into out, out16, rstd - the residual add and the next norm as one;
 *   swiglu_forward_cast: swiglu_forward, likewise;
 *   swiglu_packed_forward_cast: the same over rows of one gate/up GEMM's output, gu: [rows, 2 * inner]
 *     (gate in each row's first inner values, up in the next inner; out, out16: [rows, inner]);
 *   in each of these four out may be NULL: the bf16 rounding alone (a bf16 learner keeps no fp32
 *     copy that only its GEMMs would read);
 *   qkv_rope_append_bf16: qkv holds a decode step's q/k/v projections without their biases, one
 *     GEMM's output [n, n_heads*hd + 2*n_kv*hd] (each row q, then k, then v); adds bq, bk, bv (each
 *     may be NULL), applies RoPE (rope_forward's tables, [n, hd]) to q, written to q ([n, n_heads,
 *     hd]), and to k, and appends k and v to the bf16 cache as kv_append_bf16 (qkv is not written). */
void rmsnorm_forward_cast_cpu(float *out, uint16_t *out16, float *rstd, const float *x, const float *weight, int rows,
                              int dim, float eps);
void residual_rmsnorm_forward_cast_cpu(float *sum, float *out, uint16_t *out16, float *rstd, const float *a,
                                       const float *b, const float *weight, int rows, int dim, float eps);
void swiglu_forward_cast_cpu(float *out, uint16_t *out16, const float *gate, const float *up, long n);
void swiglu_packed_forward_cast_cpu(float *out, uint16_t *out16, const float *gu, long rows, long inner);
/* swiglu_packed_forward_cast from gate/up already in bf16 (gu16: a bf16 learner's gate/up GEMM output,
 * matmul_forward_bf16_out16): the rounding of SwiGLU of the widened values, out16 only. */
void swiglu_packed16_forward_cast_cpu(uint16_t *out16, const uint16_t *gu16, long rows, long inner);
/* The gradient of swiglu_packed_forward's out: dgu += [dgate | dup] per row, laid out as gu (the
 * packed gate/up GEMM's gradient, for one backward GEMM). */
void swiglu_packed_backward_cpu(float *dgu, const float *dout, const float *gu, long rows, long inner);
/* The same gradient rounded to bf16 and assigned, not added: dgu = bf16(that of a zeroed buffer).
 * A bf16 model's gate/up projection without bias rounds this gradient for its GEMMs anyway, so
 * writing the rounding directly spares the fp32 buffer, its zero fill and the cast. */
void swiglu_packed_backward_bf16_cpu(uint16_t *dgu, const float *dout, const float *gu, long rows, long inner);
/* The same from bf16 gate/up (gu16) and a bf16 dout (dout16: the down projection's input gradient as
 * its GEMM rounded it, matmul_backward_bf16_dy16), widened: every operand of a bf16 decoder MLP's
 * backward in bf16. */
void swiglu_packed16_backward16_cpu(uint16_t *dgu, const uint16_t *dout16, const uint16_t *gu16, long rows, long inner);
void qkv_rope_append_bf16_cpu(float *q, const float *qkv, const float *bq, const float *bk, const float *bv,
                              const float *cos, const float *sin, uint16_t *cache_k, uint16_t *cache_v, const int *slot,
                              const int *pos, int n, int n_heads, int n_kv, int hd, int n_slots, int max_len);
/* qkv_rope_append_bf16 (q kept internally), then attention_decode_bf16_cast: a bf16 decode layer's
 * whole attention from its q/k/v GEMM output to the o-projection's operand (one launch on the device). */
void attention_decode_qkv_bf16_cast_cpu(float *out, uint16_t *out16, const float *qkv, const float *bq, const float *bk,
                                        const float *bv, const float *cos, const float *sin, uint16_t *cache_k,
                                        uint16_t *cache_v, const int *slot, const int *pos, int n, int n_slots,
                                        int max_len, int n_heads, int n_kv, int hd);

/* CUDA twins (kernels/cuda/NAME.cu): the CPU reference's name with _cuda, the same arguments and
 * contract (backward ops accumulate), device pointers, and a trailing stream - a cudaStream_t passed
 * as void* so C callers need no CUDA headers (NULL: the default stream). fp32 for now; each is
 * tested against its reference in the gpu suite (tests/gpu/), with the tolerance written there.
 * CPU-only builds define the same names on the device emulator (src/gpu/kernels_emu.c: argument
 * checks, then the CPU reference), so callers link and run in every build. */
void rmsnorm_forward_cuda(float *out, float *rstd, const float *x, const float *weight, int rows, int dim, float eps,
                          void *stream);
void rmsnorm_backward_cuda(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                           const float *rstd, int rows, int dim, void *stream);
void rmsnorm_backward_res_cuda(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                               const float *rstd, const float *res, int rows, int dim, void *stream);
void rmsnorm_backward_cast_cuda(float *dx, uint16_t *dx16, float *dweight, const float *dout, const float *x,
                                const float *weight, const float *rstd, const float *res, int rows, int dim,
                                void *stream);
void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *x, const float *weight,
                            const float *bias, int rows, int dim, float eps, void *stream);
void layernorm_backward_cuda(float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                             const float *weight, const float *mean, const float *rstd, int rows, int dim,
                             void *stream);
void rope_forward_cuda(float *x, const float *cos, const float *sin, int rows, int n_heads, int head_dim, void *stream);
void rope_backward_cuda(float *dx, const float *cos, const float *sin, int rows, int n_heads, int head_dim,
                        void *stream);
void rope_qkv_forward_cuda(float *q, float *k, float *v, const float *qkv, const float *cos, const float *sin,
                           int rows, int n_heads, int n_kv, int head_dim, void *stream);
void rope_qkv_backward_cuda(float *dqkv, const float *dq, const float *dk, const float *dv, const float *cos,
                            const float *sin, int rows, int n_heads, int n_kv, int head_dim, void *stream);
void rope_qkv_backward_cast_cuda(float *dqkv, uint16_t *dqkv16, const float *dq, const float *dk, const float *dv,
                                 const float *cos, const float *sin, int rows, int n_heads, int n_kv, int head_dim,
                                 void *stream);
void rope_qkv_forward_cast_cuda(float *q, float *k, float *v, uint16_t *q16, uint16_t *k16, uint16_t *v16,
                                const float *qkv, const float *cos, const float *sin, int rows, int n_heads, int n_kv,
                                int head_dim, void *stream);
void rope_qkv16_backward_cast_cuda(float *dqkv, uint16_t *dqkv16, const uint16_t *dq16, const uint16_t *dk16,
                                   const uint16_t *dv16, const float *cos, const float *sin, int rows, int n_heads,
                                   int n_kv, int head_dim, void *stream);
void swiglu_forward_cuda(float *out, const float *gate, const float *up, long n, void *stream);
void swiglu_backward_cuda(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long n,
                          void *stream);
void gelu_forward_cuda(float *out, const float *x, long n, void *stream);
void gelu_backward_cuda(float *dx, const float *dout, const float *x, long n, void *stream);
void quick_gelu_forward_cuda(float *out, const float *x, long n, void *stream);
void quick_gelu_backward_cuda(float *dx, const float *dout, const float *x, long n, void *stream);
void embedding_forward_cuda(float *out, const int64_t *ids, const float *table, int n, int dim, void *stream);
void embedding_backward_cuda(float *dtable, const float *dout, const int64_t *ids, int n, int dim, void *stream);
/* seg is a HOST array (launch metadata); every other pointer is device memory. The products go
 * through cuBLAS: blas is the handle and stream (like the matmul twins below). */
struct gpu_blas;
void attention_forward_cuda(float *out, float *probs, const float *q, const float *k, const float *v, const int *seg,
                            int n_seg, int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas);
void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                             const float *k, const float *v, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                             int causal, const struct gpu_blas *blas);
/* The same with the products on TF32 tensor cores (mixed precision: the bf16 device model's), within
 * TF32 rounding (10-bit mantissas) of the fp32 twins. */
void attention_forward_tf32_cuda(float *out, float *probs, const float *q, const float *k, const float *v,
                                 const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                 const struct gpu_blas *blas);
void attention_backward_tf32_cuda(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                                  const float *q, const float *k, const float *v, const int *seg, int n_seg,
                                  int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas);
/* attention_flash_* (see the CPU references): one kernel forward, three backward (D = dout . out,
 * then dk/dv and dq, each summing in a fixed order). hd must pass attention_flash_supported. */
void attention_flash_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v,
                                  const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                                  const struct gpu_blas *blas);
void attention_flash_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                   const float *lse, const float *q, const float *k, const float *v, const int *seg,
                                   int n_seg, int n_heads, int n_kv, int hd, int causal, const struct gpu_blas *blas);
/* attention_sdpa_* through cuDNN's graph API (src/gpu/sdpa_cudnn.c): one forward and one backward
 * graph per (segments, longest segment rounded up to 128), built and planned on first use and cached
 * on the handle. The emulator runs the
 * CPU reference; the SIMT interpreter has no cuDNN. attention_sdpa_supported says whether a call can
 * run here - the shape (attention_sdpa_shape_ok), and with cuDNN whether it planned both graphs for
 * the call's segments (a refusal is printed once, with cuDNN's reason); the forward and backward may
 * only be called where it said yes, and it says the same every time for the same arguments. */
int attention_sdpa_supported(const int *seg, int n_seg, int n_heads, int n_kv, int hd, int causal,
                             const struct gpu_blas *blas);
void attention_sdpa_forward_cuda(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal, const struct gpu_blas *blas);
void attention_sdpa_backward_cuda(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                  const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                  const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                  int causal, const struct gpu_blas *blas);
/* slot and pos are DEVICE arrays, as everything else (see attention_decode_cpu). scores is the caller's
 * device scratch of n * n_heads * max_len floats (NULL when n = 0): the decode step runs inside a
 * recorded CUDA graph, where the twin must not allocate. count (may be NULL): n * n_kv counters, zero
 * before the first call, which every call leaves zero - with them a long cache's rows are split over
 * several blocks per (row, kv head) and merged by the last (kernels/cuda/attention_decode.cu). flags:
 * ATTN_DECODE_STAGE - an unsplit call first copies each block's cached rows into shared memory when
 * they fit (the same results; MMUPT_DECODE_STAGE, gpu_mem.h); ATTN_DECODE_PDL (the fused q/k/v form
 * only) - launched programmatically after the GEMM before it (MMUPT_DECODE_PDL); ATTN_DECODE_MMA (bf16
 * caches) - on bf16 tensor cores where the shape allows (a group of at most 16 q heads, hd 16, 32,
 * 64 or 128; kernels/cuda/attention_decode_mma.cu): q and the weights rounded to bf16 as they enter the
 * products, so within bf16 rounding of the reference, not its fp32 tolerance (MMUPT_DECODE_MMA). */
enum { ATTN_DECODE_STAGE = 1, ATTN_DECODE_PDL = 2, ATTN_DECODE_MMA = 4 };
void attention_decode_cuda(float *out, const float *q, const float *cache_k, const float *cache_v, const int *slot,
                           const int *pos, int n, int n_slots, int max_len, int n_heads, int n_kv, int hd,
                           float *scores, unsigned *count, int flags, void *stream);
/* Whether a call with stage on copies its rows into shared memory (a cache of max_len rows, 16-byte
 * aligned; bf16 or fp32 elements); else it runs as without stage. */
int attention_decode_stage_fits(int n_heads, int n_kv, int hd, int max_len, int bf16);
void kv_append_cuda(float *cache_k, float *cache_v, const float *k, const float *v, const int *slot, const int *pos,
                    int n, int n_slots, int max_len, int kvd, void *stream);
void attention_decode_bf16_cuda(float *out, const float *q, const uint16_t *cache_k, const uint16_t *cache_v,
                                const int *slot, const int *pos, int n, int n_slots, int max_len, int n_heads,
                                int n_kv, int hd, float *scores, unsigned *count, int flags, void *stream);
/* The same, and out rounded to bf16 into out16 (see attention_decode_bf16_cast_cpu): one launch. */
void attention_decode_bf16_cast_cuda(float *out, uint16_t *out16, const float *q, const uint16_t *cache_k,
                                     const uint16_t *cache_v, const int *slot, const int *pos, int n, int n_slots,
                                     int max_len, int n_heads, int n_kv, int hd, float *scores, unsigned *count,
                                     int flags, void *stream);
void kv_append_bf16_cuda(uint16_t *cache_k, uint16_t *cache_v, const float *k, const float *v, const int *slot,
                         const int *pos, int n, int n_slots, int max_len, int kvd, void *stream);
void logprob_forward_cuda(float *logp, float *entropy, const float *logits, const int64_t *targets, int rows,
                          int vocab, float tau, void *stream);
void logprob_backward_cuda(float *dlogits, const float *dlogp, const float *logits, const int64_t *targets, int rows,
                           int vocab, float tau, void *stream);
void logprob_backward_bf16_cuda(uint16_t *dlogits, const float *dlogp, const float *logits, const int64_t *targets,
                                int rows, int vocab, float tau, void *stream);
void logprob_forward_stats_cuda(float *logp, float *entropy, float *row_max, double *row_sum, const float *logits,
                                const int64_t *targets, int rows, int vocab, float tau, void *stream);
void logprob_backward_bf16_stats_cuda(uint16_t *dlogits, const float *dlogp, const float *logits,
                                      const int64_t *targets, const float *row_max, const double *row_sum, int rows,
                                      int vocab, float tau, void *stream);
/* The GEMMs take a cuBLAS handle bound to their stream (include/mmupt/gpu_blas.h) instead of the
 * bare stream: the library needs one, and the caller owns it rather than a hidden global. */
struct gpu_blas;
void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N,
                         const struct gpu_blas *blas);
void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int M, int K, int N, const struct gpu_blas *blas);
/* Bitwise equal to the CPU reference: the per-step constants come from the host, and the kernel
 * keeps every multiply out of fused multiply-adds (kernels/cuda/adamw.cu). */
void adamw_update_cuda(float *params, const float *grad, float *m, float *v, long n, double lr, double beta1,
                       double beta2, double eps, double weight_decay, double grad_scale, int64_t t, void *stream);
/* p (with its bias arrays) and u are HOST memory, as the CPU reference takes them; tokens, logp and
 * logits are device memory. Equal to sample_tokens_cpu (see "Sampling" below for the exact terms). */
void sample_tokens_cuda(int32_t *tokens, float *logp, const float *logits, int rows, int V,
                        const struct sample_params *p, const double *u, void *stream);
void residual_forward_cuda(float *out, const float *a, const float *b, long n, void *stream);
/* index is a HOST array of n (launch metadata, as attention's seg); dst and src are device memory. */
void gather_rows_cuda(float *dst, const float *src, const int64_t *index, int n, long cols, void *stream);
void scatter_rows_cuda(float *dst, const float *src, const int64_t *index, int n, long cols, void *stream);
/* Returns when the sum is on the host (it synchronises the stream). */
double sumsq_cuda(const float *x, long n, double scale, void *stream);
/* Mixed precision (see "Linear layers"): out, x device memory. */
void cast_bf16_cuda(uint16_t *out, const float *x, long n, void *stream);
void cast_bf16_sr_cuda(uint16_t *out, const float *x, long n, uint64_t seed, void *stream);
void add_bf16_cuda(float *y, const uint16_t *x, long n, void *stream);
/* pdl (non-zero): launched programmatically (kernels/cuda/pdl.cuh), the launch overlapping the end of
 * the kernel before, which the kernel waits for before touching memory (the bf16 decode step's norms
 * and SwiGLU after its GEMMs: MMUPT_DECODE_PDL, gpu_mem.h). The same results. */
void rmsnorm_forward_cast_cuda(float *out, uint16_t *out16, float *rstd, const float *x, const float *weight, int rows,
                               int dim, float eps, int pdl, void *stream);
void residual_rmsnorm_forward_cast_cuda(float *sum, float *out, uint16_t *out16, float *rstd, const float *a,
                                        const float *b, const float *weight, int rows, int dim, float eps, int pdl,
                                        void *stream);
void swiglu_forward_cast_cuda(float *out, uint16_t *out16, const float *gate, const float *up, long n, void *stream);
void swiglu_packed_forward_cast_cuda(float *out, uint16_t *out16, const float *gu, long rows, long inner, int pdl,
                                     void *stream);
void swiglu_packed_backward_cuda(float *dgu, const float *dout, const float *gu, long rows, long inner, void *stream);
void swiglu_packed16_forward_cast_cuda(uint16_t *out16, const uint16_t *gu16, long rows, long inner, void *stream);
void swiglu_packed16_backward16_cuda(uint16_t *dgu, const uint16_t *dout16, const uint16_t *gu16, long rows, long inner,
                                     void *stream);
void swiglu_packed_backward_bf16_cuda(uint16_t *dgu, const float *dout, const float *gu, long rows, long inner,
                                      void *stream);
void qkv_rope_append_bf16_cuda(float *q, const float *qkv, const float *bq, const float *bk, const float *bv,
                               const float *cos, const float *sin, uint16_t *cache_k, uint16_t *cache_v,
                               const int *slot, const int *pos, int n, int n_heads, int n_kv, int hd, int n_slots,
                               int max_len, void *stream);
void attention_decode_qkv_bf16_cast_cuda(float *out, uint16_t *out16, const float *qkv, const float *bq,
                                         const float *bk, const float *bv, const float *cos, const float *sin,
                                         uint16_t *cache_k, uint16_t *cache_v, const int *slot, const int *pos, int n,
                                         int n_slots, int max_len, int n_heads, int n_kv, int hd, float *scores,
                                         unsigned *count, int flags, void *stream);
/* The bf16 GEMMs on tensor cores (cuBLAS, fp32 accumulation). scratch: device, at least M*K
 * (forward) or matmul_bf16_backward_scratch(M, K, N) (backward) bf16 values for the operands rounded
 * on the way in. Results equal
 * the CPU references up to the order of the fp32 sums. cast_done != 0: scratch already holds inp
 * rounded (the previous forward read the same, unchanged inp: q/k/v, gate/up; or the caller keeps
 * that rounding, as the learner's blocks do), so it is not cast again; inp may then be NULL (a
 * caller that keeps only the rounding).
 * The backward's inp16: inp already rounded (the operand its forward used, kept), or NULL to round
 * inp into the scratch; given, only dout's rounding uses the scratch (M*N values), and inp may be
 * NULL. dinp_beta, 1 or
 * 0: dinp += the product (the CPU reference's rule), or dinp = the product, its old contents unread
 * (a fresh gradient buffer then needs no zero fill). dweight_beta likewise for dweight (1: +=, the
 * reference's rule; 0: =, a weight gradient's first write of a step, src/model/dev_grads.c). */
void matmul_forward_bf16_cuda(float *out, const float *inp, const uint16_t *weight, const float *bias, int M, int K,
                              int N, uint16_t *scratch, int cast_done, const struct gpu_blas *blas);
/* matmul_forward_bf16 without a bias, out rounded to bf16 (out16: what cast_bf16 of the fp32 result
 * would give, up to the summation order; cuBLAS rounds its fp32 accumulators once): a bf16 learner's
 * gate/up projection, whose only reader, SwiGLU, takes bf16 (autocast's precision for a Linear). */
/* matmul_forward_bf16 without a bias, plus a residual: out = inp W^T + res (res [M, N] fp32, not out).
 * cuBLASLt reads res as C and writes out as D (beta 1): the block's residual add in the GEMM's
 * epilogue, the sum rounded once as residual_forward rounds it; a product then residual_forward where
 * cuBLASLt declines the call. */
void matmul_forward_bf16_res_cuda(float *out, const float *res, const float *inp, const uint16_t *weight, int M, int K,
                                  int N, uint16_t *scratch, int cast_done, const struct gpu_blas *blas);
void matmul_forward_bf16_out16_cuda(uint16_t *out16, const float *inp, const uint16_t *weight, int M, int K, int N,
                                    uint16_t *scratch, int cast_done, const struct gpu_blas *blas);
void matmul_backward_bf16_cuda(float *dinp, float dinp_beta, float *dweight, float dweight_beta, float *dbias,
                               const float *dout, const float *inp, const uint16_t *inp16, const uint16_t *weight,
                               int M, int K, int N, uint16_t *scratch, const struct gpu_blas *blas);
/* The backward's scratch: dout rounded (M*N values), then inp rounded (M*K) from the next multiple of
 * 8 values, so that operand is 16-byte aligned like the first (cuBLAS's vectorised kernels want it). */
static inline int64_t matmul_bf16_backward_x_offset(int M, int N) { return ((int64_t)M * N + 7) / 8 * 8; }
static inline int64_t matmul_bf16_backward_scratch(int M, int K, int N)
{
    return matmul_bf16_backward_x_offset(M, N) + (int64_t)M * K;
}
/* The backward from dout already in bf16 (dout16, [M, N]: the bf16 logits' gradient, SwiGLU's), without
 * the bias gradient: matmul_backward_bf16 less the cast of dout. inp16 and the betas as there; scratch: at
 * least M*K values (inp rounded), untouched when dweight is NULL or inp16 is given. */
void matmul_backward_bf16_dy_cuda(float *dinp, float dinp_beta, float *dweight, float dweight_beta,
                                  const uint16_t *dout16, const float *inp, const uint16_t *inp16,
                                  const uint16_t *weight, int M, int K, int N, uint16_t *scratch,
                                  const struct gpu_blas *blas);
/* matmul_backward_bf16_dy with inp's rounding kept (inp16) and dinp written as bf16 (dinp16: the fp32
 * accumulators rounded once by the GEMM, assigned - cast_bf16 of the fp32 product up to the summation
 * order; see matmul_backward_bf16_dy16_cpu): no fp32 dinp, no cast launch, no scratch. */
void matmul_backward_bf16_dy16_cuda(uint16_t *dinp16, float *dweight, float dweight_beta, const uint16_t *dout16,
                                    const uint16_t *inp16, const uint16_t *weight, int M, int K, int N,
                                    const struct gpu_blas *blas);

/* ---- Linear layers (every projection of the decoder and the vision tower) ----
 * PyTorch convention: out[M,N] = inp[M,K] @ weight[N,K]^T (+ bias[N] if non-NULL). Uses OpenBLAS when
 * the build has it (MMUPT_HAVE_OPENBLAS), else the blocked kernel; must not be called from inside an
 * OpenMP parallel region. */
void matmul_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N);
/* The project's own cache-blocked OpenMP GEMM, exported so tests check it whatever the build. */
void matmul_forward_blocked_cpu(float *out, const float *inp, const float *weight, const float *bias, int M, int K,
                                int N);
/* Gradients of a linear layer: dinp[M,K] += dout @ weight; dweight[N,K] += dout^T @ inp;
 * dbias[N] += column sums of dout. */
void matmul_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int M, int K, int N);
/* The same with the blocked kernel only (bitwise independent of the thread count). */
void matmul_backward_blocked_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                 const float *weight, int M, int K, int N);
/* Mixed precision, the GPU path of model.dtype = bf16: the weight is bf16 (uint16_t, the top half of
 * a float32: include/mmupt/bf16.h), inp and dout are rounded to bf16 (to nearest even), the products
 * summed in fp32, out/dinp/dweight are fp32. The bias and its gradient stay fp32. */
void cast_bf16_cpu(uint16_t *out, const float *x, long n);
/* The same with stochastic rounding (include/mmupt/bf16_sr.h): element i rounds up with probability
 * (its dropped bits) / 65536 drawn from (seed, i) - unbiased, and repeatable for a seed. */
void cast_bf16_sr_cpu(uint16_t *out, const float *x, long n, uint64_t seed);
void matmul_forward_bf16_cpu(float *out, const float *inp, const uint16_t *weight, const float *bias, int M, int K,
                             int N);
/* matmul_forward_bf16_cpu without a bias, then res added (residual_forward_cpu's sum): the CUDA
 * twin's reference. */
void matmul_forward_bf16_res_cpu(float *out, const float *res, const float *inp, const uint16_t *weight, int M, int K,
                                 int N);
/* matmul_forward_bf16_cpu without a bias, rounded to bf16 (the CUDA twin's reference). */
void matmul_forward_bf16_out16_cpu(uint16_t *out16, const float *inp, const uint16_t *weight, int M, int K, int N);
void matmul_backward_bf16_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const uint16_t *weight, int M, int K, int N);
/* matmul_backward_bf16 from dout already rounded (dout16), no bias: equal to matmul_backward_bf16_cpu
 * with dout = dout16 widened and dbias NULL. */
void matmul_backward_bf16_dy_cpu(float *dinp, float *dweight, const uint16_t *dout16, const float *inp,
                                 const uint16_t *weight, int M, int K, int N);
/* The same with inp's rounding given (inp16) and dinp rounded to bf16 (dinp16, assigned: the fp32
 * product from zeros, then cast_bf16): the o-projection's backward before cuDNN's attention, whose
 * only reader of that gradient takes bf16. Either output may be NULL. */
void matmul_backward_bf16_dy16_cpu(uint16_t *dinp16, float *dweight, const uint16_t *dout16, const uint16_t *inp16,
                                   const uint16_t *weight, int M, int K, int N);

/* ---- Normalisation ---- */
/* Gradient of RMSNorm (decoder layers, final norm, Qwen2.5-VL vision blocks), given the forward's
 * rstd[rows]. dx, dweight accumulate. */
void rmsnorm_backward_cpu(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                          const float *rstd, int rows, int dim);
/* The same with dx assigned from a residual stream's gradient: dx = res + the norm's input gradient
 * (res copied into dx, then rmsnorm_backward: the same bits), dweight accumulating - a pre-norm
 * block's residual and norm gradients in one pass. dx must not alias res. */
void rmsnorm_backward_res_cpu(float *dx, float *dweight, const float *dout, const float *x, const float *weight,
                              const float *rstd, const float *res, int rows, int dim);
/* Either of the two above (res NULL: rmsnorm_backward, dx accumulating; else rmsnorm_backward_res),
 * then dx rounded to bf16 into dx16 as cast_bf16 would: the bf16 learner's residual-stream gradient
 * is the next backward GEMM's operand (the o- and down projections'), so the norm that makes it
 * writes the rounding too and that GEMM's cast launch goes. */
void rmsnorm_backward_cast_cpu(float *dx, uint16_t *dx16, float *dweight, const float *dout, const float *x,
                               const float *weight, const float *rstd, const float *res, int rows, int dim);
/* LayerNorm with weight and bias (Qwen2-VL vision blocks and merger): mean[rows], rstd[rows] (may be
 * NULL) are saved for the backward. out may alias x. */
void layernorm_forward_cpu(float *out, float *mean, float *rstd, const float *x, const float *weight,
                           const float *bias, int rows, int dim, float eps);
/* Gradient of LayerNorm from the forward's mean and rstd. dx, dweight, dbias accumulate. */
void layernorm_backward_cpu(float *dx, float *dweight, float *dbias, const float *dout, const float *x,
                            const float *weight, const float *mean, const float *rstd, int rows, int dim);

/* ---- Rotary position embedding (1-D RoPE, M-RoPE of the decoder, 2-D RoPE of the vision tower) ----
 * Rotate-half convention, in place on x [rows, n_heads, head_dim], with per-row tables cos/sin
 * [rows, head_dim] built by the caller: x' = x*cos + rotate_half(x)*sin, rotate_half(x) = [-x2, x1]
 * for halves x1|x2. head_dim must be even. */
void rope_forward_cpu(float *x, const float *cos, const float *sin, int rows, int n_heads, int head_dim);
/* Gradient through RoPE, in place: dx <- (d x'/d x)^T dx, the inverse rotation for proper tables.
 * (The one op here that overwrites rather than accumulates: it maps a gradient onto itself.) */
void rope_backward_cpu(float *dx, const float *cos, const float *sin, int rows, int n_heads, int head_dim);
/* RoPE over one GEMM's packed q/k/v projections (the bf16 device model's: q_w, k_w, v_w lie back to
 * back in the parameter table), qkv: [rows, qd + 2 kvd], each row q, then k, then v (qd = n_heads *
 * head_dim, kvd = n_kv * head_dim):
 *   rope_qkv_forward: q, k, v ([rows, heads, head_dim]) = the rows apart, q and k rotated as
 *     rope_forward rotates them;
 *   rope_qkv_backward: dqkv = rope_backward(dq), rope_backward(dk), dv packed the same way - the
 *     gradient of the packed projections, for one GEMM's backward. dqkv is WRITTEN, not
 *     accumulated (a layout of three gradients, not a gradient of its own); dq, dk, dv are not
 *     changed. */
void rope_qkv_forward_cpu(float *q, float *k, float *v, const float *qkv, const float *cos, const float *sin, int rows,
                          int n_heads, int n_kv, int head_dim);
void rope_qkv_backward_cpu(float *dqkv, const float *dq, const float *dk, const float *dv, const float *cos,
                           const float *sin, int rows, int n_heads, int n_kv, int head_dim);
/* rope_qkv_backward, and dqkv rounded to bf16 into dqkv16 as cast_bf16 would (the packed projection
 * backward's operand). dqkv may be NULL: the rounding alone (no bias wants the fp32 values). */
void rope_qkv_backward_cast_cpu(float *dqkv, uint16_t *dqkv16, const float *dq, const float *dk, const float *dv,
                                const float *cos, const float *sin, int rows, int n_heads, int n_kv, int head_dim);
/* rope_qkv_forward, and q, k, v rounded to bf16 into q16, k16, v16 as cast_bf16 would (cuDNN's
 * attention's operands); q may be NULL (the rounding alone: nothing else reads it then). */
void rope_qkv_forward_cast_cpu(float *q, float *k, float *v, uint16_t *q16, uint16_t *k16, uint16_t *v16,
                               const float *qkv, const float *cos, const float *sin, int rows, int n_heads, int n_kv,
                               int head_dim);
/* The same from gradients in bf16 (dq16, dk16, dv16: cuDNN's attention backward writes them so),
 * widened: no fp32 copy of them, nor its zero fill and additions. */
void rope_qkv16_backward_cast_cpu(float *dqkv, uint16_t *dqkv16, const uint16_t *dq16, const uint16_t *dk16,
                                  const uint16_t *dv16, const float *cos, const float *sin, int rows, int n_heads,
                                  int n_kv, int head_dim);

/* ---- Attention (decoder: causal over each packed sequence; vision: full within each image) ----
 * Softmax attention over packed segments. Rows [seg[s], seg[s+1]) form segment s (n_seg segments, seg
 * has n_seg+1 entries, seg[0] = 0; empty segments are allowed). Queries attend only to keys of their
 * own segment; with causal != 0 only to keys at or before their own row. q, out: [T, n_heads, hd];
 * k, v: [T, n_kv, hd]; GQA: head h uses kv head h / (n_heads / n_kv). scale = 1/sqrt(hd). */
/* Floats needed for probs: for each segment, n_heads * len * len. */
size_t attention_probs_size(const int *seg, int n_seg, int n_heads);
/* probs receives the softmax probabilities the backward needs: segment after segment, head after
 * head, a row-major len*len matrix each (masked entries are 0). */
void attention_forward_cpu(float *out, float *probs, const float *q, const float *k, const float *v, const int *seg,
                           int n_seg, int n_heads, int n_kv, int hd, int causal);
/* Gradients of attention from the forward's probs; dq, dk, dv accumulate. */
void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                            const float *k, const float *v, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                            int causal);
/* Fused ("flash") attention, the bf16 learner's (kernels/cpu/attention_flash.c defines the op): q, k,
 * v rounded to bf16, no probabilities kept - lse [T, n_heads] holds each row's log-sum-exp of its
 * scaled scores instead, and the backward recomputes the probabilities from it and from out (the
 * forward's output). dq, dk, dv accumulate (each may be NULL). */
void attention_flash_forward_cpu(float *out, float *lse, const float *q, const float *k, const float *v, const int *seg,
                                 int n_seg, int n_heads, int n_kv, int hd, int causal);
void attention_flash_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                                  const float *q, const float *k, const float *v, const int *seg, int n_seg,
                                  int n_heads, int n_kv, int hd, int causal);
/* Whether the fused kernels take head size hd (16, 32, 64, 80 or 128: tensor-core tiles of 16). */
int attention_flash_supported(int hd);
/* Attention as cuDNN's fused SDPA graphs compute it (kernels/cpu/attention_sdpa.c defines the op;
 * MMUPT_ATTENTION=cudnn): attention_flash's, with bf16 operands and outputs (q16, o16, dq16:
 * [T, n_heads, hd]; k16, v16, dk16, dv16: [T, n_kv, hd]) and stats - each row's log-sum-exp,
 * [T, n_heads], attention_flash's lse. The backward assigns dq16, dk16 and dv16 (none may be NULL). */
/* The shapes the op takes: valid segments, GQA groups, hd a multiple of 8 up to 128. */
int attention_sdpa_shape_ok(const int *seg, int n_seg, int n_heads, int n_kv, int hd);
void attention_sdpa_forward_cpu(uint16_t *o16, float *stats, const uint16_t *q16, const uint16_t *k16,
                                const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                int causal);
void attention_sdpa_backward_cpu(uint16_t *dq16, uint16_t *dk16, uint16_t *dv16, const uint16_t *dout16,
                                 const uint16_t *o16, const float *stats, const uint16_t *q16, const uint16_t *k16,
                                 const uint16_t *v16, const int *seg, int n_seg, int n_heads, int n_kv, int hd,
                                 int causal);
/* y += x widened to fp32 (exact). */
void add_bf16_cpu(float *y, const uint16_t *x, long n);
/* x widened to fp32 (exact) in a new buffer the caller frees: how the references run the fp32 op on
 * bf16 operands (not an op: no device twin). */
float *bf16_widened(const uint16_t *x, long n);

/* ---- Activations, elementwise over n values ---- */
/* Decoder MLP (and Qwen2.5-VL vision MLP): out = silu(gate) * up. */
void swiglu_forward_cpu(float *out, const float *gate, const float *up, long n);
/* Gradient of swiglu; dgate, dup accumulate. */
void swiglu_backward_cpu(float *dgate, float *dup, const float *dout, const float *gate, const float *up, long n);
/* Patch merger MLP: exact GELU, x * Phi(x) with Phi from erf. */
void gelu_forward_cpu(float *out, const float *x, long n);
/* Gradient of exact GELU; dx accumulates. */
void gelu_backward_cpu(float *dx, const float *dout, const float *x, long n);
/* Qwen2-VL vision MLP: x * sigmoid(1.702 x). */
void quick_gelu_forward_cpu(float *out, const float *x, long n);
/* Gradient of quick GELU; dx accumulates. */
void quick_gelu_backward_cpu(float *dx, const float *dout, const float *x, long n);

/* The residual stream: out = a + b (one rounding per element; out may alias a or b). */
void residual_forward_cpu(float *out, const float *a, const float *b, long n);

/* ---- Row moves (KV-cache appends, the vision window permutation, image rows) ----
 * Over row-major [*, cols] arrays: gather dst[i, :] = src[index[i], :]; scatter dst[index[i], :] =
 * src[i, :] (indices distinct), for i < n. Pure copies. */
void gather_rows_cpu(float *dst, const float *src, const int64_t *index, int n, long cols);
void scatter_rows_cpu(float *dst, const float *src, const int64_t *index, int n, long cols);

/* ---- Token embedding ---- */
/* Input embedding lookup: out[n, dim] = table[ids[i], :]; ids are validated by the caller. */
void embedding_forward_cpu(float *out, const int64_t *ids, const float *table, int n, int dim);
/* Gradient into the embedding table (repeated ids add up); dtable accumulates. */
void embedding_backward_cpu(float *dtable, const float *dout, const int64_t *ids, int n, int dim);

/* ---- Token log-probabilities (GRPO ratio, KL term, entropy metric) ----
 * logp[r] = log_softmax(logits[r,:] / tau)[targets[r]], computed stably (max-subtracted, double
 * accumulation). Rows whose target is < 0 (padding, prompt) are skipped: logp 0, entropy 0, and no
 * gradient. Optional entropy[r] (may be NULL) = entropy of softmax(logits[r,:] / tau). */
void logprob_forward_cpu(float *logp, float *entropy, const float *logits, const int64_t *targets, int rows, int vocab,
                         float tau);
/* dlogits[r,:] += dlogp[r] * (onehot(target) - softmax(logits/tau)) / tau. */
void logprob_backward_cpu(float *dlogits, const float *dlogp, const float *logits, const int64_t *targets, int rows,
                          int vocab, float tau);
/* The same gradient rounded to bf16 and assigned, not added: dlogits[r,:] = bf16(that of a zeroed
 * buffer), rows with target < 0 zeros. The bf16 model's lm_head backward rounds its operand to bf16
 * anyway, so writing that rounding directly spares the fp32 buffer, its zero fill and the cast. */
void logprob_backward_bf16_cpu(uint16_t *dlogits, const float *dlogp, const float *logits, const int64_t *targets,
                               int rows, int vocab, float tau);
/* The forward that also returns each row's statistics, so that the backward over the same logits
 * need not read them a second time for them: row_max[r] = max_j logits[r,j] and row_sum[r] =
 * sum_j exp((logits[r,j] - row_max[r]) / tau) (>= 1), each as the backend computes them; rows
 * with target < 0 get row_sum 0 ("not computed"). row_max and row_sum may both be NULL. */
void logprob_forward_stats_cpu(float *logp, float *entropy, float *row_max, double *row_sum, const float *logits,
                               const int64_t *targets, int rows, int vocab, float tau);
/* logprob_backward_bf16 from those statistics (both NULL, or a row's row_sum 0: computed here), equal
 * bit for bit to computing them here when they come from the same logits, tau and backend. */
void logprob_backward_bf16_stats_cpu(uint16_t *dlogits, const float *dlogp, const float *logits,
                                     const int64_t *targets, const float *row_max, const double *row_sum, int rows,
                                     int vocab, float tau);

/* ---- Sampling (rollout: the next token of every sequence of a decode step) ----
 * tokens[r] = sample_token(logits + r*V, V, p, u[r], ..., logp + r) for r < rows (src/sampler: bias,
 * temperature, HF top-k with ties at the k-th kept, top-p nucleus ranked by (prob desc, id asc), a
 * draw with u[r]; greedy at temperature 0), -1 for a row with nothing valid to sample (NaN or +inf
 * biased logit, all -inf, bad parameters or u[r] outside [0, 1)), and then logp[r] = 0. logp may be
 * NULL; logits: [rows, V]; u: [rows] from sample_rng_uniform.
 *
 * The CUDA twin agrees with it as follows (tests/gpu/test_sample_cuda.c):
 *   - the -1 rows, the greedy token and the top-k kept set are identical (exact comparisons and an
 *     exact k-th-largest search), and so is the top-p nucleus except where its mass cut lies within
 *     rounding of top_p * total;
 *   - the drawn token is the same except where u * total lies within rounding (~1e-10 relative) of
 *     a cumulative-weight boundary: both sum float weights in double in the same candidate order,
 *     but the GPU adds them in a fixed tree order rather than one by one (partial sums differ in the
 *     last bits), and its weight, a correctly rounded exp, differs from glibc's expf by one ulp on
 *     ~6e-4 of arguments. Deterministic: the same inputs give the same token on every run;
 *   - logp agrees to 1e-5 in |got - want| / (1 + |want|) (GPU expf within 2 ulp, double sums in
 *     another order). */
void sample_tokens_cpu(int32_t *tokens, float *logp, const float *logits, int rows, int V, const struct sample_params *p,
                       const double *u);

/* ---- Sum of squares (the global gradient norm) ----
 * sum_i (x[i] * scale)^2 in double, added in index order. */
double sumsq_cpu(const float *x, long n, double scale);

/* ---- Optimizer ----
 * AdamW (torch.optim.AdamW, amsgrad off) on n elements of a parameter shard, in double per element,
 * stored fp32, in place on params, m and v (include/mmupt/optim.h has the formula):
 *   g = grad * grad_scale (the caller's 1/learners average times the clip factor);
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p *= 1 - lr wd;
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps),  t >= 1 the step being applied. */
void adamw_update_cpu(float *params, const float *grad, float *m, float *v, long n, double lr, double beta1,
                      double beta2, double eps, double weight_decay, double grad_scale, int64_t t);

#ifdef __cplusplus
}
#endif

#endif
