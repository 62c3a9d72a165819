/* The NCCL backend of comm.h against the MPI backend: all-reduce (f32, f64), reduce-scatter,
 * all-gather (also in place), broadcast (also queued: comm_broadcast_start) on device buffers give the same values as the MPI
 * backend on the same host data (exactly for 1 rank, within fp32 summation-order rounding for
 * more). Run directly (1 rank, one GPU) by the gpu suite; on a machine with N GPUs also run it as
 * `mpirun -np N build/tests/test_comm_nccl` (rank r uses device r mod N). Skips (exit 77) without a
 * GPU, saying why. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpi.h>

#include "../test.h"
#include "gpu_test.h"
#include "mmupt/comm.h"
#include "mmupt/cuda_check.h"
#include "mmupt/gpu.h"

struct pair {
    struct comm mpi, nccl;
};

static float value(int rank, size_t i) { return (float)((double)((i * 7919 + (size_t)rank * 104729) % 1000) / 997.0 - 0.5); }

static double max_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

static void test_allreduce(struct test_state *ts, struct pair *p, size_t n)
{
    float *h = malloc(n * sizeof *h), *got = malloc(n * sizeof *got);
    for (size_t i = 0; i < n; i++) h[i] = value(p->mpi.rank, i);
    float *d = gpu_test_upload(h, n * sizeof *h);
    CHECK(ts, comm_allreduce_sum(&p->mpi, h, n) == 0);
    CHECK(ts, comm_allreduce_sum(&p->nccl, d, n) == 0);
    CUDA_CHECK(cudaMemcpy(got, d, n * sizeof *got, cudaMemcpyDeviceToHost));
    double tol = p->mpi.size == 1 ? 0 : 1e-6 * p->mpi.size;
    CHECK_MSG(ts, max_diff(h, got, n) <= tol, "n=%zu: max diff %g", n, max_diff(h, got, n));
    double hd[3] = {1.5, -2.25, 1e-300}, dd[3];
    double *dev = gpu_test_upload(hd, sizeof hd);
    CHECK(ts, comm_allreduce_sum_f64(&p->nccl, dev, 3) == 0);
    CUDA_CHECK(cudaMemcpy(dd, dev, sizeof dd, cudaMemcpyDeviceToHost));
    CHECK(ts, comm_allreduce_sum_f64(&p->mpi, hd, 3) == 0);
    CHECK(ts, dd[0] == hd[0] && dd[1] == hd[1] && dd[2] == hd[2]);
    cudaFree(d);
    cudaFree(dev);
    free(h);
    free(got);
}

static void test_shards(struct test_state *ts, struct pair *p, size_t n)
{
    size_t lo, hi;
    comm_shard(n, p->mpi.size, p->mpi.rank, &lo, &hi);
    float *h = malloc(n * sizeof *h), *shard = malloc((hi - lo + 1) * sizeof *shard);
    float *got = malloc(n * sizeof *got), *all = malloc(n * sizeof *all);
    for (size_t i = 0; i < n; i++) h[i] = value(p->mpi.rank, i);
    float *din = gpu_test_upload(h, n * sizeof *h), *dshard, *dout;
    CUDA_CHECK(cudaMalloc((void **)&dshard, (hi - lo + 1) * sizeof *dshard));
    CUDA_CHECK(cudaMalloc((void **)&dout, n * sizeof *dout));
    CHECK(ts, comm_reduce_scatter_sum(&p->mpi, h, shard, n) == 0);
    CHECK(ts, comm_reduce_scatter_sum(&p->nccl, din, dshard, n) == 0);
    CUDA_CHECK(cudaMemcpy(got, dshard, (hi - lo) * sizeof *got, cudaMemcpyDeviceToHost));
    double tol = p->mpi.size == 1 ? 0 : 1e-6 * p->mpi.size;
    CHECK_MSG(ts, max_diff(shard, got, hi - lo) <= tol, "reduce-scatter n=%zu", n);
    /* all-gather the MPI shard both ways, the device one in place */
    CHECK(ts, comm_allgather(&p->mpi, shard, all, n) == 0);
    CUDA_CHECK(cudaMemcpy(dout + lo, shard, (hi - lo) * sizeof *shard, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaDeviceSynchronize()); /* pageable copies may return early; NCCL's stream is another */
    CHECK(ts, comm_allgather(&p->nccl, dout + lo, dout, n) == 0);
    CUDA_CHECK(cudaMemcpy(got, dout, n * sizeof *got, cudaMemcpyDeviceToHost));
    CHECK_MSG(ts, max_diff(all, got, n) == 0, "all-gather n=%zu: max diff %g", n, max_diff(all, got, n));
    cudaFree(din);
    cudaFree(dshard);
    cudaFree(dout);
    free(h);
    free(shard);
    free(got);
    free(all);
}

/* The reduce-scatter in windows (the learners' gradient buckets): each window queued behind the
 * compute stream's work (here the legacy default stream) without a host wait, then all waited for
 * at once - the whole call's sums. */
