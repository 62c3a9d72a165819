/* Checkpoint files: round trips (weights by name, metadata, snapshots, optimizer shards resharded
 * over 1-3 learners), keep_last and `latest`, and bad input: flipped bytes, a truncated file, a
 * checkpoint of another model, a missing shard, a full disk (RLIMIT_FSIZE in a child process), bad
 * `latest` files. After every failure the previous checkpoint must still load.
 * usage: test_checkpoint MODEL_DIR OTHER_MODEL_DIR */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/checkpoint.h"
#include "mmupt/comm.h"

struct fx {
    struct model m, other;
    char root[256];   /* scratch */
    char dir[512];    /* root/ckpt */
    float *snap;      /* a behaviour snapshot */
    float *m1, *v1;   /* full Adam moments */
    int64_t n;
};

static float val(uint64_t i, uint64_t salt)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ salt;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return (float)((double)(x >> 40) / 16777216.0 - 0.5);
}

static void meta_fill(struct fx *f, int64_t step, int learners, struct ckpt_meta *m)
{
    memset(m, 0, sizeof *m);
    m->step = step;
    m->policy_version = step;
    m->optim_steps = 2 * step;
    m->optim_t = 2 * step - 1;
    m->n_params = f->n;
    m->n_learners = learners;
    snprintf(m->arch, sizeof m->arch, "%s", model_arch_name(f->m.cfg.arch));
    snprintf(m->model_path, sizeof m->model_path, "some/model/dir");
    m->ref_sum = 0xfedcba9876543210ull;
    m->config_yaml = "run:\n  name: test\n";
    m->n_cursors = 3;
    static struct ckpt_cursor cur[3] = {{1, 2, 3, 0}, {1, 2, 3, 1}, {0, 7, 7, 0}};
    m->cursors = cur;
    m->n_snaps = 1;
    m->snap_version[0] = step - 1;
}

/* A complete checkpoint of `step` sharded over `learners`. */
static int write_ckpt(struct fx *f, int64_t step, int learners, int keep_last, struct mmupt_err *err)
{
    char partial[1024];
    if (ckpt_begin(f->dir, step, err)) return -1;
    ckpt_step_dir(f->dir, step, 1, partial, sizeof partial);
    for (int r = 0; r < learners; r++) {
        size_t lo, hi;
        comm_shard((size_t)f->n, learners, r, &lo, &hi);
        if (ckpt_write_optim(partial, r, learners, lo, hi, (size_t)f->n, f->m1 + lo, f->v1 + lo, 2 * step - 1, err))
            return -1;
    }
    struct ckpt_meta m;
    meta_fill(f, step, learners, &m);
    const float *snaps[1] = {f->snap};
    if (ckpt_write_model(partial, &f->m.spec, f->m.params, &m, snaps, err)) return -1;
    return ckpt_commit(f->dir, step, keep_last, err);
}

/* Does the checkpoint load completely and equal what was written? */
static int loads_intact(struct fx *f, const char *ckpt, int64_t step, struct mmupt_err *err)
{
    struct ckpt_meta m;
    if (ckpt_read_meta(ckpt, &m, err)) return 0;
    int ok = m.step == step && m.n_params == f->n && m.n_cursors == 3 && m.cursors[2].position == 7 &&
             m.ref_sum == 0xfedcba9876543210ull && !strcmp(m.config_yaml, "run:\n  name: test\n") && m.n_snaps == 1 &&
             m.snap_version[0] == step - 1 && !strcmp(m.model_path, "some/model/dir") && m.optim_t == 2 * step - 1;
    float *w = malloc((size_t)f->n * sizeof *w), *s = malloc((size_t)f->n * sizeof *s);
    ok = ok && ckpt_read_weights(ckpt, &f->m.spec, w, err) == 0 && !memcmp(w, f->m.params, (size_t)f->n * sizeof *w);
    ok = ok && ckpt_read_snapshot(ckpt, step - 1, f->n, s, err) == 0 && !memcmp(s, f->snap, (size_t)f->n * sizeof *s);
    for (int L = 1; L <= 3 && ok; L++)
        for (int r = 0; r < L && ok; r++) {
            size_t lo, hi;
            comm_shard((size_t)f->n, L, r, &lo, &hi);
            int64_t t = -1;
            ok = ckpt_read_optim(ckpt, m.n_learners, lo, hi, (size_t)f->n, w, s, &t, err) == 0 && t == 2 * step - 1 &&
                 !memcmp(w, f->m1 + lo, (hi - lo) * sizeof *w) && !memcmp(s, f->v1 + lo, (hi - lo) * sizeof *s);
        }
    free(w);
    free(s);
    ckpt_meta_free(&m);
    return ok;
}

