/* Where the model of a step's communication meets the measurement: train_comm_model computes, from
 * the config alone, the bytes each kind of collective moves per training step, and at the end of a
 * run timing.json puts that model beside what every rank's counters measured (comm.h) and where its
 * time went (the phases). benchmarks/scaling reads these files; docs/scaling.md explains them.
 *
 * The model counts what the code issues, term by term (the mpi test train_timing checks it against
 * the counters byte for byte, so a forgotten term fails there):
 *   per optimizer step (optim_step, src/optim/adamw.c): a reduce-scatter of the N fp32 gradients,
 *     an f64 all-reduce of the squared-norm partial sum, an all-gather of the N fp32 weights;
 *   per training step: rollout_batch_size / global_batch_size optimizer steps (train_update), the
 *     5 loss sums (learn.c), the 12 reward statistics (reduce_stats, train.c) and the 4-byte stop
 *     flag (learners_stop, train.c), all all-reduces;
 *   per policy version, every sync_interval steps in split mode only: one broadcast of an int64
 *     header and the N fp32 weights from learner 0 to the rollout ranks (sync.c).
 * Not modelled: an update skipped for a non-finite gradient norm (it issues no all-gather), the
 * checkpoints' and setup's small control messages (plain MPI, not counted either), the ring's
 * trajectories (point to point, not a collective). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/json.h"
#include "mmupt/strutil.h"
#include "train_internal.h"

/* All-reduces that do not depend on the number of optimizer steps: loss sums (5 f64), reward
 * statistics (12 f64), the stop flag (one int). */
#define MODEL_STEP_ALLREDUCE_BYTES (5 * sizeof(double) + 12 * sizeof(double) + sizeof(int))

void train_comm_model(const struct cfg *c, int64_t params, int learners, int rollout_ranks, struct train_comm_model *m)
{
    memset(m, 0, sizeof *m);
    m->params = params;
    m->learners = learners;
    m->rollout_ranks = rollout_ranks;
    m->optim_steps = c->data.rollout_batch_size / c->algorithm.global_batch_size;
    double n_bytes = (double)params * sizeof(float), opt = (double)m->optim_steps;
    m->payload[COMM_REDUCE_SCATTER] = opt * n_bytes;
    m->payload[COMM_ALLGATHER] = opt * n_bytes;
    m->payload[COMM_ALLREDUCE] = opt * sizeof(double) + (double)MODEL_STEP_ALLREDUCE_BYTES;
    if (rollout_ranks > 0) {
        m->version_bytes = (int64_t)sizeof(int64_t) + params * (int64_t)sizeof(float);
        m->payload[COMM_BROADCAST] = (double)m->version_bytes / (double)c->cluster.sync_interval;
    }
    /* Wire bytes one rank sends under the bandwidth-optimal ring algorithms (NCCL's on one node, and
     * the MPI backend's all-to-all + all-gather exchange, which sends the same amounts): a
     * reduce-scatter sends each of its L-1 foreign shards once, (L-1)/L of the payload, and so does an
     * all-gather; an all-reduce is the two in a row, 2(L-1)/L. A pipelined (chain) broadcast passes
     * the whole payload through every rank but the last, so each rank sends about S. Divide by the
     * link's bandwidth for a lower bound on the time. One learner sends nothing. */
    double f = learners > 1 ? (double)(learners - 1) / learners : 0;
    m->wire[COMM_REDUCE_SCATTER] = f * m->payload[COMM_REDUCE_SCATTER];
    m->wire[COMM_ALLGATHER] = f * m->payload[COMM_ALLGATHER];
    m->wire[COMM_ALLREDUCE] = 2 * f * m->payload[COMM_ALLREDUCE];
    m->wire[COMM_BROADCAST] = m->payload[COMM_BROADCAST];
}

