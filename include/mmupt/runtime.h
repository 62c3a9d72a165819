/* Process-wide settings every mmupt program applies once, first thing in main(). */
#ifndef MMUPT_RUNTIME_H
#define MMUPT_RUNTIME_H

/* Allocator policy for a training process. A step allocates and frees the same large activation
 * buffers again and again; with glibc's defaults each of them is a fresh mmap, so every step pays
 * page faults and zeroing for all its activations (measured: 40% of a small model's step on 2 cores).
 * Serving buffers up to 256 MB from the heap and keeping freed memory (trim above 1 GB only) makes
 * later steps reuse it, as PyTorch's caching allocator does. Peak memory is unchanged; memory is
 * returned to the system later. */
void mmupt_runtime_init(void);

#endif
