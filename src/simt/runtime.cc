/* The CUDA runtime API of the SIMT interpreter (src/simt/README.md): device memory, copies, streams,
 * graphs and launches, on host memory, with the checks a GPU makes too late or not at all.
 *
 *   - Device memory is its own mapping: the allocation ends at a guard page (reading past it faults
 *     and the fault handler names the kernel), a freed allocation is unmapped (use after free
 *     faults), and new memory is filled with 0xff bytes (NaN as float and bf16), as cudaMalloc's
 *     contents are undefined: code that reads what it never wrote shows up in the results.
 *   - Copies and kernel pointer arguments must lie in the memory space their kind names.
 *   - Work is executed when it is enqueued (a stream is in order; there is one device), except
 *     while a stream captures a graph: then kernels, device copies and GEMMs are recorded with their
 *     arguments as of the capture, and what a capture cannot hold (host copies, synchronisation,
 *     allocation) fails and invalidates it, as CUDA's thread-local capture mode does.
 *
 * Like the real runtime this is process-wide state (the CUDA API has no context argument); it is
 * guarded by one lock, which is also held while a kernel runs (blocks share static "shared memory"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <mutex>
#include <vector>

#include "simt_internal.h"

struct simt_stream {
    unsigned flags;
    bool capturing, invalidated;
    simt_graph *graph;
};

struct simt_graph {
    std::vector<std::function<void()>> ops;
};

struct simt_graph_exec {
    std::vector<std::function<void()>> ops;
};

struct simt_mem_pool {
    int unused;
};

struct simt_event {
    bool recorded;
    std::chrono::steady_clock::time_point at;
};

namespace {

struct mapping {
    char *map;
    size_t map_bytes, bytes;
};

struct runtime {
    std::recursive_mutex lock;
    std::map<const char *, mapping> allocs; /* by base address */
    size_t live = 0, high = 0, total = 0;
    unsigned long long release_threshold = 0;
    cudaError_t last = cudaSuccess;
    int captures = 0; /* streams capturing now */
    simt_mem_pool pool{0};
    runtime()
    {
        const char *gb = getenv("SIMT_DEVICE_MEMORY_GB");
        double g = gb ? atof(gb) : 8.0;
        total = (size_t)((g > 0 ? g : 8.0) * (1ull << 30));
    }
};

runtime &rt()
{
    static runtime r;
    return r;
}

using guard = std::lock_guard<std::recursive_mutex>;

size_t page_size() { return (size_t)sysconf(_SC_PAGESIZE); }

/* The allocation holding p, or allocs.end(). */
std::map<const char *, mapping>::iterator find_alloc(const void *p, bool end_ok)
{
    auto &a = rt().allocs;
    const char *c = (const char *)p;
    auto it = a.upper_bound(c);
    if (it == a.begin()) return a.end();
    --it;
    size_t off = (size_t)(c - it->first);
    if (off < it->second.bytes || (end_ok && off == it->second.bytes)) return it;
    return a.end();
}

cudaError_t device_alloc(void **p, size_t bytes)
{
    runtime &r = rt();
    if (!p) return simt_set_error(cudaErrorInvalidValue);
    *p = nullptr;
    if (r.captures) { /* a capture cannot hold an allocation here (mmupt never needs one) */
        return simt_set_error(cudaErrorStreamCaptureUnsupported);
    }
    if (bytes > r.total - r.live) return simt_set_error(cudaErrorMemoryAllocation);
    size_t pg = page_size(), used = (bytes + 15) / 16 * 16, data = (used + pg - 1) / pg * pg;
    if (data == 0) data = pg;
    size_t map_bytes = data + 2 * pg;
    void *m = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return simt_set_error(cudaErrorMemoryAllocation);
    char *map = (char *)m;
    mprotect(map, pg, PROT_NONE);
    mprotect(map + pg + data, pg, PROT_NONE);
    char *base = map + pg + data - used; /* the end meets the guard page */
    memset(base, 0xff, used);
    r.allocs[base] = mapping{map, map_bytes, bytes};
    r.live += bytes;
    if (r.live > r.high) r.high = r.live;
    *p = base;
    return cudaSuccess;
}

