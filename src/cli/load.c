/* What mmupt eval and mmupt synth both start from: a policy (a Hugging Face model directory or a
 * training checkpoint, src/eval/load.c), its tokenizer, and a dataset split; and how their ranks
 * agree that a stage worked. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mmupt/comm.h"
#include "mmupt/eval.h"

int cli_load_policy(const char *cmd, const char *model, const char *base_model, const char *data, int rank,
                    struct model *m, struct eval_model_source *src, struct tok **tok, struct ds_reader **ds)
{
    struct mmupt_err err;
    char tpath[4096 + 32];
    *tok = NULL;
    *ds = NULL;
    memset(m, 0, sizeof *m);
    if (ds_open(ds, data, &err)) goto fail;
    if (eval_load_model(model, base_model, m, src, &err)) goto fail;
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", src->dir);
    if (tok_load(tok, tpath, &err)) goto fail;
    return 0;
fail:
    /* Every rank reads the same input and reaches the same verdict: only rank 0 says it. */
    if (rank == 0) cli_error(cmd, "%s", err.msg);
    if (m->params) model_free(m);
    if (*ds) ds_close(*ds);
    *ds = NULL;
    return -1;
}

int cli_all_ok(const struct comm *w, int ok)
{
    double bad = ok ? 0.0 : 1.0;
    if (w->size > 1 && comm_allreduce_sum_f64(w, &bad, 1)) return 0;
    return bad == 0.0;
}
