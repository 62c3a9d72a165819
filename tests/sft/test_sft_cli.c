/* `mmupt sft` end to end: a short run from random weights writes a model directory that loads; bad
 * command lines exit 2 and bad inputs exit 1, each with a message naming the problem, and write
 * nothing.
 * usage: test_sft_cli MMUPT TINY_TRAIN_DIR SMALL_H5 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/model.h"
#include "mmupt/strutil.h"
#include "sft_data.h"

static const char *mmupt, *model_dir, *small_h5;
static char tmpdir[] = "/tmp/mmupt_sftcli_XXXXXX";
static char data[1100], noans[1100];

static int run(const char *args, char **errtext) { return test_run_mmupt(mmupt, tmpdir, "sft", args, errtext); }

static void test_random_init_run(struct test_state *ts)
{
    char args[4096], out[1200], *e;
    snprintf(out, sizeof out, "%s/out", tmpdir);
    snprintf(args, sizeof args, "--model '%s' --init random --data '%s' --out '%s' --steps 3 --batch 2 --seed 5 "
             "--log-every 1 --threads 1", model_dir, data, out);
    int rc = run(args, &e);
    CHECK_MSG(ts, rc == 0, "exit %d: %s", rc, e);
    CHECK_CONTAINS(ts, e, "random init");
    CHECK_CONTAINS(ts, e, "sft step 3/3");
    CHECK_CONTAINS(ts, e, "tok/s");
    CHECK_CONTAINS(ts, e, "eta");
    CHECK_CONTAINS(ts, e, "last 1 steps");
    free(e);
    struct model m;
    struct mmupt_err err;
    rc = model_open(&m, out, &err);
    CHECK_MSG(ts, rc == 0, "%s", err.msg);
    if (rc == 0) {
        /* Three small steps from transformers' initialisation: norms still near 1, weights small. */
        const struct model_param *n = model_spec_find(&m.spec, "model.norm.weight");
        CHECK(ts, n && m.params[n->offset] > 0.9f && m.params[n->offset] < 1.1f);
        model_free(&m);
    }
    char tj[1300];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", out);
    CHECK(ts, access(tj, F_OK) == 0);
    /* The same again into the now non-empty directory: refused, exit 1, nothing changed. */
    rc = run(args, &e);
    CHECK_MSG(ts, rc == 1, "exit %d", rc);
    CHECK_CONTAINS(ts, e, "not empty");
    free(e);
    test_remove_dir(out);
}

/* args with {M}, {D}, {N}, {T} replaced by the model, the split, the split without answers and the
 * scratch directory. */
static void expand(const char *tmpl, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *s = tmpl; *s && n + 1 < cap;) {
        const char *v = NULL;
        if (s[0] == '{' && s[1] && s[2] == '}')
            v = s[1] == 'M' ? model_dir : s[1] == 'D' ? data : s[1] == 'N' ? noans : s[1] == 'T' ? tmpdir : NULL;
        if (v) {
            n += (size_t)snprintf(out + n, cap - n, "%s", v);
            s += 3;
        } else {
            out[n++] = *s++;
            out[n] = '\0';
        }
    }
}

struct bad_case {
    const char *args; /* {M} model, {D} data, {N} no-answer data, {T} scratch dir */
    int status;
    const char *expect;
};

static void test_bad_input(struct test_state *ts)
{
    static const struct bad_case cases[] = {
        {"", 2, "--model, --data and --out are required"},
        {"--model {M} --out {T}/o", 2, "--data"},
        {"--model {M} --data {D}", 2, "--out"},
        {"--model {M} --data {D} --out {T}/o --steps 0", 2, "--steps"},
        {"--model {M} --data {D} --out {T}/o --steps ten", 2, "'ten' is not a valid value"},
        {"--model {M} --data {D} --out {T}/o --lr -1", 2, "--lr"},
        {"--model {M} --data {D} --out {T}/o --lr nan", 2, "--lr"},
        {"--model {M} --data {D} --out {T}/o --batch 0", 2, "--batch"},
        {"--model {M} --data {D} --out {T}/o --warmup-ratio 2", 2, "--warmup-ratio"},
        {"--model {M} --data {D} --out {T}/o --init zeros", 2, "--init"},
        {"--model {M} --data {D} --out {T}/o --bogus 1", 2, "unknown option '--bogus'"},
        {"--model {M} --data {D} --out {T}/o --steps", 2, "missing value"},
        {"--model {M} --data {T}/missing.h5 --out {T}/o", 1, "missing.h5"},
        {"--model {M} --data {N} --out {T}/o", 1, "no `answer` field"},
        {"--model {T}/nomodel --data {D} --out {T}/o", 1, "nomodel"},
        {"--model {M} --data {D} --out {T}", 1, "not empty"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char args[4096], *e;
        expand(cases[k].args, args, sizeof args);
        int rc = run(args, &e);
        CHECK_MSG(ts, rc == cases[k].status, "'%s': exit %d, want %d (%s)", args, rc, cases[k].status, e);
        CHECK_CONTAINS(ts, e, cases[k].expect);
        CHECK_CONTAINS(ts, e, "mmupt sft: error: ");
        free(e);
        char o[1200];
        snprintf(o, sizeof o, "%s/o", tmpdir);
        CHECK_MSG(ts, access(o, F_OK) != 0, "'%s' wrote %s", args, o);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_sft_cli MMUPT TINY_TRAIN_DIR SMALL_H5\n");
        return 2;
    }
    mmupt = argv[1];
    model_dir = argv[2];
    small_h5 = argv[3];
    struct mmupt_err err;
    if (!mkdtemp(tmpdir)) return 1;
    snprintf(data, sizeof data, "%s/sft.h5", tmpdir);
    snprintf(noans, sizeof noans, "%s/noanswer.h5", tmpdir);
    if (sft_write_split(small_h5, data, 1, &err) || sft_write_split(small_h5, noans, 0, &err)) {
        fprintf(stderr, "cannot write the test splits: %s\n", err.msg);
        return 1;
    }
    struct test_state ts = {0};
    RUN(&ts, test_random_init_run);
    RUN(&ts, test_bad_input);
    test_remove_dir(tmpdir);
    return test_summary(&ts);
}
