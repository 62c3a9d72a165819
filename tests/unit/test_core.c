/* Core helpers: strings, file reading, the logger and the JSONL metrics writer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/log.h"
#include "mmupt/metrics.h"
#include "mmupt/strutil.h"

static void test_trim_and_copy(struct test_state *ts)
{
    char a[] = "  \t hello world \n ";
    CHECK(ts, strcmp(str_trim(a), "hello world") == 0);
    char b[] = "   ";
    CHECK(ts, strcmp(str_trim(b), "") == 0);
    char dst[6];
    CHECK(ts, str_copy(dst, sizeof dst, "hello") == 0 && strcmp(dst, "hello") == 0);
    CHECK(ts, str_copy(dst, sizeof dst, "hello!") == -1 && strcmp(dst, "hello") == 0);
}

static void test_edit_distance(struct test_state *ts)
{
    CHECK(ts, str_edit_distance("kitten", "sitting", 10) == 3);
    CHECK(ts, str_edit_distance("", "abc", 10) == 3);
    CHECK(ts, str_edit_distance("same", "same", 0) == 0);
    CHECK(ts, str_edit_distance("abcdef", "uvwxyz", 2) == 3); /* capped: cap + 1 */
    CHECK(ts, str_edit_distance("a", "abcdefgh", 3) == 4);
}

static void test_format_double(struct test_state *ts)
{
    char buf[64];
    double vals[] = {0.1, 1.0 / 3.0, 1e-6, 2.5e-300, 123456789.0, -0.0, 5e-324};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        str_format_double(vals[i], buf, sizeof buf);
        CHECK_MSG(ts, strtod(buf, NULL) == vals[i], "%s", buf);
    }
    /* Readable as well as exact: no exponent for ordinary magnitudes. */
    static const struct { double v; const char *text; } readable[] = {
        {0.1, "0.1"}, {-100.0, "-100"}, {1e-6, "1e-06"}, {123456789.0, "123456789"}, {1e20, "1e+20"}, {0.00025, "0.00025"}};
    for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++) {
        str_format_double(readable[i].v, buf, sizeof buf);
        CHECK_MSG(ts, strcmp(buf, readable[i].text) == 0, "%g printed as %s", readable[i].v, buf);
    }
}

static void test_file_read(struct test_state *ts)
{
    char path[] = "/tmp/mmupt_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(ts, fd >= 0);
    CHECK(ts, write(fd, "0123456789", 10) == 10);
    close(fd);
    char *buf;
    size_t len;
    struct mmupt_err err;
    CHECK(ts, file_read_all(path, 10, &buf, &len, &err) == 0 && len == 10 && buf[10] == '\0');
    if (len == 10) free(buf);
    CHECK(ts, file_read_all(path, 9, &buf, &len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "too large");
    unlink(path);
    CHECK(ts, file_read_all(path, 9, &buf, &len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "cannot open");
    CHECK(ts, file_read_all("/tmp", 100, &buf, &len, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "is a directory");
}

static void test_log(struct test_state *ts)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct log_ctx lg;
    log_init(&lg, LOG_INFO, 3, f);
    log_debug(&lg, "hidden %d", 1);
    log_info(&lg, "shown %d", 2);
    log_warn(&lg, "careful");
    lg.only_rank0 = 1;
    log_info(&lg, "rank0 only");
    log_error(&lg, "still shown");
    fclose(f);
    CHECK(ts, strstr(text, "hidden") == NULL);
    CHECK(ts, strstr(text, "rank0 only") == NULL);
    CHECK(ts, strstr(text, "[r3 +") && strstr(text, "] info: shown 2\n"));
    CHECK(ts, strstr(text, "] warn: careful\n") && strstr(text, "] error: still shown\n"));
    free(text);
    enum log_level lv;
    CHECK(ts, log_level_parse("warn", &lv) == 0 && lv == LOG_WARN);
    CHECK(ts, log_level_parse("loud", &lv) == -1);
    CHECK(ts, strcmp(log_level_name(LOG_ERROR), "error") == 0);
}

static void test_metrics(struct test_state *ts)
{
    char path[] = "/tmp/mmupt_metrics_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    struct metrics_writer w;
    struct mmupt_err err;
    for (int round = 0; round < 2; round++) { /* the second open appends, as a resumed run does */
        CHECK(ts, metrics_open(&w, path, &err) == 0);
        metrics_begin(&w);
        metrics_i64(&w, "step", round);
        metrics_f64(&w, "reward/mean", 0.25);
        metrics_f64(&w, "bad", NAN);
        metrics_str(&w, "note", "q\"uote\\ \n \x01 \xff ok \xe4\xb8\xad");
        CHECK(ts, metrics_end(&w, &err) == 0);
        metrics_close(&w);
    }
    char *text;
    size_t len;
    CHECK(ts, file_read_all(path, 1 << 20, &text, &len, &err) == 0);
    const char *line = "{\"step\": 0, \"reward/mean\": 0.25, \"bad\": null, "
                       "\"note\": \"q\\\"uote\\\\ \\n \\u0001 \xef\xbf\xbd ok \xe4\xb8\xad\"}\n";
    CHECK_MSG(ts, strncmp(text, line, strlen(line)) == 0, "got %s", text);
    CHECK(ts, strstr(text, "{\"step\": 1,") != NULL);
    free(text);
    unlink(path);
    /* A full disk is an error the caller sees, not a silent loss. */
    CHECK(ts, metrics_open(&w, "/dev/full", &err) == 0);
    metrics_begin(&w);
    metrics_i64(&w, "step", 1);
    CHECK(ts, metrics_end(&w, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "write failed");
    metrics_close(&w);
    CHECK(ts, metrics_open(&w, "/nonexistent/dir/m.jsonl", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "/nonexistent/dir/m.jsonl: cannot open");
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_trim_and_copy);
    RUN(&ts, test_edit_distance);
    RUN(&ts, test_format_double);
    RUN(&ts, test_file_read);
    RUN(&ts, test_log);
    RUN(&ts, test_metrics);
    return test_summary(&ts);
}
