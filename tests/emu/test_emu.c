/* The device emulator catches what it exists to catch: host access to device memory (a fault), a
 * host array where a kernel wants device memory, a kernel argument reaching past its allocation, a
 * device array where a host table is required, and reads of never-written memory (NaN). Each
 * misuse runs in a child process that must die with the right message. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/gpu_mem.h"
#include "mmupt/kernels.h"

/* Run fn in a child with stderr captured; returns the wait status and the first bytes of stderr. */
static int in_child(void (*fn)(struct gpu_ctx *), char *msg, size_t cap)
{
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        struct gpu_ctx g;
        struct mmupt_err err;
        gpu_ctx_init(&g, &err);
        fn(&g);
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd[0], msg + got, cap - 1 - got)) > 0) got += (size_t)r;
    msg[got] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
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
    float *q = gpu_alloc_floats(g, 16), *cache = gpu_alloc_floats(g, 64);
    int idx[2] = {0, 0};
    attention_decode_cuda(q, q, cache, cache, idx, idx + 1, 1, 1, 4, 1, 1, 16, g->stream);
}

/* A position past the cache: the reference's check, reached through the emulator. */
static void decode_past_cache(struct gpu_ctx *g)
{
    float *q = gpu_alloc_floats(g, 16), *cache = gpu_alloc_floats(g, 64);
    int idx[2] = {0, 4}, *d_idx = gpu_alloc(g, sizeof idx);
    gpu_upload(g, d_idx, idx, sizeof idx);
    attention_decode_cuda(q, q, cache, cache, d_idx, d_idx + 1, 1, 1, 4, 1, 1, 16, g->stream);
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

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_memory);
    RUN(&ts, test_faults);
    return test_summary(&ts);
}
