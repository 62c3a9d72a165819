/* Writing report.md and report.png so that a reader never sees half of either: both are made in
 * memory, written to NAME.tmp, flushed to disk and renamed only when both are complete. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmupt/report.h"
#include "mmupt/strutil.h"

/* The canonical directory of path (which need not exist yet) and its last component. */
static int split_path(const char *path, char *dir, size_t dir_n, char *base, size_t base_n, struct mmupt_err *err)
{
    char a[PATH_MAX], b[PATH_MAX], real[PATH_MAX];
    if (snprintf(a, sizeof a, "%s", path) >= (int)sizeof a) return mmupt_fail(err, "%s: path too long", path);
    memcpy(b, a, sizeof a);
    if (!realpath(dirname(a), real)) return mmupt_fail(err, "%s: %s", path, strerror(errno));
    if (snprintf(dir, dir_n, "%s", real) >= (int)dir_n || snprintf(base, base_n, "%s", basename(b)) >= (int)base_n)
        return mmupt_fail(err, "%s: path too long", path);
    return 0;
}

/* The figure as the markdown links it: its name when it sits beside the markdown, else its full path. */
static int png_link(const char *md_path, const char *png_path, char *out, size_t n, struct mmupt_err *err)
{
    char md_dir[PATH_MAX], md_base[PATH_MAX], png_dir[PATH_MAX], png_base[PATH_MAX];
    if (split_path(md_path, md_dir, sizeof md_dir, md_base, sizeof md_base, err) ||
        split_path(png_path, png_dir, sizeof png_dir, png_base, sizeof png_base, err))
        return -1;
    int same_dir = strcmp(md_dir, png_dir) == 0;
    if (same_dir && strcmp(md_base, png_base) == 0)
        return mmupt_fail(err, "%s: the report and the figure would be the same file", md_path);
    int k = same_dir ? snprintf(out, n, "%s", png_base)
                     : snprintf(out, n, "%s%s%s", png_dir, strcmp(png_dir, "/") ? "/" : "", png_base);
    return k >= (int)n ? mmupt_fail(err, "%s: path too long", png_path) : 0;
}

static int tmp_name(char *out, const char *path, struct mmupt_err *err)
{
    if (snprintf(out, PATH_MAX, "%s.tmp", path) >= PATH_MAX) return mmupt_fail(err, "%s: path too long", path);
    return 0;
}

/* Both temporaries, then both renames; on failure nothing but the temporaries is touched, and
 * they are removed. */
static int publish(const char *md_path, const char *md, size_t md_len, const char *png_path, const uint8_t *png,
                   size_t png_len, struct mmupt_err *err)
{
    char md_tmp[PATH_MAX], png_tmp[PATH_MAX];
    if (tmp_name(md_tmp, md_path, err) || tmp_name(png_tmp, png_path, err)) return -1;
    if (file_write_all(png_tmp, png, png_len, err)) return -1;
    if (file_write_all(md_tmp, md, md_len, err)) {
        remove(png_tmp);
        return -1;
    }
    if (rename(png_tmp, png_path) != 0) {
        mmupt_fail(err, "%s: cannot rename into place: %s", png_path, strerror(errno));
        remove(png_tmp), remove(md_tmp);
        return -1;
    }
    if (rename(md_tmp, md_path) != 0) {
        mmupt_fail(err, "%s: cannot rename into place: %s", md_path, strerror(errno));
        remove(md_tmp);
        return -1;
    }
    return 0;
}

int report_write(const struct report_data *d, const char *run_dir, const char *md_path, const char *png_path,
                 struct mmupt_err *err)
{
    char link[PATH_MAX];
    if (png_link(md_path, png_path, link, sizeof link, err)) return -1;
    struct img_rgb im = {0};
    uint8_t *png = NULL;
    size_t png_len = 0, md_len = 0;
    if (report_figure(d, &im, err) || img_png_encode(&im, &png, &png_len, err)) {
        free(im.data);
        mmupt_err_prefix(err, "%s", png_path);
        return -1;
    }
    free(im.data);
    char *md = report_markdown(d, run_dir, link, &md_len);
    int rc = publish(md_path, md, md_len, png_path, png, png_len, err);
    free(md);
    free(png);
    return rc;
}
