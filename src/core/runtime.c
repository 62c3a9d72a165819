/* Process-wide settings (see runtime.h). */
#include <malloc.h>

#include "mmupt/runtime.h"

void mmupt_runtime_init(void)
{
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 4L << 30 > 0x7fffffff ? 0x7fffffff : 1 << 30);
}
