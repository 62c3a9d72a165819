// The SIMT interpreter's own test (src/simt/README.md; suite simt, -Dsimt=true builds only): small
// CUDA kernels that must run right, and the bugs the interpreter promises to report - each run in a
// child process that must die naming the cause. Written in CUDA, rewritten by src/simt/cu2cc.py like
// kernels/cuda.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h" // tests/test.h (the generated .cc lives in the build folder)
#include "mmupt/cuda_check.h"

// ---- kernels that are right ----

// out[b] = sum of in[b * n .. b * n + n) by a warp butterfly, then one value per warp in shared.
static __global__ void block_sum_kernel(float *out, const float *in, int n)
{
    __shared__ float part[32];
    float v = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += in[(long)blockIdx.x * n + i];
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int w = 0; w < (int)(blockDim.x / 32); w++) s += part[w];
        out[blockIdx.x] = s;
    }
}

// Inclusive prefix sums within each warp (shfl_up), and a block-wide OR of a predicate.
static __global__ void scan_kernel(int *scan, int *any, const int *in)
{
    int v = in[threadIdx.x], lane = threadIdx.x % 32;
    for (int off = 1; off < 32; off *= 2) {
        int o = __shfl_up_sync(0xffffffffu, v, off);
        if (lane >= off) v += o;
    }
    scan[threadIdx.x] = v;
    int a = __syncthreads_or(in[threadIdx.x] == 7);
    if (threadIdx.x == 0) *any = a;
}

// x[i] += k, one thread per element (the graph test's scalar argument).
static __global__ void add_kernel(float *x, float k, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += k;
}

// Thread t reads the shared slot thread t + 1 writes, with no barrier between: a race. Which value
// it sees depends on the order the threads run in, which SIMT_ORDER=reverse flips.
static __global__ void racy_kernel(float *out)
{
    __shared__ float s[64];
    s[threadIdx.x] = 1.0f;
    out[threadIdx.x] = threadIdx.x + 1 < blockDim.x ? s[threadIdx.x + 1] : 1.0f;
}

// ---- kernels with bugs ----

static __global__ void divergent_barrier_kernel(float *x)
{
    if (threadIdx.x < 16) {
        __syncthreads();
        x[threadIdx.x] = 1.0f;
    } else {
        __syncthreads();
    }
}

static __global__ void exited_lane_kernel(float *x)
{
    if (threadIdx.x == 3) return;
    float v = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
    x[threadIdx.x] = v;
}

static __global__ void overrun_kernel(float *x, int n)
{
    x[threadIdx.x * 4096 + n] = 1.0f; // far past the end for thread > 0
}

static __global__ void trap_kernel(const int *flag)
{
    if (*flag) __trap();
}

// ---- helpers ----

static float *upload(const float *h, int n)
{
    float *d = NULL;
    CUDA_CHECK(cudaMalloc((void **)&d, (size_t)n * sizeof *d));
    CUDA_CHECK(cudaMemcpy(d, h, (size_t)n * sizeof *d, cudaMemcpyHostToDevice));
    return d;
}

static void call_fn(void *ctx) { (*(void (**)(void))ctx)(); }

// fn in a child process (test_in_child): its stderr in msg, its wait status returned.
static int in_child(void (*fn)(void), char *msg, size_t cap) { return test_in_child(call_fn, &fn, msg, cap); }

static int died(int st) { return !(WIFEXITED(st) && WEXITSTATUS(st) == 0); }

// ---- tests ----

