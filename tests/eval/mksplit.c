/* Fixtures for the eval CLI test.
 *   eval_mksplit OUT.h5                  a small text-only split WITHOUT answers ("eval needs answers")
 *   eval_mksplit --checkpoint MODEL DIR  a training checkpoint (DIR/step-00000005, DIR/latest) holding
 *                                        MODEL's weights unchanged and recording MODEL as its start */
#include <stdio.h>
#include <string.h>

#include "mmupt/checkpoint.h"
#include "mmupt/dataset.h"

static int write_split(const char *path, struct mmupt_err *err)
{
    struct ds_writer *w;
    struct ds_item it = {.id = "q-0", .source = "text", .problem = "What is 2+2?"};
    if (ds_writer_open(&w, path, 0, err)) return -1;
    if (ds_writer_add(w, &it, err)) {
        ds_writer_close(w, err);
        return -1;
    }
    return ds_writer_close(w, err);
}

static int write_checkpoint(const char *model_dir, const char *dir, struct mmupt_err *err)
{
    struct model m;
    if (model_open(&m, model_dir, err)) return -1;
    struct ckpt_cursor cur = {0, 0, 0, 0};
    struct ckpt_meta meta = {.format = CKPT_FORMAT_VERSION, .step = 5, .policy_version = 5, .n_params = m.spec.total,
                             .n_learners = 1, .config_yaml = "run:\n  name: eval-test\n", .n_cursors = 1, .cursors = &cur};
    snprintf(meta.arch, sizeof meta.arch, "%s", model_arch_name(m.cfg.arch));
    snprintf(meta.model_path, sizeof meta.model_path, "%s", model_dir);
    char partial[CKPT_PATH_MAX];
    ckpt_step_dir(dir, 5, 1, partial, sizeof partial);
    int rc = ckpt_begin(dir, 5, err) || ckpt_write_model(partial, &m.spec, m.params, &meta, NULL, err) ||
             ckpt_commit(dir, 5, 3, err) ? -1 : 0;
    model_free(&m);
    return rc;
}

int main(int argc, char **argv)
{
    struct mmupt_err err;
    int rc;
    if (argc == 2) rc = write_split(argv[1], &err);
    else if (argc == 4 && strcmp(argv[1], "--checkpoint") == 0) rc = write_checkpoint(argv[2], argv[3], &err);
    else {
        fprintf(stderr, "usage: eval_mksplit OUT.h5 | eval_mksplit --checkpoint MODEL_DIR CKPT_DIR\n");
        return 2;
    }
    if (rc) fprintf(stderr, "eval_mksplit: %s\n", err.msg);
    return rc ? 1 : 0;
}
