/* Runs a libFuzzer target's entry point over files and directories of inputs, for builds without
 * libFuzzer (gcc, CI): every corpus entry and every bad-input fixture stays a regression test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mmupt/strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: cannot stat\n", path);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return -1;
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            int k = run_path(sub);
            if (k < 0) { closedir(d); return -1; }
            n += k;
        }
        closedir(d);
        return n;
    }
    char *buf;
    size_t len;
    struct mmupt_err err;
    if (file_read_all(path, 1u << 24, &buf, &len, &err)) {
        fprintf(stderr, "replay: %s\n", err.msg);
        return -1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        int n = run_path(argv[i]);
        if (n < 0) return 1;
        total += n;
    }
    printf("replayed %d inputs without a crash\n", total);
    printf("%d passed, 0 failed\n", total);
    return total > 0 ? 0 : 1;
}
