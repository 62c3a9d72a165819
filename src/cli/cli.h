/* The subcommands of the mmupt binary and the helpers they share. */
#ifndef MMUPT_CLI_H
#define MMUPT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "mmupt/model.h"
#include "mmupt/model_dev.h"

struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name; NULL: not built yet */
    const char *summary;
    const char *planned; /* for run == NULL: what will provide it */
};

/* One config file and its overrides, split from the rest of a command line. */
struct cli_config_args {
    const char *path; /* NULL when no file was given */
    int n_overrides;
    char **overrides; /* points into argv */
};

/* Split argv[1..] into the config file, key=value overrides and flags. Flags are returned in
 * `flags` (pointers into argv, at most max_flags). Returns 0, or -1 after printing a usage error. */
int cli_split_args(const char *cmd, int argc, char **argv, struct cli_config_args *out, const char **flags,
                   int max_flags, int *n_flags);

/* Does argv contain -h or --help? */
int cli_wants_help(int argc, char **argv);

/* Print "mmupt CMD: error: MSG" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option values: 0, or -1 after printing a usage error that names the option ("-n: 0 is out of
 * range: must be in [1, 256]"). Seeds are plain digits (strtoull would take "-1"); yes/no also
 * take true/false. */
int cli_parse_long(const char *cmd, const char *opt, const char *v, long lo, long hi, long *out);
int cli_parse_int(const char *cmd, const char *opt, const char *v, int lo, int hi, int *out);
int cli_parse_double(const char *cmd, const char *opt, const char *v, double *out);
int cli_parse_float(const char *cmd, const char *opt, const char *v, float *out);
int cli_parse_seed(const char *cmd, const char *v, uint64_t *out);
int cli_parse_yes_no(const char *cmd, const char *opt, const char *v, int *out);

/* --shard-mb's value; -1 after printing a usage error. */
int cli_parse_shard_mb(const char *cmd, const char *text, double *out);

/* The policy (--model: a Hugging Face dir or a checkpoint; --base-model for a checkpoint's config
 * and tokenizer), its tokenizer, the split --data and (--device, an enum cfg_backend) its device
 * copy, on every rank; -1 after saying why (nothing left open). */
struct eval_model_source;
struct tok;
struct ds_reader;
struct cli_device;
struct cli_device_opts;
struct comm;
int cli_load_policy(const char *cmd, const char *model, const char *base_model, const char *data, const struct comm *w,
                    const struct cli_device_opts *device, struct model *m, struct eval_model_source *src,
                    struct tok **tok, struct ds_reader **ds, struct cli_device *cd);
/* Collective over w: 1 when every rank passes ok != 0 (a rank that failed has printed why), so all
 * ranks stop together instead of some waiting in the next collective. */
struct comm;
int cli_all_ok(const struct comm *w, int ok);

/* The MPI frame of a data-parallel command (eval, synth, sft): OpenMP threads (threads > 0),
 * MPI_Init, the world communicator, fn(ctx, world), MPI_Finalize. fn's exit status, or
 * MMUPT_EXIT_ERROR after saying why the world could not be made. */
typedef int (*cli_world_fn)(void *ctx, const struct comm *w);
int cli_with_world(const char *cmd, int *argc, char ***argv, int threads, cli_world_fn fn, void *ctx);

/* `--device auto|cpu|cuda|emulator` and `--dtype auto|fp32|bf16` of the decoding commands (eval,
 * synth, generate): the device copy of the model when the choice resolves to the device
 * (gpu_backend_resolve), else nothing. Zero-initialised = auto, auto. */
enum cli_dtype { CLI_DTYPE_AUTO = 0, CLI_DTYPE_FP32, CLI_DTYPE_BF16 };
struct cli_device_opts {
    int backend; /* enum cfg_backend */
    int dtype;   /* enum cli_dtype; auto: bf16 on the device (model.dtype's default), fp32 on the CPU */
};
struct cli_device {
    int on;
    struct gpu_ctx g;
    struct model_dev d;
};
#define CLI_DEVICE_HELP                                                                             \
    "  --device D            auto|cpu|cuda|emulator: decode on the GPU (cuda; auto = cuda in a CUDA\n" \
    "                        build with a visible GPU, else cpu) or the CPU-only build's emulator\n"  \
    "  --dtype T             auto|fp32|bf16: the device's GEMM precision (auto = bf16 on the device;\n" \
    "                        the CPU computes in fp32 only)\n"
/* Parse `choice` into o->backend (enum cfg_backend) / o->dtype; -1 after printing a usage error. */
int cli_parse_device(const char *cmd, const char *choice, struct cli_device_opts *o);
int cli_parse_dtype(const char *cmd, const char *choice, struct cli_device_opts *o);
/* The device copy of m when o resolves to the device (cd->on), or nothing; -1 after saying why it
 * cannot be had (every rank says it: a node without a GPU is its own story). w (may be NULL: one
 * process): the ranks, each of which takes its own GPU where a node shows several (collective). */
int cli_device_open(const char *cmd, const struct cli_device_opts *o, const struct model *m, struct cli_device *cd,
                    const struct comm *w);
void cli_device_close(struct cli_device *cd);
/* Free what cli_load_policy loaded (the device copy included). */
void cli_policy_free(struct model *m, struct tok *tok, struct ds_reader *ds, struct cli_device *cd);

int cmd_train(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_synth(int argc, char **argv);

#endif
