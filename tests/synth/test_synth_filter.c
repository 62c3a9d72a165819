/* The filters of mmupt synth (src/synth/filter.c) and the request/problem builders (run.c) on
 * hand-written responses: extraction, length, question form, answer leaks, duplicates, the chain's
 * order and counting, and the provenance dataset of the writer round trip. */
#include "../test.h"
#include "mmupt/synth.h"

static void check_extract(struct test_state *ts, const char *in, const char *want)
{
    char *got = synth_extract_question(in);
    CHECK_MSG(ts, got && strcmp(got, want) == 0, "extract('%s') = '%s', want '%s'", in, got ? got : "(null)", want);
    free(got);
}

static void test_extract(struct test_state *ts)
{
    check_extract(ts, "What is x?", "What is x?");
    check_extract(ts, "  \n What is x?  \n", "What is x?");
    check_extract(ts, "Question: What is the area?", "What is the area?");
    check_extract(ts, "question : What is the area?", "What is the area?");
    check_extract(ts, "Q: How many sides?", "How many sides?");
    check_extract(ts, "New question: Which angle is largest?", "Which angle is largest?");
    check_extract(ts, "**Question:** What is AB?", "What is AB?");
    check_extract(ts, "\"What is x?\"", "What is x?");
    check_extract(ts, "\xe2\x80\x9cWhat is x?\xe2\x80\x9d", "What is x?");           /* curly quotes */
    check_extract(ts, "Question: \"How long is AB?\"", "How long is AB?");
    /* Several questions: the first one. */
    check_extract(ts, "What is x? What is y?", "What is x?");
    check_extract(ts, "1. What is x?\n2. What is y?", "What is x?");
    /* Preamble lines without a question mark are passed over. */
    check_extract(ts, "Sure! Here is a new question:\n\nHow many circles are there?", "How many circles are there?");
    /* No question mark: the first non-empty line after clean-up. */
    check_extract(ts, "Question:\nFind the perimeter.\nIt is 12.", "Find the perimeter.");
    check_extract(ts, "Find x.", "Find x.");
    /* Unicode: the full-width question mark and colon end / label a question. */
    check_extract(ts, "问题：这个三角形的面积是多少？还有别的吗？", "这个三角形的面积是多少？");
    check_extract(ts, "", "");
    check_extract(ts, "   \n\t  \n", "");
    check_extract(ts, "\"\"", "");
    check_extract(ts, "Question:", "");
    char *n = synth_extract_question(NULL);
    CHECK(ts, n == NULL);
}

static void test_length(struct test_state *ts)
{
    CHECK(ts, synth_char_count("") == 0);
    CHECK(ts, synth_char_count("abc") == 3);
    CHECK(ts, synth_char_count("△ABC") == 4);          /* one code point of 3 bytes */
    CHECK(ts, synth_char_count("面积是多少？") == 6);
    CHECK(ts, synth_char_count("😀") == 1);
}

static void test_is_question(struct test_state *ts)
{
    CHECK(ts, synth_is_question("Is it red?"));
    CHECK(ts, synth_is_question("The area of the triangle is?  "));
    CHECK(ts, synth_is_question("面积是多少？"));
    CHECK(ts, synth_is_question("Find the value of x."));
    CHECK(ts, synth_is_question("what is shown"));
    CHECK(ts, synth_is_question("COMPUTE the perimeter"));
    CHECK(ts, synth_is_question("How many"));
    CHECK(ts, !synth_is_question("The triangle is red."));
    CHECK(ts, !synth_is_question("Whatever you like."));   /* "whatever" is not "what" */
    CHECK(ts, !synth_is_question("Findings: none"));
    CHECK(ts, !synth_is_question(""));
    CHECK(ts, !synth_is_question("?!"));                   /* ends with '!' */
}

static void test_normalize(struct test_state *ts)
{
    char *a = synth_normalize("  What   IS\tx?\n");
    CHECK_MSG(ts, strcmp(a, "what is x?") == 0, "'%s'", a);
    free(a);
    char *b = synth_normalize("ÄÖÜ Straße");
    CHECK_MSG(ts, strcmp(b, "äöü strasse") == 0, "'%s'", b);   /* Unicode case folding */
    free(b);
    char *c = synth_normalize("\xff" "ABC");                     /* invalid UTF-8: ASCII folding */
    CHECK_MSG(ts, strcmp(c, "\xff" "abc") == 0, "'%s'", c);
    free(c);
    char *d = synth_normalize("   ");
    CHECK(ts, d[0] == '\0');
    free(d);
}

