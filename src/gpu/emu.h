/* The device emulator of CPU-only builds (include/mmupt/gpu_mem.h says what it is for), shared by
 * its two files: mem_emu.c (memory, copies) and kernels_emu.c (the twins' names). Its state
 * hangs off the context's stream pointer, so the kernel shims (which get only the stream, or the
 * GEMM handle, which is the same pointer here) find it without global state. */
#ifndef MMUPT_GPU_EMU_H
#define MMUPT_GPU_EMU_H

#include <stddef.h>

/* One "device" allocation: an anonymous mapping, PROT_NONE while no emulated kernel runs, followed
 * by a guard page that is never readable. */
struct emu_block {
    char *base;
    size_t bytes, mapped;
};

#define EMU_MAX_OPEN 64

enum { EMU_GRAPH_NONE = 0, EMU_GRAPH_RECORDING };

struct emu_state {
    struct emu_block *blk;
    int n, cap;
    /* The allocations the checked arguments of the current kernel lie in: only these are opened
     * while it runs (opening every allocation per kernel made the emulator quadratic). */
    const struct emu_block *open[EMU_MAX_OPEN];
    int n_open;
    long long kernels; /* emulated launches, for the tests' sanity checks */
    /* Graphs (gpu_graph_record): while recording (also the check before each replay), kernels and
     * device copies are fingerprinted (name, device addresses, extents) and NOT run; host copies,
     * synchronisation and allocation are fatal. */
    int graph; /* EMU_GRAPH_NONE or EMU_GRAPH_RECORDING */
    unsigned long long fp;
    size_t live_bytes, peak_bytes;
};

/* The state behind a stream (fatal for NULL: the device model never uses the default stream). */
struct emu_state *emu_state_of(void *stream, const char *who);
/* Fatal unless [p, p + bytes) lies inside one live device allocation; that allocation is opened by
 * the next emu_open. */
void emu_dev(struct emu_state *st, const char *who, const char *what, const void *p, size_t bytes);
/* Fatal if p points into device memory (arguments that must be host arrays), and inside a graph
 * recording (host launch metadata is copied at launch time: not capturable). */
void emu_host(const struct emu_state *st, const char *who, const char *what, const void *p);
/* Make the allocations the kernel's arguments lie in readable and writable while it runs, and take
 * that back after it. emu_open returns 0 while recording a graph: the work must not run then. */
int emu_open(struct emu_state *st);
void emu_close(struct emu_state *st);
/* Add p to the fingerprint of the graph being recorded or replayed (arguments checked otherwise). */
void emu_graph_note(struct emu_state *st, const char *who, const void *p);
/* Fatal inside a graph recording: what `who` does (a host copy, a synchronisation, an allocation)
 * cannot be captured. */
void emu_not_in_graph(const struct emu_state *st, const char *who);

#endif
