/* YAML file -> struct cfg, through libyaml's document API (it gives every node a line and column,
 * which is what error messages need). Expected shape: a mapping of sections, each a mapping of
 * keys to scalars (or a sequence of scalars for list fields). */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "internal.h"
#include "mmupt/strutil.h"

struct loader {
    const char *name; /* file name for messages */
    yaml_document_t *doc;
    struct cfg *cfg;
    struct mmupt_err *err;
};

/* "file:line:col: " + message. libyaml marks are 0-based. */
static int fail_at(struct loader *ld, yaml_mark_t mark, const char *key, const char *msg)
{
    if (key)
        return mmupt_fail(ld->err, "%s:%zu:%zu: %s: %s", ld->name, mark.line + 1, mark.column + 1, key, msg);
    return mmupt_fail(ld->err, "%s:%zu:%zu: %s", ld->name, mark.line + 1, mark.column + 1, msg);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

static int is_null_node(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           cfg_text_is_null((const char *)n->data.scalar.value);
}

/* A scalar's text; -1 if it holds a NUL byte (possible via "\0" escapes), which C strings cannot carry. */
static int scalar_text(struct loader *ld, const yaml_node_t *n, const char *key, const char **out)
{
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length) return fail_at(ld, n->start_mark, key, "value contains a NUL byte");
    *out = s;
    return 0;
}

static int set_from_list(struct loader *ld, const struct cfg_field *f, yaml_node_t *seq)
{
    const char *items[CFG_LIST_MAX];
    size_t n = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        if (n == CFG_LIST_MAX) return fail_at(ld, item->start_mark, f->key, "too many items in list");
        if (item->type != YAML_SCALAR_NODE) {
            char msg[96];
            snprintf(msg, sizeof msg, "list items must be integers, got %s", node_kind(item));
            return fail_at(ld, item->start_mark, f->key, msg);
        }
        if (scalar_text(ld, item, f->key, &items[n++])) return -1;
    }
    struct mmupt_err e;
    if (cfg_set_list(ld->cfg, f, items, n, &e)) return fail_at(ld, seq->start_mark, f->key, e.msg);
    return 0;
}

static int set_field(struct loader *ld, const struct cfg_field *f, yaml_node_t *val)
{
    if (f->type == CFG_INT_LIST && val->type == YAML_SEQUENCE_NODE) return set_from_list(ld, f, val);
    if (val->type != YAML_SCALAR_NODE) {
        char msg[128], type[256];
        cfg_describe_type(f, type, sizeof type);
        snprintf(msg, sizeof msg, "expected %.60s, got %s", type, node_kind(val));
        return fail_at(ld, val->start_mark, f->key, msg);
    }
    if (f->type == CFG_INT_LIST && !is_null_node(val))
        return fail_at(ld, val->start_mark, f->key, "expected a list such as [1, 2]");
    const char *text = NULL;
    if (scalar_text(ld, val, f->key, &text)) return -1;
    bool quoted = val->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    if (f->type == CFG_INT_LIST) text = "[]"; /* `key:` with nothing: an empty list */
    struct mmupt_err e;
    if (cfg_set_scalar(ld->cfg, f, text, quoted, &e)) return fail_at(ld, val->start_mark, f->key, e.msg);
    return 0;
}

/* A key that maps to something: its scalar text, checked. */
static int key_text(struct loader *ld, yaml_node_t *k, const char *where, const char **out)
{
    if (k->type != YAML_SCALAR_NODE) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s keys must be plain names, got %s", where, node_kind(k));
        return fail_at(ld, k->start_mark, NULL, msg);
    }
    return scalar_text(ld, k, NULL, out);
}

/* Reject a key that appears twice in one mapping, naming where it was first set. */
static int check_duplicate(struct loader *ld, yaml_node_t *map, yaml_node_pair_t *upto, const char *text,
                           const char *shown)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < upto; p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, text) == 0) {
            yaml_node_t *cur = yaml_document_get_node(ld->doc, upto->key);
            char msg[96];
            snprintf(msg, sizeof msg, "duplicate key (first set at line %zu)", k->start_mark.line + 1);
            return fail_at(ld, cur->start_mark, shown, msg);
        }
    }
    return 0;
}

static int unknown_key(struct loader *ld, yaml_mark_t mark, const char *what, const char *key)
{
    const char *hint = cfg_suggest(key);
    char msg[CFG_STR_MAX + 256];
    if (hint) snprintf(msg, sizeof msg, "unknown %s '%.200s' (did you mean '%s'?)", what, key, hint);
    else snprintf(msg, sizeof msg, "unknown %s '%.200s' (`mmupt config --list` shows every key)", what, key);
    return fail_at(ld, mark, NULL, msg);
}

