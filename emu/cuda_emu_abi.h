// What kernels compiled for the emulated device and the runtime (emu/runtime.cpp) share: the
// per-thread coordinates, the collective kinds and the runtime's entry points (C ABI).
#pragma once
#include <stdint.h>

struct dim3 {
  unsigned x, y, z;
};
typedef dim3 uint3;

// The coordinates of one emulated thread; `emu_cur` points at the running fiber's.
struct EmuThreadState {
  uint3 tid;
  uint3 bid;
  dim3 bdim;
  dim3 gdim;
};
extern "C" __thread const EmuThreadState* emu_cur;

enum {
  EMU_SHFL_IDX,
  EMU_SHFL_XOR,
  EMU_SHFL_DOWN,
  EMU_SHFL_UP,
  EMU_BALLOT,
  EMU_ANY,
  EMU_ALL,
  EMU_SYNCWARP
};

extern "C" void emu_syncthreads(void);
extern "C" uint64_t emu_warp(int kind, unsigned mask, uint64_t value, int arg, int width);
extern "C" void emu_check_rmw(const void* p, unsigned bytes);
// __threadfence(): the block's stores so far become visible to the other blocks (memory.cpp).
extern "C" void emu_threadfence(void);
// A `__shared__` variable of `size` bytes at `p` (the calling host thread's copy), described as
// "name (file:line)": registered once per process (build/shared_rewrite.rs, emu/shared_vars.cpp).
extern "C" bool emu_shared_declared(const void* p, uint64_t size, const char* what);
