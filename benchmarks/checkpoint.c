/* How fast are checkpoints next to the disk they are written to?
 *
 *   checkpoint_bench CONFIG.json DIR [LEARNERS] [REPS]      (defaults: 1 learner, 3 repetitions)
 *
 * Builds the parameter table of CONFIG (no weights files: the values are deterministic random
 * floats), plus the two Adam moments m and v of the same size, then times, in a fresh directory under
 * DIR for every repetition:
 *   ckpt_write  ckpt_begin + ckpt_write_optim (every learner's shard) + ckpt_write_model + ckpt_commit,
 *               i.e. the trainer's path with its fsyncs;
 *   ckpt_read   ckpt_read_meta + ckpt_read_weights + ckpt_read_optim (every learner's shard);
 *   raw_write   the same floats with plain write() in 64 MiB pieces, one file per buffer, fsync, close;
 *   raw_read    read() of those files.
 * Before each read every file is fsynced and dropped from the page cache with
 * posix_fadvise(POSIX_FADV_DONTNEED), so both reads go to the disk as far as the kernel honours it;
 * mincore() then says how much stayed resident, and the output reports it. Everything read is
 * compared (memcmp) with the values written; a difference ends the program with status 1.
 * Prints one JSON line (medians over REPS) and removes everything it wrote.
 * benchmarks/checkpoint.sh turns it into a table. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmupt/checkpoint.h"
#include "mmupt/comm.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/runtime.h"

#define PIECE ((size_t)64 << 20) /* bytes per write()/read() call of the baseline */
#define MAX_REPS 25
#define N_BUFS 3                  /* params, m, v */

static const char *const buf_name[N_BUFS] = {"params", "m", "v"};

struct bench {
    struct model_spec spec;
    size_t n;      /* floats per buffer */
    int learners;
    float *buf[N_BUFS];
    char root[2048]; /* DIR/ckbench-XXXXXX: leaves room for the files' names below it */
};

/* One repetition's timings (seconds) and how much of the files stayed cached after the drop. */
struct timing {
    double total, part[4];
    double resident; /* fraction of the files' pages still in the page cache before the read */
};

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "checkpoint_bench: %s: %s\n", what, msg);
    exit(1);
}

/* Value i of buffer `seed`: computable at any index, so a read-back is checked chunk by chunk
 * without keeping a second copy of 2 GB buffers. */
static float value_at(uint64_t seed, size_t i)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + i;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return (float)((x >> 40) * (1.0 / 16777216.0)) - 0.5f;
}

static void fill(float *b, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) b[i] = value_at(seed, i);
}

/* memcmp of what was read against the values written, in chunks of regenerated values. */
static void verify(const struct bench *b, const char *path)
{
    enum { CHUNK = 1 << 22 };
    float *want = mmupt_xmalloc(CHUNK * sizeof *want);
    for (int k = 0; k < N_BUFS; k++)
        for (size_t lo = 0; lo < b->n; lo += CHUNK) {
            size_t len = b->n - lo < CHUNK ? b->n - lo : CHUNK;
            for (size_t i = 0; i < len; i++) want[i] = value_at((uint64_t)k + 1, lo + i);
            if (memcmp(want, b->buf[k] + lo, len * sizeof *want)) {
                size_t i = 0;
                while (want[i] == b->buf[k][lo + i]) i++;
                fprintf(stderr, "checkpoint_bench: %s: %s[%zu] read back as %g, written %g\n", path, buf_name[k],
                        lo + i, (double)b->buf[k][lo + i], (double)want[i]);
                exit(1);
            }
        }
    free(want);
}

/* Overwrite the buffers before a read, so a read that fills nothing cannot pass the check. */
static void clobber(struct bench *b)
{
    for (int k = 0; k < N_BUFS; k++) memset(b->buf[k], 0xff, b->n * sizeof(float));
}

/* Drop one file from the page cache; returns its pages still resident afterwards (mincore), and
 * adds its page count to *pages. */
