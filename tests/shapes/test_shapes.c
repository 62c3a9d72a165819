/* The shapes generator: determinism, images that match their answers, exact response formats, the
 * configured strategy mix and shortcut bias, disjoint splits, written files that the dataset reader
 * and the prompt builder accept, the configuration parsers, and the PNG encoder.
 * usage: test_shapes TOKENIZER_JSON (tests/fixtures/models/tiny_train) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/grade.h"
#include "mmupt/prompt.h"
#include "mmupt/shapes.h"
#include "mmupt/synth.h"
#include "mmupt/tokenizer.h"

static const char *tok_path;

static int item_equal(const struct ds_item *a, const struct ds_item *b)
{
    return !strcmp(a->id, b->id) && !strcmp(a->source, b->source) && !strcmp(a->problem, b->problem) &&
           !strcmp(a->answer, b->answer) && a->n_images == 1 && b->n_images == 1 &&
           a->image_len[0] == b->image_len[0] && !memcmp(a->image[0], b->image[0], a->image_len[0]);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* ---- determinism ---- */

static void test_deterministic(struct test_state *ts)
{
    struct shapes_config c, c2;
    shapes_config_default(&c);
    c.seed = 11;
    c2 = c;
    c2.seed = 12;
    struct mmupt_err err;
    int differ = 0;
    for (int s = 0; s < SHAPES_N_SPLITS; s++)
        for (uint64_t i = 0; i < 20; i++) {
            struct ds_item a, b, d;
            CHECK_MSG(ts, shapes_make_item(&c, s, i, &a, NULL, &err) == 0, "%s", err.msg);
            CHECK_MSG(ts, shapes_make_item(&c, s, i, &b, NULL, &err) == 0, "%s", err.msg);
            CHECK_MSG(ts, shapes_make_item(&c2, s, i, &d, NULL, &err) == 0, "%s", err.msg);
            CHECK_MSG(ts, item_equal(&a, &b), "split %d item %llu differs between two calls", s, (unsigned long long)i);
            differ += a.image_len[0] != d.image_len[0] || memcmp(a.image[0], d.image[0], a.image_len[0]) != 0;
            ds_item_free(&a);
            ds_item_free(&b);
            ds_item_free(&d);
        }
    CHECK_MSG(ts, differ == 80, "only %d of 80 images changed with the seed", differ);
}

/* The question mix and the SFT numbers draw from their own streams: changing them leaves images. */
static void test_images_ignore_mix(struct test_state *ts)
{
    struct shapes_config a, b;
    shapes_config_default(&a);
    b = a;
    b.kind_weight[SHAPES_RED] = 0;
    b.pair_direct = 0.9;
    for (uint64_t i = 0; i < 10; i++) {
        struct shapes_facts fa, fb;
        shapes_draw(&a, SHAPES_SFT, i, &fa);
        shapes_draw(&b, SHAPES_SFT, i, &fb);
        CHECK(ts, !memcmp(fa.cell, fb.cell, sizeof fa.cell) && fa.red == fb.red && fa.blue == fb.blue);
        CHECK(ts, fb.kind != SHAPES_RED);
        struct img_rgb ia, ib;
        shapes_render(&a, SHAPES_SFT, i, &fa, &ia);
        shapes_render(&b, SHAPES_SFT, i, &fb, &ib);
        CHECK(ts, !memcmp(ia.data, ib.data, (size_t)SHAPES_SIZE * SHAPES_SIZE * 3));
        img_free(&ia);
        img_free(&ib);
    }
}

/* ---- images match answers ---- */

/* Count the cells whose pixels are mostly red or blue (>= 40 of the 64..100 square pixels). */
static void count_cells(const struct img_rgb *im, uint8_t cell[SHAPES_CELLS], int *red, int *blue)
{
    *red = *blue = 0;
    for (int k = 0; k < SHAPES_CELLS; k++) {
        int nr = 0, nb = 0, x0 = (k % SHAPES_GRID) * SHAPES_CELL, y0 = (k / SHAPES_GRID) * SHAPES_CELL;
        for (int y = y0; y < y0 + SHAPES_CELL; y++)
            for (int x = x0; x < x0 + SHAPES_CELL; x++) {
                const uint8_t *p = im->data + 3 * (y * im->width + x);
                nr += p[0] > 140 && p[1] < 110 && p[2] < 110;
                nb += p[2] > 140 && p[0] < 110 && p[1] < 130;
            }
        cell[k] = nr >= 40 ? SHAPES_CELL_RED : nb >= 40 ? SHAPES_CELL_BLUE : SHAPES_EMPTY;
        *red += cell[k] == SHAPES_CELL_RED;
        *blue += cell[k] == SHAPES_CELL_BLUE;
    }
}

