/* HDF5 helpers shared by the dataset and checkpoint modules. */
#include <stdio.h>
#include <string.h>

#include "mmupt/h5util.h"

void h5_quiet_begin(struct h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_quiet_end(const struct h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

struct first_error {
    char *buf;
    size_t n;
    int found;
};

/* Walking upward, entry 0 is where HDF5 first noticed the problem: the most specific message. */
static herr_t take_first(unsigned n, const H5E_error2_t *e, void *data)
{
    struct first_error *fe = data;
    if (n != 0 || fe->found) return 0;
    if (e->desc && e->desc[0]) {
        snprintf(fe->buf, fe->n, "%s", e->desc);
    } else {
        char minor[128];
        if (H5Eget_msg(e->min_num, NULL, minor, sizeof minor) <= 0) return 0;
        snprintf(fe->buf, fe->n, "%s", minor);
    }
    fe->found = 1;
    return 0;
}

void h5_error_msg(char *buf, size_t n)
{
    struct first_error fe = {buf, n, 0};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_first, &fe);
    if (!fe.found) snprintf(buf, n, "unknown HDF5 error");
}
