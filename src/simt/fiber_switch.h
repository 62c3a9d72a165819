/* Fiber contexts for the block interpreter (fiber.cc). A fiber switch happens at every barrier and
 * shuffle of every CUDA thread, so it must be cheap: on x86-64 it is a dozen instructions that save
 * the callee-saved registers on the old stack and restore them from the new one. (Not the SSE and
 * x87 control words: no kernel changes the rounding mode, and ldmxcsr on every switch cost a third
 * of the interpreter's time.) swapcontext would also do the job, but it makes a system call (the signal mask)
 * per switch, which made the interpreter ten times slower; it remains the fallback on other
 * machines and under AddressSanitizer, which understands swapcontext and not our stack switches.
 * Included by fiber.cc only (it defines the switch routine). */
#ifndef MMUPT_SIMT_FIBER_SWITCH_H
#define MMUPT_SIMT_FIBER_SWITCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)

struct simt_context {
    void *sp; /* the saved stack pointer; the registers lie above it */
};

extern "C" void simt_context_swap(void **save_sp, void *load_sp);

/* On the saved stack, from sp up: r15, r14, r13, r12, rbx, rbp, return address. */
asm(".text\n"
    ".globl simt_context_swap\n"
    ".type simt_context_swap, @function\n"
    "simt_context_swap:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size simt_context_swap, .-simt_context_swap\n");

static inline void simt_context_switch(simt_context *from, simt_context *to)
{
    simt_context_swap(&from->sp, to->sp);
}

/* A context that starts entry() on the given stack (entry must never return). */
static inline void simt_context_make(simt_context *c, char *stack, size_t bytes, void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)(stack + bytes)) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;         /* entry's own return address slot: keeps the ABI's alignment at its start */
    *--sp = (void *)entry;   /* where the first switch's `ret` goes */
    for (int i = 0; i < 6; i++) *--sp = nullptr; /* rbp rbx r12 r13 r14 r15 */
    c->sp = sp;
}

#else

#include <ucontext.h>

struct simt_context {
    ucontext_t uc;
};

static inline void simt_context_switch(simt_context *from, simt_context *to)
{
    swapcontext(&from->uc, &to->uc);
}

static inline void simt_context_make(simt_context *c, char *stack, size_t bytes, void (*entry)(void))
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = bytes;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}

#endif

#endif
