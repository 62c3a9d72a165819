/* The SIMT interpreter has no NCCL (src/simt/README.md): a SIMT build uses src/comm/nccl_none.c, and
 * version 0 tells `mmupt version` so. */
#ifndef MMUPT_SIMT_NCCL_H
#define MMUPT_SIMT_NCCL_H
#ifdef __cplusplus
extern "C" {
#endif
typedef enum { ncclSuccess = 0 } ncclResult_t;
ncclResult_t ncclGetVersion(int *version);
#ifdef __cplusplus
}
#endif
#endif
