/* The SIMT interpreter has no cuDNN (src/simt/README.md): version 0 says so to `mmupt version`. */
#ifndef MMUPT_SIMT_CUDNN_H
#define MMUPT_SIMT_CUDNN_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
size_t cudnnGetVersion(void);
#ifdef __cplusplus
}
#endif
#endif
