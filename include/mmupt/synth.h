/* Synthetic questions (`mmupt synth`, docs/synth.md): the policy writes new questions for a
 * dataset's images, the filters keep the usable ones, and the result is a new split without answers.
 *
 * Two modes: DIRECT shows the model the item's images and a request for a new question;
 * IN_CONTEXT also shows it the item's question and answer and asks for a different question about
 * the same images. Per item n candidates are sampled with the rollout engine (draws keyed by the
 * item index, so results do not depend on batching or rank count), each goes through the filters
 * below in order, and at most `keep` survive.
 *
 *   struct synth_config c;
 *   synth_config_default(&c);
 *   struct synth_result r;
 *   if (synth_run(&c, &model, tok, ds, &r, &err)) ...;    this rank's share
 *   synth_gather(&comm, &r, &err);                         rank 0: everyone's, in item order
 *   synth_write(&c, ds, &r, "out.h5", &err);               rank 0
 *   synth_result_free(&r);
 *
 * The filter functions (filter.c) are pure and usable on their own. */
#ifndef MMUPT_SYNTH_H
#define MMUPT_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/dataset.h"
#include "mmupt/err.h"
#include "mmupt/log.h"
#include "mmupt/model.h"
#include "mmupt/model_dev.h"
#include "mmupt/tokenizer.h"

#define SYNTH_MAX_N 256          /* candidates per item at most */
#define SYNTH_MAX_PROMPT 16384   /* bytes of a prompt template at most */
#define SYNTH_MAX_CHARS 100000   /* the largest --max-chars */

enum synth_mode { SYNTH_DIRECT = 0, SYNTH_IN_CONTEXT };

/* "direct" / "in-context"; synth_parse_mode returns -1 for anything else. */
const char *synth_mode_name(enum synth_mode m);
int synth_parse_mode(const char *s, enum synth_mode *out);

/* The default prompt of a mode (user-visible; docs/synth.md quotes them). In-context prompts may
 * use {question} and {answer}. */
const char *synth_default_prompt(enum synth_mode m);
/* The defaults' text, also the config's defaults (synth.prompt_direct, synth.prompt_in_context). */
#define SYNTH_PROMPT_DIRECT                                                                                    \
    "Look at the image and write one new, self-contained question about it that has a single short answer " \
    "(a number, a word or a short phrase). Reply with the question only."
#define SYNTH_PROMPT_IN_CONTEXT                                                                                \
    "Here is a question about this image: {question} (its answer: {answer}). Write a different question "    \
    "about the same image that needs different reasoning and has a single short answer. Do not state the "   \
    "answer. Reply with the question only."

/* What happened to a candidate. The filters run in this order and the first that fails names the
 * reason, so every rejected candidate is counted exactly once. */
enum synth_verdict {
    SYNTH_KEEP = 0,
    SYNTH_UNDECODABLE,     /* the tokens do not decode to valid UTF-8 text */
    SYNTH_EMPTY,           /* nothing left after extracting the question */
    SYNTH_MARKER,          /* holds "<image>" or a chat-template token ("<|...|>"): would break the prompt */
    SYNTH_TOO_SHORT,       /* fewer than min_chars characters */
    SYNTH_TOO_LONG,        /* more than max_chars characters */
    SYNTH_NOT_QUESTION,    /* neither ends with '?' nor starts with a question / task word */
    SYNTH_ANSWER_LEAK,     /* in-context: states the original answer */
    SYNTH_DUPLICATE,       /* the same normalised text as a kept question or the original */
    SYNTH_NEAR_DUPLICATE,  /* word 3-gram Jaccard >= max_overlap with one of them */
    SYNTH_SURPLUS,         /* passed every filter, but the item already has `keep` questions */
    SYNTH_N_VERDICTS
};
/* "keep", "undecodable", "empty", "marker", "too_short", ... (the JSON summary's keys). */
const char *synth_verdict_name(enum synth_verdict v);

/* ---- pure text functions (filter.c) ---- */

/* The question in a model's response, malloc'd (possibly ""). Rule: the first line holding a
 * question mark ('?' or the full-width U+FF1F), cut right after that mark; with no question mark
 * anywhere, the first non-empty line. Then, repeatedly: surrounding white space, markdown bold or
 * heading marks, a leading label ("Question:", "New question:", "Q:", case-insensitive) and
 * surrounding quotes (" ' ` and the curly and angle quotes) are removed. NULL in: NULL out. */
char *synth_extract_question(const char *response);

/* Unicode code points in valid UTF-8 text (bytes that do not start a code point are not counted). */
size_t synth_char_count(const char *s);

/* 1 when s reads as a question: its last non-space character is '?' or U+FF1F, or its first word is
 * one of the question or task words (docs/synth.md lists them; case-insensitive ASCII). */
int synth_is_question(const char *s);

/* Trimmed, case-folded (Unicode, NFC), runs of white space collapsed to one space; malloc'd.
 * Invalid UTF-8 is folded as ASCII only. */
char *synth_normalize(const char *s);

/* Does `question` state `answer`? Both are normalised and split into tokens (runs of letters and
 * digits, non-ASCII characters counting as letters; a number such as 3.5 or 1,000 is one token; any
 * other character is a token of its own) and the answer's token sequence is searched for as a
 * whole. A one-character answer counts only as a standalone number ("3" leaks in "x = 3?", not in
 * "13 apples" or "3.5"); a single letter never counts (option letters and words such as "a" are
 * everywhere). An empty answer never leaks. */
int synth_answer_leaks(const char *question, const char *answer);

/* Jaccard similarity of the word 3-gram sets of a and b (normalised, tokens as above); a text of
 * fewer than 3 tokens is one gram of all its tokens. 1 for two empty texts. */
double synth_overlap(const char *a, const char *b);

