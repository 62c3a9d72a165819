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

void emu_dev(struct emu_state *st, const char *who, const char *what, const void *p, size_t bytes)
{
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
}

static void emu_protect(struct emu_state *st, int prot)
{
    for (int i = 0; i < st->n_open; i++)
        if (mprotect(st->open[i]->base, st->open[i]->mapped - emu_page(), prot) != 0) MMUPT_DIE("emu: mprotect failed");
}

void emu_open(struct emu_state *st)
{
    emu_protect(st, PROT_READ | PROT_WRITE);
    st->kernels++;
}

void emu_close(struct emu_state *st)
{
    emu_protect(st, PROT_NONE);
    st->n_open = 0;
}

int gpu_ctx_init(struct gpu_ctx *g, struct mmupt_err *err)
{
    (void)err;
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
    emu_open(st);
    memmove(dst, src, bytes);
    emu_close(st);
}

void gpu_zero(const struct gpu_ctx *g, void *p, size_t bytes)
{
    struct emu_state *st = emu_state_of(g->stream, "gpu_zero");
    if (!bytes) return;
    emu_dev(st, "gpu_zero", "p", p, bytes);
    emu_open(st);
    memset(p, 0, bytes);
    emu_close(st);
}

int gpu_emulated(void)
{
    return 1;
}

void gpu_mem_stats(const struct gpu_ctx *g, struct gpu_mem_stats *s)
{
    const struct emu_state *st = emu_state_of(g->stream, "gpu_mem_stats");
    *s = (struct gpu_mem_stats){.launches = st->kernels, .live_allocs = st->n, .live_bytes = st->live_bytes,
                                .peak_bytes = st->peak_bytes};
}

void gpu_sync(const struct gpu_ctx *g)
{
    (void)emu_state_of(g->stream, "gpu_sync"); /* emulated work is done when its call returns */
}

/* No graphs on the emulator: callers run the work directly (gpu_mem.h). */
int gpu_capture_begin(const struct gpu_ctx *g)
{
    (void)emu_state_of(g->stream, "gpu_capture_begin");
    return -1;
}

struct gpu_graph *gpu_capture_end(const struct gpu_ctx *g, struct mmupt_err *err)
{
    (void)g;
    mmupt_fail(err, "the device emulator has no CUDA graphs");
    return NULL;
}

void gpu_graph_launch(const struct gpu_ctx *g, const struct gpu_graph *gr)
{
    (void)g;
    (void)gr;
    MMUPT_DIE("gpu_graph_launch on the device emulator, which makes no graphs");
}

void gpu_graph_free(struct gpu_graph *gr)
{
    MMUPT_CHECK(gr == NULL);
}
