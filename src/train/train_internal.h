/* Shared by the files of the trainer. */
#ifndef MMUPT_TRAIN_INTERNAL_H
#define MMUPT_TRAIN_INTERNAL_H

#include "mmupt/comm.h"
#include "mmupt/config.h"
#include "mmupt/loader.h"
#include "mmupt/log.h"
#include "mmupt/metrics.h"
#include "mmupt/model.h"
#include "mmupt/model_dev.h"
#include "mmupt/optim.h"
#include "mmupt/reward.h"
#include "mmupt/ring.h"
#include "mmupt/train.h"

struct tb_writer;

/* What a rank does. Colocated: rolls out its own questions and learns (cluster.rollout_ranks = 0).
 * Split mode: world ranks 0 .. L-1 are learners, L .. L+R-1 rollout ranks. */
enum train_role { TRAIN_COLOCATED, TRAIN_LEARNER, TRAIN_ROLLOUT };

/* Where a rank's time goes; idle phases are the waits (train.c prints the table at the end). */
enum train_phase {
    PH_LOAD,         /* building prompts: dataset read, image decode, tokenize */
    PH_ROLLOUT,      /* sampling */
    PH_REWARD,       /* answer extraction, votes, advantages */
    PH_LOGPROB,      /* old (behaviour) and reference log-probs */
    PH_UPDATE,       /* forward, loss, backward, optimizer (its collectives included) */
    PH_SYNC,         /* copying and sending weights to rollout ranks */
    PH_VALIDATE,     /* rank 0: evaluating on data.val_path */
    PH_WAIT_DATA,    /* idle: a learner waiting for trajectories */
    PH_WAIT_CREDIT,  /* idle: a rollout rank waiting for ring space */
    PH_WAIT_WEIGHTS, /* idle: a rollout rank waiting for a policy version */
    PH_COUNT
};

extern const char *const train_phase_names[PH_COUNT];

/* A copy of the weights at one policy version: the behaviour policy of lagging trajectories (when
 * max_staleness >= 1) and, on learner 0, the buffer a weight broadcast reads from. */
struct weight_snap {
    int64_t version;
    int64_t header;    /* what learner 0 broadcasts ahead of the weights: the version */
    float *w;
    MPI_Request *req;  /* the broadcast's requests (learner 0), one per piece */
    int n_req;
};

#define TRAIN_MAX_SNAPS 64

/* Gradient buckets (buckets.c): the learners' reduce-scatter during the backward pass. */
struct grad_range {
    int64_t lo, hi; /* [lo, hi) of the flat gradient */
};

struct grad_buckets {
    int armed;               /* the current backward reports its stages */
    int64_t size;            /* floats: a bucket is sent once its finished ranges reach this */
    struct grad_range *r;    /* finished ranges not sent yet, ascending, none touching another */
    int n, cap;
    int64_t reported, sent;  /* floats finished this step, and sent */
    long long sends;         /* windows sent over the run */
    int failed;
};

/* cluster.weight_broadcast=device (wbcast.c): new weights GPU to GPU, after a handshake. */
struct weight_bcast {
    int on;                 /* agreed by learner 0 and every rollout rank at the start */
    struct comm dev;        /* the sync ranks again, with NCCL when it started (else: staged) */
    int dev_split;
    int late;               /* test hook MMUPT_TEST_WBCAST_LATE=1: every version goes the host way */
    int failed;             /* a poll failed (learner 0): err says how */
    struct mmupt_err err;
    /* learner 0 */
    int64_t pending;        /* a version due that waits for every rollout rank to ask (0: none) */
    int64_t asked_v;        /* the newest version asked for, */
    int asked_n;            /* and by how many rollout ranks */
    int64_t asks, headers;  /* requests taken, headers posted: each header answers one per rollout rank */
    int64_t header;         /* the last device broadcast's header */
    MPI_Request header_req;
    int in_flight;          /* an NCCL broadcast may still read dev_current: the next update waits */
    long long n_device, n_host;
    /* rollout rank */
    int64_t ask;
    MPI_Request ask_req;
};

