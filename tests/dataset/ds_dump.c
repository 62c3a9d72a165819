/* Prints a prompt dataset as JSON Lines, one item per line, so tools/test_convert_dataset.py and
 * tests/synth/test_synth.sh can compare what the C reader sees with what they expect:
 *   {"index": 0, "id": ..., "source": ..., "problem": ..., "answer": null or ..., "images": ["89504e47..."]}
 * The first line is {"count": N, "has_answers": true|false}. A split with the optional provenance
 * dataset (`mmupt synth`) adds "has_provenance": true to it and "provenance": null or ... before
 * "images" to every item; without one the output is exactly as above. Exit 1 with the reader's
 * message on stderr when the file or an item is refused. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "mmupt/dataset.h"

static json_t *hex(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    for (size_t k = 0; k < n; k++) snprintf(s + 2 * k, 3, "%02x", p[k]);
    s[2 * n] = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
}

static void print_item(const struct ds_item *it, int has_provenance)
{
    json_t *o = json_object(), *images = json_array();
    json_object_set_new(o, "index", json_integer(it->index));
    json_object_set_new(o, "id", json_string(it->id));
    json_object_set_new(o, "source", json_string(it->source));
    json_object_set_new(o, "problem", json_string(it->problem));
    json_object_set_new(o, "answer", it->answer ? json_string(it->answer) : json_null());
    if (has_provenance) json_object_set_new(o, "provenance", it->provenance ? json_string(it->provenance) : json_null());
    for (int k = 0; k < it->n_images; k++) json_array_append_new(images, hex(it->image[k], it->image_len[k]));
    json_object_set_new(o, "images", images);
    json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(o);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.h5\n", argv[0]);
        return 2;
    }
    struct ds_reader *r;
    struct mmupt_err err;
    if (ds_open(&r, argv[1], &err)) {
        fprintf(stderr, "ds_dump: %s\n", err.msg);
        return 1;
    }
    int has_provenance = ds_has_provenance(r);
    printf("{\"count\": %lld, \"has_answers\": %s%s}\n", (long long)ds_count(r), ds_has_answers(r) ? "true" : "false",
           has_provenance ? ", \"has_provenance\": true" : "");
    int rc = 0;
    for (int64_t i = 0; i < ds_count(r) && rc == 0; i++) {
        struct ds_item it;
        if (ds_read(r, i, &it, &err)) {
            fprintf(stderr, "ds_dump: %s\n", err.msg);
            rc = 1;
            break;
        }
        print_item(&it, has_provenance);
        ds_item_free(&it);
    }
    ds_close(r);
    return rc;
}
