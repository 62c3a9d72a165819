/* The CUDA device language for the SIMT interpreter (src/simt/README.md), C++ only: included by the
 * interpreter's cuda_runtime.h. The .cu files of kernels/cuda, after src/simt/cu2cc.py has rewritten their two non-C++
 * constructs (the <<<...>>> launch and `extern __shared__`), compile against it with the host C++
 * compiler, and run on host fibers: every CUDA thread of a block is a fiber that runs until it
 * reaches a barrier or a warp operation, and the interpreter resolves those only when every thread
 * that must take part has arrived (divergent barriers and shuffles with missing lanes are reported,
 * not hung on). Blocks run one after the other, so a function-static variable is exactly a block's
 * shared memory. */
#ifndef MMUPT_SIMT_KERNEL_H
#define MMUPT_SIMT_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

/* The built-in variables of the thread now running (set by the interpreter before each switch). */
struct simt_ids {
    dim3 thread, block, block_dim, grid_dim;
};
extern thread_local const simt_ids *simt_current_ids;

#define threadIdx (simt_current_ids->thread)
#define blockIdx (simt_current_ids->block)
#define blockDim (simt_current_ids->block_dim)
#define gridDim (simt_current_ids->grid_dim)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__
#define __launch_bounds__(...)
#define __shared__ static
static constexpr int warpSize = 32;

#define SIMT_STR2(x) #x
#define SIMT_STR(x) SIMT_STR2(x)
#define SIMT_SITE __FILE__ ":" SIMT_STR(__LINE__)

/* ---- synchronisation (runtime.cc) ---- */
enum simt_warp_op { SIMT_SHFL_XOR = 1, SIMT_SHFL_UP, SIMT_SHFL_DOWN, SIMT_SHFL_IDX };
void simt_syncthreads(const char *site);
int simt_syncthreads_or(int pred, const char *site);
/* A warp shuffle: *val (size bytes) is this lane's value on entry and the source lane's on return. */
void simt_warp_shuffle(unsigned mask, simt_warp_op op, int arg, int width, void *val, size_t size, const char *site);
[[noreturn]] void simt_trap(const char *site);
/* The launch's dynamic shared memory (its size in bytes; a guard page follows it). */
void *simt_dyn_shared(void);

#define __syncthreads() simt_syncthreads(SIMT_SITE)
#define __syncthreads_or(p) simt_syncthreads_or((p) != 0, SIMT_SITE)
#define __syncwarp(...) ((void)0)
/* Blocks run one after the other: every write is visible to every later block, so a fence is a
 * no-op. */
#define __threadfence() ((void)0)
#define __trap() simt_trap(SIMT_SITE)

template <typename T> static inline T simt_shfl(const char *site, simt_warp_op op, unsigned mask, T v, int arg,
                                              int width = 32)
{
    static_assert((sizeof(T) == 4 || sizeof(T) == 8) && std::is_trivially_copyable<T>::value, "shuffle of a 32- or 64-bit scalar");
    simt_warp_shuffle(mask, op, arg, width, &v, sizeof v, site);
    return v;
}
#define __shfl_xor_sync(mask, ...) simt_shfl(SIMT_SITE, SIMT_SHFL_XOR, mask, __VA_ARGS__)
#define __shfl_up_sync(mask, ...) simt_shfl(SIMT_SITE, SIMT_SHFL_UP, mask, __VA_ARGS__)
#define __shfl_down_sync(mask, ...) simt_shfl(SIMT_SITE, SIMT_SHFL_DOWN, mask, __VA_ARGS__)
#define __shfl_sync(mask, ...) simt_shfl(SIMT_SITE, SIMT_SHFL_IDX, mask, __VA_ARGS__)

/* ---- intrinsics: the exact operation where CUDA has one, the libm function for the fast ones (the
 * GPU's __expf is an approximation: tolerances must allow for it; the interpreter cannot) ---- */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float simt_expf(float x) { return expf(x); }
static inline float simt_logf(float x) { return logf(x); }
#define __expf simt_expf
#define __logf simt_logf
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline unsigned __float_as_uint(float f)
{
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float __uint_as_float(unsigned u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline int __float_as_int(float f) { return (int)__float_as_uint(f); }
static inline float __int_as_float(int i) { return __uint_as_float((unsigned)i); }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }

/* Fibers of one block run on one host thread, one at a time, and no fiber switch happens inside an
 * atomic: every read-modify-write below is atomic by construction. */
template <typename T> static inline T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T> static inline T atomicMax(T *p, T v)
{
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <typename T> static inline T atomicMin(T *p, T v)
{
    T old = *p;
    if (v < old) *p = v;
    return old;
}
template <typename T> static inline T atomicExch(T *p, T v)
{
    T old = *p;
    *p = v;
    return old;
}
template <typename T> static inline T atomicCAS(T *p, T cmp, T v)
{
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}

/* ---- launches: `k<<<grid, block, shmem, stream>>>(args)` becomes
 * `simt_launch("k", k, SIMT_SITE, grid, block, shmem, stream)(args)` ---- */

/* One kernel launch with its arguments bound by value, as CUDA copies them at launch (a graph
 * replays these copies: a scalar argument is frozen at capture, as on the GPU). */
struct simt_task {
    virtual ~simt_task() {}
    virtual void run_thread() = 0; /* the kernel body, for the thread now current */
};

template <typename... P> struct simt_task_of : simt_task {
    void (*fn)(P...);
    std::tuple<typename std::decay<P>::type...> args;
    template <typename... A> simt_task_of(void (*f)(P...), A &&...a) : fn(f), args(std::forward<A>(a)...) {}
    void run_thread() override { std::apply(fn, args); }
};

/* Fatal unless p is NULL or points into (or one past) a live device allocation. */
void simt_check_kernel_pointer(const char *kernel, const char *site, int index, const void *p);
template <typename T> static inline void simt_check_arg(const char *k, const char *site, int i, T *p)
{
    simt_check_kernel_pointer(k, site, i, (const void *)p);
}
template <typename T> static inline void simt_check_arg(const char *, const char *, int, const T &) {}

struct simt_stream;
void simt_launch_submit(const char *kernel, const char *site, dim3 grid, dim3 block, size_t shmem,
                        simt_stream *stream, std::shared_ptr<simt_task> task);

template <typename... P> struct simt_launcher {
    const char *name, *site;
    void (*fn)(P...);
    dim3 grid, block;
    size_t shmem;
    simt_stream *stream;
    template <typename... A> void operator()(A &&...a) const
    {
        static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
        auto task = std::make_shared<simt_task_of<P...>>(fn, std::forward<A>(a)...);
        check(task->args, std::index_sequence_for<P...>{});
        simt_launch_submit(name, site, grid, block, shmem, stream, task);
    }
    template <typename Tuple, size_t... I> void check(const Tuple &t, std::index_sequence<I...>) const
    {
        (simt_check_arg(name, site, (int)I, std::get<I>(t)), ...);
    }
};

template <typename... P>
static inline simt_launcher<P...> simt_launch(const char *name, void (*fn)(P...), const char *site, dim3 grid,
                                              dim3 block, size_t shmem = 0, simt_stream *stream = nullptr)
{
    return simt_launcher<P...>{name, site, fn, grid, block, shmem, stream};
}

#endif
