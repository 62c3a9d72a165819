/* HDF5 helpers shared by the modules that read and write HDF5 files (datasets, checkpoints). */
#ifndef MMUPT_H5UTIL_H
#define MMUPT_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

/* HDF5 prints its error stack on stderr by default; library code must not print. A quiet section
 * saves the current handler, switches printing off, and puts the handler back at the end. */
struct h5_quiet {
    H5E_auto2_t func;
    void *data;
};
void h5_quiet_begin(struct h5_quiet *q);
void h5_quiet_end(const struct h5_quiet *q);

/* The innermost message of HDF5's current error stack ("truncated file: eof = ..."), or "unknown
 * HDF5 error"; call it right after the failing HDF5 call. */
void h5_error_msg(char *buf, size_t n);

#endif
