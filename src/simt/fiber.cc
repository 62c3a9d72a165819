/* The block interpreter of the SIMT interpreter (src/simt/README.md): each CUDA thread of a block is
 * a fiber (fiber_switch.h) that runs until it exits, reaches __syncthreads, or reaches a warp shuffle.
 * When no fiber can run, the scheduler resolves what is complete - a warp operation whose every
 * named lane has arrived, then a barrier every live thread has reached - and reports anything else
 * as the bug it is (a barrier some threads skip, a shuffle naming a lane that exited). Blocks run one
 * after the other on the launching host thread. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fiber_switch.h"
#include "simt_internal.h"

thread_local const simt_ids *simt_current_ids = nullptr;

namespace {

enum fiber_state { F_RUN, F_BARRIER, F_WARP, F_DONE };

struct fiber {
    simt_context ctx;
    simt_ids ids;
    fiber_state state;
    const char *site;
    int lane;
    /* a pending warp operation: its value, 4 or 8 bytes, in val */
    unsigned mask;
    simt_warp_op op;
    int arg, width;
    unsigned char val[8];
    /* a pending __syncthreads_or */
    int pred;
};

/* Fiber stacks: 64 KiB each (kernels keep small locals) above a guard page, kept between launches. */
const size_t STACK_BYTES = 64 * 1024;
const int MAX_THREADS = SIMT_MAX_BLOCK_THREADS;
const size_t DYN_SHARED_MAX = SIMT_MAX_DYN_SHARED;

struct block_run {
    simt_context sched;
    std::vector<fiber> f;
    simt_task *task;
    const char *kernel, *launch_site;
    int cur, nthreads;
    char *dyn_shared;
    bool reverse; /* SIMT_ORDER=reverse: fibers run last to first, exposing order dependence */
};

thread_local block_run *cur_run = nullptr;

struct stack_pool {
    char *base = nullptr;
    size_t page = 0;
    char *stack(int i) { return base + (size_t)i * (STACK_BYTES + page) + page; }
    void init()
    {
        if (base) return;
        page = (size_t)sysconf(_SC_PAGESIZE);
        size_t total = (size_t)MAX_THREADS * (STACK_BYTES + page);
        void *m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) simt_die("cannot map %zu bytes of fiber stacks", total);
        base = (char *)m;
        for (int i = 0; i < MAX_THREADS; i++)
            if (mprotect(base + (size_t)i * (STACK_BYTES + page), page, PROT_NONE) != 0) simt_die("mprotect failed");
    }
};
thread_local stack_pool stacks;

/* Dynamic shared memory: one buffer ending at a guard page, so reading past the launch's size faults. */
struct dyn_shared_buf {
    char *map = nullptr;
    size_t page = 0, usable = 0;
    char *get(size_t bytes)
    {
        if (!map) {
            page = (size_t)sysconf(_SC_PAGESIZE);
            usable = (DYN_SHARED_MAX + page - 1) / page * page;
            void *m = mmap(nullptr, usable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) simt_die("cannot map the dynamic shared memory");
            map = (char *)m;
            if (mprotect(map + usable, page, PROT_NONE) != 0) simt_die("mprotect failed");
        }
        size_t rounded = (bytes + 15) / 16 * 16;
        char *p = map + usable - rounded;
        memset(p, 0xff, rounded); /* shared memory starts undefined: NaN until written */
        return p;
    }
};
thread_local dyn_shared_buf dyn_shared;

/* A fault inside a kernel names it and the thread before the default action (a core, a failed test). */
struct sigaction old_segv, old_bus;
void on_fault(int sig, siginfo_t *si, void *uc)
{
    block_run *r = cur_run;
    if (r && simt_current_ids) {
        const simt_ids *i = simt_current_ids;
        char msg[512];
        int n = snprintf(msg, sizeof msg,
                         "simt: memory fault at %p in kernel %s (launched at %s), block (%u,%u,%u) thread (%u,%u,%u): "
                         "an out-of-bounds or freed device address\n",
                         si->si_addr, r->kernel, r->launch_site, i->block.x, i->block.y, i->block.z, i->thread.x,
                         i->thread.y, i->thread.z);
        if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    }
    const struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    signal(sig, SIG_DFL); /* return re-executes the access, which now takes the default action */
}

