/* shapes: the quickstart's synthetic visual counting task (docs/quickstart-task.md).
 *
 * An item is an 84x84 PNG with 0-9 red and 0-9 blue squares on a 6x6 grid of 14-pixel cells and
 * one of four questions (how many red / blue / in total / more red than blue?). Every item is a pure
 * function of (config, split, index): its random numbers come from the counter-based RNG keyed by
 * (seed, split, index, stream), so an item does not depend on the others, on the split's size or on
 * the order of generation, and the splits draw from disjoint keys.
 *
 * The SFT split's answers are worked responses mixing strategies: a direct "\boxed{7}" whose value
 * is a biased shortcut on crowded images, and decomposed "red 4 blue 3 4+3=7 \boxed{7}" responses
 * that are always right. The other splits hold the true final answer. With ask_share > 0 a share of
 * the SFT items are question-writing ("ask") items instead: the problem is `mmupt synth --mode
 * direct`'s request and the target is a totals question, so the warm start learns to write
 * questions as well as answer them.
 *
 *   struct shapes_config c;
 *   shapes_config_default(&c);
 *   c.seed = 7;
 *   struct ds_item it;
 *   if (shapes_make_item(&c, SHAPES_SFT, 12, &it, NULL, &err) == 0) { ...; ds_item_free(&it); }
 */
#ifndef MMUPT_SHAPES_H
#define MMUPT_SHAPES_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/dataset.h"
#include "mmupt/err.h"
#include "mmupt/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry: one Qwen2.5-VL patch (14 px) per cell, so a 2x2 merge gives 9 image tokens. */
#define SHAPES_GRID 6
#define SHAPES_CELL 14
#define SHAPES_SIZE (SHAPES_GRID * SHAPES_CELL) /* 84 */
#define SHAPES_CELLS (SHAPES_GRID * SHAPES_GRID)
#define SHAPES_MAX_COUNT 9                      /* per colour */

enum shapes_kind { SHAPES_RED, SHAPES_BLUE, SHAPES_TOTAL, SHAPES_MORE, SHAPES_N_KINDS };
enum shapes_split { SHAPES_SFT, SHAPES_TRAIN, SHAPES_VAL, SHAPES_TEST, SHAPES_N_SPLITS };
/* How a response reaches its answer. Single-colour questions have one decomposed form ("red 4
 * \boxed{4}"), counted as SHAPES_RED_FIRST or SHAPES_BLUE_FIRST by the colour it names. */
enum shapes_strategy { SHAPES_DIRECT, SHAPES_RED_FIRST, SHAPES_BLUE_FIRST, SHAPES_N_STRATEGIES };
enum shapes_cell { SHAPES_EMPTY = 0, SHAPES_CELL_RED = 1, SHAPES_CELL_BLUE = 2 };

/* Every number of the generator that is not geometry. Defaults (shapes_config_default) model the
 * findings of shared/reference/quickstart-findings.md, Finding 2. */
struct shapes_config {
    uint64_t seed;
    double kind_weight[SHAPES_N_KINDS]; /* relative frequency of each question kind; default 1 each */
    /* SFT strategy mix. total/more: direct pair_direct, red first pair_red_first, blue first the
     * rest. red/blue: direct single_direct, decomposed the rest. */
    double pair_direct, pair_red_first, single_direct;
    /* The direct shortcut's bias (SFT targets only). On a crowded image (red + blue >= crowded_min)
     * the direct total is K-1 with p crowded_minus1, K-2 with p crowded_minus2, else K. On a close
     * call (|red - blue| <= close_max_diff) the direct "more" answer is flipped with p close_flip. */
    int crowded_min;
    double crowded_minus1, crowded_minus2;
    int close_max_diff;
    double close_flip;
    /* SFT split only: the probability that an item is a question-writing item (default 0: none). */
    double ask_share;
};

void shapes_config_default(struct shapes_config *c);
/* Ranges: probabilities (ask_share included) in [0, 1], pair_direct + pair_red_first <= 1, crowded_minus1 +
 * crowded_minus2 <= 1, weights finite, >= 0 and not all 0, crowded_min 0..19, close_max_diff 0..9. */
int shapes_config_check(const struct shapes_config *c, struct mmupt_err *err);

/* The tunable numbers by name, for --help and --set: each is a double or an int field. */
struct shapes_param {
    const char *name;
    const char *help;
    size_t offset; /* into struct shapes_config */
    int is_int;
};
const struct shapes_param *shapes_params(int *n);
double shapes_param_get(const struct shapes_config *c, const struct shapes_param *p);
/* Set one parameter from text ("close_flip", "0.3"); unknown names, bad numbers and out-of-range
 * values are refused and leave c as it was. */
int shapes_param_set(struct shapes_config *c, const char *name, const char *value, struct mmupt_err *err);

