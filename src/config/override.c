/* Command-line overrides: "section.key=value", applied after the file, in order. */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "internal.h"

/* A value that starts with a quote is a YAML quoted scalar (so "\n" escapes work as in a file);
 * anything else is taken literally, so `data.format_prompt=Answer: A` needs no quoting. */
static int unquote(const char *val, char *out, size_t n, struct mmupt_err *err)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = -1, done = 0;
    if (!yaml_parser_initialize(&p)) MMUPT_DIE("libyaml: cannot initialise a parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)val, strlen(val));
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            mmupt_fail(err, "bad quoted value: %s", p.problem ? p.problem : "syntax error");
            rc = -1;
            break;
        }
        if (ev.type == YAML_SCALAR_EVENT) {
            if (rc == 0 || ev.data.scalar.length >= n || strlen((char *)ev.data.scalar.value) != ev.data.scalar.length) {
                mmupt_fail(err, "bad quoted value (one quoted string without NUL bytes expected)");
                rc = -1;
                done = 1;
            } else {
                memcpy(out, ev.data.scalar.value, ev.data.scalar.length + 1);
                rc = 0;
            }
        } else if (ev.type != YAML_STREAM_START_EVENT && ev.type != YAML_DOCUMENT_START_EVENT &&
                   ev.type != YAML_DOCUMENT_END_EVENT && ev.type != YAML_STREAM_END_EVENT) {
            mmupt_fail(err, "bad quoted value (one quoted string expected)");
            rc = -1;
            done = 1;
        }
        if (ev.type == YAML_STREAM_END_EVENT) done = 1;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

int cfg_apply_override(struct cfg *c, const char *arg, struct mmupt_err *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq) return mmupt_fail(err, "override '%.200s': expected key=value, e.g. optim.lr=1e-6", arg);
    size_t klen = (size_t)(eq - arg);
    if (klen == 0) return mmupt_fail(err, "override '%.200s': the key before '=' is empty", arg);
    if (klen >= 256) return mmupt_fail(err, "override: key too long (%zu bytes)", klen);
    char key[256];
    memcpy(key, arg, klen);
    key[klen] = '\0';
    if (!strchr(key, '.'))
        return mmupt_fail(err, "override '%s': keys are section.key, e.g. optim.lr", key);
    const struct cfg_field *f = cfg_find(key);
    if (!f) {
        const char *hint = cfg_suggest(key);
        if (hint) return mmupt_fail(err, "override: unknown key '%s' (did you mean '%s'?)", key, hint);
        return mmupt_fail(err, "override: unknown key '%s' (`mmupt config --list` shows every key)", key);
    }
    const char *val = eq + 1;
    bool quoted = val[0] == '"' || val[0] == '\'';
    char *buf = NULL;
    if (quoted) {
        buf = mmupt_xmalloc(CFG_STR_MAX);
        if (unquote(val, buf, CFG_STR_MAX, err)) {
            free(buf);
            mmupt_err_prefix(err, "override %s", key);
            return -1;
        }
        val = buf;
    }
    /* Transactional like file loading: a failed override leaves *c as it was. */
    struct cfg *tmp = mmupt_xmalloc(sizeof *tmp);
    *tmp = *c;
    int rc = cfg_set_scalar(tmp, f, val, quoted, err);
    if (rc == 0) *c = *tmp;
    else mmupt_err_prefix(err, "override %s", key);
    free(tmp);
    free(buf);
    return rc;
}