void install_fault_handler()
{
    static thread_local bool done = false;
    if (done) return;
    done = true;
    static thread_local char *alt = nullptr; /* fiber stack overflows fault on the guard page */
    size_t alt_bytes = 64 * 1024;
    alt = (char *)malloc(alt_bytes);
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = alt;
    ss.ss_size = alt_bytes;
    sigaltstack(&ss, nullptr);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

/* A fiber's whole life: the kernel body, then back to the scheduler for good. */
void fiber_entry()
{
    block_run *r = cur_run;
    r->task->run_thread();
    r = cur_run;
    r->f[r->cur].state = F_DONE;
    simt_context_switch(&r->f[r->cur].ctx, &r->sched);
    simt_die("a finished fiber was resumed");
}

/* Give control back to the scheduler until this fiber's wait is resolved. */
void fiber_wait(fiber_state why, const char *site)
{
    block_run *r = cur_run;
    if (!r) simt_die("a barrier or warp operation outside a kernel (at %s)", site);
    fiber &me = r->f[r->cur];
    me.state = why;
    me.site = site;
    simt_context_switch(&me.ctx, &r->sched);
}

/* Barrier sites are string literals: the same site is almost always the same pointer. */
bool same_site(const char *a, const char *b) { return a == b || strcmp(a, b) == 0; }

std::string where(const block_run &r, const fiber &f)
{
    char b[200];
    snprintf(b, sizeof b, "kernel %s (launched at %s), block (%u,%u,%u), thread (%u,%u,%u)", r.kernel, r.launch_site,
             f.ids.block.x, f.ids.block.y, f.ids.block.z, f.ids.thread.x, f.ids.thread.y, f.ids.thread.z);
    return b;
}

/* The lane whose value f's pending shuffle reads (width 32 only). */
int shuffle_source(const fiber &f)
{
    switch (f.op) {
    case SIMT_SHFL_XOR: return f.lane ^ f.arg;
    case SIMT_SHFL_UP: return f.lane - f.arg >= 0 ? f.lane - f.arg : f.lane;
    case SIMT_SHFL_DOWN: return f.lane + f.arg < 32 ? f.lane + f.arg : f.lane;
    case SIMT_SHFL_IDX: return f.arg & 31;
    }
    return f.lane;
}

/* Resolve warp w's pending shuffle if every live lane waits at it; 1 when resolved. */
int resolve_warp(block_run &r, int w)
{
    int first = w * 32, last = first + 32 < r.nthreads ? first + 32 : r.nthreads;
    fiber *lead = nullptr;
    for (int t = first; t < last; t++) {
        if (r.f[t].state == F_RUN || r.f[t].state == F_BARRIER) return 0; /* someone not there yet */
        if (r.f[t].state == F_WARP && !lead) lead = &r.f[t];
    }
    if (!lead) return 0;
    for (int t = first; t < last; t++) {
        fiber &f = r.f[t];
        if (f.state != F_WARP) continue;
        if (!same_site(f.site, lead->site) || f.op != lead->op || f.mask != lead->mask)
            simt_die("divergent warp operations: %s waits at %s, %s at %s", where(r, *lead).c_str(), lead->site,
                     where(r, f).c_str(), f.site);
        if (!(f.mask >> f.lane & 1u))
            simt_die("%s: shuffle at %s with mask 0x%08x, which leaves out the calling lane %d", where(r, f).c_str(),
                     f.site, f.mask, f.lane);
        if (f.width != 32) simt_die("%s: shuffle width %d at %s: the interpreter models width 32 only",
                                    where(r, f).c_str(), f.width, f.site);
    }
    for (int l = 0; l < 32; l++) {
        if (!(lead->mask >> l & 1u)) continue;
        int t = first + l;
        if (t >= last)
            simt_die("%s: shuffle at %s names lane %d (mask 0x%08x), which does not exist (block of %d threads)",
                     where(r, *lead).c_str(), lead->site, l, lead->mask, r.nthreads);
        if (r.f[t].state != F_WARP)
            simt_die("%s: shuffle at %s names lane %d (mask 0x%08x), which has exited: undefined on a GPU",
                     where(r, *lead).c_str(), lead->site, l, lead->mask);
    }
    unsigned char out[32][8];
    for (int t = first; t < last; t++) {
        fiber &f = r.f[t];
        if (f.state != F_WARP) continue;
        int src = shuffle_source(f);
        if (!(f.mask >> src & 1u))
            simt_die("%s: shuffle at %s reads lane %d, outside mask 0x%08x", where(r, f).c_str(), f.site, src, f.mask);
        memcpy(out[f.lane], r.f[first + src].val, 8);
    }
    for (int t = first; t < last; t++) {
        fiber &f = r.f[t];
        if (f.state != F_WARP) continue;
        memcpy(f.val, out[f.lane], 8);
        f.state = F_RUN;
    }
    return 1;
}

/* Resolve a __syncthreads every live thread waits at; 1 when resolved. */
int resolve_barrier(block_run &r)
{
    const fiber *lead = nullptr;
    int any = 0;
    for (const fiber &f : r.f) {
        if (f.state == F_DONE) continue;
        if (f.state != F_BARRIER) return 0;
        if (!lead) lead = &f;
        else if (!same_site(f.site, lead->site))
            simt_die("divergent __syncthreads: %s waits at %s, %s at %s", where(r, *lead).c_str(), lead->site,
                     where(r, f).c_str(), f.site);
        any |= f.pred;
    }
    if (!lead) return 0;
    for (fiber &f : r.f)
        if (f.state == F_BARRIER) {
            f.state = F_RUN;
            f.pred = any;
        }
    return 1;
}

[[noreturn]] void report_deadlock(const block_run &r)
{
    std::string s;
    int shown = 0;
    for (const fiber &f : r.f) {
        if (f.state == F_DONE || shown >= 6) continue;
        s += "\n  " + where(r, f) + (f.state == F_BARRIER ? " waits at __syncthreads " : " waits at a shuffle ") + f.site;
        shown++;
    }
    simt_die("kernel %s (launched at %s) cannot go on: threads wait at different barriers or shuffles (a GPU "
             "would hang or misbehave):%s",
             r.kernel, r.launch_site, s.c_str());
}

/* SIMT_ORDER=reverse, read once: the environment does not change during a run. */
bool reverse_order()
{
    static const bool reverse = [] {
        const char *order = getenv("SIMT_ORDER");
        return order && strcmp(order, "reverse") == 0;
    }();
    return reverse;
}

void run_block(block_run &r, dim3 bidx, dim3 grid, dim3 block)
{
    for (int t = 0; t < r.nthreads; t++) {
        fiber &f = r.f[t];
        f.ids.thread = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
        f.ids.block = bidx;
        f.ids.block_dim = block;
        f.ids.grid_dim = grid;
        f.state = F_RUN;
        f.lane = t % 32;
        f.pred = 0;
        /* Each stack's top at another offset within its page: tops at the same offset compete for
         * the same L1 cache sets, and a warp's 32 fibers then miss on every switch. */
        size_t color = (size_t)(t % 61) * 64;
        simt_context_make(&f.ctx, stacks.stack(t), STACK_BYTES - color, fiber_entry);
    }
    /* Warp by warp: a warp runs (its shuffles resolved as they complete) until each of its lanes has
     * exited or waits at a barrier; then the block's barrier is resolved. Keeping to one warp at a
     * time keeps its 32 fibers hot in the cache. */
    int live = r.nthreads, nwarps = (r.nthreads + 31) / 32;
    for (;;) {
        for (int k = 0; k < nwarps; k++) {
            int w = r.reverse ? nwarps - 1 - k : k;
            int first = w * 32, last = first + 32 < r.nthreads ? first + 32 : r.nthreads;
            do {
                for (int j = first; j < last; j++) {
                    int t = r.reverse ? first + last - 1 - j : j;
                    if (r.f[t].state != F_RUN) continue;
                    r.cur = t;
                    simt_current_ids = &r.f[t].ids;
                    simt_context_switch(&r.sched, &r.f[t].ctx);
                    if (r.f[t].state == F_DONE) live--;
                }
            } while (resolve_warp(r, w));
        }
        simt_current_ids = nullptr;
        if (live == 0) return;
        if (!resolve_barrier(r)) report_deadlock(r);
    }
}

} // namespace

