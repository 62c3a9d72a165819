/* mmupt sft: placeholder until the issue-9 work lands; says so plainly. */
#include <stdio.h>

#include "cli.h"

int cmd_sft(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("sft", "not implemented yet");
    return MMUPT_EXIT_NOT_IMPLEMENTED;
}