struct trainer {
    const struct cfg *cfg;
    enum train_role role;
    struct comm world;
    struct comm learn;          /* the learners (colocated: every rank): gradients, optimizer, metrics */
    struct comm sync;           /* learner 0 + the rollout ranks: weight broadcasts (split mode only) */
    struct ring *ring;          /* split mode: rollout ranks produce, learners consume */
    int n_learners, n_rollout;  /* L and R */
    int learner;                /* this rank's learner index, -1 on a rollout rank */
    struct log_ctx lg;
    struct model model;
    float *ref_params;          /* the frozen initial weights for the KL term (NULL without KL) */
    struct tok *tok;
    struct ds_reader *ds;
    struct ds_reader *val_ds;   /* rank 0, when run.val_interval > 0 */
    double val_best;            /* rank 0: the best validation greedy pass@1 so far (-1: none yet) */
    int64_t val_best_step;      /* ... and the step after which it was measured (0: before training) */
    struct prompt_builder pb;
    struct prompt_loader *streams; /* one question stream per learner (a rollout rank uses several) */
    struct optim opt;
    struct metrics_writer metrics;
    struct tb_writer *tb;
    int32_t stop_ids[8];
    int n_stop;
    int64_t step, total_steps, optim_steps_done, optim_steps_total;
    int q_per_learner;          /* questions per learner per rollout step */
    int64_t version;            /* policy version of the weights this rank holds */
    int64_t start_step;         /* 0, or the step a resumed run continues with */
    int64_t last_sent;          /* learner 0: the newest version broadcast (or received before a restart) */
    int64_t stop_header;        /* learner 0: -1, broadcast instead of a version on preemption */
    MPI_Request stop_req;
    int stop_sent;
    uint64_t ref_sum;           /* ckpt_sum64 of the initial weights (the reference model) */
    struct weight_snap snaps[TRAIN_MAX_SNAPS];
    int n_snaps;
    struct ring_traj *pending;  /* a learner's trajectories that arrived early (later steps) */
    int n_pending, cap_pending;
    int64_t regenerated;        /* trajectories refused as too stale */
    double phase[PH_COUNT];     /* seconds per phase on this rank */
    double setup_s;             /* seconds from train_run's start until the first step could begin */
    struct comm_counters learn_counters; /* what tr->learn's collectives moved (learners, colocated ranks) */
    struct comm_counters sync_counters;  /* weight broadcasts: sent (learner 0) or received (rollout ranks) */
    /* The device (src/train/device.c), when on_device: */
    int on_device;
    struct gpu_ctx gpu;
    struct model_dev dev;       /* dev.params points at one of the three weight sets below */
    float *dev_current, *dev_ref, *dev_other;
    /* model.dtype = bf16: each set's bf16 copy (dev.params_bf16 follows dev.params); NULL in fp32 */
    uint16_t *dev16_current, *dev16_ref, *dev16_other;
    int dev_stale;              /* tr->model.params changed since dev_current was uploaded */
    float *dev_m, *dev_v;       /* the shard's Adam moments on the device */
    float *dev_gbuf;            /* the shard's summed gradient (several learners) */
    struct comm learn_dev;      /* the learners again, with NCCL on device buffers when it started */
    int learn_dev_tried, learn_dev_split;
    struct grad_buckets buckets; /* cluster.grad_bucket_mb > 0 */
    struct weight_bcast wbc;    /* cluster.weight_broadcast=device */
    /* Test hook, MMUPT_TEST_NONFINITE=STEP:LEARNER (docs/testing.md): on that learner, the last
     * micro-batch of step STEP's first optimizer step gets a NaN log-prob, as a model gone
     * non-finite would give it - the skipped-update path end to end. fault_step 0: off. */
    int64_t fault_step;
    int fault_learner;
    int dev_opt_stale;          /* the host moments (a restore) are newer than dev_m/dev_v */
    int host_opt_stale;         /* dev_m/dev_v are newer than the host's (device steps since a pull) */
    int host_stale;             /* dev_current is newer than tr->model.params (train_host_weights) */
    int graph_warned;           /* the decode graphs' failure was logged */
};

