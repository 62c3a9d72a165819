/* Trainer setup and teardown: roles and communicators, the ring, question streams, outputs. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmupt/rollout.h"
#include "mmupt/strutil.h"
#include "mmupt/tensorboard.h"
#include "train_internal.h"

void train_run_path(const struct cfg *c, const char *name, char *out, size_t n)
{
    if (name[0] == '/') snprintf(out, n, "%s", name);
    else snprintf(out, n, "%s/%s", c->run.output_dir, name);
}

/* Stop tokens: rollout.stop_token_ids when given, else what the model directory asks for. */
static void read_stop_ids(struct trainer *tr)
{
    const struct cfg *c = tr->cfg;
    for (int i = 0; i < c->rollout.stop_token_ids.n && i < 8; i++) tr->stop_ids[tr->n_stop++] = (int32_t)c->rollout.stop_token_ids.v[i];
    if (!tr->n_stop) tr->n_stop = rollout_default_stop_ids(c->model.path, tr->tok, tr->stop_ids, 8);
}

/* Roles, batch divisibility, the step count and the staleness schedule's constraint. */
static int check_shapes(struct trainer *tr, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    int world = tr->world.size;
    int64_t R = c->cluster.rollout_ranks;
    if (R >= world)
        return mmupt_fail(err, "cluster.rollout_ranks=%lld leaves no learner among the %d ranks (use at most %d, or 0 "
                               "for colocated ranks that both roll out and learn)", (long long)R, world, world - 1);
    tr->n_rollout = (int)R;
    tr->n_learners = world - (int)R;
    int L = tr->n_learners;
    if (c->data.rollout_batch_size % L || c->algorithm.global_batch_size % L)
        return mmupt_fail(err, "data.rollout_batch_size (%lld) and algorithm.global_batch_size (%lld) must be multiples "
                               "of the %d %s", (long long)c->data.rollout_batch_size,
                          (long long)c->algorithm.global_batch_size, L, R ? "learner ranks" : "ranks");
    if (R && c->cluster.max_staleness < c->cluster.sync_interval - 1)
        return mmupt_fail(err, "cluster.sync_interval=%lld makes rollouts lag up to %lld policy versions, more than "
                               "cluster.max_staleness=%lld allows", (long long)c->cluster.sync_interval,
                          (long long)c->cluster.sync_interval - 1, (long long)c->cluster.max_staleness);
    tr->q_per_learner = (int)(c->data.rollout_batch_size / L);
    int64_t n = ds_count(tr->ds);
    tr->total_steps = c->run.max_steps ? c->run.max_steps : c->data.epochs * (n / c->data.rollout_batch_size);
    if (tr->total_steps < 1)
        return mmupt_fail(err, "%s has %lld items, fewer than one rollout batch of %lld", c->data.train_path, (long long)n,
                          (long long)c->data.rollout_batch_size);
    tr->optim_steps_total = tr->total_steps * (c->data.rollout_batch_size / c->algorithm.global_batch_size);
    return 0;
}

static int open_outputs(struct trainer *tr, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    if (tr->world.rank != 0) return 0;
    /* with its parents: a batch job's run.output_dir (runs/JOB/seed-T) usually does not exist yet */
    if (dir_make_all(c->run.output_dir, "run.output_dir", err)) return -1;
    char path[2 * CFG_STR_MAX + 8];
    train_run_path(c, c->logging.metrics_file, path, sizeof path);
    if (metrics_open(&tr->metrics, path, err)) return -1;
    if (c->logging.tensorboard && tb_open(&tr->tb, c->run.output_dir, err)) return -1;
    return 0;
}

/* MMUPT_TEST_NONFINITE=STEP:LEARNER (a test hook, see struct trainer): 0 unset, -1 malformed. */
static int read_fault(struct trainer *tr, struct mmupt_err *err)
{
    const char *v = getenv("MMUPT_TEST_NONFINITE");
    tr->fault_step = 0;
    if (!v || !*v) return 0;
    long long step;
    int learner, used = 0;
    if (sscanf(v, "%lld:%d%n", &step, &learner, &used) != 2 || v[used] != '\0' || step < 1 || learner < 0)
        return mmupt_fail(err, "MMUPT_TEST_NONFINITE=%s: expected STEP:LEARNER (a step from 1, a learner index from 0)",
                          v);
    tr->fault_step = step;
    tr->fault_learner = learner;
    return 0;
}

