/* shapes: the generator's configuration, its named parameters and the --kinds list. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/shapes.h"

static const char *const kind_names[SHAPES_N_KINDS] = {"red", "blue", "total", "more"};
static const char *const split_names[SHAPES_N_SPLITS] = {"sft", "train", "val", "test"};
static const char *const questions[SHAPES_N_KINDS] = {
    "<image>How many red squares are there?",
    "<image>How many blue squares are there?",
    "<image>How many squares are there in total?",
    "<image>Are there more red squares than blue squares?",
};

/* Totals questions only: the warm start learns totals, and a colour-conditioned question is one it
 * could write but not answer (docs/quickstart-task.md). The first is the task's own question. */
static const char *const ask_questions[SHAPES_N_ASK_FORMS] = {
    "How many squares are there in total?",
    "How many squares are in the image?",
    "What is the total number of squares?",
    "Count the squares. How many are there?",
    "How many squares can you see?",
};

const char *shapes_ask_question(int form)
{
    return form >= 0 && form < SHAPES_N_ASK_FORMS ? ask_questions[form] : NULL;
}

int shapes_ask_form(const char *text)
{
    for (int i = 0; text && i < SHAPES_N_ASK_FORMS; i++)
        if (strcmp(text, ask_questions[i]) == 0) return i;
    return -1;
}

const char *shapes_kind_name(enum shapes_kind k)
{
    return (unsigned)k < SHAPES_N_KINDS ? kind_names[k] : "?";
}

const char *shapes_split_name(enum shapes_split s)
{
    return (unsigned)s < SHAPES_N_SPLITS ? split_names[s] : "?";
}

const char *shapes_question(enum shapes_kind k)
{
    return (unsigned)k < SHAPES_N_KINDS ? questions[k] : "";
}

void shapes_config_default(struct shapes_config *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 0;
    for (int k = 0; k < SHAPES_N_KINDS; k++) c->kind_weight[k] = 1.0;
    c->pair_direct = 0.45;
    c->pair_red_first = 0.275;
    c->single_direct = 0.5;
    c->crowded_min = 10;
    c->crowded_minus1 = 0.5;
    c->crowded_minus2 = 0.1;
    c->close_max_diff = 1;
    c->close_flip = 0.5;
    c->ask_share = 0.0;
}

/* The kind weights are set through --kinds, not here: a list reads better than four numbers. */
static const struct shapes_param params[] = {
    {"pair_direct", "total/more SFT targets: share of direct answers", offsetof(struct shapes_config, pair_direct), 0},
    {"pair_red_first", "total/more SFT targets: share decomposed red first (blue first: the rest)",
     offsetof(struct shapes_config, pair_red_first), 0},
    {"single_direct", "red/blue SFT targets: share of direct answers (decomposed: the rest)",
     offsetof(struct shapes_config, single_direct), 0},
    {"crowded_min", "an image with at least this many squares is crowded", offsetof(struct shapes_config, crowded_min),
     1},
    {"crowded_minus1", "direct total on a crowded image: P(K-1)", offsetof(struct shapes_config, crowded_minus1), 0},
    {"crowded_minus2", "direct total on a crowded image: P(K-2)", offsetof(struct shapes_config, crowded_minus2), 0},
    {"close_max_diff", "a 'more' question with |red-blue| <= this is a close call",
     offsetof(struct shapes_config, close_max_diff), 1},
    {"close_flip", "direct 'more' answer on a close call: P(wrong answer)", offsetof(struct shapes_config, close_flip),
     0},
};

const struct shapes_param *shapes_params(int *n)
{
    *n = (int)(sizeof params / sizeof params[0]);
    return params;
}

double shapes_param_get(const struct shapes_config *c, const struct shapes_param *p)
{
    const char *base = (const char *)c + p->offset;
    return p->is_int ? (double)*(const int *)base : *(const double *)base;
}

static int check_prob(const char *name, double p, struct mmupt_err *err)
{
    if (!(p >= 0.0 && p <= 1.0)) return mmupt_fail(err, "%s is %g: must be a probability in [0, 1]", name, p);
    return 0;
}

