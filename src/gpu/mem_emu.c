/* Emulated device memory (include/mmupt/gpu_mem.h, src/gpu/emu.h): allocations are private
 * mappings kept PROT_NONE except inside an emulated kernel or copy, so host code that reads or writes
 * device memory directly - the bug a CPU-only build could otherwise never see - faults at once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emu.h"
#include "mmupt/gpu_mem.h"

static size_t emu_page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

struct emu_state *emu_state_of(void *stream, const char *who)
{
    if (!stream) MMUPT_DIE("emu: %s launched on the default stream (the device model passes its context's)", who);
    return stream;
}

static const struct emu_block *emu_find(const struct emu_state *st, const void *p)
{
    const char *c = p;
    for (int i = 0; i < st->n; i++)
        if (c >= st->blk[i].base && c < st->blk[i].base + st->blk[i].mapped) return &st->blk[i];
    return NULL;
}

/* FNV-1a over the words of one argument, for the graph fingerprint. */
static void emu_mix(struct emu_state *st, const void *who, const void *p, size_t bytes)
{
    const uint64_t w[3] = {(uint64_t)(uintptr_t)who, (uint64_t)(uintptr_t)p, (uint64_t)bytes};
    const unsigned char *c = (const unsigned char *)w;
    for (size_t i = 0; i < sizeof w; i++) st->fp = (st->fp ^ c[i]) * 1099511628211ull;
}

void emu_graph_note(struct emu_state *st, const char *who, const void *p)
{
    if (st->graph) emu_mix(st, who, p, 0);
}

void emu_dev(struct emu_state *st, const char *who, const char *what, const void *p, size_t bytes)
{
    if (st->graph) emu_mix(st, who, p, bytes); /* who: the twin's __func__, one address per name */
    const struct emu_block *b = p ? emu_find(st, p) : NULL;
    if (!b) MMUPT_DIE("emu: %s: %s (%p) is not device memory", who, what, p);
    size_t off = (size_t)((const char *)p - b->base);
    if (off + bytes > b->bytes)
        MMUPT_DIE("emu: %s: %s reaches %zu bytes past its allocation of %zu (offset %zu, %zu bytes)", who, what,
                  off + bytes - b->bytes, b->bytes, off, bytes);
    for (int i = 0; i < st->n_open; i++)
        if (st->open[i] == b) return;
    if (st->n_open == EMU_MAX_OPEN) MMUPT_DIE("emu: %s: more than %d device arguments", who, EMU_MAX_OPEN);
    st->open[st->n_open++] = b;
}

void emu_host(const struct emu_state *st, const char *who, const char *what, const void *p)
{
    if (p && emu_find(st, p)) MMUPT_DIE("emu: %s: %s must be a host array, got device memory", who, what);
    if (st->graph == EMU_GRAPH_RECORDING)
        MMUPT_DIE("emu: %s: %s is host launch metadata, which a CUDA graph cannot capture", who, what);
}

void emu_not_in_graph(const struct emu_state *st, const char *who)
{
    if (st->graph == EMU_GRAPH_RECORDING) MMUPT_DIE("emu: %s inside a CUDA graph recording (not capturable)", who);
}

static void emu_protect(struct emu_state *st, int prot)
{
    for (int i = 0; i < st->n_open; i++)
        if (mprotect(st->open[i]->base, st->open[i]->mapped - emu_page(), prot) != 0) MMUPT_DIE("emu: mprotect failed");
}

int emu_open(struct emu_state *st)
{
    if (st->graph == EMU_GRAPH_RECORDING) return 0;
    emu_protect(st, PROT_READ | PROT_WRITE);
    st->kernels++;
    return 1;
}

void emu_close(struct emu_state *st)
{
    if (st->graph != EMU_GRAPH_RECORDING) emu_protect(st, PROT_NONE);
    st->n_open = 0;
}

int gpu_ctx_init(struct gpu_ctx *g, struct mmupt_err *err)
{
    if (gpu_tuning_from_env(&g->tuning, err)) return -1;
    struct emu_state *st = mmupt_xcalloc(1, sizeof *st);
    g->stream = st;
    g->blas = (struct gpu_blas *)st; /* the GEMM shims find the state through the handle too */
    g->device = 0;
    return 0;
}

void gpu_ctx_free(struct gpu_ctx *g)
{
    struct emu_state *st = g->stream;
    if (!st) return;
    if (st->n) fprintf(stderr, "emu: %d device allocation(s) (%zu bytes) still live at gpu_ctx_free\n", st->n,
                       st->live_bytes);
    while (st->n) gpu_free(g, st->blk[st->n - 1].base);
    free(st->blk);
    free(st);
    g->stream = NULL;
    g->blas = NULL;
}

/* cudaMalloc does not clear: fresh memory is all-ones bytes (NaN floats, -1 integers), so a read
 * of something never written shows up in the results. */
void *gpu_alloc(const struct gpu_ctx *g, size_t bytes)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_alloc");
    emu_not_in_graph(st, "gpu_alloc");
    size_t pg = emu_page(), want = bytes ? bytes : 1;
    size_t mapped = (want + pg - 1) / pg * pg + pg;
    char *base = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) MMUPT_DIE("emu: cannot map %zu bytes", mapped);
    memset(base, 0xff, want);
    if (mprotect(base, mapped, PROT_NONE) != 0) MMUPT_DIE("emu: mprotect failed");
    if (st->n == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 64;
        st->blk = realloc(st->blk, (size_t)st->cap * sizeof *st->blk);
        if (!st->blk) MMUPT_DIE("emu: out of host memory");
    }
    st->blk[st->n++] = (struct emu_block){base, want, mapped};
    st->live_bytes += want;
    if (st->live_bytes > st->peak_bytes) st->peak_bytes = st->live_bytes;
    return base;
}