/* Communicators by role, and the ring between rollout ranks and learners (split mode). */
static int open_roles(struct trainer *tr, struct mmupt_err *err)
{
    int L = tr->n_learners, rank = tr->world.rank;
    tr->role = tr->n_rollout == 0 ? TRAIN_COLOCATED : rank < L ? TRAIN_LEARNER : TRAIN_ROLLOUT;
    tr->learner = tr->role == TRAIN_ROLLOUT ? -1 : rank;
    if (comm_split(&tr->world, tr->role == TRAIN_ROLLOUT ? -1 : 0, &tr->learn, err)) return -1;
    if (tr->role != TRAIN_ROLLOUT) tr->learn.counters = &tr->learn_counters; /* for timing.json */
    if (tr->role == TRAIN_COLOCATED) return 0;
    if (comm_split(&tr->world, rank == 0 || tr->role == TRAIN_ROLLOUT ? 0 : -1, &tr->sync, err)) return -1;
    const struct cfg *c = tr->cfg;
    int *is_producer = mmupt_xcalloc((size_t)tr->world.size, sizeof *is_producer);
    for (int i = L; i < tr->world.size; i++) is_producer[i] = 1;
    /* ring_capacity counts question groups per learner; every rollout rank needs one slot at least. */
    int64_t cap = c->cluster.ring_capacity * c->rollout.n;
    struct ring_config rc = {.capacity = (int)(cap < tr->n_rollout ? tr->n_rollout : cap > RING_MAX_CAPACITY
                                                   ? RING_MAX_CAPACITY : cap),
                             .max_staleness = (int)c->cluster.max_staleness, .timeout_s = c->cluster.timeout_s,
                             .max_tokens = (int)c->rollout.max_new_tokens};
    int rc_open = ring_open(&tr->ring, tr->world.mpi, is_producer, &rc, err);
    free(is_producer);
    return rc_open;
}

/* One question stream per learner: a learner reads its own, a rollout rank those its range touches. */
static void open_streams(struct trainer *tr)
{
    const struct cfg *c = tr->cfg;
    int L = tr->n_learners;
    tr->streams = mmupt_xcalloc((size_t)L, sizeof *tr->streams);
    for (int l = 0; l < L; l++) {
        struct ds_cursor cur;
        ds_cursor_init(&cur, train_mix_seed((uint64_t)c->run.seed, (uint64_t)c->data.seed), c->data.shuffle, l, L);
        prompt_loader_init(&tr->streams[l], tr->ds, &tr->pb, &tr->lg, &cur, c->data.skip_bad_items);
    }
}

static void log_plan(struct trainer *tr)
{
    const struct cfg *c = tr->cfg;
    if (tr->role == TRAIN_COLOCATED)
        log_info(&tr->lg, "training %s (%lld parameters) on %d rank(s), colocated: %lld steps, %d questions x %lld "
                          "samples per rank per step", model_arch_name(tr->model.cfg.arch),
                 (long long)tr->model.spec.total, tr->world.size, (long long)tr->total_steps, tr->q_per_learner,
                 (long long)c->rollout.n);
    else
        log_info(&tr->lg, "training %s (%lld parameters): %d learner(s) (ranks 0-%d), %d rollout rank(s) (ranks %d-%d), "
                          "%lld steps, %d questions x %lld samples per learner per step, max staleness %lld, weights "
                          "sent every %lld step(s)", model_arch_name(tr->model.cfg.arch),
                 (long long)tr->model.spec.total, tr->n_learners, tr->n_learners - 1, tr->n_rollout, tr->n_learners,
                 tr->world.size - 1, (long long)tr->total_steps, tr->q_per_learner, (long long)c->rollout.n,
                 (long long)c->cluster.max_staleness, (long long)c->cluster.sync_interval);
}

int train_agree(struct trainer *tr, int ok, struct mmupt_err *err)
{
    int all = 0;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, tr->world.mpi) != MPI_SUCCESS) return TRAIN_FAILED;
    if (all) return 0;
    /* Only messages that differ from rank 0's are reported: one line per job for the usual case of
     * every rank missing the same file. */
    struct { int ok; char msg[sizeof err->msg]; } r0 = {.ok = ok};
    if (tr->world.rank == 0 && !ok) memcpy(r0.msg, err->msg, sizeof r0.msg);
    MPI_Bcast(&r0, (int)sizeof r0, MPI_BYTE, 0, tr->world.mpi);
    if (ok || (tr->world.rank != 0 && !r0.ok && strcmp(r0.msg, err->msg) == 0)) {
        if (ok) mmupt_fail(err, "another rank could not start");
        return TRAIN_PEER_SETUP_FAILED;
    }
    return TRAIN_SETUP_FAILED;
}

