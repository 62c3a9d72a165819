// Launch shape of the elementwise kernels: one thread per item up to a cap of blocks, and a
// grid-stride loop (long indices) in the kernel covers the rest. Shared by every .cu here.
#ifndef MMUPT_KERNELS_CUDA_LAUNCH_CUH
#define MMUPT_KERNELS_CUDA_LAUNCH_CUH

static const int LAUNCH_THREADS = 256;
static const long LAUNCH_MAX_BLOCKS = 65535;

// Blocks for n > 0 items (a zero-block launch is an error: callers return early for n <= 0).
static inline unsigned launch_blocks(long n)
{
    long b = (n + LAUNCH_THREADS - 1) / LAUNCH_THREADS;
    return (unsigned)(b < LAUNCH_MAX_BLOCKS ? b : LAUNCH_MAX_BLOCKS);
}

// The grid-stride loop over [0, n) that pairs with launch_blocks.
#define LAUNCH_LOOP(i, n) \
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

// The row kernels' grid (rows on grid y, a row's items on x, each loop striding: LAUNCH_LOOP over
// the items): x for items per row, y for the rows, each capped.
static inline dim3 launch_row_grid(long rows, long items)
{
    return dim3(launch_blocks(items), (unsigned)(rows < 65535 ? rows : 65535));
}

#endif
