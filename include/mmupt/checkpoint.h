/* Checkpoints: everything a training run needs to continue exactly where it stopped.
 *
 * Layout of checkpoint.dir (docs/checkpoints.md has the full format):
 *   latest                       "step-00000012\n": the newest complete checkpoint (atomically replaced)
 *   step-00000012/model.h5       written by learner 0: weights by HF name, the resolved config,
 *                                data cursors, counters, behaviour snapshots, reference-model pointer
 *   step-00000012/optim-00001-of-00002.h5   written by learner 1: its ZeRO-1 shard of the Adam moments
 * A checkpoint is written into step-N.partial and renamed when every file is complete and fsynced;
 * `latest` is replaced only after that, and older checkpoints are pruned (keep_last) only after
 * that, so the last good checkpoint survives any failure while writing the next one.
 *
 * Every dataset carries a `sum64` attribute, a checksum of its bytes, verified whenever it is read:
 * a flipped byte is an error naming the file and dataset, never silently loaded. */
#ifndef MMUPT_CHECKPOINT_H
#define MMUPT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"
#include "mmupt/model.h"

/* 2 (2026-11-27): the parameter table keeps each decoder layer's q, k and v weights back to back,
 * then their biases, and each vision block's gate and up weights, then their biases
 * (src/model/spec.c); the flat arrays (Adam's moments, snapshots) of format 1 follow the old order
 * (q_w, q_b, k_w, ...), so a format-1 checkpoint is refused, not misread. */
#define CKPT_FORMAT_VERSION 2
#define CKPT_PATH_MAX 4096
#define CKPT_MAX_SNAPS 64

/* One question stream's position (struct ds_cursor + the loader's counters). */
struct ckpt_cursor {
    int64_t epoch, position, served, skipped;
};

/* Everything in model.h5 except the weights and snapshots. */
struct ckpt_meta {
    int64_t format;           /* CKPT_FORMAT_VERSION */
    int64_t step;             /* rollout steps completed; the run continues with this step */
    int64_t policy_version;   /* version of the saved weights */
    int64_t optim_steps;      /* optimizer steps taken (the learning-rate schedule's position) */
    int64_t optim_t;          /* Adam's applied-step count (skipped steps do not count) */
    int64_t n_params;         /* floats in the flat parameter buffer */
    int n_learners;           /* learners the moments were sharded over = files optim-*-of-N */
    char arch[32];            /* model_arch_name */
    char model_path[CKPT_PATH_MAX]; /* where the reference (initial) weights come from */
    uint64_t ref_sum;         /* ckpt_sum64 of those initial weights, to notice if they changed */
    char *config_yaml;        /* the resolved config (owned; ckpt_meta_free) */
    int n_cursors;            /* one per learner stream */
    struct ckpt_cursor *cursors; /* owned */
    int n_snaps;              /* behaviour-policy snapshots stored (max_staleness >= 1) */
    int64_t snap_version[CKPT_MAX_SNAPS];
};

void ckpt_meta_free(struct ckpt_meta *m);

/* A fast, non-cryptographic 64-bit checksum of n bytes (four independent multiply-mix lanes over
 * 8-byte words): catches corruption, not tampering. */
uint64_t ckpt_sum64(const void *data, size_t n);

/* ---- writing (the trainer calls these in this order; see train/ckpt.c) ---- */

/* Paths: DIR/step-%08lld and DIR/step-%08lld.partial. */
void ckpt_step_dir(const char *dir, int64_t step, int partial, char *out, size_t n);
/* Learner 0: create dir (and parents) and a fresh, empty step-N.partial inside it. */
int ckpt_begin(const char *dir, int64_t step, struct mmupt_err *err);
/* Any learner: write and fsync partial/optim-RRRRR-of-NNNNN.h5 with the shard [lo, hi) of n. */
int ckpt_write_optim(const char *partial, int rank, int n_learners, size_t lo, size_t hi, size_t n, const float *m,
                     const float *v, int64_t t, struct mmupt_err *err);
/* Learner 0: write and fsync partial/model.h5. snaps[i] holds meta->snap_version[i]'s weights. */
int ckpt_write_model(const char *partial, const struct model_spec *spec, const float *params,
                     const struct ckpt_meta *meta, const float *const *snaps, struct mmupt_err *err);
/* Learner 0, after every learner's files are complete: rename partial to step-N (an existing step-N,
 * from a run that resumed before it, is replaced only after the rename), point `latest` at it, and
 * delete the oldest complete checkpoints beyond keep_last. */
int ckpt_commit(const char *dir, int64_t step, int keep_last, struct mmupt_err *err);
/* Remove a step-N.partial after a failure (best effort). */
void ckpt_abandon(const char *dir, int64_t step);

/* ---- reading ---- */

/* The newest complete checkpoint under dir, from `latest`: its path in out. Returns 1 when found,
 * 0 when dir has no `latest` (nothing to resume), -1 when `latest` is unreadable or names a missing
 * or incomplete checkpoint. */
int ckpt_find_latest(const char *dir, char *out, size_t n, struct mmupt_err *err);
/* Parse the text of a `latest` file ("step-00000012\n"): the step, or -1 with err set. */
int64_t ckpt_parse_latest(const char *text, size_t len, struct mmupt_err *err);
int ckpt_read_meta(const char *ckpt, struct ckpt_meta *meta, struct mmupt_err *err);
/* Every parameter of spec by name, shape-checked and checksum-verified, into params. */
int ckpt_read_weights(const char *ckpt, const struct model_spec *spec, float *params, struct mmupt_err *err);
/* The flat snapshot of policy version `version` (n_params floats). */
int ckpt_read_snapshot(const char *ckpt, int64_t version, int64_t n_params, float *out, struct mmupt_err *err);
/* This learner's moments for its shard [lo, hi) of n, from the saved_learners shard files, which
 * may be a different count than now (the shards overlapping [lo, hi) are read whole, verified and
 * cut: resharding; a saved shard inside [lo, hi), the usual case, is read straight into place).
 * Like ckpt_read_weights, on an error the outputs may hold part of the data: a failed resume ends. */
int ckpt_read_optim(const char *ckpt, int saved_learners, size_t lo, size_t hi, size_t n, float *m, float *v,
                    int64_t *t, struct mmupt_err *err);

#endif