static size_t drop_file(const char *path, size_t *pages)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || fsync(fd)) die(path, strerror(errno));
    int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (rc) die(path, strerror(rc));
    size_t page = (size_t)sysconf(_SC_PAGESIZE), np = ((size_t)st.st_size + page - 1) / page, resident = 0;
    *pages += np;
    if (np) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        unsigned char *vec = mmupt_xmalloc(np);
        if (map == MAP_FAILED || mincore(map, (size_t)st.st_size, vec)) die(path, strerror(errno));
        for (size_t i = 0; i < np; i++) resident += vec[i] & 1;
        free(vec);
        munmap(map, (size_t)st.st_size);
    }
    close(fd);
    return resident;
}

/* Drop every plain file of dir (one level); the fraction of their pages still resident. */
static double drop_dir(const char *dir, size_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d) die(dir, strerror(errno));
    size_t pages = 0, resident = 0;
    struct dirent *e;
    char path[CKPT_PATH_MAX + 300];
    *bytes = 0;
    while ((e = readdir(d))) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) || !S_ISREG(st.st_mode)) continue;
        *bytes += (size_t)st.st_size;
        resident += drop_file(path, &pages);
    }
    closedir(d);
    return pages ? (double)resident / (double)pages : 0.0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS)) die(path, "cannot remove");
}

/* A fresh directory under the benchmark's root for one repetition of one path. */
static void fresh_dir(const struct bench *b, const char *tag, char *out, size_t n)
{
    snprintf(out, n, "%s/%s-XXXXXX", b->root, tag);
    if (!mkdtemp(out)) die(out, strerror(errno));
}

/* ---- the checkpoint path ---- */

static void ckpt_write_once(struct bench *b, const char *dir, struct timing *t)
{
    struct mmupt_err err;
    struct ckpt_cursor cursor = {0, 0, 0, 0};
    struct ckpt_meta meta = {.format = CKPT_FORMAT_VERSION, .step = 1, .policy_version = 1, .optim_steps = 1,
                             .optim_t = 1, .n_params = (int64_t)b->n, .n_learners = b->learners, .arch = "qwen2",
                             .model_path = "benchmark", .config_yaml = "benchmark: true\n", .n_cursors = 1,
                             .cursors = &cursor};
    char partial[CKPT_PATH_MAX];
    ckpt_step_dir(dir, 1, 1, partial, sizeof partial);
    double t0 = mmupt_now();
    if (ckpt_begin(dir, 1, &err)) die("ckpt_begin", err.msg);
    double t1 = mmupt_now();
    for (int r = 0; r < b->learners; r++) {
        size_t lo, hi;
        comm_shard(b->n, b->learners, r, &lo, &hi);
        if (ckpt_write_optim(partial, r, b->learners, lo, hi, b->n, b->buf[1] + lo, b->buf[2] + lo, 1, &err))
            die("ckpt_write_optim", err.msg);
    }
    double t2 = mmupt_now();
    if (ckpt_write_model(partial, &b->spec, b->buf[0], &meta, NULL, &err)) die("ckpt_write_model", err.msg);
    double t3 = mmupt_now();
    if (ckpt_commit(dir, 1, 1, &err)) die("ckpt_commit", err.msg);
    double t4 = mmupt_now();
    t->total = t4 - t0;
    t->part[0] = t1 - t0, t->part[1] = t2 - t1, t->part[2] = t3 - t2, t->part[3] = t4 - t3;
}

static void ckpt_read_once(struct bench *b, const char *ckpt, struct timing *t)
{
    struct mmupt_err err;
    struct ckpt_meta meta;
    double t0 = mmupt_now();
    if (ckpt_read_meta(ckpt, &meta, &err)) die("ckpt_read_meta", err.msg);
    double t1 = mmupt_now();
    if (ckpt_read_weights(ckpt, &b->spec, b->buf[0], &err)) die("ckpt_read_weights", err.msg);
    double t2 = mmupt_now();
    int64_t adam_t = 0;
    for (int r = 0; r < b->learners; r++) {
        size_t lo, hi;
        comm_shard(b->n, b->learners, r, &lo, &hi);
        if (ckpt_read_optim(ckpt, meta.n_learners, lo, hi, b->n, b->buf[1] + lo, b->buf[2] + lo, &adam_t, &err))
            die("ckpt_read_optim", err.msg);
    }
    double t3 = mmupt_now();
    t->total = t3 - t0;
    t->part[0] = t1 - t0, t->part[1] = t2 - t1, t->part[2] = t3 - t2, t->part[3] = 0;
    if (meta.n_params != (int64_t)b->n || meta.n_learners != b->learners || adam_t != 1)
        die(ckpt, "the metadata read back differs from what was written");
    ckpt_meta_free(&meta);
}