static void test_windows(struct test_state *ts, struct pair *p, size_t n)
{
    size_t lo, hi;
    comm_shard(n, p->nccl.size, p->nccl.rank, &lo, &hi);
    float *h = malloc(n * sizeof *h), *whole = malloc((hi - lo + 1) * sizeof *whole);
    float *got = malloc((hi - lo + 1) * sizeof *got);
    for (size_t i = 0; i < n; i++) h[i] = value(p->nccl.rank, i);
    float *din = gpu_test_upload(h, n * sizeof *h), *dshard, *dpieces;
    CUDA_CHECK(cudaMalloc((void **)&dshard, (hi - lo + 1) * sizeof *dshard));
    CUDA_CHECK(cudaMalloc((void **)&dpieces, (hi - lo + 1) * sizeof *dpieces));
    CHECK(ts, comm_reduce_scatter_sum(&p->nccl, din, dshard, n) == 0);
    CUDA_CHECK(cudaMemcpy(whole, dshard, (hi - lo) * sizeof *whole, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemset(dpieces, 0xff, (hi - lo + 1) * sizeof *dpieces));
    CUDA_CHECK(cudaDeviceSynchronize());
    const size_t cuts[] = {0, n / 3, n / 3, n / 2, n};
    for (size_t k = sizeof cuts / sizeof *cuts - 1; k > 0; k--) {
        CHECK(ts, comm_after_stream(&p->nccl, NULL) == 0);
        CHECK(ts, comm_reduce_scatter_range(&p->nccl, din, dpieces, n, cuts[k - 1], cuts[k]) == 0);
    }
    CHECK(ts, comm_sync(&p->nccl) == 0);
    CUDA_CHECK(cudaMemcpy(got, dpieces, (hi - lo) * sizeof *got, cudaMemcpyDeviceToHost));
    double tol = p->nccl.size == 1 ? 0 : 1e-6 * p->nccl.size;
    CHECK_MSG(ts, max_diff(whole, got, hi - lo) <= tol, "windows n=%zu: max diff %g", n, max_diff(whole, got, hi - lo));
    cudaFree(din);
    cudaFree(dshard);
    cudaFree(dpieces);
    free(h);
    free(whole);
    free(got);
}

static void test_broadcast(struct test_state *ts, struct pair *p)
{
    unsigned char h[1000], got[1000];
    for (int i = 0; i < 1000; i++) h[i] = (unsigned char)(p->mpi.rank == 0 ? i * 13 : 0);
    unsigned char *d = gpu_test_upload(h, sizeof h);
    CHECK(ts, comm_broadcast(&p->nccl, d, sizeof h, 0) == 0);
    CUDA_CHECK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < 1000; i++) bad += got[i] != (unsigned char)(i * 13);
    CHECK_MSG(ts, bad == 0, "%d bytes differ", bad);
    /* comm_broadcast_start: queued behind a copy on another stream that writes the root's source (so
     * the broadcast must wait for it), returning before it is done; comm_sync then has the bytes. */
    unsigned char h2[1000];
    for (int i = 0; i < 1000; i++) h2[i] = (unsigned char)(p->mpi.rank == 0 ? i * 7 + 1 : 0);
    unsigned char *d2 = gpu_test_upload(h2, sizeof h2);
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    if (p->mpi.rank == 0) CUDA_CHECK(cudaMemcpyAsync(d, d2, sizeof h2, cudaMemcpyDeviceToDevice, s));
    CHECK(ts, comm_after_stream(&p->nccl, s) == 0);
    CHECK(ts, comm_broadcast_start(&p->nccl, d, sizeof h2, 0) == 0);
    CHECK(ts, comm_sync(&p->nccl) == 0);
    CUDA_CHECK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost));
    bad = 0;
    for (int i = 0; i < 1000; i++) bad += got[i] != (unsigned char)(i * 7 + 1);
    CHECK_MSG(ts, bad == 0, "broadcast_start: %d bytes differ", bad);
    CUDA_CHECK(cudaStreamDestroy(s));
    cudaFree(d2);
    cudaFree(d);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    struct gpu_info gi;
    gpu_query(&gi);
    if (gi.device_count == 0) {
        printf("SKIP: %s\n", gi.built ? gi.reason : "built without CUDA");
        MPI_Finalize();
        return TEST_SKIP;
    }
    struct test_state ts = {0};
    struct pair p;
    struct mmupt_err err;
    if (comm_world(&p.mpi, &err) || comm_world(&p.nccl, &err) ||
        comm_nccl_open(&p.nccl, p.nccl.rank % gi.device_count, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        MPI_Finalize();
        return 1;
    }
    size_t sizes[] = {1, 7, 1000, 1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        test_allreduce(&ts, &p, sizes[k]);
        test_shards(&ts, &p, sizes[k]);
        test_windows(&ts, &p, sizes[k]);
    }
    test_broadcast(&ts, &p);
    int rank = p.mpi.rank;
    comm_free(&p.nccl);
    comm_free(&p.mpi);
    int rc = rank == 0 ? test_summary(&ts) : (ts.failed ? 1 : 0);
    MPI_Finalize();
    return rc;
}