static void test_sum64(struct test_state *ts, struct fx *f)
{
    (void)f;
    unsigned char buf[100];
    for (int i = 0; i < 100; i++) buf[i] = (unsigned char)(i * 37);
    uint64_t base = ckpt_sum64(buf, sizeof buf);
    int same = 0;
    for (int i = 0; i < 100; i++)
        for (int b = 0; b < 8; b++) {
            buf[i] ^= (unsigned char)(1 << b);
            same += ckpt_sum64(buf, sizeof buf) == base;
            buf[i] ^= (unsigned char)(1 << b);
        }
    CHECK_MSG(ts, same == 0, "%d single-bit flips left the checksum unchanged", same);
    int collide = 0;
    for (int n = 0; n < 40; n++) collide += ckpt_sum64(buf, (size_t)n) == ckpt_sum64(buf, (size_t)n + 1);
    CHECK(ts, collide == 0 && ckpt_sum64(buf, 100) == base);
}

static void test_roundtrip_and_latest(struct test_state *ts, struct fx *f)
{
    struct mmupt_err err;
    char ckpt[1024];
    CHECK(ts, ckpt_find_latest(f->dir, ckpt, sizeof ckpt, &err) == 0); /* nothing yet */
    for (int64_t step = 1; step <= 5; step++) CHECK_MSG(ts, write_ckpt(f, step, 2, 2, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, ckpt_find_latest(f->dir, ckpt, sizeof ckpt, &err) == 1, "%s", err.msg);
    CHECK_CONTAINS(ts, ckpt, "step-00000005");
    CHECK_MSG(ts, loads_intact(f, ckpt, 5, &err), "%s", err.msg);
    /* keep_last 2: steps 4 and 5 remain */
    char p[1024];
    for (int64_t s = 1; s <= 5; s++) {
        ckpt_step_dir(f->dir, s, 0, p, sizeof p);
        CHECK_MSG(ts, (access(p, F_OK) == 0) == (s >= 4), "step %lld present: %d", (long long)s, access(p, F_OK) == 0);
    }
    /* Re-writing an existing step (a resumed run) replaces it. */
    CHECK_MSG(ts, write_ckpt(f, 5, 3, 2, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, loads_intact(f, ckpt, 5, &err), "%s", err.msg);
}

/* Copy step 5 to a scratch checkpoint we may damage. */
static void scratch_copy(struct fx *f, char *out, size_t n)
{
    snprintf(out, n, "%s/damaged", f->root);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s/step-00000005' '%s'", out, f->dir, out);
    if (system(cmd) != 0) fprintf(stderr, "cannot copy: %s\n", cmd);
}

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    unsigned char b;
    if (pread(fd, &b, 1, off) == 1) {
        b ^= 0x5a;
        if (pwrite(fd, &b, 1, off) != 1) perror("pwrite");
    }
    close(fd);
}

/* The file offset of a weights dataset's raw data. */
static long data_offset(const char *model_h5, const char *name)
{
    hid_t file = H5Fopen(model_h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = H5Gopen2(file, "weights", H5P_DEFAULT);
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    H5Gclose(g);
    H5Fclose(file);
    return (long)off;
}

static void test_flipped_bytes(struct test_state *ts, struct fx *f)
{
    struct mmupt_err err;
    char ck[1024], model[1100];
    scratch_copy(f, ck, sizeof ck);
    snprintf(model, sizeof model, "%s/model.h5", ck);
    const char *name = f->m.spec.params[f->m.spec.n_params / 2].name;
    flip_byte(model, data_offset(model, name) + 5);
    float *w = malloc((size_t)f->n * sizeof *w);
    CHECK(ts, ckpt_read_weights(ck, &f->m.spec, w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "checksum mismatch");
    CHECK_CONTAINS(ts, err.msg, name);
    CHECK_CONTAINS(ts, err.msg, "model.h5");
    /* Flips anywhere in the file: an error, or (a byte HDF5 never reads) everything intact. */
    struct stat st;
    stat(model, &st);
    int silent_bad = 0;
    for (int k = 1; k < 24; k++) {
        scratch_copy(f, ck, sizeof ck);
        flip_byte(model, (long)((double)st.st_size * k / 24.0));
        struct ckpt_meta m;
        int rc = ckpt_read_meta(ck, &m, &err);
        if (rc == 0) {
            int w_ok = ckpt_read_weights(ck, &f->m.spec, w, &err) == 0;
            int s_ok = w_ok && ckpt_read_snapshot(ck, 4, f->n, w, &err) == 0;
            if (s_ok && !loads_intact(f, ck, 5, &err)) silent_bad++;
            ckpt_meta_free(&m);
        }
    }
    CHECK_MSG(ts, silent_bad == 0, "%d flips loaded wrong data without an error", silent_bad);
    char latest[1024];
    CHECK(ts, ckpt_find_latest(f->dir, latest, sizeof latest, &err) == 1 && loads_intact(f, latest, 5, &err));
    free(w);
}

static void test_truncated(struct test_state *ts, struct fx *f)
{
    struct mmupt_err err;
    char ck[1024], model[1100];
    scratch_copy(f, ck, sizeof ck);
    snprintf(model, sizeof model, "%s/model.h5", ck);
    struct stat st;
    stat(model, &st);
    CHECK(ts, truncate(model, st.st_size / 2) == 0);
    struct ckpt_meta m;
    int rc = ckpt_read_meta(ck, &m, &err);
    float *w = malloc((size_t)f->n * sizeof *w);
    if (rc == 0) {
        rc = ckpt_read_weights(ck, &f->m.spec, w, &err);
        ckpt_meta_free(&m);
    }
    CHECK(ts, rc == -1);
    CHECK_CONTAINS(ts, err.msg, "model.h5");
    free(w);
}

static void test_other_model(struct test_state *ts, struct fx *f)
{
    struct mmupt_err err;
    char latest[1024];
    CHECK(ts, ckpt_find_latest(f->dir, latest, sizeof latest, &err) == 1);
    float *w = malloc((size_t)f->other.spec.total * sizeof *w);
    CHECK(ts, ckpt_read_weights(latest, &f->other.spec, w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "another model");
    free(w);
}

static void test_missing_shard(struct test_state *ts, struct fx *f)
{
    struct mmupt_err err;
    char ck[1024], shard[1100];
    scratch_copy(f, ck, sizeof ck);
    snprintf(shard, sizeof shard, "%s/optim-00001-of-00003.h5", ck);
    CHECK(ts, unlink(shard) == 0);
    float *m = malloc((size_t)f->n * sizeof *m), *v = malloc((size_t)f->n * sizeof *v);
    int64_t t;
    CHECK(ts, ckpt_read_optim(ck, 3, 0, (size_t)f->n, (size_t)f->n, m, v, &t, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "optim-00001-of-00003.h5");
    CHECK_CONTAINS(ts, err.msg, "missing");
    /* A learner whose range does not touch the missing shard still loads. */
    size_t lo, hi;
    comm_shard((size_t)f->n, 3, 2, &lo, &hi);
    CHECK(ts, ckpt_read_optim(ck, 3, lo, hi, (size_t)f->n, m, v, &t, &err) == 0);
    free(m);
    free(v);
}

/* A full disk, simulated by a file-size limit in a child process: the write fails with a message,
 * and the previous checkpoint stays the latest and loads. */
static void test_full_disk(struct test_state *ts, struct fx *f)
{
    int pipefd[2];
    CHECK(ts, pipe(pipefd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 << 10, 64 << 10};
        setrlimit(RLIMIT_FSIZE, &rl);
        struct mmupt_err err = {0};
        int rc = write_ckpt(f, 6, 2, 2, &err);
        if (rc == 0) snprintf(err.msg, sizeof err.msg, "SUCCEEDED");
        if (write(pipefd[1], err.msg, strlen(err.msg)) < 0) _exit(3);
        _exit(rc == 0 ? 0 : 1);
    }
    close(pipefd[1]);
    char msg[1024] = {0};
    ssize_t got = read(pipefd[0], msg, sizeof msg - 1);
    (void)got;
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(ts, WIFEXITED(status) && WEXITSTATUS(status) == 1, "child status %d: %s", status, msg);
    CHECK_MSG(ts, strstr(msg, "step-00000006.partial") != NULL, "message: %s", msg);
    struct mmupt_err err;
    char latest[1024], six[1024];
    CHECK(ts, ckpt_find_latest(f->dir, latest, sizeof latest, &err) == 1);
    CHECK_CONTAINS(ts, latest, "step-00000005");
    CHECK(ts, loads_intact(f, latest, 5, &err));
    ckpt_step_dir(f->dir, 6, 0, six, sizeof six);
    CHECK(ts, access(six, F_OK) != 0);
    /* The next attempt starts over from a clean partial directory and succeeds. */
    CHECK_MSG(ts, write_ckpt(f, 6, 2, 2, &err) == 0, "%s", err.msg);
    CHECK(ts, ckpt_find_latest(f->dir, latest, sizeof latest, &err) == 1 && loads_intact(f, latest, 6, &err));
}

static void test_latest_file(struct test_state *ts, struct fx *f)
{
    struct mmupt_err err;
    CHECK(ts, ckpt_parse_latest("step-00000012\n", 14, &err) == 12);
    CHECK(ts, ckpt_parse_latest("step-123456789012", 17, &err) == 123456789012);
    const char *bad[] = {"", "step-", "step-1234567\n", "step-0000001x\n", "stop-00000012\n",
                         "step-00000012\n\n", "step-99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        CHECK_MSG(ts, ckpt_parse_latest(bad[i], strlen(bad[i]), &err) == -1 && strstr(err.msg, "latest"), "'%s'",
                  bad[i]);
    }
    /* `latest` naming a checkpoint that is not there */
    char dir[512], path[600], out[1024];
    snprintf(dir, sizeof dir, "%s/dangling", f->root);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/latest", dir);
    FILE *fp = fopen(path, "w");
    fputs("step-00000003\n", fp);
    fclose(fp);
    CHECK(ts, ckpt_find_latest(dir, out, sizeof out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "step-00000003");
    fp = fopen(path, "w");
    fputs("garbage", fp);
    fclose(fp);
    CHECK(ts, ckpt_find_latest(dir, out, sizeof out, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "dangling");
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_checkpoint MODEL_DIR OTHER_MODEL_DIR\n");
        return 2;
    }
    struct fx f;
    memset(&f, 0, sizeof f);
    struct mmupt_err err;
    if (model_open(&f.m, argv[1], &err) || model_open(&f.other, argv[2], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    f.n = f.m.spec.total;
    f.snap = malloc((size_t)f.n * sizeof *f.snap);
    f.m1 = malloc((size_t)f.n * sizeof *f.m1);
    f.v1 = malloc((size_t)f.n * sizeof *f.v1);
    for (int64_t i = 0; i < f.n; i++) {
        f.m.params[i] = val((uint64_t)i, 1);
        f.snap[i] = val((uint64_t)i, 2);
        f.m1[i] = val((uint64_t)i, 3);
        f.v1[i] = val((uint64_t)i, 4) + 1.0f;
    }
    snprintf(f.root, sizeof f.root, "/tmp/mmupt_ckpt_XXXXXX");
    if (!mkdtemp(f.root)) return 1;
    snprintf(f.dir, sizeof f.dir, "%s/runs/ckpt", f.root);
    struct test_state ts = {0};
    RUN_WITH(&ts, test_sum64, &f);
    RUN_WITH(&ts, test_roundtrip_and_latest, &f);
    RUN_WITH(&ts, test_flipped_bytes, &f);
    RUN_WITH(&ts, test_truncated, &f);
    RUN_WITH(&ts, test_other_model, &f);
    RUN_WITH(&ts, test_missing_shard, &f);
    RUN_WITH(&ts, test_full_disk, &f);
    RUN_WITH(&ts, test_latest_file, &f);
    nftw(f.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f.snap);
    free(f.m1);
    free(f.v1);
    model_free(&f.m);
    model_free(&f.other);
    return test_summary(&ts);
}