struct train_question {
    struct prompt_item prompt;
    struct ds_item item;
    int len;
    int64_t *ids64;
};

struct train_sample {
    int32_t *ids;               /* response tokens */
    float *logp;                /* the sampler's log-probs of them (sent over the ring) */
    int n;
    float reward, adv;
};

struct step_data {
    int n_q, G;
    struct train_question *q;
    struct train_sample *samples; /* [n_q * G] */
    struct reward_stats stats;
    int64_t tokens;             /* response tokens on this rank */
};

/* One validation (train_validate), logged with the step's metrics. */
struct train_val {
    int done;
    double greedy, pass1, maj;
};

struct train_losses {
    double loss, pg_loss, kl, entropy, clip_frac;
};

/* questions.c: a SplitMix64 finaliser of (seed, k): independent streams from one master seed. */
uint64_t train_mix_seed(uint64_t seed, uint64_t k);
/* The sampler's seed: run.seed (the master) combined with rollout.seed. */
static inline uint64_t train_rollout_seed(const struct cfg *c)
{
    return train_mix_seed((uint64_t)c->run.seed, (uint64_t)c->rollout.seed);
}

/* setup.c */
int train_open(struct trainer *tr, const struct cfg *c, struct mmupt_err *err);
/* A path relative to run.output_dir unless absolute. */
void train_run_path(const struct cfg *c, const char *name, char *out, size_t n);
/* Collective over world: 0 when ok on every rank; else TRAIN_SETUP_FAILED on a failed rank that
 * should report (its message differs from rank 0's, or it is rank 0) and TRAIN_PEER_SETUP_FAILED on
 * the others, so the job ends normally with one message per distinct problem. */
int train_agree(struct trainer *tr, int ok, struct mmupt_err *err);
void train_close(struct trainer *tr);

/* questions.c: the step's questions. Learner (or colocated rank) l's stream gives it
 * q_per_learner questions per step; a rollout rank serves a contiguous range of the step's
 * L * q_per_learner questions (stream-major) and so walks the streams that range touches. */
void step_init(struct step_data *d, int n_q, int G);
void train_step_free(struct step_data *d);
int train_collect_questions(struct trainer *tr, struct step_data *d, struct mmupt_err *err);
void train_rollout_range(const struct trainer *tr, int64_t *lo, int64_t *hi);
int train_collect_range(struct trainer *tr, int64_t lo, int64_t hi, struct step_data *d, struct mmupt_err *err);
int train_rollout(struct trainer *tr, struct step_data *d, int64_t policy_version, struct mmupt_err *err);

/* sync.c: the policy-version schedule and moving weights to rollout ranks. */
int64_t train_rollout_version(const struct trainer *tr, int64_t step);
/* Learners, whenever the weights became version tr->version (at the start, and after each step):
 * keep a snapshot if a lagging rollout will use this version, and learner 0 broadcasts it if due. */
int train_after_update(struct trainer *tr, int64_t next_step, struct mmupt_err *err);
const float *train_behaviour_params(const struct trainer *tr, int64_t step);
/* Rollout ranks: receive versions up to `version`; 1 when the learners said stop instead. */
int train_receive_version(struct trainer *tr, int64_t version, struct mmupt_err *err);
/* Learner 0: tell the rollout ranks to stop, if they still expect a version. */
void train_sync_stop(struct trainer *tr);
/* After a resume: learner 0 re-sends the versions after rollout_version up to its own. */
int train_sync_resume(struct trainer *tr, int64_t rollout_version, struct mmupt_err *err);
struct weight_snap *train_snap_add(struct trainer *tr, int64_t version, struct mmupt_err *err);
int train_sync_finish(struct trainer *tr, struct mmupt_err *err);
void train_snaps_free(struct trainer *tr);
/* The fp32 weights' bytes; one policy version's payload either way: the int64 header and those
 * weights (timing.json's). */
