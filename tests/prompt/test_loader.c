/* The prompt stream's skip-and-count: a split mixing good items with every kind of unusable one
 * (image without a marker, marker without an image, corrupt image bytes, a prompt over the token
 * limit) serves the good ones in order, warns about and counts each bad one, and - with skipping
 * off - stops at the first bad item, naming it.
 * usage: test_loader TOKENIZER_JSON PNG_FILE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "mmupt/loader.h"
#include "mmupt/strutil.h"

static const char *tok_path, *png_path;
static char split[] = "/tmp/mmupt_loader_XXXXXX";

static void write_split(struct test_state *ts, const uint8_t *png, size_t png_len)
{
    static const uint8_t junk[] = "\x89PNG\r\n\x1a\n-truncated";
    uint8_t *img_ok[1] = {(uint8_t *)png}, *img_bad[1] = {(uint8_t *)junk};
    size_t len_ok[1] = {png_len}, len_bad[1] = {sizeof junk - 1};
    char long_problem[4000];
    memset(long_problem, 'a', sizeof long_problem - 1);
    for (size_t i = 0; i < sizeof long_problem - 1; i += 2) long_problem[i] = ' ';
    long_problem[sizeof long_problem - 1] = '\0';
    struct ds_item items[] = {
        {.id = "good-image", .source = "t", .problem = "<image>How many?", .n_images = 1, .image = img_ok, .image_len = len_ok},
        {.id = "no-marker", .source = "t", .problem = "How many?", .n_images = 1, .image = img_ok, .image_len = len_ok},
        {.id = "corrupt", .source = "t", .problem = "<image>How many?", .n_images = 1, .image = img_bad, .image_len = len_bad},
        {.id = "good-text", .source = "t", .problem = "What is 2+2?"},
        {.id = "marker-no-image", .source = "t", .problem = "<image>What?"},
        {.id = "too-long", .source = "t", .problem = long_problem},
    };
    struct ds_writer *w;
    struct mmupt_err err;
    int fd = mkstemp(split);
    close(fd);
    CHECK_MSG(ts, ds_writer_open(&w, split, 0, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) CHECK_MSG(ts, ds_writer_add(w, &items[i], &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, ds_writer_close(w, &err) == 0, "%s", err.msg);
}

struct env {
    struct tok *tok;
    struct ds_reader *ds;
    struct prompt_builder pb;
    struct log_ctx lg;
    char *log;
    size_t log_len;
    FILE *logf;
};

static int env_open(struct test_state *ts, struct env *e)
{
    struct mmupt_err err;
    memset(e, 0, sizeof *e);
    CHECK_MSG(ts, tok_load(&e->tok, tok_path, &err) == 0, "%s", err.msg);
    CHECK_MSG(ts, ds_open(&e->ds, split, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return -1;
    struct img_proc_config ic;
    img_proc_config_default(&ic);
    ic.min_pixels = 28 * 28;
    ic.max_pixels = 28 * 28 * 16;
    CHECK_MSG(ts, prompt_builder_init(&e->pb, e->tok, "Answer in \\boxed{}.", &ic, 600, &err) == 0, "%s", err.msg);
    e->logf = open_memstream(&e->log, &e->log_len);
    log_init(&e->lg, LOG_INFO, 0, e->logf);
    return ts->current_failed ? -1 : 0;
}

static void env_close(struct env *e)
{
    fclose(e->logf);
    free(e->log);
    ds_close(e->ds);
    tok_free(e->tok);
}

static void test_skip_and_count(struct test_state *ts)
{
    struct env e;
    if (env_open(ts, &e)) return;
    struct ds_cursor c;
    ds_cursor_init(&c, 1, 0, 0, 1);
    struct prompt_loader L;
    prompt_loader_init(&L, e.ds, &e.pb, &e.lg, &c, 1);
    static const char *const want[] = {"good-image", "good-text", "good-image", "good-text"};
    for (int k = 0; k < 4; k++) {
        struct prompt_item it;
        struct ds_item item;
        struct mmupt_err err;
        int rc = prompt_loader_next(&L, &it, &item, &err);
        CHECK_MSG(ts, rc == 0, "%s", err.msg);
        if (rc) break;
        CHECK_MSG(ts, strcmp(item.id, want[k]) == 0, "served %s, expected %s", item.id, want[k]);
        CHECK(ts, it.n_images == item.n_images && it.n_ids > 0);
        prompt_item_free(&it);
        ds_item_free(&item);
    }
    CHECK(ts, L.served == 4 && L.skipped == 6); /* items 1, 2, then 4, 5, then 1, 2 again */
    fflush(e.logf);
    CHECK_CONTAINS(ts, e.log, "skipping item 1 (id 'no-marker')");
    CHECK_CONTAINS(ts, e.log, "has 0 <image> marker(s) but the item has 1 image(s)");
    CHECK_CONTAINS(ts, e.log, "item 2 (id 'corrupt')");
    CHECK_CONTAINS(ts, e.log, "item 4 (id 'marker-no-image')");
    CHECK_CONTAINS(ts, e.log, "item 5 (id 'too-long')");
    CHECK_CONTAINS(ts, e.log, "more than the limit 600");
    env_close(&e);
}

static void test_strict_stops(struct test_state *ts)
{
    struct env e;
    if (env_open(ts, &e)) return;
    struct ds_cursor c;
    ds_cursor_init(&c, 1, 0, 0, 1);
    struct prompt_loader L;
    prompt_loader_init(&L, e.ds, &e.pb, &e.lg, &c, 0);
    struct prompt_item it;
    struct ds_item item;
    struct mmupt_err err;
    CHECK(ts, prompt_loader_next(&L, &it, &item, &err) == 0);
    prompt_item_free(&it);
    ds_item_free(&item);
    CHECK(ts, prompt_loader_next(&L, &it, &item, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "bad dataset item (set data.skip_bad_items: true to skip such items)");
    CHECK_CONTAINS(ts, err.msg, "item 1 (id 'no-marker')");
    env_close(&e);
}

static void test_nothing_usable(struct test_state *ts)
{
    struct env e;
    if (env_open(ts, &e)) return;
    e.pb.max_tokens = 5; /* now every item is too long */
    struct ds_cursor c;
    ds_cursor_init(&c, 7, 1, 0, 1);
    struct prompt_loader L;
    prompt_loader_init(&L, e.ds, &e.pb, NULL, &c, 1);
    struct prompt_item it;
    struct ds_item item;
    struct mmupt_err err;
    CHECK(ts, prompt_loader_next(&L, &it, &item, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "7 consecutive dataset items were unusable");
    ds_cursor_init(&c, 7, 1, 0, 9); /* more ranks than items */
    prompt_loader_init(&L, e.ds, &e.pb, NULL, &c, 1);
    CHECK(ts, prompt_loader_next(&L, &it, &item, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "the split has 6 item(s), too few for 9 rank(s)");
    env_close(&e);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER_JSON PNG_FILE\n", argv[0]);
        return 2;
    }
    tok_path = argv[1];
    png_path = argv[2];
    struct test_state ts = {0};
    char *png;
    size_t png_len;
    struct mmupt_err err;
    if (file_read_all(png_path, 1 << 20, &png, &png_len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    write_split(&ts, (const uint8_t *)png, png_len);
    RUN(&ts, test_skip_and_count);
    RUN(&ts, test_strict_stops);
    RUN(&ts, test_nothing_usable);
    unlink(split);
    free(png);
    return test_summary(&ts);
}