cudaError_t device_free(void *p)
{
    runtime &r = rt();
    if (!p) return cudaSuccess;
    if (r.captures) return simt_set_error(cudaErrorStreamCaptureUnsupported);
    auto it = r.allocs.find((const char *)p);
    if (it == r.allocs.end()) {
        simt_die("cudaFree(%p): not the start of a live device allocation (double free, or a host pointer)", p);
    }
    r.live -= it->second.bytes;
    munmap(it->second.map, it->second.map_bytes);
    r.allocs.erase(it);
    return cudaSuccess;
}

bool is_device(const void *p) { return find_alloc(p, false) != rt().allocs.end(); }

/* Fatal unless [p, p + n) lies in the memory space the copy kind says (a GPU would fault or corrupt). */
void check_space(const char *who, const char *what, const void *p, size_t n, bool device)
{
    if (device) simt_require_device(who, what, p, n);
    else if (is_device(p)) simt_die("%s: %s (%p) is device memory, but the copy kind says host", who, what, p);
}

cudaError_t memcpy_checked(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t st, bool async)
{
    const char *who = async ? "cudaMemcpyAsync" : "cudaMemcpy";
    if (n == 0) return cudaSuccess;
    if (kind == cudaMemcpyDefault) kind = (cudaMemcpyKind)((is_device(src) ? 2 : 0) | (is_device(dst) ? 1 : 0));
    bool d_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool d_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    check_space(who, "dst", dst, n, d_dst);
    check_space(who, "src", src, n, d_src);
    if (!async) {
        if (rt().captures) return simt_set_error(cudaErrorStreamCaptureUnsupported);
        memmove(dst, src, n);
        return cudaSuccess;
    }
    if (st && st->capturing && kind != cudaMemcpyDeviceToDevice) {
        /* pageable host memory cannot be captured */
        st->invalidated = true;
        return simt_set_error(cudaErrorStreamCaptureUnsupported);
    }
    return simt_stream_submit(st, [dst, src, n] { memmove(dst, src, n); });
}

} // namespace

void simt_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "simt: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    abort();
}

cudaError_t simt_set_error(cudaError_t e)
{
    if (e != cudaSuccess) rt().last = e;
    return e;
}

int simt_find_device(const void *p, int end_ok, const char **base, size_t *bytes)
{
    guard g(rt().lock);
    auto it = find_alloc(p, end_ok != 0);
    if (it == rt().allocs.end()) return 0;
    if (base) *base = it->first;
    if (bytes) *bytes = it->second.bytes;
    return 1;
}

void simt_require_device(const char *who, const char *what, const void *p, size_t bytes)
{
    const char *base = nullptr;
    size_t n = 0;
    if (!p || !simt_find_device(p, 0, &base, &n))
        simt_die("%s: %s (%p, %zu bytes) is not device memory", who, what, p, bytes);
    size_t off = (size_t)((const char *)p - base);
    if (off + bytes > n)
        simt_die("%s: %s reaches %zu bytes past the end of its allocation of %zu bytes (offset %zu, %zu bytes)", who,
                 what, off + bytes - n, n, off, bytes);
}

void simt_check_kernel_pointer(const char *kernel, const char *site, int index, const void *p)
{
    if (!p) return;
    if (!simt_find_device(p, 1, nullptr, nullptr))
        simt_die("kernel %s launched at %s: argument %d (%p) is not device memory", kernel, site, index, p);
}

cudaError_t simt_stream_submit(cudaStream_t st, std::function<void()> work)
{
    guard g(rt().lock);
    if (st && st->capturing) {
        st->graph->ops.push_back(std::move(work));
        return cudaSuccess;
    }
    work();
    return cudaSuccess;
}

void simt_launch_submit(const char *kernel, const char *site, dim3 grid, dim3 block, size_t shmem,
                        simt_stream *stream, std::shared_ptr<simt_task> task)
{
    guard g(rt().lock);
    long threads = (long)block.x * block.y * block.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > SIMT_MAX_BLOCK_THREADS ||
        block.z > SIMT_MAX_BLOCK_Z || grid.x > 2147483647u || grid.y > SIMT_MAX_GRID_YZ ||
        grid.z > SIMT_MAX_GRID_YZ || shmem > SIMT_MAX_DYN_SHARED) {
        /* as on a GPU: nothing runs, and the error waits for cudaGetLastError */
        fprintf(stderr, "simt: kernel %s at %s: invalid launch (grid %u,%u,%u block %u,%u,%u, %zu shared bytes)\n",
                kernel, site, grid.x, grid.y, grid.z, block.x, block.y, block.z, shmem);
        simt_set_error(cudaErrorInvalidConfiguration);
        return;
    }
    simt_stream_submit(stream, [=] { simt_run_grid(kernel, site, grid, block, shmem, task.get()); });
}

