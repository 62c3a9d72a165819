/* The GEMM tuning file (include/mmupt/gemm_tune_file.h): a written file reads back to the same
 * choices; a missing file is empty; every malformed line is refused with the file, line and field
 * named and nothing kept; an existing file survives a failed write. */
#include "../test.h"
#include "mmupt/gemm_tune_file.h"

static const int KEY_A[GEMM_TUNE_KEY_FIELDS] = {1, 0, 896, 64, 4864, 4864, 4864, 896, 0, 0, 0, 16, 16, 256};
static const int KEY_B[GEMM_TUNE_KEY_FIELDS] = {1, 0, 151936, 64, 896, 896, 896, 151936, 0, 1, 1, 256, 16, 256};

static int parse_text(const char *text, struct gemm_tune_file *f, struct mmupt_err *err)
{
    err->msg[0] = '\0';
    return gemm_tune_parse("t.txt", text, strlen(text), f, err);
}

static void test_round_trip(struct test_state *ts)
{
    char dir[] = "/tmp/mmupt_tune_XXXXXX", path[256];
    CHECK(ts, mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/tune.txt", dir);
    struct mmupt_err err;
    struct gemm_tune_file f, g;
    CHECK(ts, gemm_tune_read(path, &f, &err) == 0 && f.n == 0 && !f.device[0]); /* not written yet */
    gemm_tune_reset(&f, "NVIDIA H200\n(bad)", 130100);
    gemm_tune_set(&f, KEY_A, 1, 8);
    gemm_tune_set(&f, KEY_B, 6, 8);
    gemm_tune_set(&f, KEY_A, 2, 8); /* replaces */
    CHECK(ts, f.n == 2);
    CHECK(ts, gemm_tune_write(&f, path, &err) == 0);
    CHECK_MSG(ts, gemm_tune_read(path, &g, &err) == 0, "%s", err.msg);
    CHECK(ts, g.n == 2 && g.cublaslt == 130100 && strcmp(g.device, "NVIDIA H200?(bad)") == 0);
    const struct gemm_tune_entry *a = gemm_tune_find(&g, KEY_A), *b = gemm_tune_find(&g, KEY_B);
    CHECK(ts, a && a->pick == 2 && a->found == 8 && b && b->pick == 6 && b->found == 8);
    int other[GEMM_TUNE_KEY_FIELDS];
    memcpy(other, KEY_A, sizeof other);
    other[13] = 16;
    CHECK(ts, gemm_tune_find(&g, other) == NULL);
    /* a failed write (the directory is gone from under the file's name) keeps the old file */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/tune.txt", dir);
    CHECK(ts, gemm_tune_write(&f, bad, &err) == -1 && err.msg[0]);
    gemm_tune_free(&g);
    CHECK(ts, gemm_tune_read(path, &g, &err) == 0 && g.n == 2);
    gemm_tune_reset(&g, "other GPU", 1);
    CHECK(ts, g.n == 0 && strcmp(g.device, "other GPU") == 0);
    gemm_tune_free(&f);
    gemm_tune_free(&g);
    test_remove_dir(dir);
}

static void test_comments_and_blanks(struct test_state *ts)
{
    struct gemm_tune_file f;
    struct mmupt_err err;
    CHECK_MSG(ts,
              parse_text("# c\r\n\nmmupt-gemm-tune 1\r\n  device NVIDIA H100 80GB HBM3  \ncublaslt 130000\n"
                         "# shapes\n1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 0 1\n",
                         &f, &err) == 0,
              "%s", err.msg);
    CHECK(ts, f.n == 1 && strcmp(f.device, "NVIDIA H100 80GB HBM3") == 0 && f.e[0].pick == 0);
    gemm_tune_free(&f);
}

/* Each bad text: refused, the message naming the line and the part. */
static void test_bad(struct test_state *ts)
{
    static const char *const HEAD = "mmupt-gemm-tune 1\ndevice X\ncublaslt 5\n";
    static const struct {
        const char *body, *want;
        int header; /* body replaces the header */
    } cases[] = {
        {"", "t.txt:1: empty", 1},
        {"mmupt-gemm-tune 2\n", "t.txt:1: not a tuning file", 1},
        {"mmupt-gemm-tune 1\n", "t.txt:2: the header ends early", 1},
        {"mmupt-gemm-tune 1\ndevice\n", "t.txt:2: field device", 1},
        {"mmupt-gemm-tune 1\ndevice X\ncublaslt -3\n", "t.txt:3: field cublaslt", 1},
        {"mmupt-gemm-tune 1\ndevice X\ncublaslt 12x\n", "t.txt:3: field cublaslt", 1},
        {"1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 0\n", "t.txt:4: field found: missing", 0},
        {"1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 0 1 7\n", "t.txt:4: more than 16", 0},
        {"2 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 0 1\n", "t.txt:4: field ta: 2 is out of range", 0},
        {"1 0 0 64 4864 4864 4864 896 0 0 0 16 16 256 0 1\n", "t.txt:4: field m:", 0},
        {"1 0 896 64 4864 4864 4864 896 0 0 0 12 16 256 0 1\n", "t.txt:4: field align_a:", 0},
        {"1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 3 3\n", "t.txt:4: field pick: 3 is not below found", 0},
        {"1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 0 65\n", "t.txt:4: field found: 65", 0},
        {"1 0 896 -64 4864 4864 4864 896 0 0 0 16 16 256 0 1\n", "t.txt:4: field n: not a non-negative", 0},
        {"1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 0 1x\n", "t.txt:4: field found: not a non-negative", 0},
        {"1 0 896 64 99999999999 4864 4864 896 0 0 0 16 16 256 0 1\n", "t.txt:4: field k: ", 0},
        {"1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 0 1\n1 0 896 64 4864 4864 4864 896 0 0 0 16 16 256 1 2\n",
         "t.txt:5: a second entry", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s%s", cases[i].header ? "" : HEAD, cases[i].body);
        struct gemm_tune_file f;
        struct mmupt_err err;
        int rc = parse_text(text, &f, &err);
        CHECK_MSG(ts, rc == -1 && f.n == 0 && f.e == NULL && strstr(err.msg, cases[i].want),
                  "case %zu: rc %d, message '%s', wanted '%s'", i, rc, err.msg, cases[i].want);
    }
    /* a NUL inside a line, and a line too long */
    char text[2048] = "mmupt-gemm-tune 1\ndevice X\0Y\ncublaslt 5\n";
    struct gemm_tune_file f;
    struct mmupt_err err;
    CHECK(ts, gemm_tune_parse("t.txt", text, 40, &f, &err) == -1 && strstr(err.msg, "t.txt:2: line too long or not"));
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    CHECK(ts, parse_text(text, &f, &err) == -1 && strstr(err.msg, "t.txt:1: line too long"));
}

static void test_read_errors(struct test_state *ts)
{
    struct gemm_tune_file f;
    struct mmupt_err err;
    CHECK(ts, gemm_tune_read("/tmp", &f, &err) == -1 && err.msg[0]); /* a directory */
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_round_trip);
    RUN(&ts, test_comments_and_blanks);
    RUN(&ts, test_bad);
    RUN(&ts, test_read_errors);
    return test_summary(&ts);
}
