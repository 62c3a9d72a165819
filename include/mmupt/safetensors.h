/* safetensors: read (mmap, zero copy) and write (atomic) the Hugging Face weight format.
 *
 * A file is: 8 bytes little-endian u64 N, N bytes of UTF-8 JSON header (maybe padded with spaces),
 * then the data buffer. The header maps each tensor name to {"dtype", "shape", "data_offsets"}
 * (offsets relative to the data buffer) plus an optional "__metadata__" string map. A sharded
 * model is a model.safetensors.index.json whose "weight_map" names the shard of every tensor.
 *
 * Everything read from a file is validated before use (see st_open), so arbitrary bytes give an
 * error naming the file, the tensor and the problem, never a crash.
 */
#ifndef MMUPT_SAFETENSORS_H
#define MMUPT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mmupt/err.h"

#ifdef __cplusplus
extern "C" {
#endif

enum st_dtype { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL };
#define ST_N_DTYPES 10
#define ST_MAX_DIMS 8
/* Headers larger than this are refused (the HF library's own limit is also 100 MB). */
#define ST_MAX_HEADER_BYTES (100u * 1000u * 1000u)

struct st_tensor {
    const char *name;   /* owned by the set */
    enum st_dtype dtype;
    int ndim;           /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;      /* product of shape (1 for a scalar, 0 when a dimension is 0) */
    const void *data;   /* into the mapped file: little-endian, C order, NOT necessarily aligned */
    size_t nbytes;      /* numel * st_dtype_size(dtype) */
    const char *file;   /* the shard's path, for messages */
};

/* One file the set reads from: a mapping it owns (st_open) or a caller's buffer (st_open_buffer). */
struct st_file {
    char *path;
    void *map;          /* NULL when the bytes belong to the caller */
    size_t map_len;
};

/* The tensors of a file or of a sharded model. Fields are private: use the functions below. */
struct st_set {
    struct st_tensor *tensors; /* sorted by name (strcmp), for bsearch */
    size_t n;
    struct st_file *files;
    size_t n_files;
    char **meta;               /* key, value, key, value, ...: sorted by key */
    size_t n_meta;
};

/* path: a .safetensors file, a model.safetensors.index.json (any path ending in ".json"), or a
 * directory holding model.safetensors.index.json or model.safetensors (the index wins when both
 * exist). Files are mmap'ed read-only; they must not be truncated while the set is open.
 * On failure *set is zeroed (st_close on it does nothing) and err names file, tensor and problem. */
int st_open(struct st_set *set, const char *path, struct mmupt_err *err);
/* Parse one safetensors file image from memory (tests, fuzzing); buf must outlive the set. */
int st_open_buffer(struct st_set *set, const char *name, const void *buf, size_t len, struct mmupt_err *err);
void st_close(struct st_set *set);

size_t st_count(const struct st_set *set);
const struct st_tensor *st_at(const struct st_set *set, size_t i);          /* sorted by name */
const struct st_tensor *st_find(const struct st_set *set, const char *name); /* NULL if absent */

/* The "__metadata__" string map: of the file, or of the first shard (by file name) of a sharded
 * model. Keys are sorted; st_metadata returns NULL for an absent key. */
size_t st_metadata_count(const struct st_set *set);
const char *st_metadata_key(const struct st_set *set, size_t i);
const char *st_metadata(const struct st_set *set, const char *key);

size_t st_dtype_size(enum st_dtype dt);
const char *st_dtype_name(enum st_dtype dt); /* "F32", "BF16", ... as in the header */

/* Convert a float tensor (F32/F16/BF16/F64) to float32; error (naming file and tensor) if the
 * dtype is not a float type or numel differs from t->numel. */
int st_copy_f32(const struct st_tensor *t, float *out, int64_t numel, struct mmupt_err *err);
/* Same for integer tensors (I64/I32/I16/I8/U8/BOOL) to int64; BOOL bytes become 0 or 1. */
int st_copy_i64(const struct st_tensor *t, int64_t *out, int64_t numel, struct mmupt_err *err);

struct st_entry {
    const char *name;
    enum st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes, little-endian; may be NULL when numel is 0 */
};
/* Write one file atomically (temp file in the same dir, fsync, rename). Tensors are written in the
 * order given, contiguous, 8-byte-aligned header padding with spaces as the HF library does.
 * metadata: NULL or a NULL-terminated list of key, value, key, value, ... strings.
 * Names must be unique, valid UTF-8 and not "__metadata__". */
int st_write_file(const char *path, const struct st_entry *e, size_t n, const char *const *metadata,
                  struct mmupt_err *err);
/* Write a model into dir (created if missing): model.safetensors when the total data is
 * <= max_shard_bytes, else model-0000K-of-0000N.safetensors shards (tensors in the order given, a
 * new shard when the next tensor would overflow; a tensor larger than the limit gets a shard of its
 * own) plus model.safetensors.index.json with metadata.total_size and weight_map. Files carry
 * __metadata__ {"format": "pt"} as transformers writes it. A stale model.safetensors.index.json
 * (or model.safetensors) of the other layout is removed, so st_open(dir) reads what was written. */
int st_write_model(const char *dir, const struct st_entry *e, size_t n, size_t max_shard_bytes,
                   struct mmupt_err *err);

/* bf16 <-> f32 helpers (round to nearest even; NaN stays NaN), used by writers and tests. */
uint16_t st_f32_to_bf16(float f);
float st_bf16_to_f32(uint16_t h);
float st_f16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif

#endif