static void test_answer_leak(struct test_state *ts)
{
    CHECK(ts, synth_answer_leaks("Is x equal to 3?", "3"));
    CHECK(ts, synth_answer_leaks("If x = 3, what is y?", " 3 "));
    CHECK(ts, !synth_answer_leaks("There are 13 apples. How many are red?", "3"));
    CHECK(ts, !synth_answer_leaks("Is the side 3.5 long?", "3"));
    CHECK(ts, !synth_answer_leaks("What is x3?", "3"));
    CHECK(ts, synth_answer_leaks("Is the side 3.5 cm long?", "3.5"));
    CHECK(ts, synth_answer_leaks("Given 1,000 apples, how many?", "1,000"));
    /* Multi-token answers as a whole token sequence, case and space folded. */
    CHECK(ts, synth_answer_leaks("Is the RIGHT   angle at B?", "right angle"));
    CHECK(ts, !synth_answer_leaks("Is the right side at B, and which angle?", "right angle"));
    CHECK(ts, !synth_answer_leaks("Is it brighter?", "right"));
    /* A single letter never counts; an empty or missing answer never leaks. */
    CHECK(ts, !synth_answer_leaks("Which bar is taller, A or B?", "B"));
    CHECK(ts, !synth_answer_leaks("What is x?", ""));
    CHECK(ts, !synth_answer_leaks("What is x?", NULL));
    /* Unicode: case folding and numbers next to CJK text. */
    CHECK(ts, synth_answer_leaks("Ist die STRASSE breit?", "Straße"));
    CHECK(ts, synth_answer_leaks("有3个苹果吗？", "3"));
    CHECK(ts, !synth_answer_leaks("有13个苹果吗？", "3"));
    CHECK(ts, synth_answer_leaks("Is it 15°?", "15°"));
}

static void test_overlap(struct test_state *ts)
{
    CHECK(ts, synth_overlap("What is the area of the triangle?", "what is the AREA of the triangle") == 1.0);
    double d = synth_overlap("What is the area of the triangle?", "What is the area of the circle?");
    /* grams: what is the / is the area / the area of / area of the / of the triangle|circle: 4 of 6 */
    CHECK_MSG(ts, fabs(d - 4.0 / 6.0) < 1e-12, "%g", d);
    CHECK(ts, synth_overlap("How many red cubes are there?", "Which shape is the largest?") == 0.0);
    CHECK(ts, synth_overlap("Find x", "find x?") == 1.0);   /* short: one gram of all its tokens */
    CHECK(ts, synth_overlap("Find x", "Find y") == 0.0);
    CHECK(ts, synth_overlap("", "") == 1.0);
    CHECK(ts, synth_overlap("", "What is x?") == 0.0);
}

static const struct synth_filter default_filter = {
    .min_chars = 10, .max_chars = 60, .require_question = 1, .max_overlap = 0.7, .keep = 2};