/* "692.8 KiB": a byte count for a log line. */
static void human_bytes(double b, char *out, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

static void model_of(const struct trainer *tr, struct train_comm_model *m)
{
    train_comm_model(tr->cfg, tr->model.spec.total, tr->n_learners, tr->n_rollout, m);
}

void train_comm_model_log(struct trainer *tr)
{
    struct train_comm_model m;
    model_of(tr, &m);
    char b[COMM_OP_COUNT][32];
    for (int op = 0; op < COMM_OP_COUNT; op++) human_bytes(m.payload[op], b[op], sizeof b[op]);
    log_info(&tr->lg, "comm model per step: reduce-scatter %s, all-gather %s, all-reduce %s, broadcast %s (payload; "
                      "%lld optimizer step(s) per step; timing.json has the wire bytes)",
             b[COMM_REDUCE_SCATTER], b[COMM_ALLGATHER], b[COMM_ALLREDUCE], b[COMM_BROADCAST], (long long)m.optim_steps);
}

int64_t train_comm_versions(const struct trainer *tr, int64_t steps_end)
{
    if (tr->role == TRAIN_COLOCATED || steps_end <= tr->start_step) return 0;
    /* Versions u = k * sync_interval after the one the rollout ranks start from, up to the last one
     * a rollout uses, and never beyond the weights that exist (u <= steps done). */
    int64_t S = tr->cfg->cluster.sync_interval, from = train_rollout_version(tr, tr->start_step);
    int64_t last = train_rollout_version(tr, tr->total_steps - 1);
    if (last > steps_end) last = steps_end;
    return last > from ? last / S - from / S : 0;
}

/* What each rank sends to rank 0: role, times, phases and both counters, all as doubles (byte counts
 * stay exact up to 2^53). */
enum {
    REC_ROLE,
    REC_TOTAL,
    REC_SETUP,
    REC_PHASES,
    REC_COMM = REC_PHASES + PH_COUNT, /* [2 communicators][COMM_OP_COUNT][calls, bytes, seconds] */
    REC_LEN = REC_COMM + 2 * COMM_OP_COUNT * 3
};

static void record_fill(const struct trainer *tr, double total_s, double *rec)
{
    rec[REC_ROLE] = tr->role;
    rec[REC_TOTAL] = total_s;
    rec[REC_SETUP] = tr->setup_s;
    for (int p = 0; p < PH_COUNT; p++) rec[REC_PHASES + p] = tr->phase[p];
    const struct comm_counters *k[2] = {&tr->learn_counters, &tr->sync_counters};
    for (int j = 0; j < 2; j++)
        for (int op = 0; op < COMM_OP_COUNT; op++) {
            double *r = rec + REC_COMM + (j * COMM_OP_COUNT + op) * 3;
            r[0] = (double)k[j]->op[op].calls;
            r[1] = (double)k[j]->op[op].bytes;
            r[2] = k[j]->op[op].seconds;
        }
}

static json_t *counters_json(const double *r)
{
    json_t *o = json_object();
    for (int op = 0; op < COMM_OP_COUNT; op++, r += 3) {
        json_t *e = json_object();
        json_object_set_new(e, "calls", json_integer((json_int_t)r[0]));
        json_object_set_new(e, "bytes", json_integer((json_int_t)r[1]));
        json_object_set_new(e, "seconds", json_real(r[2]));
        json_object_set_new(o, comm_op_names[op], e);
    }
    return o;
}

static json_t *rank_json(int rank, const double *rec)
{
    static const char *const role_names[] = {"colocated", "learner", "rollout"};
    json_t *o = json_object(), *ph = json_object(), *comm = json_object();
    json_object_set_new(o, "rank", json_integer(rank));
    json_object_set_new(o, "role", json_string(role_names[(int)rec[REC_ROLE]]));
    for (int p = 0; p < PH_COUNT; p++) json_object_set_new(ph, train_phase_names[p], json_real(rec[REC_PHASES + p]));
    json_object_set_new(o, "phases", ph);
    json_object_set_new(o, "total_s", json_real(rec[REC_TOTAL]));
    json_object_set_new(o, "setup_s", json_real(rec[REC_SETUP]));
    json_object_set_new(comm, "learn", counters_json(rec + REC_COMM));
    json_object_set_new(comm, "sync", counters_json(rec + REC_COMM + COMM_OP_COUNT * 3));
    json_object_set_new(o, "comm", comm);
    return o;
}

static json_t *model_json(const struct train_comm_model *m, int64_t versions)
{
    json_t *o = json_object();
    for (int op = 0; op < COMM_OP_COUNT; op++) {
        json_t *e = json_object();
        json_object_set_new(e, "payload_bytes_per_step", json_real(m->payload[op]));
        json_object_set_new(e, "wire_bytes_per_step_per_rank", json_real(m->wire[op]));
        json_object_set_new(o, comm_op_names[op], e);
    }
    json_object_set_new(o, "optim_steps_per_step", json_integer(m->optim_steps));
    json_object_set_new(o, "broadcast_bytes_per_version", json_integer(m->version_bytes));
    json_object_set_new(o, "versions_broadcast", json_integer(versions));
    return o;
}

static json_t *timing_json(const struct trainer *tr, const double *all, double wall, int preempted)
{
    const struct cfg *c = tr->cfg;
    struct train_comm_model m;
    model_of(tr, &m);
    int64_t steps = tr->step - tr->start_step;
    json_t *o = json_object(), *ranks = json_array();
    json_object_set_new(o, "np", json_integer(tr->world.size));
    json_object_set_new(o, "learners", json_integer(tr->n_learners));
    json_object_set_new(o, "rollout_ranks", json_integer(tr->n_rollout));
    json_object_set_new(o, "steps", json_integer(steps));
    json_object_set_new(o, "start_step", json_integer(tr->start_step));
    json_object_set_new(o, "preempted", json_boolean(preempted));
    json_object_set_new(o, "wall_s", json_real(wall));
    json_object_set_new(o, "params", json_integer(m.params));
    json_object_set_new(o, "questions_per_step", json_integer(c->data.rollout_batch_size));
    json_object_set_new(o, "samples_per_step", json_integer(c->data.rollout_batch_size * c->rollout.n));
    json_object_set_new(o, "sync_interval", json_integer(c->cluster.sync_interval));
    json_object_set_new(o, "max_staleness", json_integer(c->cluster.max_staleness));
    json_object_set_new(o, "model", model_json(&m, train_comm_versions(tr, tr->step)));
    for (int r = 0; r < tr->world.size; r++) json_array_append_new(ranks, rank_json(r, all + (size_t)r * REC_LEN));
    json_object_set_new(o, "ranks", ranks);
    return o;
}

void train_timing_write(struct trainer *tr, double total_s, int preempted)
{
    double rec[REC_LEN];
    record_fill(tr, total_s, rec);
    int root = tr->world.rank == 0;
    double *all = root ? mmupt_xmalloc((size_t)tr->world.size * REC_LEN * sizeof *all) : NULL;
    if (MPI_Gather(rec, REC_LEN, MPI_DOUBLE, all, REC_LEN, MPI_DOUBLE, 0, tr->world.mpi) != MPI_SUCCESS) {
        log_warn(&tr->lg, "timing.json: gathering the ranks' times failed; not written");
        free(all);
        return;
    }
    if (!root) return;
    double wall = 0;
    for (int r = 0; r < tr->world.size; r++)
        if (all[(size_t)r * REC_LEN + REC_TOTAL] > wall) wall = all[(size_t)r * REC_LEN + REC_TOTAL];
    json_t *doc = timing_json(tr, all, wall, preempted);
    free(all);
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(doc);
    char path[CFG_STR_MAX + 16];
    train_run_path(tr->cfg, "timing.json", path, sizeof path);
    struct mmupt_err err;
    if (!text) log_warn(&tr->lg, "%s: cannot serialise the timing record", path);
    else if (file_write_atomic(path, text, strlen(text), &err)) log_warn(&tr->lg, "%s", err.msg);
    free(text);
}