static void test_counts_match_image(struct test_state *ts)
{
    struct shapes_config c;
    shapes_config_default(&c);
    c.seed = 3;
    struct mmupt_err err;
    int seen_red[SHAPES_MAX_COUNT + 1] = {0};
    for (int s = 0; s < SHAPES_N_SPLITS; s++)
        for (uint64_t i = 0; i < 150; i++) {
            struct ds_item it;
            struct shapes_facts f;
            if (shapes_make_item(&c, s, i, &it, &f, &err)) {
                CHECK_MSG(ts, 0, "%s", err.msg);
                return;
            }
            struct img_rgb im;
            CHECK_MSG(ts, img_decode(it.image[0], it.image_len[0], 1 << 20, &im, &err) == 0, "%s", err.msg);
            CHECK(ts, im.width == 84 && im.height == 84);
            uint8_t cell[SHAPES_CELLS];
            int r, b;
            count_cells(&im, cell, &r, &b);
            CHECK_MSG(ts, r == f.red && b == f.blue && !memcmp(cell, f.cell, sizeof cell),
                      "%s: image shows %d red %d blue, facts say %d, %d", it.id, r, b, f.red, f.blue);
            seen_red[r]++;
            char want[12];
            switch (f.kind) {
            case SHAPES_RED: snprintf(want, sizeof want, "%d", r); break;
            case SHAPES_BLUE: snprintf(want, sizeof want, "%d", b); break;
            case SHAPES_TOTAL: snprintf(want, sizeof want, "%d", r + b); break;
            default: snprintf(want, sizeof want, "%s", r > b ? "yes" : "no"); break;
            }
            CHECK_MSG(ts, !strcmp(f.answer, want), "%s: answer %s, image says %s", it.id, f.answer, want);
            if (s != SHAPES_SFT) CHECK_MSG(ts, !strcmp(it.answer, want), "%s: stored %s, want %s", it.id, it.answer, want);
            img_free(&im);
            ds_item_free(&it);
        }
    for (int r = 0; r <= SHAPES_MAX_COUNT; r++) CHECK_MSG(ts, seen_red[r] > 20, "red count %d seen %d times", r, seen_red[r]);
}

/* ---- formats ---- */

/* What the contract says the response must be, rebuilt from the facts and the strategy. */
static void expected_response(const struct shapes_facts *f, const char *given, char *out, size_t n)
{
    int r = f->red, b = f->blue;
    const char *cmp = r > b ? ">" : r < b ? "<" : "=";
    if (f->strategy == SHAPES_DIRECT) snprintf(out, n, "\\boxed{%s}", given);
    else if (f->kind == SHAPES_RED) snprintf(out, n, "red %d \\boxed{%d}", r, r);
    else if (f->kind == SHAPES_BLUE) snprintf(out, n, "blue %d \\boxed{%d}", b, b);
    else if (f->kind == SHAPES_TOTAL && f->strategy == SHAPES_RED_FIRST)
        snprintf(out, n, "red %d blue %d %d+%d=%d \\boxed{%d}", r, b, r, b, r + b, r + b);
    else if (f->kind == SHAPES_TOTAL) snprintf(out, n, "blue %d red %d %d+%d=%d \\boxed{%d}", b, r, b, r, r + b, r + b);
    else if (f->strategy == SHAPES_RED_FIRST) snprintf(out, n, "red %d blue %d %d%s%d \\boxed{%s}", r, b, r, cmp, b, f->answer);
    else snprintf(out, n, "blue %d red %d %d%s%d \\boxed{%s}", b, r, r, cmp, b, f->answer);
}

