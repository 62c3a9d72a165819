/* Shared by the files of the trainer. */
#ifndef MMUPT_TRAIN_INTERNAL_H
#define MMUPT_TRAIN_INTERNAL_H

#include "mmupt/comm.h"
#include "mmupt/config.h"
#include "mmupt/loader.h"
#include "mmupt/log.h"
#include "mmupt/metrics.h"
#include "mmupt/model.h"
#include "mmupt/optim.h"
#include "mmupt/reward.h"

struct tb_writer;

struct trainer {
    const struct cfg *cfg;
    struct comm comm;
    struct log_ctx lg;
    struct model model;
    float *ref_params;          /* the frozen initial weights for the KL term (NULL without KL) */
    struct tok *tok;
    struct ds_reader *ds;
    struct prompt_builder pb;
    struct prompt_loader loader;
    struct optim opt;
    struct metrics_writer metrics;
    struct tb_writer *tb;
    int32_t stop_ids[8];
    int n_stop;
    int64_t step, total_steps, optim_steps_done, optim_steps_total;
    int q_per_rank;             /* questions per rank per rollout step */
};

struct train_question {
    struct prompt_item prompt;
    struct ds_item item;
    int len;
    int64_t *ids64;
};

struct train_sample {
    int32_t *ids;               /* response tokens */
    int n;
    float reward, adv;
};

struct step_data {
    int n_q, G;
    struct train_question *q;
    struct train_sample *samples; /* [n_q * G] */
    struct reward_stats stats;
    int64_t tokens;             /* generated tokens on this rank */
};

struct train_losses {
    double loss, pg_loss, kl, entropy, clip_frac;
};

int train_open(struct trainer *tr, const struct cfg *c, struct mmupt_err *err);
void train_close(struct trainer *tr);
int train_collect_questions(struct trainer *tr, struct step_data *d, struct mmupt_err *err);
void train_step_free(struct step_data *d);
void train_rewards(struct trainer *tr, struct step_data *d);
int train_update(struct trainer *tr, struct step_data *d, struct train_losses *l, double *lr, double *norm,
                 int *skipped, struct mmupt_err *err);

#endif