/* One repetition: write, drop the cache, read, check, remove. */
static void ckpt_rep(struct bench *b, struct timing *w, struct timing *r, size_t *file_bytes)
{
    char dir[CKPT_PATH_MAX], ckpt[CKPT_PATH_MAX];
    fresh_dir(b, "ckpt", dir, sizeof dir);
    ckpt_write_once(b, dir, w);
    ckpt_step_dir(dir, 1, 0, ckpt, sizeof ckpt);
    r->resident = drop_dir(ckpt, file_bytes);
    clobber(b);
    ckpt_read_once(b, ckpt, r);
    verify(b, ckpt);
    remove_tree(dir);
}

/* ---- the baseline: plain write()/read() of the same bytes ---- */

static void raw_write_file(const char *path, const void *data, size_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) die(path, strerror(errno));
    const char *p = data;
    for (size_t done = 0; done < bytes;) {
        size_t len = bytes - done < PIECE ? bytes - done : PIECE;
        ssize_t k = write(fd, p + done, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) die(path, k < 0 ? strerror(errno) : "short write");
        done += (size_t)k;
    }
    if (fsync(fd) || close(fd)) die(path, strerror(errno));
}

static void raw_read_file(const char *path, void *data, size_t bytes)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path, strerror(errno));
    char *p = data;
    for (size_t done = 0; done < bytes;) {
        size_t len = bytes - done < PIECE ? bytes - done : PIECE;
        ssize_t k = read(fd, p + done, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) die(path, k < 0 ? strerror(errno) : "file shorter than written");
        done += (size_t)k;
    }
    close(fd);
}

static void raw_rep(struct bench *b, struct timing *w, struct timing *r)
{
    char dir[CKPT_PATH_MAX], path[N_BUFS][CKPT_PATH_MAX + 16];
    fresh_dir(b, "raw", dir, sizeof dir);
    for (int k = 0; k < N_BUFS; k++) snprintf(path[k], sizeof path[k], "%s/%s.raw", dir, buf_name[k]);
    size_t bytes = b->n * sizeof(float), file_bytes;
    memset(w, 0, sizeof *w);
    memset(r, 0, sizeof *r);
    double t0 = mmupt_now();
    for (int k = 0; k < N_BUFS; k++) raw_write_file(path[k], b->buf[k], bytes);
    w->total = mmupt_now() - t0;
    r->resident = drop_dir(dir, &file_bytes);
    clobber(b);
    t0 = mmupt_now();
    for (int k = 0; k < N_BUFS; k++) raw_read_file(path[k], b->buf[k], bytes);
    r->total = mmupt_now() - t0;
    verify(b, dir);
    remove_tree(dir);
}

/* ---- results ---- */

/* The repetition with the median total time (the upper middle one for an even count): its parts
 * add up to the total that is reported, which independent medians of each part would not. */
static const struct timing *median_rep(const struct timing *t, int reps)
{
    int order[MAX_REPS];
    for (int i = 0; i < reps; i++) order[i] = i;
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && t[order[j]].total < t[order[j - 1]].total; j--) {
            int k = order[j];
            order[j] = order[j - 1];
            order[j - 1] = k;
        }
    return &t[order[reps / 2]];
}

/* The largest resident fraction over the repetitions: how well the cache drop worked at worst. */
static double max_resident(const struct timing *t, int reps)
{
    double m = 0;
    for (int i = 0; i < reps; i++) m = t[i].resident > m ? t[i].resident : m;
    return m;
}

