/* mmupt train: the MM-UPT training job (src/train). Every rank parses the config; the exit status
 * says how it ended (0, 1 error, 75 preempted after a checkpoint). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mmupt/config.h"
#include "mmupt/log.h"
#include "mmupt/train.h"

static const char usage[] =
    "usage: mmupt train FILE.yaml [--resume] [section.key=value ...]\n"
    "       mpirun -np N mmupt train FILE.yaml [--resume] [section.key=value ...]\n"
    "\n"
    "Run MM-UPT: rollout ranks sample rollout.n answers per question, learners reward each answer by\n"
    "majority vote and update the policy with GRPO. Overrides use the keys of `mmupt config --list`,\n"
    "e.g.  mmupt train configs/quickstart.yaml rollout.n=10 optim.lr=1e-6\n"
    "\n"
    "  --resume   continue from the latest checkpoint in checkpoint.dir (checkpoint.resume=auto);\n"
    "             without one, start from step 1\n"
    "\n"
    "Layout: cluster.rollout_ranks=R makes the last R ranks rollout ranks (0: every rank does both).\n"
    "Checkpoints: every checkpoint.interval steps, at the end, and on SIGUSR1 or SIGTERM, after which\n"
    "the job exits with status 75 (requeue it with --resume). Send SIGUSR1 to mpirun (it forwards it;\n"
    "Open MPI turns a SIGTERM to mpirun into killing the ranks) or SIGTERM to the ranks themselves.\n"
    "GPUs (cluster.backend=cuda): the device path's switches come from the environment, e.g.\n"
    "MMUPT_ATTENTION=cudnn|cublas|flash (default cudnn) and MMUPT_GEMM_TUNE=0|1 - each checked at start,\n"
    "listed with what was measured in docs/running-at-scale.md (mpirun: pass them with -x).\n"
    "\n"
    "Exit status: 0 done, 1 error (the message says which rank and why), 2 bad command line,\n"
    "75 stopped by a signal after saving a checkpoint.\n";

int cmd_train(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return MMUPT_EXIT_OK;
    }
    struct cli_config_args a;
    const char *flags[1];
    int n_flags;
    if (cli_split_args("train", argc, argv, &a, flags, 1, &n_flags)) return MMUPT_EXIT_USAGE;
    int resume = n_flags == 1 && strcmp(flags[0], "--resume") == 0;
    if (n_flags && !resume) {
        cli_error("train", "unknown option '%s'\n\n%s", flags[0], usage);
        return MMUPT_EXIT_USAGE;
    }
    if (!a.path) {
        cli_error("train", "a config file is required\n\n%s", usage);
        return MMUPT_EXIT_USAGE;
    }
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* Every rank parses the same file and gets the same verdict, so no rank waits on another;
     * only rank 0 reports an input error, once. */
    struct cfg *c = mmupt_xmalloc(sizeof *c);
    struct mmupt_err err;
    int rc = MMUPT_EXIT_ERROR;
    if (cfg_resolve(c, a.path, a.n_overrides, a.overrides, &err)) {
        if (rank == 0) cli_error("train", "%s", err.msg);
        rc = MMUPT_EXIT_ERROR;
    } else {
        if (resume) c->checkpoint.resume = 1; /* "auto" */
        struct log_ctx lg;
        log_init(&lg, (enum log_level)c->logging.level, rank, stderr);
        lg.only_rank0 = 1;
        log_info(&lg, "config %s ok: run '%s', %d rank(s), rollout_ranks=%lld, rollout.n=%lld, reward=%s", a.path,
                 c->run.name, size, (long long)c->cluster.rollout_ranks, (long long)c->rollout.n,
                 cfg_enum_name(cfg_find("reward.mode"), c->reward.mode));
        if (c->cluster.rollout_ranks >= size) {
            if (rank == 0)
                cli_error("train",
                          "cluster.rollout_ranks=%lld leaves no learner among %d rank(s): start more ranks "
                          "(mpirun -np N) or set cluster.rollout_ranks=0 (colocated)",
                          (long long)c->cluster.rollout_ranks, size);
            rc = MMUPT_EXIT_ERROR;
        } else {
            int tr_rc = train_run(c, &err);
            rc = tr_rc == 0 ? MMUPT_EXIT_OK : tr_rc == TRAIN_PREEMPTED ? MMUPT_EXIT_PREEMPTED : MMUPT_EXIT_ERROR;
            if (tr_rc == TRAIN_FAILED || tr_rc == TRAIN_SETUP_FAILED) cli_error("train", "[rank %d] %s", rank, err.msg);
            if (tr_rc == TRAIN_FAILED && size > 1) {
                /* Other ranks may be waiting in a collective: end the whole job, naming the problem. */
                fflush(stderr);
                MPI_Abort(MPI_COMM_WORLD, MMUPT_EXIT_ERROR);
            }
        }
    }
    free(c);
    MPI_Finalize();
    return rc;
}