/* ---- the filter chain ---- */

struct synth_filter {
    int min_chars, max_chars;     /* length bounds in characters (code points) */
    int require_question;         /* 0 turns synth_is_question off (debugging, tests) */
    double max_overlap;           /* near duplicate at Jaccard >= this; > 1 turns the check off */
    int keep;                     /* questions kept per item at most */
};

/* The state of one item while its candidates are judged. */
struct synth_item_state {
    const char *original;         /* the original question without <image> markers; NULL: none */
    const char *answer;           /* the original answer for the leak check; NULL: no check */
    char **kept;                  /* malloc'd questions kept so far (owned) */
    int n_kept;
};

/* Judge one response: extract its question, run the filters, and on SYNTH_KEEP append the question
 * to st->kept. text NULL means the tokens did not decode. */
enum synth_verdict synth_judge(const struct synth_filter *f, struct synth_item_state *st, const char *text);
void synth_item_state_free(struct synth_item_state *st);

/* ---- running it (run.c, parallel.c, output.c) ---- */

struct synth_counts {
    int64_t items;                /* items looked at (the first `limit`, this rank's share) */
    int64_t skipped_no_image;     /* items without images: nothing to ask about */
    int64_t skipped_no_answer;    /* in-context with {answer} in the prompt, and the item has none */
    int64_t skipped_bad;          /* unreadable items or prompts that could not be built */
    int64_t used;                 /* items candidates were sampled for */
    int64_t candidates;           /* responses judged */
    int64_t verdicts[SYNTH_N_VERDICTS]; /* [SYNTH_KEEP] = questions kept */
    double tokens;                /* response tokens, stop tokens included */
};

struct synth_question {
    int64_t item;                 /* index in the input split */
    int k;                        /* 0 .. keep-1 within the item */
    int sample;                   /* which of the n candidates it was */
    char *text;                   /* owned */
};

struct synth_result {
    struct synth_counts counts;
    struct synth_question *q;     /* sorted by (item, k) */
    int64_t n, cap;
    double seconds;
};

/* Progress after every batch of items: done of total this rank will visit. */
typedef void (*synth_progress_fn)(void *ctx, int64_t done, int64_t total, const struct synth_result *r);

struct synth_config {
    enum synth_mode mode;
    const char *prompt;           /* the template; NULL: synth_default_prompt(mode) */
    int n;                        /* candidates per item, [1, SYNTH_MAX_N] */
    struct synth_filter filter;
    float temperature;            /* >= 0 (0: greedy, which makes the n candidates equal) */
    float top_p;                  /* (0, 1] */
    int max_new;                  /* tokens per candidate */
    uint64_t seed;
    int64_t limit;                /* the first `limit` items of the split; 0: all */
    int64_t min_pixels, max_pixels; /* image resize bounds; 0: the processor's */
    int batch;                    /* items generated together */
    float image_pad_bias;         /* logit bias of <|image_pad|> (-100 as in training) */
    const int32_t *stop_ids;
    int n_stop;
    int shard_rank, shard_count;  /* items with index % shard_count == shard_rank */
    const char *policy;           /* for provenance: the model path, or the checkpoint */
    const struct log_ctx *lg;     /* warnings for skipped items; NULL: silent */
    synth_progress_fn progress;
    void *ctx;
    struct model_dev *dev;        /* decode on this device copy of the model; NULL: the CPU model */
};

/* Defaults: direct, n 4, keep 1, temperature 1, top_p 1, max_new 128, seed 1, min_chars 10,
 * max_chars 400, max_overlap 0.7, questions required, batch 8, bias -100, one shard. */
void synth_config_default(struct synth_config *c);
/* Ranges and the prompt template (no <image> marker, at most SYNTH_MAX_PROMPT bytes); -1 with a
 * message naming the setting. */
int synth_config_check(const struct synth_config *c, struct mmupt_err *err);

/* The request for one item: the template with every {question} and {answer} replaced (markers
 * removed from the question), behind n_images <image> markers. malloc'd. */
char *synth_build_request(const char *tmpl, const char *question, const char *answer, int n_images);
/* The new item's problem: n_images <image> markers, then the question (the MM-UPT sets' layout). */
char *synth_new_problem(const char *question, int n_images);

/* Generate and filter this rank's share of the split. *out belongs to the caller on success
 * (synth_result_free); on failure it is freed. */
int synth_run(const struct synth_config *c, struct model *m, struct tok *tok, struct ds_reader *ds,
              struct synth_result *out, struct mmupt_err *err);
void synth_result_free(struct synth_result *r);

/* Collective: every rank's kept questions and counts to rank 0, sorted by (item, k), so rank 0's
 * result equals a one-rank run's. Other ranks' *r is left as it was. */
struct comm;
int synth_gather(const struct comm *comm, struct synth_result *r, struct mmupt_err *err);

/* Rank 0: the new split at out_path (ids "<id>/synth-<mode>-<k>", the original source and images,
 * the new problem, no answers, a `provenance` string per item), read back from ds item by item. */
int synth_write(const struct synth_config *c, struct ds_reader *ds, const struct synth_result *r, const char *out_path,
                struct mmupt_err *err);
/* The provenance string of question q of item `id`. malloc'd. */
char *synth_provenance(const struct synth_config *c, const char *id, const struct synth_question *q);
/* The summary (counts by reason, settings, prompt) as one JSON object, atomically. */
int synth_write_summary(const char *path, const struct synth_config *c, const struct synth_result *r,
                        const char *model_path, const char *data_path, const char *out_path, struct mmupt_err *err);
/* Where the summary of out_path goes: a ".h5" or ".hdf5" suffix becomes ".json", else ".json" is
 * appended. */
void synth_summary_path(const char *out_path, char *buf, size_t n);

#endif