static void test_formats(struct test_state *ts)
{
    struct shapes_config c;
    shapes_config_default(&c);
    struct mmupt_err err;
    int n_strat[SHAPES_N_KINDS][SHAPES_N_STRATEGIES] = {{0}};
    for (uint64_t i = 0; i < 600; i++) {
        struct ds_item it;
        struct shapes_facts f;
        CHECK_MSG(ts, shapes_make_item(&c, SHAPES_SFT, i, &it, &f, &err) == 0, "%s", err.msg);
        char id[32];
        snprintf(id, sizeof id, "sft-%llu", (unsigned long long)i);
        CHECK(ts, !strcmp(it.id, id) && it.index == (int64_t)i);
        CHECK(ts, !strcmp(it.source, shapes_kind_name(f.kind)) && !strcmp(it.problem, shapes_question(f.kind)));
        CHECK(ts, !strncmp(it.problem, "<image>", 7));
        size_t len = strlen(it.answer);
        CHECK_MSG(ts, len > 8 && !strncmp(it.answer + len - 1, "}", 1) && strstr(it.answer, "\\boxed{"), "%s", it.answer);
        char *got = NULL;
        CHECK(ts, grade_extract(it.answer, len, GRADE_BOXED, &got, &err) == 1);
        char want[64];
        expected_response(&f, got ? got : "", want, sizeof want);
        CHECK_MSG(ts, !strcmp(it.answer, want), "'%s' is not '%s'", it.answer, want);
        CHECK(ts, (int)f.strategy == shapes_response_strategy(it.answer));
        if (f.strategy != SHAPES_DIRECT || !f.biased) CHECK_MSG(ts, got && !strcmp(got, f.answer), "%s", it.answer);
        else CHECK_MSG(ts, got && strcmp(got, f.answer) != 0, "biased but right: %s", it.answer);
        n_strat[f.kind][f.strategy]++;
        free(got);
        ds_item_free(&it);
    }
    /* Every form appears: direct and decomposed for each kind, both orders for total/more. */
    CHECK(ts, n_strat[SHAPES_RED][0] && n_strat[SHAPES_RED][1] && !n_strat[SHAPES_RED][2]);
    CHECK(ts, n_strat[SHAPES_BLUE][0] && n_strat[SHAPES_BLUE][2] && !n_strat[SHAPES_BLUE][1]);
    for (int k = SHAPES_TOTAL; k <= SHAPES_MORE; k++) CHECK(ts, n_strat[k][0] && n_strat[k][1] && n_strat[k][2]);
    /* A hand-checked item of each form, through the same builder. */
    struct shapes_facts f = {.red = 4, .blue = 3, .kind = SHAPES_MORE, .answer = "yes", .strategy = SHAPES_BLUE_FIRST};
    char s[64];
    expected_response(&f, "", s, sizeof s);
    CHECK(ts, !strcmp(s, "blue 3 red 4 4>3 \\boxed{yes}"));
    CHECK(ts, shapes_response_strategy("\\boxed{7}") == SHAPES_DIRECT);
    CHECK(ts, shapes_response_strategy("blue 3 red 4 3+4=7 \\boxed{7}") == SHAPES_BLUE_FIRST);
    CHECK(ts, shapes_response_strategy("I think 7") == -1 && shapes_response_strategy("") == -1);
    CHECK(ts, shapes_response_strategy("redish \\boxed{1}") == -1 && shapes_response_strategy(NULL) == -1);
    CHECK(ts, !strcmp(shapes_question(SHAPES_MORE), "<image>Are there more red squares than blue squares?"));
    CHECK(ts, !strcmp(shapes_question(SHAPES_TOTAL), "<image>How many squares are there in total?"));
}

/* ---- the configured mix and bias, measured on written responses ---- */

static void check_share(struct test_state *ts, const char *what, int64_t k, int64_t n, double want)
{
    double got = n ? (double)k / (double)n : -1.0;
    CHECK_MSG(ts, fabs(got - want) <= 0.03, "%s: %.3f of %lld, configured %.3f", what, got, (long long)n, want);
}

static void test_mix_and_bias(struct test_state *ts)
{
    struct shapes_config c;
    shapes_config_default(&c);
    c.seed = 5;
    /* The strategy mix over 4000 SFT items, as the summary measures it (from the response text). */
    struct shapes_stats st;
    memset(&st, 0, sizeof st);
    for (uint64_t i = 0; i < 4000; i++) {
        struct shapes_facts f;
        shapes_draw(&c, SHAPES_SFT, i, &f);
        shapes_stats_add(&st, &c, SHAPES_SFT, &f, f.response);
    }
    CHECK(ts, st.n == 4000 && st.unparsed == 0);
    for (int k = 0; k < SHAPES_N_KINDS; k++) check_share(ts, shapes_kind_name(k), st.kind[k], st.n, 0.25);
    check_share(ts, "red direct", st.strategy[SHAPES_RED][0], st.kind[SHAPES_RED], 0.5);
    check_share(ts, "blue direct", st.strategy[SHAPES_BLUE][0], st.kind[SHAPES_BLUE], 0.5);
    for (int k = SHAPES_TOTAL; k <= SHAPES_MORE; k++) {
        check_share(ts, "pair direct", st.strategy[k][0], st.kind[k], 0.45);
        check_share(ts, "pair red first", st.strategy[k][1], st.kind[k], 0.275);
        check_share(ts, "pair blue first", st.strategy[k][2], st.kind[k], 0.275);
    }
    check_share(ts, "crowded images", st.crowded, st.n, 0.45); /* 45 of the 100 (r, b) pairs sum to >= 10 */
    for (int k = 0; k < SHAPES_N_KINDS; k++) {
        for (int s = 1; s <= SHAPES_N_STRATEGIES; s++) CHECK(ts, st.wrong[k][s] == 0);
        CHECK_MSG(ts, st.wrong[k][0] == st.hard_direct_wrong[k], "kind %d: a direct answer is wrong on an easy item", k);
    }
    /* The bias rates are conditional on a direct answer to a hard item (~200 of 4000 items, where one
     * standard error is 3.5 points), so they are measured over 40000 items: the check then has
     * room for about three standard errors. */
    int64_t crowded = 0, minus1 = 0, minus2 = 0, close = 0, flipped = 0;
    for (uint64_t i = 0; i < 40000; i++) {
        struct shapes_facts f;
        shapes_draw(&c, SHAPES_SFT, i, &f);
        if (f.strategy != SHAPES_DIRECT) continue;
        char *got = NULL;
        struct mmupt_err err;
        if (grade_extract(f.response, strlen(f.response), GRADE_BOXED, &got, &err) != 1) {
            CHECK_MSG(ts, 0, "no answer in %s", f.response);
            continue;
        }
        int K = f.red + f.blue;
        if (f.kind == SHAPES_TOTAL && K >= 10) {
            crowded++;
            minus1 += atoi(got) == K - 1;
            minus2 += atoi(got) == K - 2;
            CHECK(ts, atoi(got) >= K - 2 && atoi(got) <= K);
        } else if (f.kind == SHAPES_MORE && abs(f.red - f.blue) <= 1) {
            close++;
            flipped += strcmp(got, f.answer) != 0;
        }
        free(got);
    }
    check_share(ts, "crowded direct total K-1", minus1, crowded, 0.5);
    check_share(ts, "crowded direct total K-2", minus2, crowded, 0.1);
    check_share(ts, "close direct more flipped", flipped, close, 0.5);
    CHECK(ts, crowded > 1500 && close > 1000);

    /* The numbers are the config's: a changed config changes what is measured. */
    struct shapes_config z = c;
    z.crowded_minus1 = 0;
    z.crowded_minus2 = 0;
    z.close_flip = 0;
    z.pair_direct = 1;
    z.pair_red_first = 0;
    memset(&st, 0, sizeof st);
    for (uint64_t i = 0; i < 2000; i++) {
        struct shapes_facts f;
        shapes_draw(&z, SHAPES_SFT, i, &f);
        shapes_stats_add(&st, &z, SHAPES_SFT, &f, f.response);
    }
    CHECK(ts, st.strategy[SHAPES_TOTAL][0] == st.kind[SHAPES_TOTAL] && st.hard_direct[SHAPES_TOTAL] > 100);
    CHECK(ts, st.hard_direct_wrong[SHAPES_TOTAL] == 0 && st.hard_direct_wrong[SHAPES_MORE] == 0);
}