/* Everything a rank can check on its own: model, tokenizer, dataset, shapes, prompts, outputs. */
static int open_local(struct trainer *tr, struct mmupt_err *err)
{
    const struct cfg *c = tr->cfg;
    char path[CFG_STR_MAX + 64];
    if (train_device_pick(tr, err) || read_fault(tr, err)) return -1;
    if (tr->fault_step)
        log_warn(&tr->lg, "MMUPT_TEST_NONFINITE (a test hook): learner %d's step %lld gets a non-finite log-prob",
                 tr->fault_learner, (long long)tr->fault_step);
    snprintf(path, sizeof path, "%s/tokenizer.json", c->model.path);
    if (model_open(&tr->model, c->model.path, err) || train_device_open(tr, err) || tok_load(&tr->tok, path, err) ||
        ds_open(&tr->ds, c->data.train_path, err) || check_shapes(tr, err))
        return -1;
    read_stop_ids(tr);
    struct img_proc_config ic;
    prompt_image_config(&ic, &tr->model.cfg, c->data.min_pixels, c->data.max_pixels);
    if (prompt_builder_init(&tr->pb, tr->tok, c->data.format_prompt, &ic, c->data.max_prompt_length, err)) return -1;
    open_streams(tr);
    if (c->run.val_interval > 0 && !c->data.val_path[0])
        return mmupt_fail(err, "run.val_interval=%lld needs data.val_path (the validation split)",
                          (long long)c->run.val_interval);
    if (c->run.val_interval > 0 && tr->world.rank == 0 && ds_open(&tr->val_ds, c->data.val_path, err)) return -1;
    return open_outputs(tr, err);
}

/* OpenMP threads per rank. Unset, every rank would start one thread per core: with 3 ranks on 2
 * cores that is 6 spinning threads and half the speed (measured on the quickstart). So without
 * OMP_NUM_THREADS each rank takes its share of the cores of its node. */
static void pick_threads(struct trainer *tr)
{
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && env[0]) return;
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(tr->world.mpi, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    int threads = omp_get_num_procs() / (local > 0 ? local : 1);
    if (threads < 1) threads = 1;
    omp_set_num_threads(threads);
    log_info(&tr->lg, "threads: %d per rank (%d cores, %d ranks on this node; OMP_NUM_THREADS overrides)", threads,
             omp_get_num_procs(), local);
}

int train_open(struct trainer *tr, const struct cfg *c, struct mmupt_err *err)
{
    memset(tr, 0, sizeof *tr);
    tr->val_best = -1;
    tr->cfg = c;
    tr->world.mpi = tr->learn.mpi = tr->sync.mpi = MPI_COMM_NULL;
    if (comm_world(&tr->world, err)) return TRAIN_FAILED;
    log_init(&tr->lg, (enum log_level)c->logging.level, tr->world.rank, stderr);
    tr->lg.only_rank0 = 1;
    pick_threads(tr);
    /* Agree before the first collective: a rank that cannot start must not leave the others
     * waiting in one, and when every rank knows, the job can end normally instead of aborting. */
    int agreed = train_agree(tr, open_local(tr, err) == 0, err);
    if (agreed) return agreed;
    if (open_roles(tr, err) || train_wbcast_open(tr, err)) return TRAIN_FAILED;
    if (tr->role != TRAIN_ROLLOUT) {
        if (c->algorithm.kl_penalty != KL_NONE && c->algorithm.kl_coef > 0) {
            tr->ref_params = mmupt_xmalloc(train_weight_bytes(tr));
            memcpy(tr->ref_params, tr->model.params, train_weight_bytes(tr));
        }
        optim_init(&tr->opt, (size_t)tr->model.spec.total, tr->learn.rank, tr->learn.size);
    }
    log_plan(tr);
    train_buckets_plan(tr);
    return 0;
}

void train_close(struct trainer *tr)
{
    if (tr->world.rank == 0 && tr->metrics.f) metrics_close(&tr->metrics);
    tb_close(tr->tb);
    optim_free(&tr->opt);
    train_snaps_free(tr);
    for (int i = 0; i < tr->n_pending; i++) ring_traj_free(&tr->pending[i]);
    free(tr->pending);
    ring_close(tr->ring);
    free(tr->streams);
    train_device_close(tr);
    free(tr->ref_params);
    if (tr->ds) ds_close(tr->ds);
    if (tr->val_ds) ds_close(tr->val_ds);
    tok_free(tr->tok);
    if (tr->model.params) model_free(&tr->model);
    comm_free(&tr->sync);
    comm_free(&tr->learn);
    comm_free(&tr->world);
}
