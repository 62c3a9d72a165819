/* mmupt data shapes: write the quickstart's synthetic counting task (sft/train/val/test splits). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mmupt/strutil.h"
#include "mmupt/shapes.h"

#define DATA_MAX_ITEMS 10000000 /* per split: 10M items is ~150 GB of PNGs, beyond any use here */

static const char usage_head[] =
    "usage: mmupt data shapes --out DIR [--seed S] [--sft N] [--train N] [--val N] [--test N]\n"
    "                         [--kinds LIST] [--ask-share X] [--set NAME=VALUE]...\n"
    "\n"
    "Write the quickstart's synthetic visual counting task (docs/quickstart-task.md) as four HDF5\n"
    "splits (docs/datasets.md): DIR/sft.h5, train.h5, val.h5, test.h5. DIR is created if missing;\n"
    "existing split files in it are replaced. A split of 0 items is not written.\n"
    "\n"
    "Items: an 84x84 PNG, a 6x6 grid of 14-px cells holding 0-9 red and 0-9 blue squares (uniform,\n"
    "distinct cells), and one question (source = its kind):\n"
    "  red    <image>How many red squares are there?                answer 0..9\n"
    "  blue   <image>How many blue squares are there?               answer 0..9\n"
    "  total  <image>How many squares are there in total?           answer 0..18\n"
    "  more   <image>Are there more red squares than blue squares?  answer yes/no (equal: no)\n"
    "\n"
    "Splits and their `answer`:\n"
    "  sft    the warm-up targets: a worked response ending in \\boxed{}, e.g.\n"
    "         \\boxed{7}  |  red 4 blue 3 4+3=7 \\boxed{7}  |  blue 3 red 4 3+4=7 \\boxed{7}\n"
    "         (direct answers are a biased shortcut on crowded images; decomposed ones are right)\n"
    "  train  MM-UPT's unlabelled questions; the true answer is stored for label metrics only\n"
    "         With --ask-share X, a share X of the SFT items are question-writing items instead\n"
    "         (source ask): the problem is the request `mmupt synth --mode direct` sends with its\n"
    "         default prompt, the answer a totals question such as\n"
    "         How many squares are in the image?  (docs/quickstart-task.md)\n"
    "  val    held-out true answers for evaluation during training\n"
    "  test   held-out true answers for the final evaluation\n"
    "\n"
    "Options:\n"
    "  --out DIR         output directory (required)\n"
    "  --seed S          generator seed, 0..2^64-1 (default 0); item (split, i) depends only on\n"
    "                    (seed, split, i), so splits are disjoint and a prefix of a larger split\n"
    "                    is the smaller split\n"
    "  --sft N           items per split (defaults 8000, 4096, 500, 1000; 0..10000000)\n"
    "  --train N, --val N, --test N\n"
    "  --kinds LIST      question kinds and weights, e.g. total,more or red:1,total:3\n"
    "                    (default red,blue,total,more: uniform)\n"
    "  --ask-share X     probability, 0..1, that an SFT item is a question-writing item\n"
    "                    (default 0: none, and every split is as without the option)\n"
    "  --set NAME=VALUE  change one number of the SFT target model (repeatable):\n";

static void print_usage(FILE *f)
{
    fputs(usage_head, f);
    struct shapes_config c;
    shapes_config_default(&c);
    int n;
    const struct shapes_param *ps = shapes_params(&n);
    for (int i = 0; i < n; i++) {
        char val[32];
        snprintf(val, sizeof val, "%s=%g", ps[i].name, shapes_param_get(&c, &ps[i]));
        fprintf(f, "    %-20s %s\n", val, ps[i].help);
    }
    fputs("\nPrints progress on stderr and, on stdout, the counts per split and kind, the share of\n"
          "crowded images, the question-writing items and the SFT strategy mix and shortcut error rates\n"
          "measured on the written responses. Exit status: 0 written, 1 cannot write (nothing is left behind), 2 bad usage.\n",
          f);
}