size_t train_weight_bytes(const struct trainer *tr);
uint64_t train_version_bytes(const struct trainer *tr);
/* Learner 0: send version u the host way (its snapshot, made now if there is none). */
int train_sync_send_host(struct trainer *tr, int64_t u, struct mmupt_err *err);
/* Poll n requests until done: 0, or -1 after cluster.timeout_s. */
int train_wait_requests(struct trainer *tr, MPI_Request *req, int n);

/* wbcast.c: cluster.weight_broadcast=device. open: collective over the sync ranks (others return at
 * once), after the device is open. A header with WBCAST_DEVICE set announces a device broadcast. */
#define WBCAST_DEVICE ((int64_t)1 << 62)
int train_wbcast_open(struct trainer *tr, struct mmupt_err *err);
/* Learner 0: take the requests that arrived; broadcast the pending version if every rollout rank
 * asked for it. Cheap; called wherever learner 0 waits and between micro-batches. */
void train_wbcast_poll(struct trainer *tr);
/* Learner 0, before every optimizer step: the pending version goes the host way if nobody asked
 * yet, and a broadcast in flight is waited for (the step overwrites what it reads). */
int train_wbcast_before_update(struct trainer *tr, struct mmupt_err *err);
/* Rollout rank: ask learner 0 for `version` (before waiting for its header), and receive the
 * weights a device header announced. */
int train_wbcast_ask(struct trainer *tr, int64_t version, struct mmupt_err *err);
int train_wbcast_receive(struct trainer *tr, int64_t version, struct mmupt_err *err);
/* End of run, learner 0 and rollout ranks: every request answered and taken, nothing in flight. */
int train_wbcast_finish(struct trainer *tr, struct mmupt_err *err);
/* Learner 0: one line on how the versions went. */
void train_wbcast_report(const struct trainer *tr);

/* split.c: the rollout ranks' loop and the learners' side of the ring. */
int train_rollout_rank_run(struct trainer *tr, struct mmupt_err *err);
int train_receive_step(struct trainer *tr, struct step_data *d, struct mmupt_err *err);
int train_ring_end(struct trainer *tr, struct mmupt_err *err);

/* ckpt.c: checkpoints (learners write; every rank reads on resume) and the stop signals. */
int train_checkpoint(struct trainer *tr, struct mmupt_err *err);
int train_resume(struct trainer *tr, struct mmupt_err *err);
void train_signals_install(void);
int train_stop_signal(void);

/* validate.c */
int train_val_due(const struct trainer *tr);
int train_validate(struct trainer *tr, struct train_val *out, struct mmupt_err *err);
/* A validation's three values into the metrics record being written; as TensorBoard scalars at step. */
void train_val_metrics(struct trainer *tr, const struct train_val *val);
void train_val_tb(struct trainer *tr, int64_t step, const struct train_val *val);
/* Rank 0 with validation on, at step 0 of a fresh run: validate the initial policy (logged as step 0). */
int train_validate_initial(struct trainer *tr, struct mmupt_err *err);
/* Remember `val` measured after `step` if it is the best so far, in run.output_dir/best_val_step. */
int train_val_record(struct trainer *tr, int64_t step, const struct train_val *val, struct mmupt_err *err);
/* After resuming at `step`: take back the best-validation record unless it is from a later step. */
void train_val_restore(struct trainer *tr, int64_t step);

/* commmodel.c: the communication each training step issues, computed from the config (exact for
 * the payload, a ring-algorithm estimate for the wire), and timing.json (model beside measurement).
 * Payload bytes per step; the broadcast's is one policy version's bytes / sync_interval. */
