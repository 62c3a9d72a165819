/* Planning cuDNN's SDPA graphs for a described device, without one (cuDNN 9.8 and later plan against a
 * CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR): tests/gpu/sdpa_plan_check.c builds every graph
 * src/gpu/sdpa_cudnn.c makes and shows whether cuDNN's engines take it. CUDA builds only. */
#ifndef MMUPT_GPU_SDPA_CUDNN_H
#define MMUPT_GPU_SDPA_CUDNN_H

#include <cudnn.h>
#include <stddef.h>

/* The forward graph (backward 0) or a backward one (accumulate: dQ in fp32) of b packed segments of
 * up to s rows, planned for `prop`: 0, or -1 with cuDNN's reason in why. */
int sdpa_plan_for_device(cudnnBackendDescriptor_t prop, int b, int s, int hq, int hk, int d, int causal, int backward,
                         int accumulate, char *why, size_t why_size);

#endif
