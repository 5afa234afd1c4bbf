// Test-only kernels of the emulated device (module `test_faults`, never built by nvcc): each
// exercises one check of the runtime (tests/emu_runtime.rs).
#include "common.cuh"
#include "vec.cuh"

// y[i] = i for i <= n: with n + 1 threads, the last one writes one element past the end.
extern "C" __global__ void fill_index_inclusive(float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) y[i] = (float)i;
}

// y[i] = 2·x[i] over n elements.
extern "C" __global__ void twice(const float* x, float* y, int n) {
  GRID_LOOP(i, n) y[i] = 2.f * x[i];
}

// Sums blockDim.x values through shared memory; with `sync` = 0 the barrier is missing, so the
// result depends on the order the threads run in.
extern "C" __global__ void shared_sum(const float* x, float* out, int sync) {
  __shared__ float s[1024];
  s[threadIdx.x] = x[threadIdx.x];
  if (sync) __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0.f;
    for (unsigned k = 0; k < blockDim.x; ++k) t += s[k];
    out[0] = t;
  }
  if (sync) __syncthreads();
  s[threadIdx.x] = -1.f;  // the next block must not see these
}

// Order in which the threads of one block pass a barrier: out[k] = the k-th thread to leave it.
extern "C" __global__ void barrier_order(unsigned* out, unsigned* counter) {
  __syncthreads();
  unsigned k = atomicAdd(counter, 1u);
  out[k] = threadIdx.x;
}

// A butterfly step with a caller-chosen mask.
extern "C" __global__ void shuffle_with_mask(float* y, unsigned mask) {
  float v = (float)threadIdx.x;
  y[threadIdx.x] = __shfl_xor_sync(mask, v, 16);
}

// Thread 0 leaves before the others reach the barrier.
extern "C" __global__ void early_exit_barrier(float* y) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  y[threadIdx.x] = 1.f;
}

// Lanes 0-15 wait in a full-warp shuffle while lanes 16-31 wait at a barrier: nobody can move.
extern "C" __global__ void warp_barrier_deadlock(float* y) {
  float v = (float)threadIdx.x;
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  else __syncthreads();
  y[threadIdx.x] = v;
}

// block_sum of common.cuh over one value per thread.
extern "C" __global__ void block_sum_of(const float* x, float* out) {
  float v = block_sum(x[blockIdx.x * blockDim.x + threadIdx.x]);
  if (threadIdx.x == 0) out[blockIdx.x] = v;
}

// Lanes 0-15 pass mask 0x0000ffff, lanes 16-31 the full mask, to what should be one shuffle.
extern "C" __global__ void shuffle_masks_disagree(float* y) {
  unsigned mask = threadIdx.x < 16 ? 0x0000ffffu : 0xffffffffu;
  y[threadIdx.x] = __shfl_xor_sync(mask, (float)threadIdx.x, 1);
}

// y[0..8) = the 8 floats `offset` bytes past x, read with vec.cuh's 16-byte loads: a GPU
// faults unless x + offset is 16-byte aligned.
extern "C" __global__ void load_w_at(const float* x, float* y, int offset) {
  float f[8];
  load_w<8>(reinterpret_cast<const float*>(reinterpret_cast<const char*>(x) + offset), true, f);
  for (int j = 0; j < 8; ++j) y[j] = f[j];
}

// y[0] = the float `offset` bytes past x: a GPU faults unless offset % 4 == 0 (x86 does not).
extern "C" __global__ void read_float_at(const float* x, float* y, int offset) {
  y[0] = *reinterpret_cast<const float*>(reinterpret_cast<const char*>(x) + offset);
}

