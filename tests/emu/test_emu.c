/* The device emulator catches what it exists to catch: host access to device memory (a fault), a
 * host array where a kernel wants device memory, a kernel argument reaching past its allocation, a
 * device array where a host table is required, reads of never-written memory (NaN), a bf16 GEMM
 * operand said to be its input's rounding that is not (cast_done, inp16), and in CUDA
 * graphs: work that cannot be captured, and a replay that would use other buffers than its
 * recording. Each misuse runs in a child process that must die with the right message. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/gpu_mem.h"
#include "mmupt/kernels.h"

/* A test body that gets a fresh emulated device. */
struct emu_case {
    void (*fn)(struct gpu_ctx *);
};

static void emu_case_run(void *ctx)
{
    struct gpu_ctx g;
    struct mmupt_err err;
    gpu_ctx_init(&g, &err);
    ((struct emu_case *)ctx)->fn(&g);
}

/* fn on a fresh emulated device in a child process (test_in_child). */
static int in_child(void (*fn)(struct gpu_ctx *), char *msg, size_t cap)
{
    struct emu_case c = {fn};
    return test_in_child(emu_case_run, &c, msg, cap);
}

static void host_reads_device(struct gpu_ctx *g)
{
    float *d = gpu_alloc_floats(g, 16);
    volatile float x = d[3]; /* the bug: dereferencing device memory on the host */
    (void)x;
}

static void host_array_to_kernel(struct gpu_ctx *g)
{
    float host[8] = {0}, *d = gpu_alloc_floats(g, 8);
    residual_forward_cuda(d, host, d, 8, g->stream);
}

static void kernel_overrun(struct gpu_ctx *g)
{
    float *d = gpu_alloc_floats(g, 8);
    residual_forward_cuda(d, d, d, 9, g->stream);
}

static void device_table(struct gpu_ctx *g)
{
    float *src = gpu_alloc_floats(g, 64), *dst = gpu_alloc_floats(g, 64);
    int64_t *index = gpu_alloc(g, sizeof *index); /* gather_rows_cuda's index is launch metadata */
    gather_rows_cuda(dst, src, index, 1, 16, g->stream);
}

/* The decode step's slot/position arrays are device arrays, shared by every layer. */
static void host_decode_index(struct gpu_ctx *g)
{
    float *q = gpu_alloc_floats(g, 16), *cache = gpu_alloc_floats(g, 64), *scores = gpu_alloc_floats(g, 4);
    int idx[2] = {0, 0};
    attention_decode_cuda(q, q, cache, cache, idx, idx + 1, 1, 1, 4, 1, 1, 16, scores, NULL, 0, g->stream);
}

/* A position past the cache: the reference's check, reached through the emulator. */
static void decode_past_cache(struct gpu_ctx *g)
{
    float *q = gpu_alloc_floats(g, 16), *cache = gpu_alloc_floats(g, 64), *scores = gpu_alloc_floats(g, 4);
    int idx[2] = {0, 4}, *d_idx = gpu_alloc(g, sizeof idx);
    gpu_upload(g, d_idx, idx, sizeof idx);
    attention_decode_cuda(q, q, cache, cache, d_idx, d_idx + 1, 1, 1, 4, 1, 1, 16, scores, NULL, 0, g->stream);
}

/* Split counters that are not zero when the call starts (a caller that never zeroed them). */
static void decode_dirty_count(struct gpu_ctx *g)
{
    float *q = gpu_alloc_floats(g, 16), *cache = gpu_alloc_floats(g, 64), *scores = gpu_alloc_floats(g, 4);
    int idx[2] = {0, 0}, *d_idx = gpu_alloc(g, sizeof idx);
    unsigned one = 1, *count = gpu_alloc(g, sizeof one);
    gpu_upload(g, d_idx, idx, sizeof idx);
    gpu_upload(g, count, &one, sizeof one);
    attention_decode_cuda(q, q, cache, cache, d_idx, d_idx + 1, 1, 1, 4, 1, 1, 16, scores, count, 0, g->stream);
}

/* A bf16 GEMM told its input's cast is already in the scratch, when the scratch holds another's. */
static void cast_not_done(struct gpu_ctx *g)
{
    float *x = gpu_alloc_floats(g, 8), *y = gpu_alloc_floats(g, 8), *out = gpu_alloc_floats(g, 4);
    uint16_t *w = gpu_alloc(g, 8 * sizeof *w), *scratch = gpu_alloc(g, 8 * sizeof *scratch);
    const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    gpu_zero(g, x, 8 * sizeof *x), gpu_upload(g, y, ones, sizeof ones), gpu_zero(g, w, 8 * sizeof *w);
    matmul_forward_bf16_cuda(out, x, w, NULL, 2, 4, 2, scratch, 0, g->blas);
    matmul_forward_bf16_cuda(out, x, w, NULL, 2, 4, 2, scratch, 1, g->blas); /* fine: the same x */
    matmul_forward_bf16_cuda(out, y, w, NULL, 2, 4, 2, scratch, 1, g->blas); /* the bug */
}