static double print_path(const char *name, double bytes, const struct timing *t, int reps)
{
    double s = median_rep(t, reps)->total;
    printf("\"%s\": {\"bytes\": %.0f, \"s\": %.3f, \"gbps\": %.3f, \"resident_after_drop\": %.4f}, ", name, bytes, s,
           bytes / s / 1e9, max_resident(t, reps));
    return s;
}

/* Checksum speed in memory: what verifying and stamping every dataset costs per byte. */
static double sum64_gbps(const struct bench *b)
{
    double t0 = mmupt_now();
    volatile uint64_t s = ckpt_sum64(b->buf[0], b->n * sizeof(float));
    (void)s;
    return (double)(b->n * sizeof(float)) / (mmupt_now() - t0) / 1e9;
}

int main(int argc, char **argv)
{
    mmupt_runtime_init();
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s CONFIG.json DIR [LEARNERS] [REPS]\n", argv[0]);
        return 2;
    }
    struct bench b;
    memset(&b, 0, sizeof b);
    b.learners = argc > 3 ? atoi(argv[3]) : 1;
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    if (b.learners < 1 || b.learners > 1024 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "checkpoint_bench: LEARNERS must be 1..1024 and REPS 1..%d\n", MAX_REPS);
        return 2;
    }
    struct model_config c;
    struct mmupt_err err;
    if (model_config_load(&c, argv[1], &err)) die("config", err.msg);
    model_spec_build(&b.spec, &c);
    b.n = (size_t)b.spec.total;
    if (strlen(argv[2]) > 2000) die(argv[2], "path too long");
    snprintf(b.root, sizeof b.root, "%.2000s/ckbench-XXXXXX", argv[2]);
    if (!mkdtemp(b.root)) die(b.root, strerror(errno));
    for (int k = 0; k < N_BUFS; k++) {
        b.buf[k] = mmupt_xmalloc(b.n * sizeof(float));
        fill(b.buf[k], b.n, (uint64_t)k + 1);
    }
    struct timing cw[MAX_REPS], cr[MAX_REPS], rw[MAX_REPS], rr[MAX_REPS];
    size_t file_bytes = 0;
    for (int i = 0; i < reps; i++) {
        /* Alternate which path goes first, so a disk that slows down (or warms up) over the run
         * does not favour one side. */
        if (i % 2) raw_rep(&b, &rw[i], &rr[i]);
        ckpt_rep(&b, &cw[i], &cr[i], &file_bytes);
        if (!(i % 2)) raw_rep(&b, &rw[i], &rr[i]);
    }
    double bytes = (double)(N_BUFS * b.n * sizeof(float));
    printf("{\"config\": \"%s\", \"floats\": %zu, \"tensors\": %d, \"learners\": %d, \"reps\": %d, "
           "\"cache\": \"fsync + posix_fadvise(DONTNEED) on every file\", \"ckpt_file_bytes\": %zu, ",
           argv[1], b.n, b.spec.n_params, b.learners, reps, file_bytes);
    double cws = print_path("ckpt_write", bytes, cw, reps), crs = print_path("ckpt_read", bytes, cr, reps);
    double rws = print_path("raw_write", bytes, rw, reps), rrs = print_path("raw_read", bytes, rr, reps);
    const struct timing *w = median_rep(cw, reps), *r = median_rep(cr, reps);
    printf("\"ckpt_write_parts_s\": {\"begin\": %.3f, \"optim\": %.3f, \"model\": %.3f, \"commit\": %.3f}, "
           "\"ckpt_read_parts_s\": {\"meta\": %.3f, \"weights\": %.3f, \"optim\": %.3f}, \"sum64_gbps\": %.2f, "
           "\"write_ratio\": %.3f, \"read_ratio\": %.3f}\n",
           w->part[0], w->part[1], w->part[2], w->part[3], r->part[0], r->part[1], r->part[2], sum64_gbps(&b),
           rws / cws, rrs / crs);
    remove_tree(b.root);
    for (int k = 0; k < N_BUFS; k++) free(b.buf[k]);
    model_spec_free(&b.spec);
    return 0;
}
