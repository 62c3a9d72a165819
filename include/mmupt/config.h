/* Run configuration: one YAML file -> one typed struct.
 *
 * Every field lives in ONE table (src/config/fields.c): its dotted key, type, default, valid range
 * or set, and a one-line doc. That table drives parsing, validation, `mmupt config --list` and the
 * generated docs/configuration.md, so adding a field is one line there plus one member here.
 *
 * Precedence, lowest first: table defaults < YAML file < command-line overrides (key=value, in the
 * order given). Loading is transactional: on any error the struct the caller passed is unchanged.
 */
#ifndef MMUPT_CONFIG_H
#define MMUPT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mmupt/err.h"

#define CFG_STR_MAX 4096 /* bytes, including the terminating NUL; longer values are an error */
#define CFG_LIST_MAX 32  /* items in a list field */
#define CFG_FILE_MAX (16u << 20) /* a config larger than this is refused, not read */

/* Enumerations. The order of each must match its name list in src/config/fields.c (a unit test
 * checks every name maps back to its value). */
enum cfg_dtype { DTYPE_FP32 = 0, DTYPE_BF16 };
enum cfg_bf16_rounding { BF16_NEAREST = 0, BF16_STOCHASTIC };
enum cfg_reward_mode { REWARD_MAJORITY = 0, REWARD_GROUND_TRUTH, REWARD_NONE };
enum cfg_extractor { EXTRACT_BOXED = 0, EXTRACT_CHOICE, EXTRACT_ANSWER_IS };
enum cfg_vote { VOTE_PAPER = 0, VOTE_EQUIVALENCE };
enum cfg_adv { ADV_GRPO = 0, ADV_DR_GRPO };
enum cfg_kl { KL_LOW_VAR = 0, KL_K1, KL_NONE };
enum cfg_loss_agg { LOSS_AGG_TOKEN_MEAN = 0, LOSS_AGG_SEQ_MEAN_TOKEN_MEAN };
enum cfg_schedule { SCHED_CONSTANT = 0, SCHED_COSINE };
enum cfg_backend { BACKEND_AUTO = 0, BACKEND_CPU, BACKEND_CUDA, BACKEND_EMULATOR };
enum cfg_resume { RESUME_OFF = 0, RESUME_AUTO };
enum cfg_weight_broadcast { WEIGHT_BCAST_HOST = 0, WEIGHT_BCAST_DEVICE };
/* logging.level uses enum log_level from log.h (same order: debug, info, warn, error). */

struct cfg_int_list {
    int n;
    int64_t v[CFG_LIST_MAX];
};

struct cfg_run {
    char name[CFG_STR_MAX];
    char output_dir[CFG_STR_MAX];
    int64_t seed;
    int64_t max_steps;
    int64_t val_interval;
    int64_t val_limit;
};

struct cfg_model {
    char path[CFG_STR_MAX];
    int dtype;
    int bf16_rounding;
    bool freeze_vision_tower;
    bool gradient_checkpointing;
    int64_t logit_chunk;
};

struct cfg_data {
    char train_path[CFG_STR_MAX];
    char val_path[CFG_STR_MAX];
    char format_prompt[CFG_STR_MAX];
    int64_t max_prompt_length;
    int64_t max_response_length;
    int64_t rollout_batch_size;
    int64_t epochs;
    bool skip_bad_items;
    bool shuffle;
    int64_t seed;
    int64_t min_pixels;
    int64_t max_pixels;
};

struct cfg_rollout {
    int64_t n;
    double temperature;
    double top_p;
    int64_t top_k;
    int64_t max_new_tokens;
    int64_t seed;
    double image_pad_bias;
    struct cfg_int_list stop_token_ids;
    bool cuda_graphs;
};

struct cfg_reward {
    int mode;
    int extractor;
    int vote;
    double min_majority_share;
};

struct cfg_algorithm {
    int adv_estimator;
    double adv_std_eps;
    double kl_coef;
    int kl_penalty;
    double kl_clamp;
    double clip_ratio_low;
    double clip_ratio_high;
    double clip_ratio_dual;
    double entropy_coef;
    int loss_agg;
    int64_t global_batch_size;
    int64_t ppo_epochs;
    int64_t micro_batch_size;
    int64_t micro_batch_size_experience;
};

struct cfg_optim {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    double clip_grad_norm;
    double warmup_ratio;
    int schedule;
};

struct cfg_cluster {
    int64_t rollout_ranks;
    int backend;
    int64_t sync_interval;
    int64_t ring_capacity;
    int64_t max_staleness;
    double timeout_s;
    double grad_bucket_mb;
    int weight_broadcast;
};

struct cfg_checkpoint {
    char dir[CFG_STR_MAX];
    int64_t interval;
    int64_t keep_last;
    int resume;
    char resume_path[CFG_STR_MAX];
};

