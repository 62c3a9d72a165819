/* What CUDA this build has and what the machine offers. Callers never #ifdef on CUDA for a query:
 * a build without CUDA answers "not built" through the same function. */
#ifndef MMUPT_GPU_H
#define MMUPT_GPU_H

struct gpu_info {
    int built;           /* 1 if this binary contains the CUDA backend */
    int runtime_version; /* CUDA runtime, e.g. 13000 (0 if not built) */
    int driver_version;  /* 0 when no driver is installed */
    int cublas_version;
    int cudnn_version;
    int nccl_version;
    int device_count;    /* usable devices; 0 with `reason` set when none */
    char device_name[256]; /* of the calling thread's current device */
    int cc_major, cc_minor;
    char reason[256];    /* why device_count is 0 */
};

void gpu_query(struct gpu_info *info);

/* The compute for a requested backend (enum cfg_backend: auto, cpu, cuda, emulator): 1 the device
 * (gpu_mem.h), 0 the CPU, or -1 with err saying why it cannot be had (cuda in a CPU-only build or
 * without a visible GPU; emulator in a CUDA build). auto is the device only in a CUDA build with a
 * GPU. */
struct mmupt_err;
int gpu_backend_resolve(int want, struct mmupt_err *err);

/* Which of the `count` visible devices node-local rank `local_rank` of `local_size` uses: rank mod
 * count, so a plain `mpirun -np 8` on an 8-GPU node puts one rank on each GPU (launch/mmupt-run
 * narrows CUDA_VISIBLE_DEVICES to one GPU per rank instead; then count is 1 and every rank takes
 * device 0). *shared is set when more ranks than devices share the node (ranks then share GPUs). */
int gpu_device_for_rank(int local_rank, int local_size, int count, int *shared);
/* Make `device` the calling thread's current CUDA device (what gpu_ctx_init and NCCL then use); -1
 * with err when it cannot be. A no-op for device 0 in a build without CUDA. */
int gpu_use_device(int device, struct mmupt_err *err);

#endif
