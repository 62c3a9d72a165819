/* The MM-UPT trainer behind `mmupt train` (MPI must be initialised by the caller). */
#ifndef MMUPT_TRAIN_H
#define MMUPT_TRAIN_H

#include "mmupt/config.h"

/* Run the whole training described by c. Colocated mode only (cluster.rollout_ranks = 0) so far. */
int train_run(const struct cfg *c, struct mmupt_err *err);

#endif
