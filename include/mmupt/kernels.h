/* Compute kernels. Each op has a CPU reference (kernels/cpu/NAME.c, the truth every test runs) and
 * a CUDA twin with the same name and argument order (kernels/cuda/NAME.cu), which takes device
 * pointers and a stream and is tested against the reference on a GPU. */
#ifndef MMUPT_KERNELS_H
#define MMUPT_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/* RMSNorm over the last dimension: out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight.
 * rstd[r] (may be NULL) receives 1 / sqrt(mean + eps) for the backward pass.
 * x, out: [rows, dim]; weight: [dim]; rstd: [rows]. out may alias x. */
void rmsnorm_forward_cpu(float *out, float *rstd, const float *x, const float *weight, int rows, int dim, float eps);

#ifdef MMUPT_HAVE_CUDA
/* stream is a cudaStream_t, passed as void* so C callers need no CUDA headers. */
void rmsnorm_forward_cuda(float *out, float *rstd, const float *x, const float *weight, int rows, int dim, float eps,
                          void *stream);
#endif

#ifdef __cplusplus
}
#endif

#endif
