// Fiber context switch (x86-64 assembly, ucontext elsewhere) and the per-host-thread stack cache.
// Stacks are 256 KiB, mapped lazily (MAP_NORESERVE) with a PROT_NONE guard page at the bottom,
// and kept for reuse until the host thread exits.
#include "fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <vector>

static const size_t STACK_SIZE = 256 * 1024, GUARD = 4096;

#if defined(__x86_64__)
extern "C" void emu_fiber_switch(void** save_sp, void* load_sp);
extern "C" void emu_fiber_trampoline();
// Saves rbp, rbx, r12-r15, MXCSR and the x87 control word on the old stack, switches rsp, and
// restores them from the new one. A fresh fiber "returns" into the trampoline, which calls
// r13(r12) with the stack 16-byte aligned.
asm(R"(
  .text
  .globl emu_fiber_switch
  .type emu_fiber_switch,@function
emu_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_fiber_switch, .-emu_fiber_switch
  .globl emu_fiber_trampoline
  .type emu_fiber_trampoline,@function
emu_fiber_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size emu_fiber_trampoline, .-emu_fiber_trampoline
)");

void fiber_make(FiberCtx* ctx, void* stack, size_t size, void (*fn)(void*), void* arg) {
  uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
  uint64_t* sp = (uint64_t*)(top - 80);  // 8 words popped/returned, 16 bytes of slack
  uint32_t mx;
  uint16_t cw;
  asm volatile("stmxcsr %0" : "=m"(mx));
  asm volatile("fnstcw %0" : "=m"(cw));
  sp[0] = (uint64_t)mx | ((uint64_t)cw << 32);
  sp[1] = 0;               // r15
  sp[2] = 0;               // r14
  sp[3] = (uint64_t)fn;    // r13
  sp[4] = (uint64_t)arg;   // r12
  sp[5] = 0;               // rbx
  sp[6] = 0;               // rbp
  sp[7] = (uint64_t)&emu_fiber_trampoline;
  ctx->sp = sp;
}

void fiber_switch(FiberCtx* from, FiberCtx* to) { emu_fiber_switch(&from->sp, to->sp); }
#else
static thread_local void (*pending_fn)(void*);
static thread_local void* pending_arg;
static void uc_entry() { pending_fn(pending_arg); }

void fiber_make(FiberCtx* ctx, void* stack, size_t size, void (*fn)(void*), void* arg) {
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack;
  ctx->uc.uc_stack.ss_size = size;
  ctx->uc.uc_link = nullptr;
  makecontext(&ctx->uc, uc_entry, 0);
  // The argument travels through thread-locals, read at the fiber's first switch-in; a fresh
  // fiber is always switched to right after it is made (runtime.cpp).
  pending_fn = fn;
  pending_arg = arg;
}
void fiber_switch(FiberCtx* from, FiberCtx* to) { swapcontext(&from->uc, &to->uc); }
#endif

namespace {
struct StackCache {
  std::vector<void*> free;
  ~StackCache() {
    for (void* s : free) munmap((char*)s - GUARD, STACK_SIZE + GUARD);
  }
};
thread_local StackCache cache;
}  // namespace

void* stack_get(size_t* size) {
  *size = STACK_SIZE;
  if (!cache.free.empty()) {
    void* s = cache.free.back();
    cache.free.pop_back();
    return s;
  }
  void* m = mmap(nullptr, STACK_SIZE + GUARD, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) abort();
  mprotect(m, GUARD, PROT_NONE);
  return (char*)m + GUARD;
}

void stack_put(void* stack) { cache.free.push_back(stack); }