int shapes_config_check(const struct shapes_config *c, struct mmupt_err *err)
{
    double wsum = 0.0;
    for (int k = 0; k < SHAPES_N_KINDS; k++) {
        if (!(c->kind_weight[k] >= 0.0 && isfinite(c->kind_weight[k])))
            return mmupt_fail(err, "weight of kind '%s' is %g: must be finite and >= 0", kind_names[k], c->kind_weight[k]);
        wsum += c->kind_weight[k];
    }
    if (!(wsum > 0.0) || !isfinite(wsum)) return mmupt_fail(err, "the kind weights must not all be 0");
    if (check_prob("pair_direct", c->pair_direct, err) || check_prob("pair_red_first", c->pair_red_first, err) ||
        check_prob("single_direct", c->single_direct, err) || check_prob("crowded_minus1", c->crowded_minus1, err) ||
        check_prob("crowded_minus2", c->crowded_minus2, err) || check_prob("close_flip", c->close_flip, err) ||
        check_prob("ask_share", c->ask_share, err))
        return -1;
    /* A small tolerance so that "0.45 + 0.55" typed on a command line is accepted. */
    if (c->pair_direct + c->pair_red_first > 1.0 + 1e-9)
        return mmupt_fail(err, "pair_direct + pair_red_first is %g: must be <= 1 (blue first takes the rest)",
                          c->pair_direct + c->pair_red_first);
    if (c->crowded_minus1 + c->crowded_minus2 > 1.0 + 1e-9)
        return mmupt_fail(err, "crowded_minus1 + crowded_minus2 is %g: must be <= 1",
                          c->crowded_minus1 + c->crowded_minus2);
    if (c->crowded_min < 0 || c->crowded_min > 2 * SHAPES_MAX_COUNT + 1)
        return mmupt_fail(err, "crowded_min is %d: must be 0 to %d", c->crowded_min, 2 * SHAPES_MAX_COUNT + 1);
    if (c->close_max_diff < 0 || c->close_max_diff > SHAPES_MAX_COUNT)
        return mmupt_fail(err, "close_max_diff is %d: must be 0 to %d", c->close_max_diff, SHAPES_MAX_COUNT);
    return 0;
}

/* A whole-string number: "0.3" yes, "0.3x", "", "nan" no. */
static int parse_number(const char *text, double *out)
{
    if (!text || !*text) return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int shapes_param_set(struct shapes_config *c, const char *name, const char *value, struct mmupt_err *err)
{
    int n;
    const struct shapes_param *ps = shapes_params(&n);
    for (int i = 0; i < n; i++) {
        if (strcmp(ps[i].name, name) != 0) continue;
        double v;
        if (parse_number(value, &v)) return mmupt_fail(err, "%s: '%s' is not a number", name, value);
        struct shapes_config tmp = *c; /* check on a copy: c stays as it was on failure */
        char *field = (char *)&tmp + ps[i].offset;
        if (ps[i].is_int) {
            if (v != floor(v) || fabs(v) > 1e6) return mmupt_fail(err, "%s: '%s' is not a small integer", name, value);
            *(int *)field = (int)v;
        } else {
            *(double *)field = v;
        }
        if (shapes_config_check(&tmp, err)) return -1;
        *c = tmp;
        return 0;
    }
    return mmupt_fail(err, "unknown parameter '%s'", name);
}

/* One "name" or "name:weight" entry of a --kinds list, len bytes at s. */
static int parse_kind_entry(const char *s, size_t len, double weight[SHAPES_N_KINDS], int seen[SHAPES_N_KINDS],
                            struct mmupt_err *err)
{
    char entry[64];
    if (len == 0) return mmupt_fail(err, "--kinds: empty entry (a list looks like red,blue,total,more)");
    if (len >= sizeof entry) return mmupt_fail(err, "--kinds: entry '%.20s...' is too long", s);
    memcpy(entry, s, len);
    entry[len] = '\0';
    char *colon = strchr(entry, ':');
    double w = 1.0;
    if (colon) {
        *colon = '\0';
        if (parse_number(colon + 1, &w) || w < 0.0 || w > 1e6)
            return mmupt_fail(err, "--kinds: weight '%s' of '%s' must be a number from 0 to 1e6", colon + 1, entry);
    }
    for (int k = 0; k < SHAPES_N_KINDS; k++) {
        if (strcmp(entry, kind_names[k]) != 0) continue;
        if (seen[k]) return mmupt_fail(err, "--kinds: '%s' is listed twice", entry);
        seen[k] = 1;
        weight[k] = w;
        return 0;
    }
    return mmupt_fail(err, "--kinds: unknown kind '%s' (kinds: red, blue, total, more)", entry);
}

int shapes_parse_kinds(const char *list, double weight[SHAPES_N_KINDS], struct mmupt_err *err)
{
    double w[SHAPES_N_KINDS] = {0};
    int seen[SHAPES_N_KINDS] = {0};
    const char *s = list;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (parse_kind_entry(s, len, w, seen, err)) return -1;
        if (!comma) break;
        s = comma + 1;
    }
    double sum = 0.0;
    for (int k = 0; k < SHAPES_N_KINDS; k++) sum += w[k];
    if (!(sum > 0.0)) return mmupt_fail(err, "--kinds: every weight is 0");
    memcpy(weight, w, sizeof w);
    return 0;
}