struct data_args {
    const char *out;
    int64_t n[SHAPES_N_SPLITS];
    struct shapes_config cfg;
};

static int parse_u64(const char *text, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

/* A whole-string number in [0, 1]: "0.25" yes, "0.25x", "", "nan", "1.5" no. */
static int parse_share(const char *text, double *out)
{
    if (!*text) return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end || errno || !(v >= 0.0 && v <= 1.0)) return -1;
    *out = v;
    return 0;
}

/* Parse the command line after "shapes". Returns 0, or -1 after printing a usage error. */
static int parse_args(int argc, char **argv, struct data_args *a)
{
    static const char *const split_opt[SHAPES_N_SPLITS] = {"--sft", "--train", "--val", "--test"};
    static const int64_t split_default[SHAPES_N_SPLITS] = {8000, 4096, 500, 1000};
    memset(a, 0, sizeof *a);
    shapes_config_default(&a->cfg);
    memcpy(a->n, split_default, sizeof a->n);
    struct mmupt_err err;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int split = -1;
        for (int s = 0; s < SHAPES_N_SPLITS; s++)
            if (strcmp(opt, split_opt[s]) == 0) split = s;
        int known = split >= 0 || !strcmp(opt, "--out") || !strcmp(opt, "--seed") || !strcmp(opt, "--kinds") ||
                    !strcmp(opt, "--ask-share") || !strcmp(opt, "--set");
        if (!known) {
            cli_error("data", "unexpected argument '%s' (see mmupt data shapes --help)", opt);
            return -1;
        }
        if (!val) {
            cli_error("data", "%s needs a value (see mmupt data shapes --help)", opt);
            return -1;
        }
        i++;
        uint64_t u;
        if (split >= 0) {
            if (parse_u64(val, &u) || u > DATA_MAX_ITEMS) {
                cli_error("data", "%s: '%s' is not a count from 0 to %d", opt, val, DATA_MAX_ITEMS);
                return -1;
            }
            a->n[split] = (int64_t)u;
        } else if (!strcmp(opt, "--out")) {
            if (!*val) {
                cli_error("data", "--out: empty directory name");
                return -1;
            }
            a->out = val;
        } else if (!strcmp(opt, "--seed")) {
            if (parse_u64(val, &u)) {
                cli_error("data", "--seed: '%s' is not an integer from 0 to 18446744073709551615", val);
                return -1;
            }
            a->cfg.seed = u;
        } else if (!strcmp(opt, "--ask-share")) {
            if (parse_share(val, &a->cfg.ask_share)) {
                cli_error("data", "--ask-share: '%s' is not a share from 0 to 1", val);
                return -1;
            }
        } else if (!strcmp(opt, "--kinds")) {
            if (shapes_parse_kinds(val, a->cfg.kind_weight, &err)) {
                cli_error("data", "%s", err.msg);
                return -1;
            }
        } else { /* --set NAME=VALUE */
            char name[64];
            const char *eq = strchr(val, '=');
            if (!eq || eq == val || (size_t)(eq - val) >= sizeof name) {
                cli_error("data", "--set: expected NAME=VALUE, got '%s'", val);
                return -1;
            }
            memcpy(name, val, (size_t)(eq - val));
            name[eq - val] = '\0';
            if (shapes_param_set(&a->cfg, name, eq + 1, &err)) {
                cli_error("data", "--set: %s (see mmupt data shapes --help)", err.msg);
                return -1;
            }
        }
    }
    if (!a->out) {
        cli_error("data", "--out DIR is required (see mmupt data shapes --help)");
        return -1;
    }
    return 0;
}

/* ---- progress and summary ---- */

