/* cuDNN's backend graph API in small steps (src/gpu/cudnn_graph.h says what each builds). The
 * attribute names and types are cuDNN's (cudnn_graph.h, "Backend Descriptor Types" in its docs);
 * the settings - 16-byte alignment, fp32 compute, unit alphas - are the ones cuDNN's fused
 * attention engines are documented and known to match. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gpu/cudnn_graph.h"

void cudnn_graph_init(struct cudnn_graph *gr)
{
    memset(gr, 0, sizeof *gr);
    gr->next_uid = CUDNN_GRAPH_VIRTUAL_UID;
    gr->status = CUDNN_STATUS_SUCCESS;
}

void cudnn_graph_free(struct cudnn_graph *gr)
{
    if (gr->plan) cudnnBackendDestroyDescriptor(gr->plan);
    for (int i = gr->n_desc - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(gr->desc[i]);
    gr->n_desc = gr->n_ops = 0;
    gr->plan = NULL;
}

/* Record the first failure: the step, cuDNN's status name and its last message. */
static int fail(struct cudnn_graph *gr, cudnnStatus_t s, const char *step)
{
    if (gr->status != CUDNN_STATUS_SUCCESS) return -1;
    char msg[200] = "";
    cudnnGetLastErrorString(msg, sizeof msg);
    gr->status = s;
    snprintf(gr->error, sizeof gr->error, "%s: %s%s%s", step, cudnnGetErrorString(s), msg[0] ? ": " : "", msg);
    return -1;
}

/* s checked: 0 when CUDNN_STATUS_SUCCESS, else the failure recorded. */
static int ok(struct cudnn_graph *gr, cudnnStatus_t s, const char *step)
{
    return s == CUDNN_STATUS_SUCCESS ? 0 : fail(gr, s, step);
}

static cgd_t create(struct cudnn_graph *gr, cudnnBackendDescriptorType_t type, const char *step)
{
    cgd_t d = NULL;
    if (gr->status != CUDNN_STATUS_SUCCESS) return NULL;
    if (gr->n_desc == CUDNN_GRAPH_MAX_DESC) {
        fail(gr, CUDNN_STATUS_INTERNAL_ERROR, "cudnn_graph: too many descriptors (CUDNN_GRAPH_MAX_DESC)");
        return NULL;
    }
    if (ok(gr, cudnnBackendCreateDescriptor(type, &d), step)) return NULL;
    gr->desc[gr->n_desc++] = d;
    return d;
}

static void set(struct cudnn_graph *gr, cgd_t d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                int64_t count, const void *value, const char *step)
{
    if (gr->status == CUDNN_STATUS_SUCCESS && d) ok(gr, cudnnBackendSetAttribute(d, name, type, count, value), step);
}

static void finalize(struct cudnn_graph *gr, cgd_t d, const char *step)
{
    if (gr->status == CUDNN_STATUS_SUCCESS && d) ok(gr, cudnnBackendFinalize(d), step);
}