// The last-block pattern: each block stores its value in partial[blockIdx.x] and takes a ticket;
// the last one sums the partials into out[0]. With `fence` = 0 the __threadfence() between the
// store and the ticket is missing, so on a GPU the last block may read a stale partial.
extern "C" __global__ void last_block_sum(const float* x, float* partial, unsigned* done,
                                          float* out, int fence) {
  __shared__ bool last;
  if (threadIdx.x == 0) {
    partial[blockIdx.x] = x[blockIdx.x];
    if (fence) __threadfence();
    last = atomicAdd(done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last || threadIdx.x != 0) return;
  float t = 0.f;
  for (unsigned b = 0; b < gridDim.x; ++b) t += ((volatile float*)partial)[b];
  out[0] = t;
}

// Every block stores its index in y[0] (plain stores, no atomic): which one lands is up to the
// GPU. With `atomic` = 1 they use atomicExch instead.
extern "C" __global__ void all_blocks_store_one_place(unsigned* y, int atomic) {
  if (threadIdx.x != 0) return;
  if (atomic) atomicExch(y, blockIdx.x);
  else y[0] = blockIdx.x;
}

// ---- block-shared memory (emu/shared.cpp) ----

// s[0] passes from thread 0 to thread `second` (kind 0: write then read; 1: read then write;
// 2: write then write). With `second` in warp 0 a shuffle holds it back until thread 0 is done
// (a shuffle orders no memory); `order` 1 adds a __syncwarp(), 2 a __syncthreads() between.
extern "C" __global__ void shared_handoff(float* out, int kind, int second, int order) {
  __shared__ float s[2];
  unsigned t = threadIdx.x;
  if (t == 0) s[0] = 1.f;
  __syncthreads();
  if (t == 0) {
    if (kind == 1) out[0] = s[0];
    else s[0] = 2.f;
  }
  if (t < 32) (void)__shfl_sync(0xffffffffu, 0.f, 0);
  if (order == 1) __syncwarp();
  if (order == 2) __syncthreads();
  if (t == (unsigned)second) {
    if (kind == 0) out[1] = s[0];
    else s[0] = 3.f;
  }
}

// Every thread reads s[0], then thread 0 overwrites it: after a __syncwarp (`order` 1) that is
// fine within one warp; with more warps, or nothing between, it is a race.
extern "C" __global__ void readers_then_writer(float* out, int order) {
  __shared__ float s[1];
  if (threadIdx.x == 0) s[0] = 5.f;
  __syncthreads();
  out[threadIdx.x] = s[0];
  if (order == 1) __syncwarp();
  if (threadIdx.x == 0) s[0] = 6.f;
}

// out[t] = s[t ^ 1] after a barrier, where only the blocks below `writers` filled s.
extern "C" __global__ void shared_neighbour(float* out, unsigned writers) {
  __shared__ float s[64];
  unsigned t = threadIdx.x;
  if (blockIdx.x < writers) s[t] = (float)t;
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[t ^ 1];
}

// Every thread adds one to a shared counter with an atomic; thread 0 reads it after a barrier
// (`sync` 1) or without one.
extern "C" __global__ void shared_atomic_count(unsigned* out, int sync) {
  __shared__ unsigned n;
  if (threadIdx.x == 0) n = 0;
  __syncthreads();
  atomicAdd(&n, 1u);
  if (sync) __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = n;
}

// s[t + shift] = t over a 64-float array with blockDim.x threads: past its end when
// t + shift >= 64 (on a GPU: the next shared variable, or another block's memory).
extern "C" __global__ void shared_out_of_bounds(float* out, int shift, int read) {
  __shared__ float s[64];
  __shared__ float after[64];
  int t = (int)threadIdx.x;
  after[t] = 0.f;
  if (read) {
    s[t] = 1.f;
    __syncthreads();
    out[t] = s[t + shift];
  } else {
    s[t + shift] = (float)t;
  }
}

// ---- memory that is not the device's (memory.cpp, outside_device_memory) ----

__constant__ float k_scale[4] = {1.f, 2.f, 3.f, 4.f};

// y[t] = x[t] * k_scale[t % 4] + local[t % 4]: `__constant__` data and the thread's own local
// array (indexed at run time, so kept in memory) are the kernel's to read.
extern "C" __global__ void constants_and_locals(const float* x, float* y, int n) {
  float local[4];
  int t = (int)threadIdx.x;
  for (int i = 0; i < 4; ++i) local[i] = (float)(10 * i + t);
  if (t < n) y[t] = x[t] * k_scale[t % 4] + local[t % 4];
}

// Thread 0 hands the address of its local array to the block through shared memory; thread
// `reader` reads through it (on a GPU it would read its own local memory at that offset, or
// fault). The closing barrier keeps thread 0 alive meanwhile.
extern "C" __global__ void reads_a_neighbours_local(float* out, int reader) {
  __shared__ unsigned long long handed;
  float local[4];
  int t = (int)threadIdx.x;
  for (int i = 0; i < 4; ++i) local[i] = (float)(4 * t + i);
  if (t == 0) handed = (unsigned long long)local;
  __syncthreads();
  const float* p = t == reader ? (const float*)handed : local;
  out[t] = p[t % 4];
  __syncthreads();
}

// y[0] = x[0] + x[i], in a template's instance after code inlined from a header: an access
// past the end names its line here.
template <typename T> __noinline__ __device__ float element_of(const T* p, int i) {
  float f[8];
  load_w<8>(p, true, f);
  return f[0] + p[i];
}
extern "C" __global__ void template_reads_at(const float* x, float* y, int i) {
  y[0] = element_of(x, i);
}

// ---- between the threads of one block, in device memory (memory.cpp, block_race) ----

// Thread 0 stores y[0]; thread `second` then reads it into y[1] (kind 0) or stores y[0] too
// (kind 1). A shuffle of warp 0 holds a second thread of that warp back until thread 0 stored
// (a shuffle orders no memory); `order` 1 adds a __syncwarp(), 2 a __syncthreads() between.
extern "C" __global__ void global_handoff(float* y, int kind, int second, int order) {
  unsigned t = threadIdx.x;
  if (t == 0) y[0] = 1.f;
  if (t < 32) (void)__shfl_sync(0xffffffffu, 0.f, 0);
  if (order == 1) __syncwarp();
  if (order == 2) __syncthreads();
  if (t == (unsigned)second) {
    if (kind == 0) y[1] = y[0];
    else y[0] = 2.f;
  }
}

// Thread 0 copies y[b] to z[b] while thread 1 stores y[b] (b the block), nothing between: a
// race whichever runs first. Where the emulated order ran the load first (write after read),
// nothing is seen; where it ran the store first, the load reports a read after write.
extern "C" __global__ void global_read_beside_store(float* y, float* z) {
  unsigned b = blockIdx.x;
  if (threadIdx.x == 0) z[b] = y[b];
  if (threadIdx.x == 1) y[b] = 2.f;
}

// ---- arithmetic as a GPU rounds it (build/emu.rs contraction flags, cuda_emu.h expf/logf) ----

// y[i] = a[i]·b[i] + c[i], written as nvcc would contract it into one fused multiply-add.
extern "C" __global__ void multiply_add(const float* a, const float* b, const float* c, float* y,
                                        int n) {
  GRID_LOOP(i, n) y[i] = a[i] * b[i] + c[i];
}

// y[i] = expf(x[i]), y[n + i] = logf(x[i]).
extern "C" __global__ void exp_and_log(const float* x, float* y, int n) {
  GRID_LOOP(i, n) {
    y[i] = expf(x[i]);
    y[n + i] = logf(x[i]);
  }
}