struct progress_ctx {
    int tty;
    struct timespec t0;
};

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* On a terminal one line updated in place; in a log file one line per finished split. */
static void on_progress(void *ctx, enum shapes_split split, int64_t done, int64_t total)
{
    struct progress_ctx *p = ctx;
    if (done < total) {
        if (p->tty) fprintf(stderr, "\rmmupt data: %s %lld/%lld", shapes_split_name(split), (long long)done, (long long)total);
        return;
    }
    fprintf(stderr, "%smmupt data: %s: %lld items (%.1f s)\n", p->tty ? "\r" : "", shapes_split_name(split),
            (long long)total, seconds_since(&p->t0));
}

static double pct(int64_t a, int64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* The question-writing items of the SFT split and how often each phrasing was written. */
static void print_ask(const struct shapes_config *c, const struct shapes_stats *t)
{
    printf("\nquestion-writing (ask) items: %lld of %lld, %.1f%% [%.1f%%]; phrasings:\n", (long long)t->ask,
           (long long)t->n, pct(t->ask, t->n), 100 * c->ask_share);
    for (int f = 0; f < SHAPES_N_ASK_FORMS; f++)
        printf("  %7lld  %s\n", (long long)t->ask_form[f], shapes_ask_question(f));
    printf("  %7lld  (unrecognised)\n", (long long)t->ask_form[SHAPES_N_ASK_FORMS]);
}

static void print_summary(const struct data_args *a, const struct shapes_stats st[SHAPES_N_SPLITS])
{
    const struct shapes_config *c = &a->cfg;
    printf("shapes dataset in %s (seed %" PRIu64 ")\n\n", a->out, c->seed);
    printf("%-6s %8s %7s %7s %7s %7s %7s  images >= %d squares\n", "split", "items", "red", "blue", "total", "more",
           "ask", c->crowded_min);
    for (int s = 0; s < SHAPES_N_SPLITS; s++) {
        if (!a->n[s]) continue;
        printf("%-6s %8lld", shapes_split_name(s), (long long)st[s].n);
        for (int k = 0; k < SHAPES_N_KINDS; k++) printf(" %7lld", (long long)st[s].kind[k]);
        printf(" %7lld  %.1f%%\n", (long long)st[s].ask, pct(st[s].crowded, st[s].n));
    }
    const struct shapes_stats *t = &st[SHAPES_SFT];
    if (!t->n) return;
    if (c->ask_share > 0 || t->ask) print_ask(c, t);
    printf("\nSFT targets, measured on the written responses (configured in brackets):\n");
    printf("%-6s %16s %16s %16s %12s\n", "kind", "direct", "red first", "blue first", "unrecognised");
    for (int k = 0; k < SHAPES_N_KINDS; k++) {
        int64_t n = t->kind[k];
        int pair = k == SHAPES_TOTAL || k == SHAPES_MORE;
        double want[SHAPES_N_STRATEGIES] = {c->single_direct, k == SHAPES_RED ? 1 - c->single_direct : 0,
                                            k == SHAPES_BLUE ? 1 - c->single_direct : 0};
        if (pair) {
            want[0] = c->pair_direct;
            want[1] = c->pair_red_first;
            want[2] = 1 - c->pair_direct - c->pair_red_first;
        }
        printf("%-6s", shapes_kind_name(k));
        for (int s = 0; s < SHAPES_N_STRATEGIES; s++) printf(" %6.1f%% [%4.1f%%]", pct(t->strategy[k][s], n), 100 * want[s]);
        printf(" %11.1f%%\n", pct(t->strategy[k][SHAPES_N_STRATEGIES], n));
    }
    int64_t dec_wrong = 0, dec = 0, easy_wrong = 0;
    for (int k = 0; k < SHAPES_N_KINDS; k++) {
        for (int s = SHAPES_RED_FIRST; s <= SHAPES_N_STRATEGIES; s++) {
            dec += t->strategy[k][s];
            dec_wrong += t->wrong[k][s];
        }
        easy_wrong += t->wrong[k][SHAPES_DIRECT] - t->hard_direct_wrong[k];
    }
    printf("\nwrong direct answers: total on crowded images %.1f%% of %lld [%.1f%%: K-1 %.0f%%, K-2 %.0f%%],\n"
           "  more on close calls %.1f%% of %lld [%.1f%%], elsewhere %lld\n",
           pct(t->hard_direct_wrong[SHAPES_TOTAL], t->hard_direct[SHAPES_TOTAL]),
           (long long)t->hard_direct[SHAPES_TOTAL], 100 * (c->crowded_minus1 + c->crowded_minus2),
           100 * c->crowded_minus1, 100 * c->crowded_minus2, pct(t->hard_direct_wrong[SHAPES_MORE], t->hard_direct[SHAPES_MORE]),
           (long long)t->hard_direct[SHAPES_MORE], 100 * c->close_flip, (long long)easy_wrong);
    printf("wrong decomposed answers: %lld of %lld; responses without \\boxed{}: %lld\n", (long long)dec_wrong,
           (long long)dec, (long long)t->unparsed);
}

/* ---- writing ---- */

static void split_path(const char *dir, int s, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.h5", dir, shapes_split_name(s));
}

/* Make DIR if it is missing; *created says whether we did (so a failure can take it back). */
static int ensure_dir(const char *dir, int *created, struct mmupt_err *err)
{
    struct stat st;
    *created = 0;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return mmupt_fail(err, "%s: exists and is not a directory", dir);
        if (access(dir, W_OK) != 0) return mmupt_fail(err, "%s: not writable: %s", dir, strerror(errno));
        return 0;
    }
    /* Parents too, as mkdir -p (only DIR itself is taken back after a failure). */
    if (dir_make_all(dir, "the directory", err)) return -1;
    *created = 1;
    return 0;
}