extern "C" {

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory (SIMT interpreter: SIMT_DEVICE_MEMORY_GB)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return cudaGetErrorName(e);
    }
}

cudaError_t cudaGetLastError(void)
{
    guard g(rt().lock);
    cudaError_t e = rt().last;
    rt().last = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    guard g(rt().lock);
    return rt().last;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *d)
{
    *d = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int d)
{
    return d == 0 ? cudaSuccess : simt_set_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d)
{
    if (d != 0) return simt_set_error(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "SIMT interpreter on the CPU (not a GPU)");
    p->totalGlobalMem = rt().total;
    p->sharedMemPerBlock = SIMT_MAX_DYN_SHARED;
    p->warpSize = 32;
    p->maxThreadsPerBlock = SIMT_MAX_BLOCK_THREADS;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = SIMT_MAX_BLOCK_THREADS;
    p->maxThreadsDim[2] = SIMT_MAX_BLOCK_Z;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = p->maxGridSize[2] = SIMT_MAX_GRID_YZ;
    p->major = 9; /* the interpreter models what the kernels are written for: sm_90 */
    p->minor = 0;
    p->multiProcessorCount = 1;
    p->l2CacheSize = 1 << 20; /* a cache to flush, as gemm tuning does between its timed runs */
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    guard g(rt().lock);
    return rt().captures ? simt_set_error(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    guard g(rt().lock);
    *free_bytes = rt().total - rt().live;
    *total_bytes = rt().total;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    guard g(rt().lock);
    return device_alloc(p, bytes);
}

cudaError_t cudaFree(void *p)
{
    guard g(rt().lock);
    return device_free(p);
}

cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t st)
{
    (void)st;
    guard g(rt().lock);
    return device_alloc(p, bytes);
}

cudaError_t cudaFreeAsync(void *p, cudaStream_t st)
{
    (void)st;
    guard g(rt().lock);
    return device_free(p);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
    guard g(rt().lock);
    return memcpy_checked(dst, src, bytes, kind, nullptr, false);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t st)
{
    guard g(rt().lock);
    return memcpy_checked(dst, src, bytes, kind, st, true);
}