/* A bf16 backward given a kept rounding (inp16) of another input than its inp. */
static void stale_inp16(struct gpu_ctx *g)
{
    float *x = gpu_alloc_floats(g, 8), *y = gpu_alloc_floats(g, 8), *out = gpu_alloc_floats(g, 4);
    float *dout = gpu_alloc_floats(g, 4), *dw = gpu_alloc_floats(g, 8);
    uint16_t *w = gpu_alloc(g, 8 * sizeof *w), *x16 = gpu_alloc(g, 8 * sizeof *x16);
    uint16_t *scratch = gpu_alloc(g, 4 * sizeof *scratch);
    const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    gpu_zero(g, x, 8 * sizeof *x), gpu_upload(g, y, ones, sizeof ones), gpu_zero(g, w, 8 * sizeof *w);
    gpu_zero(g, dout, 4 * sizeof *dout), gpu_zero(g, dw, 8 * sizeof *dw);
    matmul_forward_bf16_cuda(out, x, w, NULL, 2, 4, 2, x16, 0, g->blas);              /* x16 = x rounded */
    matmul_backward_bf16_cuda(NULL, 1.0f, dw, 1.0f, NULL, dout, y, x16, w, 2, 4, 2, scratch, g->blas); /* but inp is y */
}

static void test_faults(struct test_state *ts)
{
    char msg[4096];
    int st = in_child(host_reads_device, msg, sizeof msg);
    /* A plain build dies of the signal; under ASan its SEGV handler reports and exits 1. */
    int segv = (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
               (WIFEXITED(st) && WEXITSTATUS(st) != 0 && strstr(msg, "SEGV") != NULL);
    CHECK_MSG(ts, segv, "host read of device memory: status %d, stderr: %.300s", st, msg);
    st = in_child(host_array_to_kernel, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "residual_forward_cuda: a");
    CHECK_CONTAINS(ts, msg, "is not device memory");
    st = in_child(kernel_overrun, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "past its allocation");
    st = in_child(device_table, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "must be a host array");
    st = in_child(host_decode_index, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "attention_decode_cuda: slot");
    CHECK_CONTAINS(ts, msg, "is not device memory");
    st = in_child(decode_past_cache, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "position 4 outside a cache of 1 x 4");
    st = in_child(decode_dirty_count, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "attention_decode_cuda: count[0] is 1: the counters must be zero");
    st = in_child(cast_not_done, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "cast_done, but value 0 of 8 is not this input rounded to bf16");
    st = in_child(stale_inp16, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "matmul_backward_bf16_cuda: inp16, but value 0 of 8 is not this input rounded");
}

/* Graph work: out = a + b, the buffers found through a struct (as the decode step finds the weights
 * through its model), so moving one between recording and launch is what a real bug looks like. */
struct sum_bufs {
    float *out, *a, *b;
    const struct gpu_ctx *g;
    int upload; /* the misuse: a host copy inside the work */
};
struct sum_args {
    struct sum_bufs *bufs;
};

static void sum_work(void *ctx)
{
    struct sum_bufs *s = ((struct sum_args *)ctx)->bufs;
    if (s->upload) {
        float one = 1.0f;
        gpu_upload(s->g, s->a, &one, sizeof one);
    }
    residual_forward_cuda(s->out, s->a, s->b, 4, s->g->stream);
}

static void graph_with_upload(struct gpu_ctx *g)
{
    struct sum_bufs s = {gpu_alloc_floats(g, 4), gpu_alloc_floats(g, 4), gpu_alloc_floats(g, 4), g, 1};
    struct sum_args a = {&s};
    struct mmupt_err err;
    gpu_graph_record(g, sum_work, &a, sizeof a, &err);
}

static void graph_buffer_moved(struct gpu_ctx *g)
{
    struct sum_bufs s = {gpu_alloc_floats(g, 4), gpu_alloc_floats(g, 4), gpu_alloc_floats(g, 4), g, 0};
    struct sum_args a = {&s};
    struct mmupt_err err;
    struct gpu_graph *gr = gpu_graph_record(g, sum_work, &a, sizeof a, &err);
    s.b = gpu_alloc_floats(g, 4); /* the bug: the graph still holds the old b */
    gpu_graph_launch(g, gr);
}

/* Recording runs nothing; each launch runs the work; the misuses die. */
static void test_graphs(struct test_state *ts)
{
    struct gpu_ctx g;
    struct mmupt_err err;
    CHECK(ts, gpu_ctx_init(&g, &err) == 0);
    float h[4] = {1, 2, 3, 4}, r[4];
    struct sum_bufs s = {gpu_alloc_floats(&g, 4), gpu_alloc_floats(&g, 4), gpu_alloc_floats(&g, 4), &g, 0};
    gpu_upload(&g, s.a, h, sizeof h);
    gpu_upload(&g, s.b, h, sizeof h);
    gpu_zero(&g, s.out, sizeof h);
    struct sum_args a = {&s};
    struct gpu_graph *gr = gpu_graph_record(&g, sum_work, &a, sizeof a, &err);
    CHECK(ts, gr != NULL);
    gpu_download(&g, r, s.out, sizeof r);
    CHECK_MSG(ts, r[0] == 0 && r[3] == 0, "the recording ran the work");
    gpu_graph_launch(&g, gr);
    gpu_download(&g, r, s.out, sizeof r);
    CHECK(ts, r[0] == 2 && r[3] == 8);
    gpu_upload(&g, s.a, r, sizeof r); /* new contents at the same address: replay reads them */
    gpu_graph_launch(&g, gr);
    gpu_download(&g, r, s.out, sizeof r);
    CHECK(ts, r[0] == 3 && r[3] == 12);
    gpu_graph_free(gr);
    gpu_free(&g, s.out), gpu_free(&g, s.a), gpu_free(&g, s.b);
    gpu_ctx_free(&g);

    char msg[4096];
    int st = in_child(graph_with_upload, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "gpu_upload inside a CUDA graph recording");
    st = in_child(graph_buffer_moved, msg, sizeof msg);
    CHECK(ts, !(WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_CONTAINS(ts, msg, "replay issued other kernels or device addresses than its recording");
}

static void test_memory(struct test_state *ts)
{
    struct gpu_ctx g;
    struct mmupt_err err;
    CHECK(ts, gpu_ctx_init(&g, &err) == 0);
    CHECK(ts, gpu_emulated());
    struct gpu_mem_stats st;
    float *a = gpu_alloc_floats(&g, 5), *b = gpu_alloc_floats(&g, 5), h[5] = {1, 2, 3, 4, 5}, r[5];
    gpu_mem_stats(&g, &st);
    CHECK(ts, st.live_allocs == 2 && st.live_bytes == 40);
    gpu_download(&g, r, a, sizeof r);
    for (int i = 0; i < 5; i++) CHECK(ts, isnan(r[i])); /* never written: NaN */
    gpu_upload(&g, a, h, sizeof h);
    gpu_copy(&g, b, a, sizeof h);
    residual_forward_cuda(b, b, a, 5, g.stream);
    gpu_download(&g, r, b, sizeof r);
    for (int i = 0; i < 5; i++) CHECK(ts, r[i] == 2 * h[i]);
    gpu_zero(&g, b + 1, 2 * sizeof(float));
    gpu_download(&g, r, b, sizeof r);
    CHECK(ts, r[0] == 2 && r[1] == 0 && r[2] == 0 && r[3] == 8);
    gpu_free(&g, a);
    gpu_free(&g, b);
    gpu_mem_stats(&g, &st);
    CHECK(ts, st.live_allocs == 0 && st.live_bytes == 0 && st.peak_bytes == 40 && st.launches == 7);
    gpu_ctx_free(&g);
}

/* gpu_copy_2d: rows land at their pitch, the bytes between rows stay as they were. */
static void test_copy_2d(struct test_state *ts)
{
    struct gpu_ctx g;
    struct mmupt_err err;
    CHECK(ts, gpu_ctx_init(&g, &err) == 0);
    float h[12], r[12];
    for (int i = 0; i < 12; i++) h[i] = (float)i;
    float *a = gpu_alloc_floats(&g, 12), *b = gpu_alloc_floats(&g, 12);
    gpu_upload(&g, a, h, sizeof h);
    gpu_zero(&g, b, sizeof h);
    /* 3 rows of 2 floats: from a's rows of 4 into b's rows of 4, one float in */
    gpu_copy_2d(&g, b + 1, 4 * sizeof(float), a, 4 * sizeof(float), 2 * sizeof(float), 3);
    gpu_download(&g, r, b, sizeof r);
    static const float want[12] = {0, 0, 1, 0, 0, 4, 5, 0, 0, 8, 9, 0};
    for (int i = 0; i < 12; i++) CHECK_MSG(ts, r[i] == want[i], "b[%d] = %g, want %g", i, r[i], want[i]);
    gpu_copy_2d(&g, b, 4, a, 4, 0, 3); /* nothing to copy */
    gpu_free(&g, a);
    gpu_free(&g, b);
    gpu_ctx_free(&g);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_memory);
    RUN(&ts, test_copy_2d);
    RUN(&ts, test_faults);
    RUN(&ts, test_graphs);
    return test_summary(&ts);
}
