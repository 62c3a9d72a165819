/* The version of this build: "git describe" output, or the project version outside a checkout. */
#ifndef MMUPT_VERSION_H
#define MMUPT_VERSION_H

extern const char mmupt_version_string[];

#endif