static int load_section(struct loader *ld, const struct cfg_section *sec, yaml_node_t *map)
{
    if (is_null_node(map)) return 0; /* "rollout:" with nothing under it */
    if (map->type != YAML_MAPPING_NODE) {
        char msg[96];
        snprintf(msg, sizeof msg, "expected a mapping of keys, got %s", node_kind(map));
        return fail_at(ld, map->start_mark, sec->name, msg);
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        const char *name;
        if (key_text(ld, k, sec->name, &name)) return -1;
        char full[512];
        snprintf(full, sizeof full, "%s.%.400s", sec->name, name);
        if (check_duplicate(ld, map, p, name, full)) return -1;
        const struct cfg_field *f = cfg_find(full);
        if (!f) return unknown_key(ld, k->start_mark, "key", full);
        if (set_field(ld, f, yaml_document_get_node(ld->doc, p->value))) return -1;
    }
    return 0;
}

static int load_root(struct loader *ld, yaml_node_t *root)
{
    if (root->type != YAML_MAPPING_NODE) {
        char msg[128];
        snprintf(msg, sizeof msg, "expected a mapping of sections (run:, model:, ...), got %s", node_kind(root));
        return fail_at(ld, root->start_mark, NULL, msg);
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        const char *name;
        if (key_text(ld, k, "top-level", &name)) return -1;
        if (check_duplicate(ld, root, p, name, name)) return -1;
        const struct cfg_section *sec = cfg_find_section(name, strlen(name));
        if (!sec) return unknown_key(ld, k->start_mark, "section", name);
        if (load_section(ld, sec, yaml_document_get_node(ld->doc, p->value))) return -1;
    }
    return 0;
}

static int parser_error(struct loader *ld, const yaml_parser_t *p)
{
    char msg[512];
    if (p->context)
        snprintf(msg, sizeof msg, "malformed YAML: %s (%s at line %zu)", p->problem ? p->problem : "syntax error",
                 p->context, p->context_mark.line + 1);
    else
        snprintf(msg, sizeof msg, "malformed YAML: %s", p->problem ? p->problem : "syntax error");
    return fail_at(ld, p->problem_mark, NULL, msg);
}

/* libyaml reports bad encoding at the start of its read buffer, not where it is; find the exact
 * place first. NUL bytes are refused here too (libyaml would stop reading at them). */
static int check_text(struct loader *ld, const char *text, size_t len)
{
    yaml_mark_t mark = {0, 0, 0};
    for (size_t i = 0; i < len;) {
        const unsigned char *p = (const unsigned char *)text + i;
        size_t n = *p ? utf8_seq_len(p, len - i) : 0;
        if (n == 0) {
            char msg[64];
            snprintf(msg, sizeof msg, *p ? "invalid UTF-8 (byte 0x%02x)" : "NUL byte in the file", *p);
            return fail_at(ld, mark, NULL, msg);
        }
        if (*p == '\n') {
            mark.line++;
            mark.column = 0;
        } else {
            mark.column++;
        }
        i += n;
    }
    return 0;
}

int cfg_load_buffer(struct cfg *c, const char *name, const char *text, size_t len, struct mmupt_err *err)
{
    /* Work on a copy: on error the caller's config is untouched. */
    struct cfg *tmp = mmupt_xmalloc(sizeof *tmp);
    *tmp = *c;
    struct loader ld = {.name = name, .cfg = tmp, .err = err};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int rc = -1;
    if (check_text(&ld, text, len)) {
        free(tmp);
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) MMUPT_DIE("libyaml: cannot initialise a parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        parser_error(&ld, &parser);
        goto out_parser;
    }
    ld.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        mmupt_fail(err, "%s: is empty (no YAML document); see configs/ for examples", name);
        goto out_doc;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        parser_error(&ld, &parser);
        goto out_doc;
    }
    bool more = yaml_document_get_root_node(&extra) != NULL;
    yaml_mark_t extra_mark = extra.start_mark;
    yaml_document_delete(&extra);
    if (more) {
        fail_at(&ld, extra_mark, NULL, "a second YAML document ('---'); a config is one document");
        goto out_doc;
    }
    if (load_root(&ld, root) == 0) {
        *c = *tmp;
        rc = 0;
    }
out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    free(tmp);
    return rc;
}

int cfg_load_file(struct cfg *c, const char *path, struct mmupt_err *err)
{
    char *text;
    size_t len;
    if (file_read_all(path, CFG_FILE_MAX, &text, &len, err)) return -1;
    int rc = cfg_load_buffer(c, path, text, len, err);
    free(text);
    return rc;
}