/* "red,blue,total,more" with optional weights ("total:2,more:1"); listed kinds get their weight
 * (default 1), the others 0. Duplicates, unknown kinds, empty entries and bad weights are refused;
 * weight[] is written only on success. */
int shapes_parse_kinds(const char *list, double weight[SHAPES_N_KINDS], struct mmupt_err *err);

const char *shapes_kind_name(enum shapes_kind k);   /* "red", "blue", "total", "more" */
const char *shapes_split_name(enum shapes_split s); /* "sft", "train", "val", "test" */
const char *shapes_question(enum shapes_kind k);    /* the problem text, "<image>How many ..." */

/* Question-writing items. The problem is synth_build_request(SYNTH_PROMPT_DIRECT, NULL, NULL, 1),
 * exactly what `mmupt synth --mode direct` sends with its default prompt; the target is one of
 * SHAPES_N_ASK_FORMS phrasings of the totals question (the one kind the warm start learns). */
#define SHAPES_N_ASK_FORMS 5
const char *shapes_ask_question(int form);          /* "How many squares are there in total?", ...; NULL out of range */
int shapes_ask_form(const char *text);              /* the form whose text this is exactly, or -1 */

/* Everything about one item except its pixels. */
struct shapes_facts {
    int red, blue;
    uint8_t cell[SHAPES_CELLS]; /* enum shapes_cell, row-major */
    enum shapes_kind kind;
    char answer[12];            /* the true final answer: "0".."18", "yes", "no" */
    /* SFT split only (response empty, strategy SHAPES_DIRECT, biased 0 elsewhere): */
    enum shapes_strategy strategy;
    int biased;                 /* the response's answer differs from the truth (only direct ones can) */
    char response[64];
    /* SFT split only: 1 for a question-writing item, whose response is shapes_ask_question(ask_form)
     * (kind and answer are drawn as usual but the item does not use them). */
    int ask, ask_form;
};

/* Draw the facts of item (split, index). */
void shapes_draw(const struct shapes_config *c, enum shapes_split split, uint64_t index, struct shapes_facts *f);
/* Paint item (split, index) with facts f into a malloc'd 84x84 RGB image (free with img_free). */
void shapes_render(const struct shapes_config *c, enum shapes_split split, uint64_t index,
                   const struct shapes_facts *f, struct img_rgb *out);
/* A whole dataset item: id "<split>-<index>", source = kind name, problem = the question, answer =
 * the SFT response or the true final answer, one PNG image. A question-writing item has source
 * "ask", the synth request as problem and the question written as answer. facts (may be NULL) receives the facts.
 * Free with ds_item_free. Fails only if the PNG encoder does. */
int shapes_make_item(const struct shapes_config *c, enum shapes_split split, uint64_t index, struct ds_item *out,
                     struct shapes_facts *facts, struct mmupt_err *err);

/* Which strategy a response uses, by its shape: "\boxed{" first is direct, "red " first is red
 * first, "blue " first is blue first; -1 for anything else. Works on model output too. */
int shapes_response_strategy(const char *response);

/* What a split holds, measured on the items as written: strategies are read back from the response
 * text and answers extracted with grade_extract, not taken from the generator's bookkeeping. */
struct shapes_stats {
    int64_t n;
    int64_t kind[SHAPES_N_KINDS];
    int64_t crowded;                                   /* images with red + blue >= crowded_min */
    int64_t strategy[SHAPES_N_KINDS][SHAPES_N_STRATEGIES + 1]; /* SFT; last column: unrecognised */
    int64_t wrong[SHAPES_N_KINDS][SHAPES_N_STRATEGIES + 1];    /* answer differs from the truth */
    int64_t hard_direct[SHAPES_N_KINDS], hard_direct_wrong[SHAPES_N_KINDS]; /* crowded totals, close mores */
    int64_t unparsed;                                  /* responses without a \boxed{} answer */
    /* Question-writing items: counted in n and crowded, in none of the per-kind numbers above. */
    int64_t ask;
    int64_t ask_form[SHAPES_N_ASK_FORMS + 1];          /* by the written text; last: unrecognised */
};
/* Add one written item (its answer text) with the facts it was made from. */
void shapes_stats_add(struct shapes_stats *s, const struct shapes_config *c, enum shapes_split split,
                      const struct shapes_facts *f, const char *written_answer);

/* Write items [0, n) of a split to path with ds_writer (the file appears only when complete).
 * progress (may be NULL) is called every `every` items and at the end with the count done;
 * stats (may be NULL, zeroed by the caller) accumulates what was written. */
struct shapes_progress {
    void (*fn)(void *ctx, enum shapes_split split, int64_t done, int64_t total);
    void *ctx;
    int64_t every;
};
int shapes_write_split(const struct shapes_config *c, enum shapes_split split, int64_t n, const char *path,
                       const struct shapes_progress *progress, struct shapes_stats *stats, struct mmupt_err *err);

#ifdef __cplusplus
}
#endif

#endif
