/* GEMM tuning choices kept in a file (MMUPT_GEMM_TUNE_FILE): which of cuBLASLt's heuristic answers
 * each bf16 GEMM shape runs. Timing picks an algorithm per shape (src/gpu/gemm_lt.c), and two runs
 * that time may pick differently and so differ in their last bits; a run that reads the file back
 * gives every shape the written choice without timing, so runs sharing the file repeat bit for bit.
 * This module is the file alone: parsed and written on every build, tested without a GPU.
 *
 * Format (text; blank lines and lines starting with '#' are skipped):
 *   mmupt-gemm-tune 1
 *   device <the GPU's name, to the end of the line>
 *   cublaslt <cublasLtGetVersion()>
 *   <ta> <tb> <m> <n> <k> <lda> <ldb> <ldc> <ctype> <beta> <bias> <align_a> <align_b> <align_c> <pick> <found>
 * one entry a shape: the 14 key fields of gemm_lt.c's plan key (transposes 0/1, sizes, leading
 * dimensions, the cudaDataType of C, whether C is read and a bias added, the operands' address
 * alignment in bytes), then the chosen answer's index among the `found` answers cuBLASLt gave
 * (0: its own first choice). The choices hold for the device and cuBLASLt version named: a reader
 * given another treats the file as empty. */
#ifndef MMUPT_GEMM_TUNE_FILE_H
#define MMUPT_GEMM_TUNE_FILE_H

#include <stddef.h>

#include "mmupt/err.h"

enum {
    GEMM_TUNE_KEY_FIELDS = 14,
    GEMM_TUNE_MAX_FOUND = 64,          /* answers a shape may list (gemm_lt.c asks for 16) */
    GEMM_TUNE_MAX_BYTES = 16 << 20,    /* a file larger than this is not one of ours */
};

struct gemm_tune_entry {
    int key[GEMM_TUNE_KEY_FIELDS];
    int pick, found;
};

struct gemm_tune_file {
    char device[256]; /* "" when nothing was read */
    int cublaslt;
    struct gemm_tune_entry *e;
    int n, cap;
};

/* text[0..len) as a tuning file named `name` (for messages: "name:LINE: field: ..."). On failure
 * *f is left empty and err says what and where. */
int gemm_tune_parse(const char *name, const char *text, size_t len, struct gemm_tune_file *f,
                    struct mmupt_err *err);
/* The file at path; a missing file is an empty *f and success (the first run writes it). */
int gemm_tune_read(const char *path, struct gemm_tune_file *f, struct mmupt_err *err);
/* *f written to path atomically (file_write_atomic: a reader sees the old file or one writer's
 * whole new one, so the ranks of a job may all write the same path). */
int gemm_tune_write(const struct gemm_tune_file *f, const char *path, struct mmupt_err *err);
/* The entry for key (GEMM_TUNE_KEY_FIELDS ints), or NULL. */
const struct gemm_tune_entry *gemm_tune_find(const struct gemm_tune_file *f, const int *key);
/* Key's choice set (added, or replaced). */
void gemm_tune_set(struct gemm_tune_file *f, const int *key, int pick, int found);
/* Every entry dropped; device and version set (a file for another device starts afresh). */
void gemm_tune_reset(struct gemm_tune_file *f, const char *device, int cublaslt);
void gemm_tune_free(struct gemm_tune_file *f);

#endif
