/* Parity with mathruler 0.1.0 on tests/fixtures/grade/table.jsonl (tools/make_grader_fixtures.py).
 * Every disagreement is printed; each must be listed in known_disagreements.txt (one JSON object
 * per line: given, reference, reason), which docs/grading.md mirrors. A listed pair that now agrees
 * also fails, so the list stays true. Extraction must agree on every response. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "mmupt/grade.h"
#include "mmupt/json.h"
#include "mmupt/strutil.h"

#define TABLE_MAX_BYTES (16u << 20)
#define MIN_AGREEMENT 0.98

static const char *fixtures;

struct known {
    json_t *list; /* array of {given, reference, reason} */
};

static int load_known(struct known *k, struct mmupt_err *err)
{
    char path[4096], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/known_disagreements.txt", fixtures);
    if (file_read_all(path, TABLE_MAX_BYTES, &text, &len, err)) return -1;
    k->list = json_array();
    int line = 0;
    for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        if (*p == '\0' || *p == '#') continue;
        json_t *o;
        char name[4200];
        snprintf(name, sizeof name, "%s:%d", path, line);
        if (json_parse_text(name, p, strlen(p), &o, err)) {
            free(text);
            return -1;
        }
        json_array_append_new(k->list, o);
    }
    free(text);
    return 0;
}

/* Index of the listed pair, or -1. */
static long known_find(const struct known *k, const char *given, const char *ref)
{
    size_t i;
    json_t *o;
    json_array_foreach(k->list, i, o) {
        const char *g = json_string_value(json_object_get(o, "given"));
        const char *r = json_string_value(json_object_get(o, "reference"));
        if (g && r && !strcmp(g, given) && !strcmp(r, ref)) return (long)i;
    }
    return -1;
}

static void test_table(struct test_state *ts)
{
    struct mmupt_err err;
    struct known k;
    CHECK_MSG(ts, load_known(&k, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    char path[4096], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/table.jsonl", fixtures);
    CHECK_MSG(ts, file_read_all(path, TABLE_MAX_BYTES, &text, &len, &err) == 0, "%s", err.msg);
    if (ts->current_failed) return;
    char *used = calloc(json_array_size(k.list) + 1, 1);
    int n_grade = 0, n_agree = 0, n_extract = 0, line = 0;
    for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        json_t *row;
        if (json_parse_text(path, p, strlen(p), &row, &err)) {
            CHECK_MSG(ts, 0, "%s", err.msg);
            break;
        }
        const char *given = json_string_value(json_object_get(row, "given"));
        const char *ref = json_string_value(json_object_get(row, "reference"));
        json_t *resp = json_object_get(row, "response");
        if (given && ref) {
            int want = json_is_true(json_object_get(row, "equal"));
            int got = grade_equal(given, ref);
            n_grade++;
            if (got == want) {
                n_agree++;
            } else {
                long at = known_find(&k, given, ref);
                printf("disagreement (line %d)%s: given=\"%s\" reference=\"%s\" mathruler=%d mmupt=%d\n", line,
                       at >= 0 ? " [known]" : " [NOT LISTED]", given, ref, want, got);
                if (at >= 0) used[at] = 1;
                CHECK_MSG(ts, at >= 0, "undocumented disagreement: add it to known_disagreements.txt and docs/grading.md");
            }
        } else if (json_is_string(resp)) {
            const char *want = json_string_value(json_object_get(row, "boxed"));
            char *got = NULL;
            int rc = grade_extract(json_string_value(resp), json_string_length(resp), GRADE_BOXED, &got, &err);
            const char *as_python = rc == 1 ? got : "None";
            n_extract++;
            CHECK_MSG(ts, rc >= 0 && want && strcmp(as_python, want) == 0, "line %d: extract gave \"%s\", mathruler \"%s\"",
                      line, as_python, want ? want : "?");
            free(got);
        } else {
            CHECK_MSG(ts, 0, "%s:%d: row has neither given/reference nor response", path, line);
        }
        json_decref(row);
    }
    for (size_t i = 0; i < json_array_size(k.list); i++) {
        json_t *o = json_array_get(k.list, i);
        CHECK_MSG(ts, used[i], "known_disagreements.txt entry %zu (given \"%s\") no longer disagrees: remove it", i + 1,
                  json_string_value(json_object_get(o, "given")));
    }
    double rate = n_grade ? (double)n_agree / n_grade : 0;
    printf("grading: %d/%d pairs agree with mathruler (%.2f%%); extraction: %d responses\n", n_agree, n_grade,
           100 * rate, n_extract);
    CHECK(ts, n_grade >= 600);
    CHECK_MSG(ts, rate >= MIN_AGREEMENT, "agreement %.4f below %.2f", rate, MIN_AGREEMENT);
    free(used);
    free(text);
    json_decref(k.list);
}

int main(int argc, char **argv)
{
    struct test_state ts = {0};
    fixtures = argc > 1 ? argv[1] : "tests/fixtures/grade";
    RUN(&ts, test_table);
    return test_summary(&ts);
}
