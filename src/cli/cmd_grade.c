/* mmupt grade: grade JSON lines with the reward's extractor and mathruler-compatible equality,
 * one output line per input line, so the C grader can be checked against Python on any data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/err.h"
#include "mmupt/grade.h"
#include "mmupt/json.h"

static const char usage[] =
    "usage: mmupt grade [--extractor boxed|choice|answer_is]\n"
    "\n"
    "Read JSON lines on standard input. Each is an object with a string \"reference\" and either\n"
    "\"given\" (an answer: a string, or null for no answer) or \"response\" (a model output to extract\n"
    "the answer from). Write each object back, its fields in order, with \"extracted\" (string or\n"
    "null) and \"equal\" (mathruler's grade_answer(extracted, reference)) added; one line out per\n"
    "line in, flushed at once. Blank lines are skipped.\n"
    "\n"
    "  --extractor NAME  how answers are taken from \"response\" (default boxed: the last \\boxed{})\n"
    "\n"
    "Exit status: 0 ok; 1 a bad line (its number and the problem are printed; the lines before it\n"
    "were already written); 2 usage.\n";

#define GRADE_LINE_MAX ((size_t)64 << 20) /* a runaway line is an error, not an out-of-memory death */

/* One line of stdin (without its newline) into *buf; 1 got one, 0 end of input, -1 too long. */
static int read_line(char **buf, size_t *cap, size_t *len)
{
    size_t n = 0;
    int c = EOF;
    while ((c = getchar()) != EOF && c != '\n') {
        if (n + 1 >= *cap) {
            if (*cap >= GRADE_LINE_MAX) return -1;
            *cap = *cap ? *cap * 2 : 4096;
            char *p = realloc(*buf, *cap);
            if (!p) MMUPT_DIE("out of memory reading standard input");
            *buf = p;
        }
        (*buf)[n++] = (char)c;
    }
    if (n == 0 && c == EOF) return 0;
    if (!*buf) {
        *buf = mmupt_xmalloc(1);
        *cap = 1;
    }
    (*buf)[n] = '\0';
    *len = n;
    return 1;
}

/* A string field without NUL characters (grade_equal works on C strings). */
static int text_field(json_t *v, const char *key, const char **out, struct mmupt_err *err)
{
    if (!json_is_string(v)) return mmupt_fail(err, "field '%s' must be a string", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return mmupt_fail(err, "field '%s' contains a NUL character", key);
    *out = json_string_value(v);
    return 0;
}

/* Grade one object in place: adds "extracted" and "equal". */
static int grade_object(json_t *o, enum grade_extractor how, struct mmupt_err *err)
{
    if (!json_is_object(o)) return mmupt_fail(err, "expected a JSON object");
    json_t *ref = json_object_get(o, "reference"), *given = json_object_get(o, "given");
    json_t *resp = json_object_get(o, "response");
    const char *reference, *answer = NULL;
    if (!ref) return mmupt_fail(err, "missing field 'reference'");
    if (text_field(ref, "reference", &reference, err)) return -1;
    if (given && resp) return mmupt_fail(err, "has both 'given' and 'response': give one");
    if (!given && !resp) return mmupt_fail(err, "missing field 'given' or 'response'");
    char *extracted = NULL;
    if (given) {
        if (!json_is_null(given) && text_field(given, "given", &answer, err)) return -1;
    } else {
        if (!json_is_string(resp)) return mmupt_fail(err, "field 'response' must be a string");
        if (grade_extract(json_string_value(resp), json_string_length(resp), how, &extracted, err) < 0) return -1;
        answer = extracted;
    }
    json_object_set_new(o, "extracted", answer ? json_string(answer) : json_null());
    json_object_set_new(o, "equal", json_boolean(grade_equal(answer, reference)));
    free(extracted);
    return 0;
}

static int parse_extractor(const char *name, enum grade_extractor *how)
{
    if (!strcmp(name, "boxed")) *how = GRADE_BOXED;
    else if (!strcmp(name, "choice")) *how = GRADE_CHOICE;
    else if (!strcmp(name, "answer_is")) *how = GRADE_ANSWER_IS;
    else return -1;
    return 0;
}

int cmd_grade(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    enum grade_extractor how = GRADE_BOXED;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--extractor") && i + 1 < argc) v = argv[++i];
        else if (!strncmp(argv[i], "--extractor=", 12)) v = argv[i] + 12;
        if (!v) {
            cli_error("grade", "unexpected argument '%s' (see mmupt grade --help)", argv[i]);
            return MMUPT_EXIT_USAGE;
        }
        if (parse_extractor(v, &how)) {
            cli_error("grade", "unknown extractor '%s': boxed, choice or answer_is", v);
            return MMUPT_EXIT_USAGE;
        }
    }
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = MMUPT_EXIT_OK, got;
    struct mmupt_err err;
    for (long line = 1; (got = read_line(&buf, &cap, &len)) != 0; line++) {
        if (got < 0) {
            cli_error("grade", "stdin:%ld: line longer than %zu bytes", line, GRADE_LINE_MAX);
            rc = MMUPT_EXIT_ERROR;
            break;
        }
        if (strspn(buf, " \t\r") == len) continue;
        char name[64];
        snprintf(name, sizeof name, "stdin:%ld", line);
        json_t *o = NULL;
        if (json_parse_text(name, buf, len, &o, &err) || grade_object(o, how, &err)) {
            if (o) mmupt_err_prefix(&err, "%s", name);
            cli_error("grade", "%s", err.msg);
            json_decref(o);
            rc = MMUPT_EXIT_ERROR;
            break;
        }
        char *text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!text) MMUPT_DIE("out of memory writing JSON");
        int bad = fputs(text, stdout) == EOF || putchar('\n') == EOF || fflush(stdout) != 0;
        free(text);
        if (bad) {
            cli_error("grade", "cannot write standard output: %s", strerror(errno));
            rc = MMUPT_EXIT_ERROR;
            break;
        }
    }
    free(buf);
    return rc;
}