/* ---- splits ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_splits_disjoint(struct test_state *ts)
{
    enum { PER = 500 };
    struct shapes_config c;
    shapes_config_default(&c);
    uint64_t *h = malloc(sizeof *h * PER * SHAPES_N_SPLITS);
    int n = 0;
    for (int s = 0; s < SHAPES_N_SPLITS; s++)
        for (uint64_t i = 0; i < PER; i++) {
            struct shapes_facts f;
            struct img_rgb im;
            shapes_draw(&c, s, i, &f);
            shapes_render(&c, s, i, &f, &im);
            h[n++] = fnv1a(im.data, (size_t)SHAPES_SIZE * SHAPES_SIZE * 3);
            img_free(&im);
        }
    qsort(h, (size_t)n, sizeof *h, cmp_u64);
    int dup = 0;
    for (int i = 1; i < n; i++) dup += h[i] == h[i - 1];
    CHECK_MSG(ts, dup == 0, "%d images repeat across or within splits", dup);
    free(h);
    /* Same index, different split: different items. */
    struct shapes_facts a, b;
    int same = 0;
    for (uint64_t i = 0; i < 100; i++) {
        shapes_draw(&c, SHAPES_TRAIN, i, &a);
        shapes_draw(&c, SHAPES_TEST, i, &b);
        same += !memcmp(a.cell, b.cell, sizeof a.cell);
    }
    CHECK_MSG(ts, same <= 2, "%d of 100 layouts equal between train and test at the same index", same);
}

/* ---- written files ---- */

static void check_prompts(struct test_state *ts, const struct shapes_config *c, const char *path, int64_t n_want,
                          int sft)
{
    struct mmupt_err err;
    struct ds_reader *r;
    struct tok *tok;
    if (ds_open(&r, path, &err)) {
        CHECK_MSG(ts, 0, "%s", err.msg);
        return;
    }
    if (tok_load(&tok, tok_path, &err)) {
        CHECK_MSG(ts, 0, "%s", err.msg);
        ds_close(r);
        return;
    }
    CHECK(ts, ds_count(r) == n_want && ds_has_answers(r));
    struct img_proc_config ic;
    img_proc_config_default(&ic); /* min 56*56, max far above: 84x84 stays 84x84 */
    struct prompt_builder pb;
    CHECK_MSG(ts, prompt_builder_init(&pb, tok, "", &ic, 0, &err) == 0, "%s", err.msg);
    int32_t pad = tok_id(tok, "<|image_pad|>");
    for (int64_t i = 0; i < ds_count(r); i++) {
        struct ds_item it, want;
        if (ds_read(r, i, &it, &err)) {
            CHECK_MSG(ts, 0, "%s", err.msg);
            break;
        }
        /* Item i of a file equals item i made alone: nothing depends on the split's size. */
        CHECK_MSG(ts, shapes_make_item(c, sft ? SHAPES_SFT : SHAPES_TRAIN, (uint64_t)i, &want, NULL, &err) == 0, "%s",
                  err.msg);
        CHECK_MSG(ts, item_equal(&it, &want), "item %lld differs from shapes_make_item", (long long)i);
        struct prompt_item p;
        if (prompt_build(&pb, it.problem, (const uint8_t *const *)it.image, it.image_len, it.n_images, &p, &err)) {
            CHECK_MSG(ts, 0, "%s", err.msg);
        } else {
            int pads = 0;
            for (size_t k = 0; k < p.n_ids; k++) pads += p.ids[k] == pad;
            CHECK_MSG(ts, pads == 9, "%d image tokens", pads);
            CHECK(ts, p.n_images == 1 && p.grid[0] == 1 && p.grid[1] == 6 && p.grid[2] == 6 && p.n_patches == 36);
            prompt_item_free(&p);
        }
        int32_t *ids = NULL;
        size_t n_ids = 0;
        CHECK_MSG(ts, tok_encode(tok, it.answer, strlen(it.answer), &ids, &n_ids, &err) == 0 && n_ids > 0, "%s", err.msg);
        free(ids);
        ds_item_free(&it);
        ds_item_free(&want);
    }
    tok_free(tok);
    ds_close(r);
}

