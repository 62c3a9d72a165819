/* Variable-length records to rank 0: a growing byte buffer to pack one, a reader to take it apart,
 * and the gather itself (MPI_Gather of the sizes, then MPI_Gatherv of the bytes). eval and synth
 * send their per-rank results this way; each side defines its own record layout. */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "mmupt/comm.h"

void comm_buf_put(struct comm_buf *b, const void *x, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = b->cap ? 2 * b->cap : 4096;
        while (b->cap < b->n + n) b->cap *= 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) MMUPT_DIE("out of memory packing a record (%zu bytes)", b->cap);
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}

void comm_buf_free(struct comm_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void comm_reader_get(struct comm_reader *r, void *x, size_t n)
{
    MMUPT_CHECK((size_t)(r->end - r->p) >= n);
    memcpy(x, r->p, n);
    r->p += n;
}

/* Rank 0, after the sizes arrived: the displacements, or 0 when everything does not fit in one
 * MPI message (int counts and displacements). */
static int receive_layout(const int64_t *sizes, int size, int *counts, int *displs)
{
    int64_t total = 0;
    for (int k = 0; k < size; k++) {
        if (sizes[k] > INT_MAX - total) return 0;
        counts[k] = (int)sizes[k];
        displs[k] = (int)total;
        total += sizes[k];
    }
    return 1;
}

/* Every rank sends its size first and rank 0 broadcasts whether the whole fits, so a record that is
 * too large fails on every rank together instead of leaving the others waiting in the gather. */
int comm_gather_bytes(const struct comm *c, const void *mine, size_t n, char **all, size_t **lens,
                      struct mmupt_err *err)
{
    *all = NULL;
    *lens = NULL;
    int64_t mine_n = n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n, *sizes = NULL;
    int *counts = NULL, *displs = NULL, fits = 0;
    char *buf = NULL;
    if (c->rank == 0) {
        sizes = mmupt_xcalloc((size_t)c->size, sizeof *sizes);
        counts = mmupt_xcalloc((size_t)c->size, sizeof *counts);
        displs = mmupt_xcalloc((size_t)c->size, sizeof *displs);
    }
    int rc = MPI_Gather(&mine_n, 1, MPI_INT64_T, sizes, 1, MPI_INT64_T, 0, c->mpi);
    if (rc == MPI_SUCCESS && c->rank == 0) fits = receive_layout(sizes, c->size, counts, displs);
    if (rc == MPI_SUCCESS) rc = MPI_Bcast(&fits, 1, MPI_INT, 0, c->mpi);
    if (rc == MPI_SUCCESS && fits) {
        if (c->rank == 0) {
            size_t total = (size_t)displs[c->size - 1] + (size_t)counts[c->size - 1];
            buf = mmupt_xmalloc(total ? total : 1);
        }
        rc = MPI_Gatherv(mine, (int)n, MPI_BYTE, buf, counts, displs, MPI_BYTE, 0, c->mpi);
    }
    if (rc == MPI_SUCCESS && fits && c->rank == 0) {
        *lens = mmupt_xcalloc((size_t)c->size, sizeof **lens);
        for (int k = 0; k < c->size; k++) (*lens)[k] = (size_t)sizes[k];
        *all = buf;
        buf = NULL;
    }
    free(buf);
    free(sizes);
    free(counts);
    free(displs);
    if (rc != MPI_SUCCESS) return mmupt_fail(err, "MPI error %d", rc);
    if (!fits)
        return mmupt_fail(err, "the records (this rank's: %zu bytes) add up to more than one MPI message carries "
                               "(2 GiB)", n);
    return 0;
}

int comm_gather_records(const struct comm *c, struct comm_buf *mine, comm_merge_fn merge, void *ctx,
                        struct mmupt_err *err)
{
    char *all;
    size_t *lens;
    int rc = comm_gather_bytes(c, mine->p, mine->n, &all, &lens, err);
    comm_buf_free(mine);
    if (rc == 0 && all) merge(ctx, all, lens, c->size);
    free(all);
    free(lens);
    return rc;
}
