/* The MPI-aware fatal path: rank 1 dies while rank 0 waits in a barrier. The job must end (not
 * hang) with a non-zero status and a message naming the rank and source line; every rank logs a
 * rank-tagged line first. Driven by tests/mpi/test_mpi.sh under mpirun. */
#include <mpi.h>

#include "mmupt/err.h"
#include "mmupt/log.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct log_ctx lg;
    log_init(&lg, LOG_INFO, mmupt_world_rank(), stderr);
    log_info(&lg, "hello from rank %d", rank);
    MPI_Barrier(MPI_COMM_WORLD);
    if (argc > 1 && rank == 1) MMUPT_DIE("deliberate failure on rank %d", rank);
    MPI_Barrier(MPI_COMM_WORLD); /* rank 0 would wait here forever without MPI_Abort */
    MPI_Finalize();
    return 0;
}
