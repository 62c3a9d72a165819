/* "Did you mean ...?" for unknown keys and sections. */
#include <string.h>

#include "internal.h"
#include "mmupt/strutil.h"

/* Candidate names: full keys for a dotted query, section names for a bare one. */
static const char *candidate(size_t i, int dotted)
{
    return dotted ? cfg_fields[i].key : cfg_sections[i].name;
}

const char *cfg_suggest(const char *key)
{
    int dotted = strchr(key, '.') != NULL;
    if (dotted) {
        /* The right key in the wrong section ("rollout.lr" -> "optim.lr") beats a near miss. */
        const char *leaf = key + cfg_section_len(key) + 1;
        for (size_t i = 0; i < cfg_n_fields; i++) {
            const char *k = cfg_fields[i].key;
            if (strcmp(k + cfg_section_len(k) + 1, leaf) == 0) return k;
        }
    }
    size_t count = dotted ? cfg_n_fields : cfg_n_sections;
    /* A typo is a few edits; allow about one edit per four characters, at least one, at most three. */
    size_t len = strlen(key), cap = len / 4 < 1 ? 1 : (len / 4 > 3 ? 3 : len / 4);
    const char *best = NULL;
    size_t best_d = cap + 1;
    for (size_t i = 0; i < count; i++) {
        size_t d = str_edit_distance(key, candidate(i, dotted), cap);
        if (d < best_d) {
            best_d = d;
            best = candidate(i, dotted);
        }
    }
    return best;
}
