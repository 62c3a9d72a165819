/* What mmupt eval and mmupt synth both start from: a policy (a Hugging Face model directory or a
 * training checkpoint, src/eval/load.c), its tokenizer, and a dataset split; and how their ranks
 * agree that a stage worked. */
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mmupt/comm.h"
#include "mmupt/config.h"
#include "mmupt/eval.h"
#include "mmupt/gpu.h"


int cli_load_policy(const char *cmd, const char *model, const char *base_model, const char *data, const struct comm *w,
                    const struct cli_device_opts *device, struct model *m, struct eval_model_source *src,
                    struct tok **tok, struct ds_reader **ds, struct cli_device *cd)
{
    struct mmupt_err err;
    char tpath[4096 + 32];
    *tok = NULL;
    *ds = NULL;
    memset(m, 0, sizeof *m);
    memset(cd, 0, sizeof *cd);
    if (ds_open(ds, data, &err)) goto fail;
    if (eval_load_model(model, base_model, m, src, &err)) goto fail;
    snprintf(tpath, sizeof tpath, "%s/tokenizer.json", src->dir);
    if (tok_load(tok, tpath, &err)) goto fail;
    if (cli_device_open(cmd, device, m, cd, w) == 0) return 0;
    cli_policy_free(m, *tok, *ds, cd);
    *ds = NULL;
    return -1;
fail:
    /* Every rank reads the same input and reaches the same verdict: only rank 0 says it. */
    if (w->rank == 0) cli_error(cmd, "%s", err.msg);
    if (m->params) model_free(m);
    if (*ds) ds_close(*ds);
    *ds = NULL;
    return -1;
}

void cli_policy_free(struct model *m, struct tok *tok, struct ds_reader *ds, struct cli_device *cd)
{
    cli_device_close(cd);
    tok_free(tok);
    if (m->params) model_free(m);
    if (ds) ds_close(ds);
}

int cli_all_ok(const struct comm *w, int ok)
{
    double bad = ok ? 0.0 : 1.0;
    if (w->size > 1 && comm_allreduce_sum_f64(w, &bad, 1)) return 0;
    return bad == 0.0;
}

int cli_parse_device(const char *cmd, const char *choice, struct cli_device_opts *o)
{
    /* the names and order of cluster.backend (enum cfg_backend) */
    const struct cfg_field *f = cfg_find("cluster.backend");
    for (int i = 0; f->choices[i]; i++)
        if (strcmp(choice, f->choices[i]) == 0) {
            o->backend = i;
            return 0;
        }
    cli_error(cmd, "--device: '%s' is not one of auto, cpu, cuda, emulator", choice);
    return -1;
}

int cli_parse_dtype(const char *cmd, const char *choice, struct cli_device_opts *o)
{
    static const char *const names[] = {"auto", "fp32", "bf16"}; /* enum cli_dtype */
    for (int i = 0; i < 3; i++)
        if (strcmp(choice, names[i]) == 0) {
            o->dtype = i;
            return 0;
        }
    cli_error(cmd, "--dtype: '%s' is not one of auto, fp32, bf16", choice);
    return -1;
}

int cli_device_open(const char *cmd, const struct cli_device_opts *o, const struct model *m, struct cli_device *cd,
                    const struct comm *w)
{
    struct mmupt_err err;
    int on = gpu_backend_resolve(o->backend, &err);
    struct comm_gpu bound;
    if (on > 0 && !gpu_emulated() && w && comm_bind_gpu(w, &bound, &err)) on = -1;
    if (on > 0 && gpu_ctx_init(&cd->g, &err)) on = -1;
    if (on < 0) {
        cli_error(cmd, "--device: %s", err.msg);
        return -1;
    }
    if (!on && o->dtype == CLI_DTYPE_BF16) {
        cli_error(cmd, "--dtype bf16: the model runs on the CPU, which computes in fp32 only (bf16 needs --device "
                       "cuda, or emulator in a CPU-only build)");
        return -1;
    }
    if (on) {
        model_dev_init(&cd->d, m, &cd->g);
        model_dev_set_bf16(&cd->d, o->dtype != CLI_DTYPE_FP32);
    }
    cd->on = on;
    return 0;
}

void cli_device_close(struct cli_device *cd)
{
    if (!cd->on) return;
    model_dev_free(&cd->d);
    gpu_ctx_free(&cd->g);
    cd->on = 0;
}

int cli_with_world(const char *cmd, int *argc, char ***argv, int threads, cli_world_fn fn, void *ctx)
{
    if (threads > 0) omp_set_num_threads(threads);
    MPI_Init(argc, argv);
    struct mmupt_err err;
    struct comm world;
    int rc = MMUPT_EXIT_ERROR;
    if (comm_world(&world, &err)) {
        cli_error(cmd, "%s", err.msg);
    } else {
        rc = fn(ctx, &world);
        comm_free(&world);
    }
    MPI_Finalize();
    return rc;
}
