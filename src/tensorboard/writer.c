/* The TensorBoard event-file writer (include/mmupt/tensorboard.h): file naming, directory
 * creation, and appending framed events with every I/O failure reported. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mmupt/strutil.h"
#include "tb_internal.h"

#define TB_PATH_MAX 4096
/* Files tried per second per host before giving up: far more writers than any run starts. */
#define TB_MAX_SUFFIX 100

struct tb_writer {
    FILE *f;
    char path[TB_PATH_MAX];
    struct tb_crc32c_table crc;
};

static double wall_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Write one serialized event as a TFRecord. */
static int write_event(struct tb_writer *w, const uint8_t *data, size_t n, struct mmupt_err *err)
{
    uint8_t rec_mem[TB_RECORD_MAX];
    struct tb_buf rec = {rec_mem, 0, sizeof rec_mem};
    tb_frame_record(&rec, &w->crc, data, n);
    errno = 0;
    if (fwrite(rec.p, 1, rec.len, w->f) != rec.len)
        return mmupt_fail(err, "%s: write failed: %s", w->path, errno ? strerror(errno) : "short write");
    return 0;
}

int tb_flush(struct tb_writer *w, struct mmupt_err *err)
{
    errno = 0;
    if (fflush(w->f) != 0 || ferror(w->f))
        return mmupt_fail(err, "%s: write failed: %s", w->path, errno ? strerror(errno) : "I/O error");
    return 0;
}

/* Take ownership of an open file: write the version event and flush it, so a bad file (full disk)
 * is reported at open time rather than at the first step. */
static int start_writer(struct tb_writer **out, FILE *f, const char *path, struct mmupt_err *err)
{
    struct tb_writer *w = mmupt_xcalloc(1, sizeof *w);
    w->f = f;
    str_copy(w->path, sizeof w->path, path); /* callers checked the length */
    tb_crc32c_init(&w->crc);

    uint8_t ev_mem[TB_EVENT_MAX];
    struct tb_buf ev = {ev_mem, 0, sizeof ev_mem};
    tb_encode_version_event(&ev, wall_time_now());
    if (write_event(w, ev.p, ev.len, err) != 0 || tb_flush(w, err) != 0) {
        fclose(w->f);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int tb_open_path(struct tb_writer **w, const char *path, const char *mode, struct mmupt_err *err)
{
    *w = NULL;
    if (strlen(path) >= TB_PATH_MAX) return mmupt_fail(err, "%.64s...: event file path too long", path);
    FILE *f = fopen(path, mode);
    if (!f) return mmupt_fail(err, "%s: cannot create event file: %s", path, strerror(errno));
    return start_writer(w, f, path, err);
}

/* mkdir -p: create each missing component of dir. */

/* The host name as it goes into the file name: characters other than [A-Za-z0-9._-] become '_',
 * so an odd host name cannot add path components. */
static void safe_hostname(char *out, size_t n)
{
    if (gethostname(out, n) != 0 || out[0] == '\0') str_copy(out, n, "localhost");
    out[n - 1] = '\0';
    for (char *c = out; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '.' || *c == '_' || *c == '-';
        if (!ok) *c = '_';
    }
}

int tb_open(struct tb_writer **w, const char *logdir, struct mmupt_err *err)
{
    *w = NULL;
    if (!logdir || !logdir[0]) return mmupt_fail(err, "tensorboard: empty log directory");
    if (dir_make_all(logdir, "log directory", err) != 0) return -1;

    char host[256];
    safe_hostname(host, sizeof host);
    long long now = (long long)time(NULL);
    for (int k = 0; k < TB_MAX_SUFFIX; k++) {
        char path[TB_PATH_MAX], suffix[16] = "";
        if (k > 0) snprintf(suffix, sizeof suffix, ".%d", k);
        int len = snprintf(path, sizeof path, "%s/events.out.tfevents.%lld.%s%s", logdir, now, host, suffix);
        if (len < 0 || (size_t)len >= sizeof path)
            return mmupt_fail(err, "%s: log directory path too long", logdir);
        /* "x": never truncate another writer's file (C11 exclusive create). */
        FILE *f = fopen(path, "wbx");
        if (f) return start_writer(w, f, path, err);
        if (errno != EEXIST) return mmupt_fail(err, "%s: cannot create event file: %s", path, strerror(errno));
    }
    return mmupt_fail(err, "%s: %d event files already exist for time %lld on host %s", logdir, TB_MAX_SUFFIX,
                      now, host);
}

static int check_tag(const char *tag, struct mmupt_err *err)
{
    size_t n = strlen(tag);
    if (n == 0) return mmupt_fail(err, "tensorboard: empty tag");
    if (n > TB_TAG_MAX) return mmupt_fail(err, "tensorboard: tag '%.32s...' is %zu bytes, more than %d", tag, n, TB_TAG_MAX);
    /* Protobuf strings must be UTF-8; TensorBoard's reader rejects the whole event otherwise. */
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len((const unsigned char *)tag + i, n - i);
        if (k == 0) return mmupt_fail(err, "tensorboard: tag '%.32s' is not valid UTF-8 (byte %zu)", tag, i);
        i += k;
    }
    return 0;
}

/* double -> float32. Finite values beyond float's range become +-inf explicitly: the plain
 * conversion is undefined behaviour in C for out-of-range values. */
static float to_float(double v)
{
    if (isfinite(v) && fabs(v) > FLT_MAX) return v > 0 ? INFINITY : -INFINITY;
    return (float)v;
}

int tb_scalar(struct tb_writer *w, const char *tag, int64_t step, double value, struct mmupt_err *err)
{
    if (check_tag(tag, err) != 0) return -1;
    uint8_t ev_mem[TB_EVENT_MAX];
    struct tb_buf ev = {ev_mem, 0, sizeof ev_mem};
    tb_encode_scalar_event(&ev, wall_time_now(), step, tag, to_float(value));
    if (write_event(w, ev.p, ev.len, err) != 0) {
        mmupt_err_prefix(err, "tag %s step %lld", tag, (long long)step);
        return -1;
    }
    return 0;
}

void tb_close(struct tb_writer *w)
{
    if (!w) return;
    fclose(w->f);
    free(w);
}

const char *tb_path(const struct tb_writer *w)
{
    return w->path;
}
