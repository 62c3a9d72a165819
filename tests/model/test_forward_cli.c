/* `mmupt forward` end to end: on each fixture model, the written logits, hidden states and
 * positions match the transformers reference at every real position; bad inputs exit 1 with a
 * message naming the problem and write nothing.
 * usage: test_forward_cli MMUPT FIXTURE_DIR... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/safetensors.h"
#include "mmupt/strutil.h"

static const char *mmupt;
static char tmpdir[] = "/tmp/mmupt_fwd_XXXXXX";

static int run(const char *args, char **errtext) { return test_run_mmupt(mmupt, tmpdir, "forward", args, errtext); }

static double compare(const struct st_set *got, const struct st_set *ref, const char *name, const int64_t *mask,
                      int64_t rows)
{
    const struct st_tensor *a = st_find(got, name), *b = st_find(ref, name);
    if (!a || !b || a->numel != b->numel) return INFINITY;
    float *x = malloc((size_t)a->numel * sizeof *x), *y = malloc((size_t)b->numel * sizeof *y);
    struct mmupt_err err;
    st_copy_f32(a, x, a->numel, &err);
    st_copy_f32(b, y, b->numel, &err);
    int64_t cols = a->numel / rows;
    double num = 0, den = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (!mask[r]) continue;
        for (int64_t c = 0; c < cols; c++) {
            double d = fabs((double)x[r * cols + c] - y[r * cols + c]);
            num = d > num ? d : num;
            den = fabs(y[r * cols + c]) > den ? fabs(y[r * cols + c]) : den;
        }
    }
    free(x);
    free(y);
    return num / (den > 0 ? den : 1);
}

/* Forward with the model in model_dir on the inputs of fixture dir, compared with its expectations. */
static void check_fixture(struct test_state *ts, const char *dir, const char *model_dir)
{
    char args[3000], out[1100], exp[1100];
    snprintf(out, sizeof out, "%s/out.safetensors", tmpdir);
    snprintf(exp, sizeof exp, "%s/expected.safetensors", dir);
    snprintf(args, sizeof args, "--model '%s' --inputs '%s' --out '%s' --hidden", model_dir, exp, out);
    char *errtext;
    int rc = run(args, &errtext);
    CHECK_MSG(ts, rc == 0, "%s: exit %d: %s", dir, rc, errtext);
    free(errtext);
    if (rc != 0) return;
    struct st_set got, ref;
    struct mmupt_err err;
    CHECK_MSG(ts, st_open(&got, out, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, st_open(&ref, exp, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    const struct st_tensor *mt = st_find(&ref, "attention_mask");
    int64_t rows = mt->numel, *mask = malloc((size_t)rows * sizeof *mask);
    st_copy_i64(mt, mask, rows, &err);
    static const char *const names[] = {"logits", "hidden.embed", "hidden.layer.0", "hidden.norm"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        double e = compare(&got, &ref, names[i], mask, rows);
        CHECK_MSG(ts, e <= 1e-5, "%s: %s relative error %.3g", dir, names[i], e);
    }
    /* Positions: the 3-D ids for vision models; text models store [B, S] in the fixture. */
    const struct st_tensor *pa = st_find(&got, "position_ids"), *pb = st_find(&ref, "position_ids");
    CHECK(ts, pa && pb);
    if (pa && pb) {
        int64_t *x = malloc((size_t)pa->numel * sizeof *x), *y = malloc((size_t)pb->numel * sizeof *y);
        st_copy_i64(pa, x, pa->numel, &err);
        st_copy_i64(pb, y, pb->numel, &err);
        int bad = 0;
        for (int64_t i = 0; i < pb->numel; i++)
            if (mask[i % rows] && x[i] != y[i]) bad++;
        CHECK_MSG(ts, bad == 0, "%s: %d position ids differ", dir, bad);
        free(x);
        free(y);
    }
    free(mask);
    st_close(&got);
    st_close(&ref);
    unlink(out);
}

/* Inputs that must be refused: (tensors, expected message). */
static const char *vl_dir; /* a vision fixture, for the bad-input cases */

static void check_bad_inputs(struct test_state *ts)
{
    char in[1100], out[1100], args[3000];
    snprintf(in, sizeof in, "%s/in.safetensors", tmpdir);
    snprintf(out, sizeof out, "%s/never.safetensors", tmpdir);
    int64_t ids_ok[4] = {1, 2, 3, 4}, ids_big[4] = {1, 2, 3, 99999}, ids_img[4] = {1, 300, 300, 2};
    int64_t grid[3] = {1, 4, 4};
    float pix[16 * 1176] = {0};
    struct {
        struct st_entry e[3];
        size_t n;
        const char *expect;
    } cases[] = {
        {{{.name = "tokens", .dtype = ST_I64, .ndim = 2, .shape = {1, 4}, .data = ids_ok}}, 1, "no tensor 'input_ids'"},
        {{{.name = "input_ids", .dtype = ST_I64, .ndim = 1, .shape = {4}, .data = ids_ok}}, 1, "input_ids must be [batch, seq]"},
        {{{.name = "input_ids", .dtype = ST_I64, .ndim = 2, .shape = {1, 4}, .data = ids_big}}, 1,
         "token 3 has id 99999, outside the vocabulary [0, 320)"},
        {{{.name = "input_ids", .dtype = ST_I64, .ndim = 2, .shape = {1, 4}, .data = ids_img},
          {.name = "pixel_values", .dtype = ST_F32, .ndim = 2, .shape = {16, 1176}, .data = pix},
          {.name = "image_grid_thw", .dtype = ST_I64, .ndim = 2, .shape = {1, 3}, .data = grid}},
         3, "image 0 has 4 tokens (grid 1x4x4) but its <|image_pad|> run at 1 has 2"},
        {{{.name = "input_ids", .dtype = ST_I64, .ndim = 2, .shape = {1, 4}, .data = ids_img}}, 1,
         "image token run at 1 has no image left"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mmupt_err err;
        CHECK_MSG(ts, st_write_file(in, cases[i].e, cases[i].n, NULL, &err) == 0, "%s", err.msg);
        snprintf(args, sizeof args, "--model '%s' --inputs '%s' --out '%s'", vl_dir, in, out);
        char *errtext;
        int rc = run(args, &errtext);
        CHECK_MSG(ts, rc == 1, "case %zu: exit %d", i, rc);
        CHECK_CONTAINS(ts, errtext, cases[i].expect);
        CHECK_MSG(ts, access(out, F_OK) != 0, "case %zu wrote an output despite the error", i);
        free(errtext);
    }
    char *errtext;
    snprintf(args, sizeof args, "--model /nonexistent --inputs '%s' --out '%s'", in, out);
    CHECK(ts, run(args, &errtext) == 1);
    CHECK_CONTAINS(ts, errtext, "/nonexistent/config.json: cannot open");
    free(errtext);
    CHECK(ts, run("--model x", &errtext) == 2);
    CHECK_CONTAINS(ts, errtext, "--model, --inputs and --out are required");
    free(errtext);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MMUPT FIXTURE_DIR...\n", argv[0]);
        return 2;
    }
    mmupt = argv[1];
    vl_dir = argv[2];
    if (!mkdtemp(tmpdir)) return 1;
    struct test_state ts = {0};
    for (int i = 2; i < argc; i++) {
        ts.current_failed = 0;
        check_fixture(&ts, argv[i], argv[i]);
        /* mmupt convert (legacy layout, sharded) must give a model that computes the same. */
        char cmd[4096], conv[1100];
        snprintf(conv, sizeof conv, "%s/converted", tmpdir);
        snprintf(cmd, sizeof cmd, "'%s' convert --model '%s' --out '%s' --shard-mb 0.2 2>/dev/null", mmupt, argv[i], conv);
        CHECK_MSG(&ts, system(cmd) == 0, "convert %s failed", argv[i]);
        snprintf(cmd, sizeof cmd, "%s/model.safetensors.index.json", conv);
        CHECK_MSG(&ts, access(cmd, F_OK) == 0, "convert %s wrote no shard index", argv[i]);
        check_fixture(&ts, argv[i], conv);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", conv);
        CHECK(&ts, system(cmd) == 0);
        if (ts.current_failed) ts.failed++, fprintf(stderr, "not ok - forward %s\n", argv[i]);
        else ts.passed++, printf("ok - forward %s\n", argv[i]);
    }
    RUN(&ts, check_bad_inputs);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    return test_summary(&ts);
}
