// Cooperative fibers of the emulated device: a context is a saved stack pointer (x86-64: the
// callee-saved registers, MXCSR and the x87 control word live on the fiber's own stack), or a
// ucontext_t on other architectures. Switching is explicit and never preemptive.
#pragma once
#include <stddef.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

struct FiberCtx {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

// Prepares `ctx` to run fn(arg) on [stack, stack + size) at its first switch-in; fn never returns.
void fiber_make(FiberCtx* ctx, void* stack, size_t size, void (*fn)(void*), void* arg);
// Saves the running context into `from` and resumes `to`.
void fiber_switch(FiberCtx* from, FiberCtx* to);

// Fiber stacks of the calling host thread: mmap'd with a guard page below, reused across fibers.
void* stack_get(size_t* size);
void stack_put(void* stack);