void simt_syncthreads(const char *site)
{
    fiber_wait(F_BARRIER, site);
}

int simt_syncthreads_or(int pred, const char *site)
{
    block_run *r = cur_run;
    if (!r) simt_die("__syncthreads_or outside a kernel (at %s)", site);
    r->f[r->cur].pred = pred;
    fiber_wait(F_BARRIER, site);
    return r->f[r->cur].pred;
}

void simt_warp_shuffle(unsigned mask, simt_warp_op op, int arg, int width, void *val, size_t size, const char *site)
{
    block_run *r = cur_run;
    if (!r) simt_die("a warp shuffle outside a kernel (at %s)", site);
    fiber &me = r->f[r->cur];
    me.mask = mask;
    me.op = op;
    me.arg = arg;
    me.width = width;
    /* fixed-size copies: a variable-length memcpy per shuffle was a tenth of the run time */
    if (size == 4) memcpy(me.val, val, 4);
    else memcpy(me.val, val, 8);
    fiber_wait(F_WARP, site);
    fiber &again = r->f[r->cur];
    if (size == 4) memcpy(val, again.val, 4);
    else memcpy(val, again.val, 8);
}

void simt_trap(const char *site)
{
    block_run *r = cur_run;
    if (!r) simt_die("__trap() outside a kernel (at %s)", site);
    simt_die("__trap() at %s in %s: the kernel's own check failed (on a GPU: cudaErrorLaunchFailure)", site,
             where(*r, r->f[r->cur]).c_str());
}

void *simt_dyn_shared(void)
{
    block_run *r = cur_run;
    if (!r) simt_die("dynamic shared memory outside a kernel");
    return r->dyn_shared;
}

void simt_run_grid(const char *kernel, const char *site, dim3 grid, dim3 block, size_t shmem, simt_task *task)
{
    long nthreads = (long)block.x * block.y * block.z;
    if (nthreads > MAX_THREADS) simt_die("kernel %s at %s: %ld threads per block", kernel, site, nthreads);
    if (shmem > DYN_SHARED_MAX) simt_die("kernel %s at %s: %zu bytes of dynamic shared memory", kernel, site, shmem);
    stacks.init();
    install_fault_handler();
    block_run r;
    r.task = task;
    r.kernel = kernel;
    r.launch_site = site;
    r.nthreads = (int)nthreads;
    r.f.resize((size_t)nthreads);
    r.reverse = reverse_order();
    block_run *saved = cur_run;
    cur_run = &r;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                r.dyn_shared = shmem ? dyn_shared.get(shmem) : nullptr;
                run_block(r, dim3(x, y, z), grid, block);
            }
    cur_run = saved;
}