static void test_chain(struct test_state *ts)
{
    struct synth_item_state st = {.original = "Find x. In triangle ABC, angle A = 30 degrees.", .answer = "15"};
    const struct synth_filter *f = &default_filter;
    CHECK(ts, synth_judge(f, &st, NULL) == SYNTH_UNDECODABLE);
    CHECK(ts, synth_judge(f, &st, "What is \xff?") == SYNTH_UNDECODABLE);
    CHECK(ts, synth_judge(f, &st, "  \n ") == SYNTH_EMPTY);
    CHECK(ts, synth_judge(f, &st, "") == SYNTH_EMPTY);
    CHECK(ts, synth_judge(f, &st, "What is in <image> here?") == SYNTH_MARKER);
    CHECK(ts, synth_judge(f, &st, "What is <|im_end|> here?") == SYNTH_MARKER);
    CHECK(ts, synth_judge(f, &st, "Why?") == SYNTH_TOO_SHORT);
    CHECK(ts, synth_judge(f, &st, "What is the length of the longest side of the triangle ABC in the figure?") ==
                  SYNTH_TOO_LONG);
    CHECK(ts, synth_judge(f, &st, "The triangle is red.") == SYNTH_NOT_QUESTION);
    CHECK(ts, synth_judge(f, &st, "Is angle B equal to 15 degrees?") == SYNTH_ANSWER_LEAK);
    CHECK(ts, synth_judge(f, &st, "find x. in triangle abc, angle a = 30 degrees.") == SYNTH_DUPLICATE);
    CHECK(ts, synth_judge(f, &st, "Find x. In triangle ABC, angle A = 30 degrees?") == SYNTH_NEAR_DUPLICATE);
    CHECK(ts, synth_judge(f, &st, "Find x. In triangle ABC, angle A = 30 degrees exactly.") == SYNTH_NEAR_DUPLICATE);
    CHECK(ts, st.n_kept == 0);
    CHECK(ts, synth_judge(f, &st, "Question: How many sides does the triangle ABC have?") == SYNTH_KEEP);
    CHECK(ts, st.n_kept == 1 && strcmp(st.kept[0], "How many sides does the triangle ABC have?") == 0);
    CHECK(ts, synth_judge(f, &st, "how many sides does the triangle abc have?") == SYNTH_DUPLICATE);
    CHECK(ts, synth_judge(f, &st, "How many sides does the triangle ABC have now?") == SYNTH_NEAR_DUPLICATE);
    CHECK(ts, synth_judge(f, &st, "What is the measure of angle C?") == SYNTH_KEEP);
    CHECK(ts, synth_judge(f, &st, "Which side of the triangle is longest?") == SYNTH_SURPLUS);
    CHECK(ts, st.n_kept == 2);
    synth_item_state_free(&st);
    CHECK(ts, st.kept == NULL && st.n_kept == 0);

    /* Permissive settings: no question form needed, overlap off, no original. */
    struct synth_filter loose = {.min_chars = 1, .max_chars = 400, .require_question = 0, .max_overlap = 2.0, .keep = 3};
    struct synth_item_state s2 = {0};
    CHECK(ts, synth_judge(&loose, &s2, "The triangle is red.") == SYNTH_KEEP);
    CHECK(ts, synth_judge(&loose, &s2, "The triangle is red and blue.") == SYNTH_KEEP);
    CHECK(ts, synth_judge(&loose, &s2, "the triangle is  RED.") == SYNTH_DUPLICATE);
    synth_item_state_free(&s2);
    CHECK(ts, strcmp(synth_verdict_name(SYNTH_NEAR_DUPLICATE), "near_duplicate") == 0);
    CHECK(ts, strcmp(synth_verdict_name(SYNTH_KEEP), "keep") == 0);
}

static void test_request(struct test_state *ts)
{
    char *r = synth_build_request("Q: {question} A: {answer}. Again: {question}", "<image> What is x? ", "15", 1);
    CHECK_MSG(ts, strcmp(r, "<image>Q: What is x? A: 15. Again: What is x?") == 0, "'%s'", r);
    free(r);
    r = synth_build_request(synth_default_prompt(SYNTH_DIRECT), "ignored", NULL, 2);
    CHECK(ts, strncmp(r, "<image><image>Look at the image", 30) == 0);
    free(r);
    r = synth_build_request("{answer}|{question}|{other}", NULL, NULL, 0);
    CHECK_MSG(ts, strcmp(r, "||{other}") == 0, "'%s'", r);
    free(r);
    char *p = synth_new_problem("How many?", 2);
    CHECK(ts, strcmp(p, "<image><image>How many?") == 0);
    free(p);
    CHECK_CONTAINS(ts, synth_default_prompt(SYNTH_IN_CONTEXT), "{question}");
    CHECK_CONTAINS(ts, synth_default_prompt(SYNTH_IN_CONTEXT), "{answer}");
    enum synth_mode m;
    CHECK(ts, synth_parse_mode("in-context", &m) == 0 && m == SYNTH_IN_CONTEXT);
    CHECK(ts, synth_parse_mode("direct", &m) == 0 && m == SYNTH_DIRECT);
    CHECK(ts, synth_parse_mode("bogus", &m) == -1);
    char buf[64];
    synth_summary_path("out/new.h5", buf, sizeof buf);
    CHECK(ts, strcmp(buf, "out/new.json") == 0);
    synth_summary_path("new.data", buf, sizeof buf);
    CHECK(ts, strcmp(buf, "new.data.json") == 0);
}

