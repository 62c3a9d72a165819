/* mmupt: unsupervised post-training (MM-UPT) of multimodal LLMs. This file holds only the
 * subcommand table; each command lives in src/cli/cmd_NAME.c. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mmupt/err.h"
#include "mmupt/runtime.h"
#include "mmupt/strutil.h"

static const struct cli_command commands[] = {
    {"train", cmd_train, "run MM-UPT training (mpirun -np N mmupt train run.yaml)", NULL},
    {"config", cmd_config, "print the resolved configuration, or the key reference", NULL},
    {"version", cmd_version, "print version, libraries and visible GPUs", NULL},
    {"forward", cmd_forward, "run a model on inputs from a safetensors file, write the logits", NULL},
    {"convert", cmd_convert, "re-save a Hugging Face model in the legacy layout (F32 safetensors)", NULL},
    {"export", cmd_export, "write a training checkpoint as a Hugging Face model (safetensors)", NULL},
    {"generate", cmd_generate, "sample answers from a model for a prompt (and images), streaming", NULL},
    {"tokenize", cmd_tokenize, "encode stdin to ids, or decode ids to text, with a tokenizer.json", NULL},
    {"grade", cmd_grade, "extract and grade answers (JSON lines on stdin), as the reward does", NULL},
    {"data", cmd_data, "generate a dataset (the quickstart's synthetic shapes task)", NULL},
    {"sft", cmd_sft, "supervised fine-tuning on a dataset's worked answers (the warm start)", NULL},
    {"eval", cmd_eval, "evaluate a model or checkpoint on a split: pass@k, maj@k, per source (mpirun: data-parallel)", NULL},
    {"report", cmd_report, "write the quickstart report (tables, verdict, plot) from a run directory", NULL},
    {"synth", cmd_synth, "let the policy write new questions for a dataset's images (a split without answers)", NULL},
};
static const size_t n_commands = sizeof commands / sizeof commands[0];

static void print_help(FILE *f)
{
    fputs("usage: mmupt <command> [args]   (mmupt <command> --help for details)\n\n"
          "MM-UPT: label-free GRPO post-training of multimodal LLMs, with a majority-vote reward.\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < n_commands; i++)
        if (commands[i].run) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    int planned = 0;
    for (size_t i = 0; i < n_commands; i++) planned += !commands[i].run;
    if (planned) fputs("\nplanned, not in this build yet:\n", f);
    for (size_t i = 0; i < n_commands; i++)
        if (!commands[i].run) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("\ndocs: README.md, docs/configuration.md, docs/design.md\n", f);
}

int main(int argc, char **argv)
{
    mmupt_runtime_init();
    if (argc < 2) {
        print_help(stderr);
        return MMUPT_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return MMUPT_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) name = "version";
    for (size_t i = 0; i < n_commands; i++) {
        if (strcmp(commands[i].name, name) != 0) continue;
        if (!commands[i].run) {
            fprintf(stderr, "mmupt %s: not implemented yet in this build (%s; it comes with %s).\n", name,
                    commands[i].summary, commands[i].planned);
            return MMUPT_EXIT_NOT_IMPLEMENTED;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    const char *hint = NULL;
    for (size_t i = 0; i < n_commands && !hint; i++)
        if (str_edit_distance(name, commands[i].name, 2) <= 2) hint = commands[i].name;
    fprintf(stderr, "mmupt: unknown command '%s'%s%s%s; see mmupt --help\n", name, hint ? " (did you mean '" : "",
            hint ? hint : "", hint ? "'?)" : "");
    return MMUPT_EXIT_USAGE;
}
