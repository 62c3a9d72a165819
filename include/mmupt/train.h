/* The MM-UPT trainer behind `mmupt train` (MPI must be initialised by the caller). */
#ifndef MMUPT_TRAIN_H
#define MMUPT_TRAIN_H

#include "mmupt/config.h"

/* What train_run returns besides 0. */
enum train_result {
    TRAIN_PREEMPTED = 1,          /* stopped by SIGUSR1/SIGTERM after a checkpoint: exit MMUPT_EXIT_PREEMPTED */
    TRAIN_FAILED = -1,            /* this rank failed while others may be waiting on it: abort the job */
    TRAIN_SETUP_FAILED = -2,      /* this rank could not start; every rank knows: end normally */
    TRAIN_PEER_SETUP_FAILED = -3, /* another rank could not start (it reports why): end quietly */
};

/* Run the whole training described by c (cluster.rollout_ranks = 0: colocated; R > 0: the last R
 * ranks roll out, the others learn). 0 on success, else an enum train_result with err set. */
int train_run(const struct cfg *c, struct mmupt_err *err);

#endif