static void test_reductions(struct test_state *ts)
{
    enum { B = 3, N = 1000 };
    float h[B * N], want[B] = {0}, got[B];
    for (int i = 0; i < B * N; i++) {
        h[i] = (float)(i % 17) - 8.0f;
        want[i / N] += h[i];
    }
    float *d = upload(h, B * N), *o = NULL;
    CUDA_CHECK(cudaMalloc((void **)&o, sizeof got));
    block_sum_kernel<<<B, 256>>>(o, d, N);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpy(got, o, sizeof got, cudaMemcpyDeviceToHost));
    for (int b = 0; b < B; b++) CHECK_MSG(ts, got[b] == want[b], "block %d: %g vs %g", b, got[b], want[b]);

    int hin[64], hscan[64], hany = -1, *din = NULL, *dscan = NULL, *dany = NULL;
    for (int i = 0; i < 64; i++) hin[i] = i % 5;
    CUDA_CHECK(cudaMalloc((void **)&din, sizeof hin));
    CUDA_CHECK(cudaMalloc((void **)&dscan, sizeof hscan));
    CUDA_CHECK(cudaMalloc((void **)&dany, sizeof hany));
    CUDA_CHECK(cudaMemcpy(din, hin, sizeof hin, cudaMemcpyHostToDevice));
    scan_kernel<<<1, 64>>>(dscan, dany, din);
    CUDA_CHECK(cudaMemcpy(hscan, dscan, sizeof hscan, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(&hany, dany, sizeof hany, cudaMemcpyDeviceToHost));
    for (int w = 0; w < 2; w++) {
        int acc = 0;
        for (int l = 0; l < 32; l++) {
            acc += hin[w * 32 + l];
            CHECK_MSG(ts, hscan[w * 32 + l] == acc, "scan lane %d: %d vs %d", w * 32 + l, hscan[w * 32 + l], acc);
        }
    }
    CHECK_MSG(ts, hany == 0, "__syncthreads_or with no 7 in the input: %d", hany);
    hin[40] = 7;
    CUDA_CHECK(cudaMemcpy(din, hin, sizeof hin, cudaMemcpyHostToDevice));
    scan_kernel<<<1, 64>>>(dscan, dany, din);
    CUDA_CHECK(cudaMemcpy(&hany, dany, sizeof hany, cudaMemcpyDeviceToHost));
    CHECK_MSG(ts, hany == 1, "__syncthreads_or with a 7 in the input: %d", hany);
    void *dev[] = {d, o, din, dscan, dany};
    for (int i = 0; i < 5; i++) CUDA_CHECK(cudaFree(dev[i]));
}

// New memory reads as NaN (cudaMalloc's contents are undefined); launch limits are reported.
static void test_memory_and_limits(struct test_state *ts)
{
    float *d = NULL, h[4];
    CUDA_CHECK(cudaMalloc((void **)&d, sizeof h));
    CUDA_CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    CHECK_MSG(ts, isnan(h[0]) && isnan(h[3]), "fresh device memory reads %g, %g", h[0], h[3]);
    CHECK(ts, cudaGetLastError() == cudaSuccess);
    add_kernel<<<1, 1025>>>(d, 1.0f, 4);
    CHECK(ts, cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(ts, cudaGetLastError() == cudaSuccess); // read and cleared
    CUDA_CHECK(cudaFree(d));
}

// A capture records kernels with their arguments as of the capture; host copies cannot be captured.
static void test_graphs(struct test_state *ts)
{
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    float zero[4] = {0, 0, 0, 0}, h[4];
    float *d = upload(zero, 4);
    float k = 1.0f;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    add_kernel<<<1, 32, 0, st>>>(d, k, 4);
    CUDA_CHECK(cudaStreamEndCapture(st, &graph));
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    CHECK_MSG(ts, h[0] == 0.0f, "a captured kernel ran at capture: %g", h[0]);
    k = 5.0f; // the graph keeps the 1 it captured
    CUDA_CHECK(cudaGraphLaunch(exec, st));
    CUDA_CHECK(cudaGraphLaunch(exec, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    CUDA_CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    CHECK_MSG(ts, h[0] == 2.0f && h[3] == 2.0f, "two replays of x += 1 gave %g, %g", h[0], h[3]);
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    CUDA_CHECK(cudaGraphDestroy(graph));

    CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    CHECK(ts, cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, st) == cudaErrorStreamCaptureUnsupported);
    CHECK(ts, cudaStreamEndCapture(st, &graph) == cudaErrorStreamCaptureInvalidated);
    CHECK(ts, cudaGetLastError() != cudaSuccess);
    CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    float *more = NULL;
    CHECK(ts, cudaMallocAsync((void **)&more, 16, st) == cudaErrorStreamCaptureUnsupported);
    CHECK(ts, cudaStreamSynchronize(st) == cudaErrorStreamCaptureUnsupported);
    CHECK(ts, cudaStreamEndCapture(st, &graph) == cudaErrorStreamCaptureInvalidated);
    cudaGetLastError();
    CUDA_CHECK(cudaFree(d));
    CUDA_CHECK(cudaStreamDestroy(st));
}

// cuBLAS's column-major product and its argument rules.
static void test_gemm(struct test_state *ts)
{
    enum { M = 3, N = 2, K = 4 };
    float a[M * K], b[K * N], c[M * N], want[M * N];
    for (int i = 0; i < M * K; i++) a[i] = (float)(i + 1);
    for (int i = 0; i < K * N; i++) b[i] = (float)(i % 3) - 1.0f;
    for (int j = 0; j < N; j++) // column-major: A is M x K with lda = M, B is K x N with ldb = K
        for (int i = 0; i < M; i++) {
            float s = 0.0f;
            for (int l = 0; l < K; l++) s += a[i + l * M] * b[l + j * K];
            want[i + j * M] = 2.0f * s;
        }
    float *da = upload(a, M * K), *db = upload(b, K * N), *dc = NULL;
    CUDA_CHECK(cudaMalloc((void **)&dc, sizeof c)); // NaN-filled: beta = 0 must not read it
    cublasHandle_t h;
    CHECK(ts, cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    const float two = 2.0f, zero = 0.0f;
    CHECK(ts, cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &two, da, M, db, K, &zero, dc, M) ==
                  CUBLAS_STATUS_SUCCESS);
    CUDA_CHECK(cudaMemcpy(c, dc, sizeof c, cudaMemcpyDeviceToHost));
    for (int i = 0; i < M * N; i++) CHECK_MSG(ts, c[i] == want[i], "C[%d] %g vs %g", i, c[i], want[i]);
    CHECK(ts, cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, M, N, K, &two, da, M - 1, db, K, &zero, dc, M) ==
                  CUBLAS_STATUS_INVALID_VALUE);
    CHECK(ts, cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, M, N, K, &two, da, M, db, K, &zero, dc, M) ==
                  CUBLAS_STATUS_INVALID_VALUE); // op(A) = A^T needs lda >= K
    cublasDestroy(h);
    void *dev[] = {da, db, dc};
    for (int i = 0; i < 3; i++) CUDA_CHECK(cudaFree(dev[i]));
}