static void test_config(struct test_state *ts)
{
    struct synth_config c;
    struct mmupt_err err;
    synth_config_default(&c);
    CHECK(ts, synth_config_check(&c, &err) == 0);
    c.filter.keep = 5;
    CHECK(ts, synth_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "keep");
    synth_config_default(&c);
    c.n = 0;
    CHECK(ts, synth_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "candidates per item");
    synth_config_default(&c);
    c.filter.min_chars = 50;
    c.filter.max_chars = 20;
    CHECK(ts, synth_config_check(&c, &err) == -1);
    synth_config_default(&c);
    c.prompt = "<image> Ask something.";
    CHECK(ts, synth_config_check(&c, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "<image>");
    c.prompt = "  \n";
    CHECK(ts, synth_config_check(&c, &err) == -1);
    synth_config_default(&c);
    c.temperature = -1.0f;
    CHECK(ts, synth_config_check(&c, &err) == -1);
}

/* The writer's optional provenance dataset: written, read back, absent when not enabled. */
static void test_provenance_round_trip(struct test_state *ts)
{
    char dir[] = "/tmp/test_synth_XXXXXX";
    CHECK(ts, mkdtemp(dir) != NULL);
    char path[128], path2[128];
    snprintf(path, sizeof path, "%s/p.h5", dir);
    snprintf(path2, sizeof path2, "%s/q.h5", dir);
    struct mmupt_err err;
    struct ds_writer *w;
    uint8_t img[4] = {1, 2, 3, 4};
    uint8_t *images[1] = {img};
    size_t lens[1] = {4};
    struct ds_item a = {.id = "a/synth-direct-0", .source = "geometry3k", .problem = "<image>How many?",
                        .provenance = "mode=direct item=a policy=m seed=1 sample=0", .n_images = 1, .image = images,
                        .image_len = lens};
    struct ds_item b = {.id = "b", .source = "s", .problem = "What?"};
    CHECK(ts, ds_writer_open(&w, path, 0, &err) == 0);
    CHECK(ts, ds_writer_enable_provenance(w, &err) == 0);
    CHECK(ts, ds_writer_add(w, &a, &err) == 0);
    CHECK(ts, ds_writer_add(w, &b, &err) == 0);                 /* no provenance: written as "" */
    CHECK(ts, ds_writer_enable_provenance(w, &err) == 0);       /* again: nothing to do */
    CHECK(ts, ds_writer_close(w, &err) == 0);
    struct ds_reader *r;
    CHECK(ts, ds_open(&r, path, &err) == 0);
    CHECK(ts, ds_has_provenance(r) && !ds_has_answers(r) && ds_count(r) == 2);
    struct ds_item it;
    CHECK(ts, ds_read(r, 0, &it, &err) == 0);
    CHECK(ts, it.provenance && strcmp(it.provenance, a.provenance) == 0 && it.answer == NULL);
    ds_item_free(&it);
    CHECK(ts, ds_read(r, 1, &it, &err) == 0);
    CHECK(ts, it.provenance == NULL);
    ds_item_free(&it);
    ds_close(r);

    /* Without enabling it: no dataset, and an item with a provenance is refused. */
    CHECK(ts, ds_writer_open(&w, path2, 0, &err) == 0);
    CHECK(ts, ds_writer_add(w, &b, &err) == 0);
    CHECK(ts, ds_writer_add(w, &a, &err) == -1);
    CHECK_CONTAINS(ts, err.msg, "provenance");
    CHECK(ts, ds_writer_enable_provenance(w, &err) == -1);      /* too late: items exist */
    CHECK_CONTAINS(ts, err.msg, "before the first item");
    CHECK(ts, ds_writer_close(w, &err) == 0);
    CHECK(ts, ds_open(&r, path2, &err) == 0);
    CHECK(ts, !ds_has_provenance(r) && ds_count(r) == 1);
    CHECK(ts, ds_read(r, 0, &it, &err) == 0 && it.provenance == NULL);
    ds_item_free(&it);
    ds_close(r);
    remove(path);
    remove(path2);
    rmdir(dir);
}

int main(void)
{
    struct test_state ts = {0};
    RUN(&ts, test_extract);
    RUN(&ts, test_length);
    RUN(&ts, test_is_question);
    RUN(&ts, test_normalize);
    RUN(&ts, test_answer_leak);
    RUN(&ts, test_overlap);
    RUN(&ts, test_chain);
    RUN(&ts, test_request);
    RUN(&ts, test_config);
    RUN(&ts, test_provenance_round_trip);
    return test_summary(&ts);
}
