/* shapes: an item's facts (counts, layout, question, answer) and its SFT target response. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "mmupt/sampler.h"

/* ---- random numbers ---- */

void shapes_rng_init(struct shapes_rng *r, const struct shapes_config *c, enum shapes_split split, uint64_t index,
                     enum shapes_stream stream)
{
    r->state = sample_rng_bits(c->seed, (uint64_t)split, index, (uint64_t)stream);
}

uint64_t shapes_rng_next(struct shapes_rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double shapes_rng_uniform(struct shapes_rng *r)
{
    return (double)(shapes_rng_next(r) >> 11) * 0x1.0p-53;
}

int shapes_rng_below(struct shapes_rng *r, int n)
{
    /* Lemire's multiply-shift: the bias is below n / 2^32, far under anything measurable here. */
    return (int)(((shapes_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- facts ---- */

/* Counts uniform 0..9 each, then r + b distinct cells by a partial Fisher-Yates shuffle. */
static void draw_layout(struct shapes_rng *rng, struct shapes_facts *f)
{
    f->red = shapes_rng_below(rng, SHAPES_MAX_COUNT + 1);
    f->blue = shapes_rng_below(rng, SHAPES_MAX_COUNT + 1);
    uint8_t order[SHAPES_CELLS];
    for (int i = 0; i < SHAPES_CELLS; i++) order[i] = (uint8_t)i;
    memset(f->cell, SHAPES_EMPTY, sizeof f->cell);
    for (int i = 0; i < f->red + f->blue; i++) {
        int j = i + shapes_rng_below(rng, SHAPES_CELLS - i);
        uint8_t t = order[i];
        order[i] = order[j];
        order[j] = t;
        f->cell[order[i]] = i < f->red ? SHAPES_CELL_RED : SHAPES_CELL_BLUE;
    }
}

static enum shapes_kind draw_kind(struct shapes_rng *rng, const struct shapes_config *c)
{
    double sum = 0.0;
    for (int k = 0; k < SHAPES_N_KINDS; k++) sum += c->kind_weight[k];
    double u = shapes_rng_uniform(rng) * sum, acc = 0.0;
    int last = 0;
    for (int k = 0; k < SHAPES_N_KINDS; k++) {
        if (c->kind_weight[k] <= 0.0) continue;
        acc += c->kind_weight[k];
        last = k;
        if (u < acc) return (enum shapes_kind)k;
    }
    return (enum shapes_kind)last; /* u within rounding of the sum */
}

static void true_answer(const struct shapes_facts *f, char *out, size_t n)
{
    switch (f->kind) {
    case SHAPES_RED: snprintf(out, n, "%d", f->red); break;
    case SHAPES_BLUE: snprintf(out, n, "%d", f->blue); break;
    case SHAPES_TOTAL: snprintf(out, n, "%d", f->red + f->blue); break;
    default: snprintf(out, n, "%s", f->red > f->blue ? "yes" : "no"); break;
    }
}

/* The shortcut's answer: what a quick glance says. Right except on crowded totals and close
 * "more" calls, where it is systematically off (the K-1 share exceeds the K share by default). */
static void direct_answer(const struct shapes_config *c, const struct shapes_facts *f, double u, char *out, size_t n)
{
    if (f->kind == SHAPES_TOTAL && f->red + f->blue >= c->crowded_min) {
        int k = f->red + f->blue;
        if (u < c->crowded_minus1) k -= 1;
        else if (u < c->crowded_minus1 + c->crowded_minus2) k -= 2;
        snprintf(out, n, "%d", k < 0 ? 0 : k);
    } else if (f->kind == SHAPES_MORE && f->red - f->blue <= c->close_max_diff &&
               f->blue - f->red <= c->close_max_diff && u < c->close_flip) {
        snprintf(out, n, "%s", f->red > f->blue ? "no" : "yes");
    } else {
        snprintf(out, n, "%s", f->answer);
    }
}

/* The SFT target: strategy first, then the bias draw (always both, so the stream stays aligned). */
static void draw_target(struct shapes_rng *rng, const struct shapes_config *c, struct shapes_facts *f)
{
    double us = shapes_rng_uniform(rng), ub = shapes_rng_uniform(rng);
    int r = f->red, b = f->blue;
    const char *cmp = r > b ? ">" : r < b ? "<" : "=";
    size_t n = sizeof f->response;
    if (f->kind == SHAPES_RED || f->kind == SHAPES_BLUE) {
        int red_q = f->kind == SHAPES_RED;
        if (us < c->single_direct) {
            f->strategy = SHAPES_DIRECT;
            snprintf(f->response, n, "\\boxed{%s}", f->answer);
        } else {
            f->strategy = red_q ? SHAPES_RED_FIRST : SHAPES_BLUE_FIRST;
            snprintf(f->response, n, "%s %d \\boxed{%s}", red_q ? "red" : "blue", red_q ? r : b, f->answer);
        }
        return;
    }
    if (us < c->pair_direct) {
        char given[16];
        direct_answer(c, f, ub, given, sizeof given);
        f->strategy = SHAPES_DIRECT;
        f->biased = strcmp(given, f->answer) != 0;
        snprintf(f->response, n, "\\boxed{%s}", given);
    } else if (us < c->pair_direct + c->pair_red_first) {
        f->strategy = SHAPES_RED_FIRST;
        if (f->kind == SHAPES_TOTAL) snprintf(f->response, n, "red %d blue %d %d+%d=%d \\boxed{%s}", r, b, r, b, r + b, f->answer);
        else snprintf(f->response, n, "red %d blue %d %d%s%d \\boxed{%s}", r, b, r, cmp, b, f->answer);
    } else {
        f->strategy = SHAPES_BLUE_FIRST;
        if (f->kind == SHAPES_TOTAL) snprintf(f->response, n, "blue %d red %d %d+%d=%d \\boxed{%s}", b, r, b, r, r + b, f->answer);
        else snprintf(f->response, n, "blue %d red %d %d%s%d \\boxed{%s}", b, r, r, cmp, b, f->answer);
    }
}

/* Is this SFT item a question-writing one, and which phrasing? Both draws are always made (the
 * stream stays aligned whatever the share), from the item's own ASK stream. */
static void draw_ask(struct shapes_rng *rng, const struct shapes_config *c, struct shapes_facts *f)
{
    double u = shapes_rng_uniform(rng);
    int form = shapes_rng_below(rng, SHAPES_N_ASK_FORMS);
    if (!(u < c->ask_share)) return;
    f->ask = 1;
    f->ask_form = form;
    f->strategy = SHAPES_DIRECT;
    f->biased = 0;
    snprintf(f->response, sizeof f->response, "%s", shapes_ask_question(form));
}

void shapes_draw(const struct shapes_config *c, enum shapes_split split, uint64_t index, struct shapes_facts *f)
{
    memset(f, 0, sizeof *f);
    struct shapes_rng rng;
    shapes_rng_init(&rng, c, split, index, SHAPES_STREAM_LAYOUT);
    draw_layout(&rng, f);
    shapes_rng_init(&rng, c, split, index, SHAPES_STREAM_KIND);
    f->kind = draw_kind(&rng, c);
    true_answer(f, f->answer, sizeof f->answer);
    f->strategy = SHAPES_DIRECT;
    if (split == SHAPES_SFT) {
        shapes_rng_init(&rng, c, split, index, SHAPES_STREAM_TARGET);
        draw_target(&rng, c, f);
        shapes_rng_init(&rng, c, split, index, SHAPES_STREAM_ASK);
        draw_ask(&rng, c, f);
    }
}

int shapes_response_strategy(const char *response)
{
    if (!response) return -1;
    if (strncmp(response, "\\boxed{", 7) == 0) return SHAPES_DIRECT;
    if (strncmp(response, "red ", 4) == 0) return SHAPES_RED_FIRST;
    if (strncmp(response, "blue ", 5) == 0) return SHAPES_BLUE_FIRST;
    return -1;
}
