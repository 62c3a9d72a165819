/* The checkpoint directory: step-N.partial while writing, step-N when complete, `latest` pointing at
 * the newest complete one, and pruning beyond keep_last. The order of operations is what makes a
 * crash at any point safe: files fsynced -> directory renamed and fsynced -> latest replaced
 * (temporary file, fsync, rename, fsync) -> only then older checkpoints deleted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mmupt/strutil.h"

void ckpt_step_dir(const char *dir, int64_t step, int partial, char *out, size_t n)
{
    snprintf(out, n, "%s/step-%08lld%s", dir, (long long)step, partial ? ".partial" : "");
}


/* Remove a checkpoint directory: it only ever holds plain files. */
static int remove_flat_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    char file[CKPT_PATH_MAX + 300];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        unlink(file);
    }
    closedir(d);
    return rmdir(path);
}

int ckpt_begin(const char *dir, int64_t step, struct mmupt_err *err)
{
    char partial[CKPT_PATH_MAX];
    ckpt_step_dir(dir, step, 1, partial, sizeof partial);
    if (dir_make_all(dir, "the checkpoint directory", err)) return -1;
    /* A partial directory is a write that never finished (a crash): nothing in it counts. */
    if (remove_flat_dir(partial) && errno != ENOENT)
        return mmupt_fail(err, "%s: cannot remove an unfinished checkpoint: %s", partial, strerror(errno));
    if (mkdir(partial, 0755)) return mmupt_fail(err, "%s: cannot create: %s", partial, strerror(errno));
    return 0;
}

void ckpt_abandon(const char *dir, int64_t step)
{
    char partial[CKPT_PATH_MAX];
    ckpt_step_dir(dir, step, 1, partial, sizeof partial);
    remove_flat_dir(partial);
}

static int write_latest(const char *dir, int64_t step, struct mmupt_err *err)
{
    char tmp[CKPT_PATH_MAX + 32], dst[CKPT_PATH_MAX + 16], text[64];
    snprintf(tmp, sizeof tmp, "%s/latest.tmp", dir);
    snprintf(dst, sizeof dst, "%s/latest", dir);
    int len = snprintf(text, sizeof text, "step-%08lld\n", (long long)step);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return mmupt_fail(err, "%s: cannot create: %s", tmp, strerror(errno));
    int bad = write(fd, text, (size_t)len) != len || fsync(fd) != 0;
    int e = errno;
    close(fd);
    if (bad || rename(tmp, dst)) {
        unlink(tmp);
        return mmupt_fail(err, "%s: cannot write: %s", dst, strerror(bad ? e : errno));
    }
    return ck_sync_dir(dir, err);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The steps of the complete checkpoints in dir, ascending; *n of them (caller frees). */
static int64_t *list_steps(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int cap = 16;
    int64_t *steps = mmupt_xmalloc((size_t)cap * sizeof *steps);
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        char tail;
        if (sscanf(e->d_name, "step-%lld%c", &s, &tail) != 1 || strlen(e->d_name) != 13) continue;
        if (*n == cap) {
            cap *= 2;
            int64_t *g = mmupt_xmalloc((size_t)cap * sizeof *g);
            memcpy(g, steps, (size_t)*n * sizeof *g);
            free(steps);
            steps = g;
        }
        steps[(*n)++] = s;
    }
    closedir(d);
    qsort(steps, (size_t)*n, sizeof *steps, cmp_i64);
    return steps;
}

static void prune(const char *dir, int64_t keep_step, int keep_last)
{
    int n;
    int64_t *steps = list_steps(dir, &n);
    int kept = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (kept < keep_last || steps[i] == keep_step) { kept++; continue; }
        char path[CKPT_PATH_MAX];
        ckpt_step_dir(dir, steps[i], 0, path, sizeof path);
        remove_flat_dir(path);
    }
    free(steps);
}

int ckpt_commit(const char *dir, int64_t step, int keep_last, struct mmupt_err *err)
{
    char partial[CKPT_PATH_MAX], final[CKPT_PATH_MAX], old[CKPT_PATH_MAX + 8];
    ckpt_step_dir(dir, step, 1, partial, sizeof partial);
    ckpt_step_dir(dir, step, 0, final, sizeof final);
    if (ck_sync_dir(partial, err)) return -1;
    /* A complete step-N from before a resume is moved aside, not deleted, until the new one is in place. */
    snprintf(old, sizeof old, "%s.old", final);
    remove_flat_dir(old);
    int had_old = rename(final, old) == 0;
    if (rename(partial, final)) {
        int e = errno;
        if (had_old) rename(old, final);
        return mmupt_fail(err, "%s: cannot rename to %s: %s", partial, final, strerror(e));
    }
    if (ck_sync_dir(dir, err) || write_latest(dir, step, err)) return -1;
    if (had_old) remove_flat_dir(old);
    prune(dir, step, keep_last);
    return 0;
}

int64_t ckpt_parse_latest(const char *text, size_t len, struct mmupt_err *err)
{
    /* Exactly "step-" + 8 or more digits + optional newline. */
    size_t n = len;
    if (n && text[n - 1] == '\n') n--;
    if (n < 13 || n > 24 || memcmp(text, "step-", 5) != 0)
        return mmupt_fail(err, "latest: expected \"step-NNNNNNNN\", found %zu bytes that do not match", len);
    int64_t v = 0;
    for (size_t i = 5; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return mmupt_fail(err, "latest: byte %zu is not a digit", i + 1);
        if (v > (INT64_MAX - 9) / 10) return mmupt_fail(err, "latest: step number too large");
        v = v * 10 + (text[i] - '0');
    }
    return v;
}

int ckpt_find_latest(const char *dir, char *out, size_t n, struct mmupt_err *err)
{
    char path[CKPT_PATH_MAX + 16], text[64];
    snprintf(path, sizeof path, "%s/latest", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        return mmupt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    int64_t step = ckpt_parse_latest(text, len, err);
    if (step < 0) {
        mmupt_err_prefix(err, "%s", dir);
        return -1;
    }
    ckpt_step_dir(dir, step, 0, out, n);
    char model[CKPT_PATH_MAX + 16];
    snprintf(model, sizeof model, "%s/model.h5", out);
    if (access(model, R_OK))
        return mmupt_fail(err, "%s names %s, which has no readable model.h5: %s", path, out, strerror(errno));
    return 1;
}