static cgd_t tensor(struct cudnn_graph *gr, int64_t uid, cudnnDataType_t type, const int64_t *dim,
                    const int64_t *stride, bool is_virtual, bool by_value, cgd_t ragged)
{
    static const int64_t unit[4] = {1, 1, 1, 1};
    const int64_t align = 16;
    cgd_t t = create(gr, CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
    set(gr, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor data type");
    set(gr, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim ? dim : unit, "tensor dimensions");
    set(gr, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, stride ? stride : unit, "tensor strides");
    set(gr, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor unique id");
    set(gr, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    set(gr, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
    if (by_value) set(gr, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by value");
    if (ragged) set(gr, t, CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ragged, "ragged offset");
    finalize(gr, t, "tensor");
    return t;
}

cgd_t cudnn_tensor(struct cudnn_graph *gr, int64_t uid, cudnnDataType_t type, const int64_t *dim, const int64_t *stride)
{
    return tensor(gr, uid, type, dim, stride, false, false, NULL);
}

cgd_t cudnn_ragged(struct cudnn_graph *gr, int64_t uid, cudnnDataType_t type, const int64_t *dim, const int64_t *stride,
                   cgd_t offsets)
{
    return tensor(gr, uid, type, dim, stride, false, false, offsets);
}

cgd_t cudnn_virtual(struct cudnn_graph *gr, cudnnDataType_t type, const int64_t *dim, const int64_t *stride)
{
    return tensor(gr, gr->next_uid++, type, dim, stride, true, false, NULL);
}

cgd_t cudnn_scalar(struct cudnn_graph *gr, int64_t uid, cudnnDataType_t type)
{
    return tensor(gr, uid, type, NULL, NULL, false, true, NULL);
}

/* Add a finalized operation to the graph's list. */
static void add_op(struct cudnn_graph *gr, cgd_t op, const char *name)
{
    finalize(gr, op, name);
    if (gr->status != CUDNN_STATUS_SUCCESS) return;
    if (gr->n_ops == CUDNN_GRAPH_MAX_OPS) {
        fail(gr, CUDNN_STATUS_INTERNAL_ERROR, "cudnn_graph: too many operations (CUDNN_GRAPH_MAX_OPS)");
        return;
    }
    gr->ops[gr->n_ops++] = op;
}

void cudnn_pointwise(struct cudnn_graph *gr, const char *name, cudnnPointwiseMode_t mode, cudnnDataType_t prec,
                     int64_t axis, cgd_t x, cgd_t b, cgd_t t, cgd_t y)
{
    cgd_t pw = create(gr, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, name);
    set(gr, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, name);
    set(gr, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, name);
    if (axis >= 0) set(gr, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, name);
    finalize(gr, pw, name);
    cgd_t op = create(gr, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, name);
    const float one = 1.0f;
    set(gr, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw, name);
    set(gr, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, name);
    if (b) set(gr, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, name);
    if (t) set(gr, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t, name);
    set(gr, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, name);
    set(gr, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, name);
    set(gr, op, CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, name);
    add_op(gr, op, name);
}

void cudnn_matmul(struct cudnn_graph *gr, const char *name, cgd_t a, cgd_t b, cgd_t c, cgd_t m, cgd_t n, cgd_t k)
{
    const cudnnDataType_t fp32 = CUDNN_DATA_FLOAT;
    cgd_t mm = create(gr, CUDNN_BACKEND_MATMUL_DESCRIPTOR, name);
    set(gr, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &fp32, name);
    finalize(gr, mm, name);
    cgd_t op = create(gr, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, name);
    set(gr, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a, name);
    set(gr, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b, name);
    set(gr, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c, name);
    set(gr, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm, name);
    if (m) set(gr, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &m, name);
    if (n) set(gr, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, name);
    if (k) set(gr, op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &k, name);
    add_op(gr, op, name);
}

void cudnn_reduction(struct cudnn_graph *gr, const char *name, cudnnReduceTensorOp_t how, cgd_t x, cgd_t y)
{
    const cudnnDataType_t fp32 = CUDNN_DATA_FLOAT;
    cgd_t red = create(gr, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, name);
    set(gr, red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &fp32, name);
    set(gr, red, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &how, name);
    finalize(gr, red, name);
    cgd_t op = create(gr, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, name);
    set(gr, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &red, name);
    set(gr, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, name);
    set(gr, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, name);
    add_op(gr, op, name);
}

void cudnn_reshape(struct cudnn_graph *gr, const char *name, cgd_t x, cgd_t y)
{
    cgd_t op = create(gr, CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, name);
    set(gr, op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x, name);
    set(gr, op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y, name);
    add_op(gr, op, name);
}

/* The first of the heuristics' configurations (mode) that finalizes as a plan: 1 planned, 0 none did.
 * A configuration that does not finalize is not an error: the next one is tried. */
static int plan_from(struct cudnn_graph *gr, cudnnHandle_t handle, cgd_t prop, cgd_t opgraph,
                     cudnnBackendHeurMode_t mode)
{
    enum { MAX_CFG = 32 };
    cgd_t heur = create(gr, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
    set(gr, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &opgraph, "heuristics");
    set(gr, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics");
    if (prop) set(gr, heur, CUDNN_ATTR_ENGINEHEUR_DEVICEPROP, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &prop, "heuristics");
    finalize(gr, heur, "heuristics");
    int64_t n = 0;
    if (gr->status != CUDNN_STATUS_SUCCESS ||
        ok(gr, cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, NULL),
           "heuristics' result count"))
        return 0;
    if (n > MAX_CFG) n = MAX_CFG;
    cgd_t cfg[MAX_CFG];
    for (int64_t i = 0; i < n; i++) cfg[i] = create(gr, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "engine configuration");
    int64_t got = 0;
    if (gr->status != CUDNN_STATUS_SUCCESS ||
        ok(gr, cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &got, cfg),
           "heuristics' results"))
        return 0;
    for (int64_t i = 0; i < got; i++) {
        cgd_t plan = NULL;
        if (ok(gr, cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan), "execution plan"))
            return 0;
        int64_t ws = 0, cnt = 0;
        cudnnStatus_t st = handle ? cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1,
                                                             &handle)
                                  : cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_DEVICEPROP,
                                                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &prop);
        if (st == CUDNN_STATUS_SUCCESS &&
            cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                     &cfg[i]) == CUDNN_STATUS_SUCCESS &&
            cudnnBackendFinalize(plan) == CUDNN_STATUS_SUCCESS &&
            cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &cnt, &ws) ==
                CUDNN_STATUS_SUCCESS) {
            gr->plan = plan;
            gr->workspace = ws;
            return 1;
        }
        if (!gr->refusal[0]) { /* the heuristics' first choice's reason: the one worth reporting */
            char msg[240] = "";
            cudnnGetLastErrorString(msg, sizeof msg);
            snprintf(gr->refusal, sizeof gr->refusal, "engine %lld of %lld offered: %s", (long long)i + 1,
                     (long long)got, msg[0] ? msg : "no reason given");
        }
        cudnnBackendDestroyDescriptor(plan);
    }
    return 0;
}

int cudnn_graph_plan(struct cudnn_graph *gr, cudnnHandle_t handle, cgd_t prop)
{
    cgd_t opgraph = create(gr, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "operation graph");
    if (handle) set(gr, opgraph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "operation graph");
    set(gr, opgraph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, gr->n_ops, gr->ops,
        "operation graph");
    finalize(gr, opgraph, "operation graph");
    if (gr->status != CUDNN_STATUS_SUCCESS) return -1;
    if (plan_from(gr, handle, prop, opgraph, CUDNN_HEUR_MODE_A) ||
        plan_from(gr, handle, prop, opgraph, CUDNN_HEUR_MODE_FALLBACK))
        return 0;
    if (gr->status == CUDNN_STATUS_SUCCESS) {
        gr->status = CUDNN_STATUS_NOT_SUPPORTED;
        snprintf(gr->error, sizeof gr->error, "no engine cuDNN's heuristics offered planned the graph (%s)",
                 gr->refusal[0] ? gr->refusal : "none offered");
    }
    return -1;
}

int cudnn_graph_run(struct cudnn_graph *gr, cudnnHandle_t handle, int n, const int64_t *uids, void *const *ptrs,
                    void *workspace)
{
    cgd_t pack = NULL;
    if (ok(gr, cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack), "variant pack")) return -1;
    int rc = 0;
    if (cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids) ||
        cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs) ||
        cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace)) {
        rc = fail(gr, CUDNN_STATUS_BAD_PARAM, "variant pack");
    } else if (ok(gr, cudnnBackendFinalize(pack), "variant pack") ||
               ok(gr, cudnnBackendExecute(handle, gr->plan, pack), "execute")) {
        rc = -1;
    }
    cudnnBackendDestroyDescriptor(pack);
    return rc;
}