struct train_comm_model {
    int64_t params;
    int learners, rollout_ranks;
    int64_t optim_steps;                /* optimizer steps per training step */
    int64_t version_bytes;              /* one weight broadcast: int64 header + fp32 weights (0: colocated) */
    double payload[COMM_OP_COUNT];      /* bytes per training step, as the code issues them */
    double wire[COMM_OP_COUNT];         /* bytes per training step one rank sends under ring algorithms */
};
void train_comm_model(const struct cfg *c, int64_t params, int learners, int rollout_ranks, struct train_comm_model *m);
/* Rank 0: one info line with the model. */
void train_comm_model_log(struct trainer *tr);
/* The policy versions learner 0 broadcasts while this invocation runs steps [start_step, steps_end). */
int64_t train_comm_versions(const struct trainer *tr, int64_t steps_end);
/* Collective over world, at the end of a run (also a preempted one): rank 0 gathers every rank's
 * phase times and counters and writes run.output_dir/timing.json atomically. A failure is logged
 * as a warning: the training itself succeeded. */
void train_timing_write(struct trainer *tr, double total_s, int preempted);

/* learn.c */
void train_rewards(struct trainer *tr, struct step_data *d);
int train_update(struct trainer *tr, struct step_data *d, struct train_losses *l, double *lr, double *norm,
                 int *skipped, struct mmupt_err *err);

/* The device path (device.c): pick the backend (cluster.backend; before anything is loaded), then
 * start the device model once the model is open (a no-op on the CPU backend). train_weights_changed marks tr->model.params as written on the host;
 * train_device_use makes `params` (the current, reference or a snapshot weight set) the device
 * model's weights before a forward pass. */
int train_device_pick(struct trainer *tr, struct mmupt_err *err);
int train_device_open(struct trainer *tr, struct mmupt_err *err);
void train_device_close(struct trainer *tr);
void train_weights_changed(struct trainer *tr);
void train_device_use(struct trainer *tr, const float *params);
/* The optimizer step of learn.c: on the device when the run is (the host weights are updated too),
 * else the host ZeRO-1 step. poisoned: a micro-batch
 * had non-finite inputs, so the norm must come out NaN and the step be skipped. optim_step's
 * return values. train_device_pull_optim brings device moments to the host (checkpoints). */
int train_optim_step(struct trainer *tr, const struct optim_config *oc, double lr, int poisoned, double *norm);
void train_device_pull_optim(struct trainer *tr);
/* Several learners on the device: NCCL opened (first call) and the shard's moments and gradient
 * buffer ready; train_device_reduce_range reduce-scatters gradients [a, b) into the shard's buffer
 * (NCCL: queued behind the compute stream's work, done at train_device_reduce_wait; staged through
 * the host over MPI: done on return). -1 when a collective fails. */
void train_device_shard_ready(struct trainer *tr);
int train_device_reduce_range(struct trainer *tr, size_t a, size_t b);
int train_device_reduce_wait(struct trainer *tr);
/* Gradient buckets (buckets.c): arm before the backward of an optimizer step's last micro-batch (a
 * no-op unless cluster.grad_bucket_mb > 0 on the device path with several learners); the optimizer
 * step then calls train_buckets_finish for the rest and the wait (-1: a collective failed).
 * disarm: stop without sending (a step that failed). */
void train_buckets_arm(struct trainer *tr);
int train_buckets_finish(struct trainer *tr);
void train_buckets_disarm(struct trainer *tr);
void train_buckets_free(struct grad_buckets *b);
/* Say at the start what cluster.grad_bucket_mb will do on this rank, and at the end how many
 * windows went. */
void train_buckets_plan(const struct trainer *tr);
void train_buckets_report(const struct trainer *tr);
/* Bring the current weights to tr->model.params when a device step left them only on the device
 * (the copy is lazy: PCIe time only for checkpoints, broadcasts, snapshots and the final checksum).
 * Every reader of the host weights' VALUES calls it first; pointer comparisons need not. */
void train_host_weights(struct trainer *tr);
/* FNV-1a of the weights this rank holds (the device's when they are newer): the end-of-run line's. */
uint64_t train_weights_checksum(struct trainer *tr);
/* Learner 0: the device's current weights, uploaded first if the host copy is newer. */
float *train_device_live(struct trainer *tr);
/* Rollout rank: dev_current was just overwritten with `version` by a device broadcast (the host
 * copy is now the stale one; the bf16 copy is derived here). */
void train_device_received(struct trainer *tr, int64_t version);

#endif