void gpu_free(const struct gpu_ctx *g, void *p)
{
    if (!p) return;
    struct emu_state *st = emu_state_of(g->stream, "gpu_free");
    emu_not_in_graph(st, "gpu_free");
    for (int i = 0; i < st->n; i++)
        if (st->blk[i].base == p) {
            munmap(p, st->blk[i].mapped);
            st->live_bytes -= st->blk[i].bytes;
            st->blk[i] = st->blk[--st->n];
            return;
        }
    MMUPT_DIE("emu: gpu_free of %p, which is not the start of a device allocation", p);
}

void gpu_upload(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_upload");
    emu_not_in_graph(st, "gpu_upload");
    if (!bytes) return;
    emu_dev(st, "gpu_upload", "dst", dst, bytes);
    emu_host(st, "gpu_upload", "src", src);
    emu_open(st);
    memcpy(dst, src, bytes);
    emu_close(st);
}

void gpu_download(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_download");
    emu_not_in_graph(st, "gpu_download");
    if (!bytes) return;
    emu_dev(st, "gpu_download", "src", src, bytes);
    emu_host(st, "gpu_download", "dst", dst);
    emu_open(st);
    memcpy(dst, src, bytes);
    emu_close(st);
}

void gpu_copy(const struct gpu_ctx *g, void *dst, const void *src, size_t bytes)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_copy");
    if (!bytes) return;
    emu_dev(st, "gpu_copy", "dst", dst, bytes);
    emu_dev(st, "gpu_copy", "src", src, bytes);
    if (emu_open(st)) memmove(dst, src, bytes);
    emu_close(st);
}

/* Each side checked as the one extent its rows span (rows may not overlap a pitch: cudaMemcpy2D's
 * rule, pitch >= width). */
void gpu_copy_2d(const struct gpu_ctx *g, void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                 size_t height)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_copy_2d");
    if (!width || !height) return;
    if (dpitch < width || spitch < width)
        MMUPT_DIE("gpu_copy_2d: a pitch (%zu, %zu) below the width %zu", dpitch, spitch, width);
    emu_dev(st, "gpu_copy_2d", "dst", dst, (height - 1) * dpitch + width);
    emu_dev(st, "gpu_copy_2d", "src", src, (height - 1) * spitch + width);
    if (emu_open(st))
        for (size_t r = 0; r < height; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    emu_close(st);
}

void gpu_zero(const struct gpu_ctx *g, void *p, size_t bytes)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_zero");
    if (!bytes) return;
    emu_dev(st, "gpu_zero", "p", p, bytes);
    if (emu_open(st)) memset(p, 0, bytes);
    emu_close(st);
}

int gpu_emulated(void)
{
    return 1;
}

void gpu_release_cached(const struct gpu_ctx *g)
{
    (void)g; /* the emulator keeps nothing freed */
}

void gpu_mem_stats(const struct gpu_ctx *g, struct gpu_mem_stats *s)
{
    const struct emu_state *st = emu_state_of(g->stream, "gpu_mem_stats");
    *s = (struct gpu_mem_stats){.launches = st->kernels, .live_allocs = st->n, .live_bytes = st->live_bytes,
                                .peak_bytes = st->peak_bytes};
}

void gpu_sync(const struct gpu_ctx *g)
{
    /* emulated work is done when its call returns */
    emu_not_in_graph(emu_state_of(g->stream, "gpu_sync"), "gpu_sync");
}

/* Graphs on the emulator (gpu_mem.h): a recording fingerprints the work without running it; a
 * launch fingerprints it again the same way (the capture rules apply again), dies if the two differ,
 * and only then runs it - so a wrong replay stops before it computes anything. */
struct gpu_graph {
    struct emu_state *st;
    gpu_work_fn fn;
    void *ctx;
    unsigned long long fp;
};

static unsigned long long emu_fingerprint(struct emu_state *st, gpu_work_fn fn, void *ctx)
{
    if (st->graph) MMUPT_DIE("emu: a CUDA graph recorded or launched inside another");
    st->graph = EMU_GRAPH_RECORDING;
    st->fp = 1469598103934665603ull;
    fn(ctx);
    st->graph = EMU_GRAPH_NONE;
    return st->fp;
}

struct gpu_graph *gpu_graph_record(const struct gpu_ctx *g, gpu_work_fn fn, void *ctx, size_t ctx_bytes,
                                   struct mmupt_err *err)
{
    (void)err;
    struct gpu_graph *gr = mmupt_xmalloc(sizeof *gr);
    gr->st = emu_state_of(g->stream, "gpu_graph_record");
    gr->fn = fn;
    gr->ctx = mmupt_xmalloc(ctx_bytes ? ctx_bytes : 1);
    memcpy(gr->ctx, ctx, ctx_bytes);
    gr->fp = emu_fingerprint(gr->st, fn, gr->ctx);
    return gr;
}

void gpu_graph_launch(const struct gpu_ctx *g, const struct gpu_graph *gr)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_graph_launch");
    if (st != gr->st) MMUPT_DIE("emu: a graph launched on another context than it was recorded on");
    unsigned long long fp = emu_fingerprint(st, gr->fn, gr->ctx);
    if (fp != gr->fp)
        MMUPT_DIE("emu: a CUDA graph's replay issued other kernels or device addresses than its recording "
                  "(%016llx, recorded %016llx): a buffer it uses moved, and the real graph would use the old one",
                  fp, gr->fp);
    gr->fn(gr->ctx); /* the replay itself */
}

void gpu_graph_free(struct gpu_graph *gr)
{
    if (!gr) return;
    free(gr->ctx);
    free(gr);
}