/* Row by row, each row a checked asynchronous copy (cudaMemcpy2D's rule: pitches at least the width). */
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              enum cudaMemcpyKind kind, cudaStream_t st)
{
    guard g(rt().lock);
    if (dpitch < width || spitch < width) return simt_set_error(cudaErrorInvalidValue);
    for (size_t r = 0; r < height; r++) {
        cudaError_t e = memcpy_checked((char *)dst + r * dpitch, (const char *)src + r * spitch, width, kind, st, true);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes)
{
    guard g(rt().lock);
    if (!bytes) return cudaSuccess;
    simt_require_device("cudaMemset", "the destination", p, bytes);
    if (rt().captures) return simt_set_error(cudaErrorStreamCaptureUnsupported);
    memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t st)
{
    guard g(rt().lock);
    if (!bytes) return cudaSuccess;
    simt_require_device("cudaMemsetAsync", "the destination", p, bytes);
    return simt_stream_submit(st, [p, value, bytes] { memset(p, value, bytes); });
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int device)
{
    if (device != 0) return simt_set_error(cudaErrorInvalidDevice);
    *pool = &rt().pool;
    return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, enum cudaMemPoolAttr attr, void *value)
{
    guard g(rt().lock);
    if (pool != &rt().pool) return simt_set_error(cudaErrorInvalidValue);
    uint64_t v;
    memcpy(&v, value, sizeof v);
    switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: rt().release_threshold = v; return cudaSuccess;
    case cudaMemPoolAttrUsedMemHigh:
    case cudaMemPoolAttrReservedMemHigh:
        if (v != 0) return simt_set_error(cudaErrorInvalidValue); /* only a reset is allowed */
        rt().high = rt().live;
        return cudaSuccess;
    default: return simt_set_error(cudaErrorInvalidValue);
    }
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, enum cudaMemPoolAttr attr, void *value)
{
    guard g(rt().lock);
    if (pool != &rt().pool) return simt_set_error(cudaErrorInvalidValue);
    uint64_t v;
    switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: v = rt().release_threshold; break;
    case cudaMemPoolAttrUsedMemCurrent:
    case cudaMemPoolAttrReservedMemCurrent: v = rt().live; break;
    case cudaMemPoolAttrUsedMemHigh:
    case cudaMemPoolAttrReservedMemHigh: v = rt().high; break;
    default: return simt_set_error(cudaErrorInvalidValue);
    }
    memcpy(value, &v, sizeof v);
    return cudaSuccess;
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t min_bytes_to_keep)
{
    (void)min_bytes_to_keep; /* the interpreter unmaps at every free: nothing is kept */
    return pool == &rt().pool ? cudaSuccess : simt_set_error(cudaErrorInvalidValue);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *st, unsigned flags)
{
    *st = new simt_stream{flags, false, false, nullptr};
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *st)
{
    return cudaStreamCreateWithFlags(st, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t st)
{
    guard g(rt().lock);
    if (!st) return simt_set_error(cudaErrorInvalidValue);
    if (st->capturing) simt_die("cudaStreamDestroy of a stream that is capturing a graph");
    delete st;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t st)
{
    guard g(rt().lock);
    if (rt().captures) {
        if (st && st->capturing) st->invalidated = true;
        return simt_set_error(cudaErrorStreamCaptureUnsupported);
    }
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t st, enum cudaStreamCaptureStatus *status)
{
    guard g(rt().lock);
    if (!status) return simt_set_error(cudaErrorInvalidValue);
    *status = !st || !st->capturing ? cudaStreamCaptureStatusNone
              : st->invalidated     ? cudaStreamCaptureStatusInvalidated
                                    : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *ev)
{
    if (!ev) return simt_set_error(cudaErrorInvalidValue);
    *ev = new simt_event{false, {}};
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t ev)
{
    delete ev;
    return cudaSuccess;
}

/* The work submitted to st before the record has run (streams run it at submission), so the event
 * takes the host's clock now. A capture cannot record one here: mmupt times only outside them. */
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t st)
{
    guard g(rt().lock);
    if (!ev) return simt_set_error(cudaErrorInvalidValue);
    if (st && st->capturing) simt_die("cudaEventRecord inside a graph capture (the interpreter has no event nodes)");
    ev->recorded = true;
    ev->at = std::chrono::steady_clock::now();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t ev)
{
    guard g(rt().lock);
    if (!ev) return simt_set_error(cudaErrorInvalidValue);
    if (rt().captures) return simt_set_error(cudaErrorStreamCaptureUnsupported);
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (!ms || !start || !end || !start->recorded || !end->recorded) return simt_set_error(cudaErrorInvalidValue);
    *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t st, enum cudaStreamCaptureMode mode)
{
    guard g(rt().lock);
    (void)mode; /* every mode: the interpreter has one host thread issuing work per capture */
    if (!st || st->capturing) return simt_set_error(cudaErrorIllegalState); /* the legacy stream cannot capture */
    st->capturing = true;
    st->invalidated = false;
    st->graph = new simt_graph;
    rt().captures++;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph)
{
    guard g(rt().lock);
    if (!st || !st->capturing) return simt_set_error(cudaErrorIllegalState);
    st->capturing = false;
    rt().captures--;
    if (st->invalidated) {
        delete st->graph;
        st->graph = nullptr;
        *graph = nullptr;
        return simt_set_error(cudaErrorStreamCaptureInvalidated);
    }
    *graph = st->graph;
    st->graph = nullptr;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    (void)flags;
    if (!graph) return simt_set_error(cudaErrorInvalidValue);
    *exec = new simt_graph_exec{graph->ops};
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st)
{
    if (!exec) return simt_set_error(cudaErrorInvalidValue);
    for (auto &op : exec->ops) simt_stream_submit(st, op);
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    delete exec;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    delete graph;
    return cudaSuccess;
}

} // extern "C"