// The order threads run in changes a racy kernel's result and no correct kernel's.
static void test_order(struct test_state *ts)
{
    float *d = NULL, h[64];
    CUDA_CHECK(cudaMalloc((void **)&d, sizeof h));
    racy_kernel<<<1, 64>>>(d);
    CUDA_CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    const char *order = getenv("SIMT_ORDER");
    int reverse = order && strcmp(order, "reverse") == 0;
    // forward: thread t runs to its end before t + 1 writes its slot; reverse: after
    CHECK_MSG(ts, reverse ? h[0] == 1.0f : h[0] != 1.0f, "racy read in %s order: %g", reverse ? "reverse" : "forward",
              h[0]);
    CUDA_CHECK(cudaFree(d));
}

static void bug_divergent_barrier(void)
{
    float *d = NULL;
    cudaMalloc((void **)&d, 64 * sizeof *d);
    divergent_barrier_kernel<<<1, 64>>>(d);
}

static void bug_exited_lane(void)
{
    float *d = NULL;
    cudaMalloc((void **)&d, 32 * sizeof *d);
    cudaMemset(d, 0, 32 * sizeof *d);
    exited_lane_kernel<<<1, 32>>>(d);
}

static void bug_overrun(void)
{
    float *d = NULL;
    cudaMalloc((void **)&d, 8 * sizeof *d);
    overrun_kernel<<<1, 4>>>(d, 8);
}

static void bug_host_argument(void)
{
    float h[4] = {0};
    add_kernel<<<1, 4>>>(h, 1.0f, 4);
}

static void bug_copy_kind(void)
{
    float h[4] = {0}, h2[4];
    cudaMemcpy(h2, h, sizeof h, cudaMemcpyHostToDevice);
}

static void bug_trap(void)
{
    int one = 1, *d = NULL;
    cudaMalloc((void **)&d, sizeof one);
    cudaMemcpy(d, &one, sizeof one, cudaMemcpyHostToDevice);
    trap_kernel<<<1, 1>>>(d);
}

static void bug_double_free(void)
{
    float *d = NULL;
    cudaMalloc((void **)&d, 16);
    cudaFree(d);
    cudaFree(d);
}

static void test_bugs_reported(struct test_state *ts)
{
    static const struct {
        void (*fn)(void);
        const char *says;
    } bugs[] = {
        {bug_divergent_barrier, "divergent __syncthreads"},
        {bug_exited_lane, "which has exited"},
        {bug_overrun, "memory fault"},
        {bug_host_argument, "argument 0"},
        {bug_copy_kind, "is not device memory"},
        {bug_trap, "__trap()"},
        {bug_double_free, "not the start of a live device allocation"},
    };
    char msg[4096];
    for (size_t i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        int st = in_child(bugs[i].fn, msg, sizeof msg);
        CHECK_MSG(ts, died(st), "bug %zu ran to the end: %s", i, msg);
        CHECK_CONTAINS(ts, msg, bugs[i].says);
    }
    int st = in_child(bug_overrun, msg, sizeof msg);
    CHECK_CONTAINS(ts, msg, "overrun_kernel");
    CHECK(ts, WIFSIGNALED(st));
}

int main(void)
{
    struct test_state ts = {0, 0, 0};
    RUN(&ts, test_reductions);
    RUN(&ts, test_memory_and_limits);
    RUN(&ts, test_graphs);
    RUN(&ts, test_gemm);
    RUN(&ts, test_order);
    RUN(&ts, test_bugs_reported);
    return test_summary(&ts);
}