struct cfg_logging {
    int level;
    char metrics_file[CFG_STR_MAX];
    int64_t log_interval;
    bool tensorboard;
};

/* `mmupt eval` decoding (the paper's evaluation settings by default). */
struct cfg_eval {
    double temperature;
    int64_t n;
    double top_p;
    int64_t max_new_tokens;
    struct cfg_int_list k;
    bool greedy;
};

struct cfg_synth {
    int mode; /* enum synth_mode: 0 direct, 1 in-context */
    int64_t n, keep;
    double temperature, top_p;
    int64_t max_new_tokens, min_chars, max_chars;
    double max_overlap;
    bool require_question;
    char prompt_direct[CFG_STR_MAX];
    char prompt_in_context[CFG_STR_MAX];
};

struct cfg {
    struct cfg_run run;
    struct cfg_model model;
    struct cfg_data data;
    struct cfg_rollout rollout;
    struct cfg_reward reward;
    struct cfg_algorithm algorithm;
    struct cfg_optim optim;
    struct cfg_cluster cluster;
    struct cfg_checkpoint checkpoint;
    struct cfg_logging logging;
    struct cfg_eval eval;
    struct cfg_synth synth;
};

/* ---- the field table ---- */

enum cfg_type { CFG_BOOL, CFG_INT, CFG_FLOAT, CFG_STRING, CFG_ENUM, CFG_INT_LIST };

enum cfg_flags {
    CFG_MIN_EXCLUSIVE = 1u << 0, /* the range is (min, max] rather than [min, max] */
};

struct cfg_field {
    const char *key;            /* dotted: "optim.lr" */
    enum cfg_type type;
    size_t offset;              /* of the member inside struct cfg */
    const char *def;            /* default, as the unquoted text a YAML scalar would hold */
    double min, max;            /* inclusive range for CFG_INT, CFG_FLOAT and list items */
    unsigned flags;             /* enum cfg_flags */
    const char *const *choices; /* CFG_ENUM: NULL-terminated names; a value is its index */
    const char *doc;            /* one line */
};

struct cfg_section {
    const char *name;
    const char *doc;
};

extern const struct cfg_field cfg_fields[];
extern const size_t cfg_n_fields;
extern const struct cfg_section cfg_sections[];
extern const size_t cfg_n_sections;

const struct cfg_field *cfg_find(const char *key);
const struct cfg_section *cfg_find_section(const char *name, size_t len);
/* The closest known key to a mistyped one (edit distance, or the same leaf in another section);
 * NULL when nothing is close enough to be a useful suggestion. */
const char *cfg_suggest(const char *key);

/* ---- building a config ---- */

void cfg_defaults(struct cfg *c);
/* Apply a YAML file on top of *c. */
int cfg_load_file(struct cfg *c, const char *path, struct mmupt_err *err);
/* Apply YAML text on top of *c; `name` is used in messages in place of a file path. */
int cfg_load_buffer(struct cfg *c, const char *name, const char *text, size_t len, struct mmupt_err *err);
/* Apply one "section.key=value" override. */
int cfg_apply_override(struct cfg *c, const char *arg, struct mmupt_err *err);
/* Checks that involve more than one field (each field's own range is checked when it is set). */
int cfg_validate(const struct cfg *c, struct mmupt_err *err);
/* Defaults, then the file (NULL: none), then the overrides, then cfg_validate. */
int cfg_resolve(struct cfg *c, const char *path, int n_overrides, char *const *overrides, struct mmupt_err *err);

/* Set one field from text as a YAML scalar would give it (`quoted`: it was a quoted scalar, so
 * it is a string even if it reads like null). The message in err carries no location: callers add it. */
int cfg_set_scalar(struct cfg *c, const struct cfg_field *f, const char *text, bool quoted, struct mmupt_err *err);

bool cfg_equal(const struct cfg *a, const struct cfg *b);
/* The name of an enum value of field f (for printing). */
const char *cfg_enum_name(const struct cfg_field *f, int value);

/* ---- writing it out ---- */

/* The resolved config as YAML that cfg_load_file reads back to an equal struct. `docs` adds each
 * field's one-line doc as a comment. */
int cfg_write_yaml(const struct cfg *c, FILE *f, bool docs);
/* docs/configuration.md, generated from the table. */
int cfg_write_markdown(FILE *f);
/* A plain-text listing of every key, for --help. */
int cfg_write_key_list(FILE *f);

/* Type and allowed values of a field as text ("float in (0, 1]", "one of: majority, ..."). */
void cfg_describe_type(const struct cfg_field *f, char *out, size_t n);
void cfg_describe_range(const struct cfg_field *f, char *out, size_t n);

#endif
