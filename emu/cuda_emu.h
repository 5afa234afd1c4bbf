// Force-included first into every kernels/<m>.cu compiled for the emulated device (build/emu.rs).
// It turns the CUDA dialect our kernels use into plain C++17 over the runtime (emu/runtime.cpp):
//
// - threadIdx/blockIdx/blockDim/gridDim read the *current fiber's* coordinates through the
//   thread-local pointer `emu_cur`, which the scheduler sets before it resumes a fiber;
// - shared memory is thread-local: every thread of a block runs as a fiber on one host thread,
//   so a `static thread_local` is exactly block-shared. The build rewrites each `__shared__`
//   declaration into one, reached through `emu_launder` (build/shared_rewrite.rs) so that every
//   access is instrumented and checked (emu/shared.cpp); a `__shared__` left over fails to
//   compile (dynamic `extern __shared__` is not supported: no kernel uses it);
// - barriers and warp collectives are opaque calls into the runtime wrapped in compiler memory
//   barriers, so no shared value is kept in a register across them;
// - atomics are host atomics, checked like any other access.
// Everything lives in the global namespace; build/emu.rs wraps each module's own code in a
// namespace of its own, so helpers of two modules never merge at link time.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <type_traits>
#include "cuda_bf16.h"
#include "cuda_emu_abi.h"

#define threadIdx (emu_cur->tid)
#define blockIdx (emu_cur->bid)
#define blockDim (emu_cur->bdim)
#define gridDim (emu_cur->gdim)
#define warpSize 32

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static_assert(false, "__shared__ where build/shared_rewrite.rs did not rewrite it");

// The pointer, hidden from the optimiser: GCC does not instrument an access to a thread-local
// variable at a constant offset, but does every access through a pointer it cannot follow.
template <typename T> static inline T* emu_launder(T* p) {
  asm volatile("" : "+r"(p));
  return p;
}
#define __constant__ static

#define EMU_COMPILER_BARRIER() asm volatile("" ::: "memory")

static inline void __syncthreads(void) {
  EMU_COMPILER_BARRIER();
  emu_syncthreads();
  EMU_COMPILER_BARRIER();
}
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
  EMU_COMPILER_BARRIER();
  emu_warp(EMU_SYNCWARP, mask, 0, 0, 32);
  EMU_COMPILER_BARRIER();
}
static inline void __threadfence(void) {
  EMU_COMPILER_BARRIER();
  emu_threadfence();
  EMU_COMPILER_BARRIER();
}
static inline void __threadfence_block(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <typename T>
static inline T emu_shfl(int kind, unsigned mask, T v, int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of this type");
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof(T));
  EMU_COMPILER_BARRIER();
  bits = emu_warp(kind, mask, bits, arg, width);
  EMU_COMPILER_BARRIER();
  T r;
  memcpy(&r, &bits, sizeof(T));
  return r;
}
template <typename T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return emu_shfl(EMU_SHFL_IDX, mask, v, src, width);
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) {
  return emu_shfl(EMU_SHFL_XOR, mask, v, m, width);
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
  return emu_shfl(EMU_SHFL_DOWN, mask, v, (int)d, width);
}
template <typename T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) {
  return emu_shfl(EMU_SHFL_UP, mask, v, (int)d, width);
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
  return (unsigned)emu_shfl<uint64_t>(EMU_BALLOT, mask, pred != 0, 0, 32);
}
static inline int __any_sync(unsigned mask, int pred) {
  return (int)emu_shfl<uint64_t>(EMU_ANY, mask, pred != 0, 0, 32);
}
static inline int __all_sync(unsigned mask, int pred) {
  return (int)emu_shfl<uint64_t>(EMU_ALL, mask, pred != 0, 0, 32);
}

// Atomics: the access is checked (read of written bytes, inside an allocation), then done with a
// host atomic (blocks run on several host threads). The host atomic itself is left out of the
// address instrumentation, which would check it as a plain store: atomics are coherent between
// blocks, plain stores are not (memory.cpp, "between the blocks of one launch").
#define EMU_ATOMIC static inline __attribute__((no_sanitize_address))
template <typename T> EMU_ATOMIC T emu_atomic_add(T* p, T v) {
  emu_check_rmw(p, sizeof(T));
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
EMU_ATOMIC int atomicAdd(int* p, int v) { return emu_atomic_add(p, v); }
EMU_ATOMIC unsigned atomicAdd(unsigned* p, unsigned v) { return emu_atomic_add(p, v); }
EMU_ATOMIC unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return emu_atomic_add(p, v);
}
EMU_ATOMIC float atomicAdd(float* p, float v) {
  emu_check_rmw(p, 4);
  float old, nv;
  __atomic_load(p, &old, __ATOMIC_SEQ_CST);
  do {
    nv = old + v;
  } while (!__atomic_compare_exchange(p, &old, &nv, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
  return old;
}
template <typename T> EMU_ATOMIC T atomicExch(T* p, T v) {
  emu_check_rmw(p, sizeof(T));
  return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
template <typename T> EMU_ATOMIC T atomicCAS(T* p, T cmp, T v) {
  emu_check_rmw(p, sizeof(T));
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
template <typename T> EMU_ATOMIC T atomicMax(T* p, T v) {
  emu_check_rmw(p, sizeof(T));
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {
  }
  return old;
}
template <typename T> EMU_ATOMIC T atomicMin(T* p, T v) {
  emu_check_rmw(p, sizeof(T));
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (v < old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST,
                                                 __ATOMIC_SEQ_CST)) {
  }
  return old;
}

// CUDA's integer and float min/max overloads (mixed types promote as C++ does).
template <typename A, typename B>
static inline typename std::common_type<A, B>::type min(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  return (C)a < (C)b ? (C)a : (C)b;
}
template <typename A, typename B>
static inline typename std::common_type<A, B>::type max(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  return (C)a > (C)b ? (C)a : (C)b;
}
// CUDA's expf and logf are not correctly rounded as glibc's are: the CUDA C++ Programming
// Guide bounds their error at 2 and 1 ulp. The emulation moves glibc's result by up to those
// bounds, in a direction and amount drawn from the argument's bits, so a test that wants a
// kernel's exponentials bit-equal to the CPU reference's fails here as on a GPU. Exact cases
// (expf(0) = 1, logf(1) = 0) stay exact, and so do results that are not finite normal numbers.
static inline float emu_ulps_off(float r, float x, int bound) {
  if (!isnormal(r)) return r;
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  b ^= b >> 16;
  b *= 0x7feb352du;
  b ^= b >> 15;
  int k = (int)(b % (uint32_t)(2 * bound + 1)) - bound;
  float v = r;
  for (; k > 0; --k) v = nextafterf(v, INFINITY);
  for (; k < 0; ++k) v = nextafterf(v, -INFINITY);
  return isnormal(v) ? v : r;
}
static inline float emu_expf(float x) { return x == 0.f ? 1.f : emu_ulps_off((expf)(x), x, 2); }
static inline float emu_logf(float x) { return x == 1.f ? 0.f : emu_ulps_off((logf)(x), x, 1); }
#define expf(x) emu_expf(x)
#define logf(x) emu_logf(x)
static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
// __expf and __logf come from glibc's <math.h>.
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
template <typename T> static inline T __ldg(const T* p) { return *p; }
