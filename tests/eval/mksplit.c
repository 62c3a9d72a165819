/* Writes a small text-only split WITHOUT answers, for the eval CLI test's "eval needs answers" case.
 * Usage: eval_mksplit OUT.h5 */
#include <stdio.h>

#include "mmupt/dataset.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: eval_mksplit OUT.h5\n");
        return 2;
    }
    struct ds_writer *w;
    struct mmupt_err err;
    struct ds_item it = {.id = "q-0", .source = "text", .problem = "What is 2+2?"};
    if (ds_writer_open(&w, argv[1], 0, &err) || ds_writer_add(w, &it, &err) || ds_writer_close(w, &err)) {
        fprintf(stderr, "eval_mksplit: %s\n", err.msg);
        return 1;
    }
    return 0;
}