static int write_all(const struct data_args *a, struct shapes_stats st[SHAPES_N_SPLITS], struct mmupt_err *err)
{
    int created;
    if (ensure_dir(a->out, &created, err)) return -1;
    struct progress_ctx pc = {.tty = isatty(STDERR_FILENO)};
    clock_gettime(CLOCK_MONOTONIC, &pc.t0);
    struct shapes_progress prog = {on_progress, &pc, 256};
    char path[4096];
    for (int s = 0; s < SHAPES_N_SPLITS; s++) {
        if (!a->n[s]) continue;
        split_path(a->out, s, path, sizeof path);
        if (shapes_write_split(&a->cfg, s, a->n[s], path, &prog, &st[s], err) == 0) continue;
        if (pc.tty) fputc('\n', stderr);
        /* Take back what this run wrote: a half-written dataset must not look like a whole one. */
        for (int p = 0; p < s; p++) {
            if (!a->n[p]) continue;
            split_path(a->out, p, path, sizeof path);
            remove(path);
        }
        if (created) rmdir(a->out);
        return -1;
    }
    return 0;
}

static int cmd_data_shapes(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        print_usage(stdout);
        return MMUPT_EXIT_OK;
    }
    struct data_args a;
    if (parse_args(argc, argv, &a)) return MMUPT_EXIT_USAGE;
    struct mmupt_err err;
    if (shapes_config_check(&a.cfg, &err)) {
        cli_error("data", "%s", err.msg);
        return MMUPT_EXIT_USAGE;
    }
    struct shapes_stats st[SHAPES_N_SPLITS];
    memset(st, 0, sizeof st);
    if (write_all(&a, st, &err)) {
        cli_error("data", "%s (nothing was left behind)", err.msg);
        return MMUPT_EXIT_ERROR;
    }
    print_summary(&a, st);
    return MMUPT_EXIT_OK;
}

int cmd_data(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "shapes") == 0) return cmd_data_shapes(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        print_usage(stdout);
        return MMUPT_EXIT_OK;
    }
    if (argc < 2) cli_error("data", "which dataset? the one generator is 'shapes' (mmupt data shapes --help)");
    else cli_error("data", "unknown dataset '%s': the one generator is 'shapes' (mmupt data shapes --help)", argv[1]);
    return MMUPT_EXIT_USAGE;
}
