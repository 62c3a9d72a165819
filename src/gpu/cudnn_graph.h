/* A small C layer over cuDNN's backend graph API (cudnn_graph.h): tensors, the pointwise, matmul,
 * reduction and reshape operations an attention graph is made of, and a planned graph - what
 * src/gpu/sdpa_cudnn.c builds cuDNN's fused SDPA from. CUDA builds only.
 *
 * Every descriptor a graph creates is kept in it until cudnn_graph_free (an execution plan refers to
 * its operation graph's descriptors). Errors are sticky: the first failing call records cuDNN's
 * status, the step that failed and cuDNN's own message, and every later call on the graph does
 * nothing, so a builder writes its graph straight through and checks once at the end. */
#ifndef MMUPT_GPU_CUDNN_GRAPH_H
#define MMUPT_GPU_CUDNN_GRAPH_H

#include <cudnn.h>
#include <stdint.h>

enum { CUDNN_GRAPH_MAX_DESC = 320, CUDNN_GRAPH_MAX_OPS = 64, CUDNN_GRAPH_VIRTUAL_UID = 1000 };

typedef cudnnBackendDescriptor_t cgd_t;

struct cudnn_graph {
    cgd_t desc[CUDNN_GRAPH_MAX_DESC]; /* every descriptor created, destroyed by cudnn_graph_free */
    int n_desc;
    cgd_t ops[CUDNN_GRAPH_MAX_OPS]; /* the operations, in the order added */
    int n_ops;
    int64_t next_uid;   /* the next virtual tensor's unique id */
    cgd_t plan;         /* after cudnn_graph_plan: the execution plan */
    int64_t workspace;  /* its workspace, bytes */
    cudnnStatus_t status; /* CUDNN_STATUS_SUCCESS until a call fails */
    char error[400];    /* the failure: step, status, cuDNN's message */
    char refusal[300];  /* planning: why the first engine offered did not finalize */
};

void cudnn_graph_init(struct cudnn_graph *gr);
void cudnn_graph_free(struct cudnn_graph *gr);

/* A 4-D tensor: a real one (uid below CUDNN_GRAPH_VIRTUAL_UID, bound to memory at execution), a
 * virtual one (uid 0: numbered here; never in memory) or a scalar passed by value (dims and strides
 * NULL: [1, 1, 1, 1]; bound to a HOST pointer at execution). */
cgd_t cudnn_tensor(struct cudnn_graph *gr, int64_t uid, cudnnDataType_t type, const int64_t *dim, const int64_t *stride);
/* A real tensor whose batch entries start where the int32 tensor `offsets` ([b + 1, 1, 1, 1], in
 * elements) says, not at multiples of the batch stride: packed sequences of different lengths. */
cgd_t cudnn_ragged(struct cudnn_graph *gr, int64_t uid, cudnnDataType_t type, const int64_t *dim, const int64_t *stride,
                   cgd_t offsets);
cgd_t cudnn_virtual(struct cudnn_graph *gr, cudnnDataType_t type, const int64_t *dim, const int64_t *stride);
cgd_t cudnn_scalar(struct cudnn_graph *gr, int64_t uid, cudnnDataType_t type);

/* y = mode(x[, b[, t]]) elementwise, computed in prec; axis (GEN_INDEX only, else -1). */
void cudnn_pointwise(struct cudnn_graph *gr, const char *name, cudnnPointwiseMode_t mode, cudnnDataType_t prec,
                     int64_t axis, cgd_t x, cgd_t b, cgd_t t, cgd_t y);
/* c = a b over the last two dimensions, batched over the first two (fp32 accumulation); m, n, k:
 * optional int32 tensors of the rows, columns or depth actually used per batch entry (NULL: all). */
void cudnn_matmul(struct cudnn_graph *gr, const char *name, cgd_t a, cgd_t b, cgd_t c, cgd_t m, cgd_t n, cgd_t k);
/* y = the reduction of x over every dimension where y is smaller (fp32). */
void cudnn_reduction(struct cudnn_graph *gr, const char *name, cudnnReduceTensorOp_t op, cgd_t x, cgd_t y);
/* y = x with y's dimensions and strides (the same elements). */
void cudnn_reshape(struct cudnn_graph *gr, const char *name, cgd_t x, cgd_t y);

/* The operations as one graph, planned with the first engine configuration cuDNN's heuristics offer
 * that finalizes (mode A, then the fallback list): 0, or -1 with gr->error. For the device of
 * `handle`; or, handle NULL, for the device `prop` describes (a CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR:
 * cuDNN 9.8 and later plan without a GPU - tools/cudnn_plan_check uses it). */
int cudnn_graph_plan(struct cudnn_graph *gr, cudnnHandle_t handle, cgd_t prop);

/* Run the planned graph: n tensors' unique ids and pointers (device memory; host memory for scalars),
 * and a workspace of at least gr->workspace bytes. 0, or -1 with gr->error. */
int cudnn_graph_run(struct cudnn_graph *gr, cudnnHandle_t handle, int n, const int64_t *uids, void *const *ptrs,
                    void *workspace);

#endif