static void on_progress(void *ctx, enum shapes_split split, int64_t done, int64_t total)
{
    (void)split;
    int64_t *calls = ctx;
    calls[0]++;
    calls[1] = done;
    calls[2] = total;
}

static void test_written_files(struct test_state *ts)
{
    char dir[] = "/tmp/mmupt_shapes_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(ts, 0);
        return;
    }
    char sft[256], train[256], bad[256];
    snprintf(sft, sizeof sft, "%s/sft.h5", dir);
    snprintf(train, sizeof train, "%s/train.h5", dir);
    snprintf(bad, sizeof bad, "%s/missing/x.h5", dir);
    struct shapes_config c;
    shapes_config_default(&c);
    c.seed = 21;
    struct mmupt_err err;
    struct shapes_stats st;
    memset(&st, 0, sizeof st);
    int64_t calls[3] = {0};
    struct shapes_progress prog = {on_progress, calls, 10};
    CHECK_MSG(ts, shapes_write_split(&c, SHAPES_SFT, 45, sft, &prog, &st, &err) == 0, "%s", err.msg);
    CHECK(ts, calls[0] == 5 && calls[1] == 45 && calls[2] == 45); /* 10, 20, 30, 40, then the end */
    CHECK(ts, st.n == 45 && st.unparsed == 0);
    CHECK_MSG(ts, shapes_write_split(&c, SHAPES_TRAIN, 30, train, NULL, NULL, &err) == 0, "%s", err.msg);
    check_prompts(ts, &c, sft, 45, 1);
    check_prompts(ts, &c, train, 30, 0);
    /* Question-writing items go through the prompt builder too (their problem is synth's request). */
    struct shapes_config ask = c;
    ask.ask_share = 0.5;
    memset(&st, 0, sizeof st);
    CHECK_MSG(ts, shapes_write_split(&ask, SHAPES_SFT, 45, sft, NULL, &st, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, st.ask > 10 && st.ask < 35 && st.unparsed == 0, "%lld ask items of 45", (long long)st.ask);
    check_prompts(ts, &ask, sft, 45, 1);
    /* An unwritable path: an error naming it, and no file. */
    CHECK(ts, shapes_write_split(&c, SHAPES_VAL, 5, bad, NULL, NULL, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, bad);
    struct shapes_config broken = c;
    broken.pair_direct = 2;
    CHECK(ts, shapes_write_split(&broken, SHAPES_VAL, 5, train, NULL, NULL, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "pair_direct");
    test_remove_dir(dir);
    CHECK(ts, access(dir, F_OK) != 0);
}

/* ---- question-writing ("ask") items ---- */

/* A hash of items 0..n-1 of a split: ids, sources, problems, answers and PNG bytes. */
static uint64_t items_hash(struct test_state *ts, const struct shapes_config *c, enum shapes_split split, int n)
{
    uint64_t h = 0;
    struct mmupt_err err;
    for (int i = 0; i < n; i++) {
        struct ds_item it;
        if (shapes_make_item(c, split, (uint64_t)i, &it, NULL, &err)) {
            CHECK_MSG(ts, 0, "%s", err.msg);
            return 0;
        }
        const char *text[4] = {it.id, it.source, it.problem, it.answer};
        for (int k = 0; k < 4; k++) h = h * 31 + fnv1a((const uint8_t *)text[k], strlen(text[k]) + 1);
        h = h * 31 + fnv1a(it.image[0], it.image_len[0]);
        ds_item_free(&it);
    }
    return h;
}

/* ask_share 0 (the default) writes exactly what the generator wrote before ask items existed:
 * the hashes were taken with that generator (commit 2845eb5), seed 21. */
static void test_ask_share_zero_unchanged(struct test_state *ts)
{
    struct shapes_config c;
    shapes_config_default(&c);
    CHECK(ts, c.ask_share == 0.0);
    c.seed = 21;
    static const uint64_t want[SHAPES_N_SPLITS] = {0xba956397dfb67fb4ULL, 0x47c2e1cffc45d363ULL, 0x6612faa9712deea7ULL,
                                                   0x333ae3616a752892ULL};
    for (int s = 0; s < SHAPES_N_SPLITS; s++) {
        uint64_t h = items_hash(ts, &c, s, 120);
        CHECK_MSG(ts, h == want[s], "%s: items hash 0x%016llx, before ask items 0x%016llx", shapes_split_name(s),
                  (unsigned long long)h, (unsigned long long)want[s]);
    }
}

static void test_ask_items(struct test_state *ts)
{
    enum { N = 4000 };
    struct shapes_config c0, c;
    shapes_config_default(&c0);
    c0.seed = 9;
    c = c0;
    c.ask_share = 0.25;
    int n_ask = 0, forms[SHAPES_N_ASK_FORMS] = {0}, same = 1;
    for (uint64_t i = 0; i < N; i++) {
        struct shapes_facts f, f0;
        shapes_draw(&c, SHAPES_SFT, i, &f);
        shapes_draw(&c0, SHAPES_SFT, i, &f0);
        CHECK(ts, !f0.ask);
        /* The image, the kind and the true answer do not depend on the share. */
        same &= !memcmp(f.cell, f0.cell, sizeof f.cell) && f.kind == f0.kind && !strcmp(f.answer, f0.answer);
        if (!f.ask) {
            same &= !memcmp(&f, &f0, sizeof f); /* an answer item is exactly the item without the option */
            continue;
        }
        n_ask++;
        int form = shapes_ask_form(f.response);
        CHECK_MSG(ts, form >= 0 && form == f.ask_form, "ask response '%s'", f.response);
        if (form >= 0) forms[form]++;
        CHECK(ts, !strstr(f.response, "red") && !strstr(f.response, "blue") && !strstr(f.response, "more"));
    }
    CHECK_MSG(ts, same, "an ask share changed an image or an answer item");
    check_share(ts, "ask items", n_ask, N, 0.25);
    for (int k = 0; k < SHAPES_N_ASK_FORMS; k++)
        CHECK_MSG(ts, forms[k] > n_ask / SHAPES_N_ASK_FORMS / 2, "phrasing %d written %d times of %d", k, forms[k], n_ask);
    /* The other splits hold no ask items: they are exactly the splits without the option. */
    for (int s = SHAPES_TRAIN; s < SHAPES_N_SPLITS; s++) {
        int asked = 0, differ = 0;
        for (uint64_t i = 0; i < 1000; i++) {
            struct shapes_facts f, f0;
            shapes_draw(&c, s, i, &f);
            shapes_draw(&c0, s, i, &f0);
            asked += f.ask;
            differ += memcmp(&f, &f0, sizeof f) != 0;
        }
        CHECK_MSG(ts, asked == 0 && differ == 0, "%s: %d ask items, %d changed", shapes_split_name(s), asked, differ);
    }
    /* All or nothing at the ends of the range. */
    struct shapes_config all = c0;
    all.ask_share = 1.0;
    int n_all = 0;
    for (uint64_t i = 0; i < 200; i++) {
        struct shapes_facts f;
        shapes_draw(&all, SHAPES_SFT, i, &f);
        n_all += f.ask;
    }
    CHECK(ts, n_all == 200);
}

/* The written items: problem = synth's direct request, byte for byte; answer from the list; the
 * image is the one the item has without the option. */
static void test_ask_written_items(struct test_state *ts)
{
    struct shapes_config c0, c;
    shapes_config_default(&c0);
    c0.seed = 4;
    c = c0;
    c.ask_share = 0.25;
    char *request = synth_build_request(SYNTH_PROMPT_DIRECT, NULL, NULL, 1);
    CHECK(ts, !strncmp(request, "<image>", 7) && strstr(request, "write one new, self-contained question"));
    struct mmupt_err err;
    int n_ask = 0;
    for (uint64_t i = 0; i < 80; i++) {
        struct ds_item it, it0, again;
        struct shapes_facts f;
        if (shapes_make_item(&c, SHAPES_SFT, i, &it, &f, &err) || shapes_make_item(&c0, SHAPES_SFT, i, &it0, NULL, &err) ||
            shapes_make_item(&c, SHAPES_SFT, i, &again, NULL, &err)) {
            CHECK_MSG(ts, 0, "%s", err.msg);
            return;
        }
        CHECK_MSG(ts, item_equal(&it, &again), "item %llu differs between two calls", (unsigned long long)i);
        CHECK(ts, it.image_len[0] == it0.image_len[0] && !memcmp(it.image[0], it0.image[0], it.image_len[0]));
        CHECK(ts, !strcmp(it.id, it0.id));
        if (f.ask) {
            n_ask++;
            CHECK_MSG(ts, !strcmp(it.source, "ask"), "source %s", it.source);
            CHECK_MSG(ts, !strcmp(it.problem, request), "problem '%s'", it.problem);
            CHECK_MSG(ts, shapes_ask_form(it.answer) >= 0, "answer '%s' is not a listed phrasing", it.answer);
        } else {
            CHECK(ts, item_equal(&it, &it0));
        }
        ds_item_free(&it);
        ds_item_free(&it0);
        ds_item_free(&again);
    }
    CHECK_MSG(ts, n_ask >= 8 && n_ask <= 35, "%d ask items of 80", n_ask);
    free(request);

    /* The phrasings: the first is the task's own question; the list is closed. */
    CHECK(ts, !strcmp(shapes_ask_question(0), shapes_question(SHAPES_TOTAL) + 7));
    for (int k = 0; k < SHAPES_N_ASK_FORMS; k++) {
        const char *q = shapes_ask_question(k);
        CHECK(ts, q && shapes_ask_form(q) == k && q[strlen(q) - 1] == '?' && synth_is_question(q));
        CHECK(ts, strstr(q, "squares") != NULL);
    }
    CHECK(ts, shapes_ask_question(-1) == NULL && shapes_ask_question(SHAPES_N_ASK_FORMS) == NULL);
    CHECK(ts, shapes_ask_form("How many squares?") == -1 && shapes_ask_form(NULL) == -1);

    /* Statistics: ask items are counted apart, never as a kind, a strategy or an unparsed answer. */
    struct shapes_stats st;
    memset(&st, 0, sizeof st);
    int64_t n_ask_drawn = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        struct shapes_facts f;
        shapes_draw(&c, SHAPES_SFT, i, &f);
        n_ask_drawn += f.ask;
        shapes_stats_add(&st, &c, SHAPES_SFT, &f, f.response);
    }
    int64_t kinds = 0, strategies = 0, forms = 0;
    for (int k = 0; k < SHAPES_N_KINDS; k++) {
        kinds += st.kind[k];
        for (int s = 0; s <= SHAPES_N_STRATEGIES; s++) strategies += st.strategy[k][s];
    }
    for (int k = 0; k <= SHAPES_N_ASK_FORMS; k++) forms += st.ask_form[k];
    CHECK(ts, st.n == 2000 && st.ask == n_ask_drawn && st.ask > 400);
    CHECK(ts, kinds == st.n - st.ask && strategies == kinds && forms == st.ask);
    CHECK(ts, st.unparsed == 0 && st.ask_form[SHAPES_N_ASK_FORMS] == 0);
    for (int k = 0; k < SHAPES_N_KINDS; k++) CHECK(ts, st.wrong[k][SHAPES_N_STRATEGIES] == 0);
    /* Measured on the written text: a question not in the list is counted as unrecognised. */
    struct shapes_facts f;
    for (uint64_t i = 0;; i++) {
        shapes_draw(&c, SHAPES_SFT, i, &f);
        if (f.ask) break;
    }
    shapes_stats_add(&st, &c, SHAPES_SFT, &f, "How many red squares are there?");
    CHECK(ts, st.ask == n_ask_drawn + 1 && st.ask_form[SHAPES_N_ASK_FORMS] == 1);
}

/* ---- configuration ---- */

static void test_config(struct test_state *ts)
{
    struct shapes_config c;
    struct mmupt_err err;
    shapes_config_default(&c);
    CHECK(ts, shapes_config_check(&c, &err) == 0);
    int n;
    const struct shapes_param *ps = shapes_params(&n);
    CHECK(ts, n == 8);
    for (int i = 0; i < n; i++) CHECK(ts, ps[i].help && strlen(ps[i].help) > 10);
    CHECK(ts, shapes_param_get(&c, &ps[0]) == 0.45 && c.pair_red_first == 0.275 && c.single_direct == 0.5);
    CHECK(ts, c.crowded_min == 10 && c.crowded_minus1 == 0.5 && c.crowded_minus2 == 0.1);
    CHECK(ts, c.close_max_diff == 1 && c.close_flip == 0.5);

    CHECK(ts, shapes_param_set(&c, "close_flip", "0.25", &err) == 0 && c.close_flip == 0.25);
    CHECK(ts, shapes_param_set(&c, "crowded_min", "12", &err) == 0 && c.crowded_min == 12);
    struct shapes_config before = c;
    CHECK(ts, shapes_param_set(&c, "crowded_min", "1.5", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "integer");
    CHECK(ts, shapes_param_set(&c, "close_flip", "1.5", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "close_flip is 1.5");
    CHECK(ts, shapes_param_set(&c, "close_flip", "0.5x", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "not a number");
    CHECK(ts, shapes_param_set(&c, "close_flip", "nan", &err) == -1);
    CHECK(ts, shapes_param_set(&c, "pair_direct", "0.8", &err) == -1); /* + 0.275 > 1 */
    CHECK_CONTAINS(ts, err.msg, "pair_direct + pair_red_first");
    CHECK(ts, shapes_param_set(&c, "crowded_minus2", "0.6", &err) == -1);
    CHECK(ts, shapes_param_set(&c, "crowded_min", "20", &err) == -1);
    CHECK(ts, shapes_param_set(&c, "nope", "1", &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "unknown parameter 'nope'");
    CHECK(ts, !memcmp(&before, &c, sizeof c));
    /* ask_share is a probability; it is an option of its own, not a --set parameter. */
    CHECK(ts, shapes_param_set(&c, "ask_share", "0.5", &err) == -1);
    static const double bad_share[] = {-0.01, 1.01, 2.0, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_share / sizeof bad_share[0]; i++) {
        struct shapes_config a = c;
        a.ask_share = bad_share[i];
        CHECK_MSG(ts, shapes_config_check(&a, &err) == -1, "ask_share %g accepted", bad_share[i]);
        CHECK_CONTAINS(ts, err.msg, "ask_share");
    }
    c.ask_share = 1.0;
    CHECK(ts, shapes_config_check(&c, &err) == 0);
    c.ask_share = 0.0;

    double w[SHAPES_N_KINDS] = {9, 9, 9, 9};
    CHECK(ts, shapes_parse_kinds("total,more", w, &err) == 0 && w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] == 1);
    CHECK(ts, shapes_parse_kinds("red:1,total:3", w, &err) == 0 && w[0] == 1 && w[2] == 3 && w[3] == 0);
    CHECK(ts, shapes_parse_kinds("more", w, &err) == 0 && w[3] == 1 && w[0] == 0);
    static const char *const bad[][2] = {
        {"", "empty entry"},           {"red,", "empty entry"},      {"red,,blue", "empty entry"},
        {"green", "unknown kind 'green'"}, {"red,red", "listed twice"}, {"red:x", "weight 'x'"},
        {"red:-1", "weight '-1'"},     {"red:0", "every weight is 0"}, {"Red", "unknown kind"},
        {"total:1e9", "weight"},       {"red:", "weight ''"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        w[0] = 7;
        CHECK_MSG(ts, shapes_parse_kinds(bad[i][0], w, &err) == -1, "'%s' accepted", bad[i][0]);
        CHECK_CONTAINS(ts, err.msg, bad[i][1]);
        CHECK(ts, w[0] == 7);
    }
    /* A mix with weights is honoured. */
    shapes_config_default(&c);
    CHECK(ts, shapes_parse_kinds("total:3,more:1", c.kind_weight, &err) == 0);
    int count[SHAPES_N_KINDS] = {0};
    for (uint64_t i = 0; i < 4000; i++) {
        struct shapes_facts f;
        shapes_draw(&c, SHAPES_TRAIN, i, &f);
        count[f.kind]++;
        CHECK(ts, f.response[0] == '\0'); /* no SFT target outside the SFT split */
    }
    CHECK(ts, count[0] == 0 && count[1] == 0 && fabs(count[2] / 4000.0 - 0.75) < 0.03);
    c.kind_weight[2] = c.kind_weight[3] = 0;
    CHECK(ts, shapes_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "must not all be 0");
}

/* ---- the PNG encoder ---- */

static void test_png_encode(struct test_state *ts)
{
    struct mmupt_err err;
    for (int t = 0; t < 3; t++) {
        int w = t == 0 ? 1 : t == 1 ? 84 : 301, h = t == 0 ? 1 : t == 1 ? 84 : 7;
        struct img_rgb im = {w, h, malloc((size_t)w * h * 3)};
        uint64_t x = 88172645463325252ULL + (uint64_t)t;
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            im.data[i] = (uint8_t)x;
        }
        uint8_t *png = NULL, *png2 = NULL;
        size_t len = 0, len2 = 0;
        CHECK_MSG(ts, img_png_encode(&im, &png, &len, &err) == 0, "%s", err.msg);
        CHECK_MSG(ts, img_png_encode(&im, &png2, &len2, &err) == 0, "%s", err.msg);
        CHECK(ts, len == len2 && png && png2 && !memcmp(png, png2, len));
        struct img_rgb back;
        CHECK_MSG(ts, img_decode(png, len, 1 << 20, &back, &err) == 0, "%s", err.msg);
        CHECK(ts, back.width == w && back.height == h && !memcmp(back.data, im.data, (size_t)w * h * 3));
        img_free(&back);
        free(png);
        free(png2);
        img_free(&im);
    }
    uint8_t *png = (uint8_t *)"untouched";
    size_t len = 5;
    struct img_rgb none = {4, 4, NULL};
    CHECK(ts, img_png_encode(&none, &png, &len, &err) == -1 && len == 5);
    CHECK_CONTAINS(ts, err.msg, "invalid image");
    uint8_t px[3] = {0};
    struct img_rgb zero = {0, 1, px}, huge = {IMG_MAX_SIDE + 1, 1, px};
    CHECK(ts, img_png_encode(&zero, &png, &len, &err) == -1);
    CHECK(ts, img_png_encode(&huge, &png, &len, &err) == -1 && len == 5);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON\n", argv[0]);
        return 2;
    }
    tok_path = argv[1];
    struct test_state ts = {0};
    RUN(&ts, test_deterministic);
    RUN(&ts, test_images_ignore_mix);
    RUN(&ts, test_counts_match_image);
    RUN(&ts, test_formats);
    RUN(&ts, test_mix_and_bias);
    RUN(&ts, test_splits_disjoint);
    RUN(&ts, test_written_files);
    RUN(&ts, test_ask_share_zero_unchanged);
    RUN(&ts, test_ask_items);
    RUN(&ts, test_ask_written_items);
    RUN(&ts, test_config);
    RUN(&ts, test_png_encode);
    return test_summary(&ts);
}
