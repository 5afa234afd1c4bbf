// Helpers of the memory-bound kernels that run at their byte floor (issue 15):
//
// - 16-byte loads and stores of W consecutive elements (8 bf16 = one 16-byte access, 8 f32 =
//   two), used when the caller checked alignment; otherwise the same elements one by one;
// - the channel-group geometry of NHWC kernels: a thread owns W consecutive channels of a
//   [M, C] tensor for its whole life (its parameters stay in registers) and walks the rows with
//   a stride of `lanes`; one integer division per thread, none per element. The host side of
//   the geometry is src/cuda/bn_geometry.rs (W = 8 when C % 8 == 0, else 1);
// - per-channel sums in one pass, two at a time, with the finish done by the last block of each
//   column of blocks (a ticket counter, zeroed by the launcher), so a reduction plus its finish
//   is one launch. Partials are added in a fixed order: results are deterministic.
#pragma once
#include "common.cuh"

#ifdef __CUDACC__
typedef uint4 v16;
#else
struct alignas(16) v16 {
  unsigned x, y, z, w;
};
#endif

// True when p is 16-byte aligned (null counts as aligned: optional operands).
__device__ __forceinline__ bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

// f[0..W) = p[0..W) in fp32; one 16-byte load per 16 bytes when `vec`.
template <int W, typename T>
__device__ __forceinline__ void load_w(const T* p, bool vec, float (&f)[W]) {
  if constexpr ((W * sizeof(T)) % 16 == 0) {
    if (vec) {
      constexpr int K = W * sizeof(T) / 16;
      v16 raw[K];
#pragma unroll
      for (int k = 0; k < K; ++k) raw[k] = reinterpret_cast<const v16*>(p)[k];
      T t[W];
      memcpy(t, raw, sizeof(raw));
#pragma unroll
      for (int j = 0; j < W; ++j) f[j] = to_f(t[j]);
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < W; ++j) f[j] = to_f(p[j]);
}

// p[0..W) = f (rounded to T); one 16-byte store per 16 bytes when `vec`.
template <int W, typename T>
__device__ __forceinline__ void store_w(T* p, bool vec, const float (&f)[W]) {
  if constexpr ((W * sizeof(T)) % 16 == 0) {
    if (vec) {
      constexpr int K = W * sizeof(T) / 16;
      T t[W];
#pragma unroll
      for (int j = 0; j < W; ++j) t[j] = from_f<T>(f[j]);
      v16 raw[K];
      memcpy(raw, t, sizeof(raw));
#pragma unroll
      for (int k = 0; k < K; ++k) reinterpret_cast<v16*>(p)[k] = raw[k];
      return;
    }
  }
#pragma unroll
  for (int j = 0; j < W; ++j) p[j] = from_f<T>(f[j]);
}

// A chunk width as a type, for the loop bodies of `flat_chunks`.
template <int V>
struct Width {
  static constexpr int value = V;
};

// Flat loop over n elements: grid-stride over chunks of 8 (f(i, Width<8>) handles elements
// [i, i + 8), 16-byte accesses when the caller's operands are aligned), then the n % 8 tail one
// element per thread (f(i, Width<1>)). Launch with ceil(n / 8) threads or fewer.
template <typename F>
__device__ __forceinline__ void flat_chunks(i64 n, F f) {
  i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x, stride = (i64)gridDim.x * blockDim.x;
  i64 body = n / 8 * 8;
  for (i64 i = t * 8; i < body; i += stride * 8) f(i, Width<8>{});
  if (t < n - body) f(body + t, Width<1>{});
}

// The thread's place in the channel-group geometry: its first channel (a multiple of W), its
// first row and the row stride; false for threads beyond groups·lanes (they have no work).
struct Group {
  int ch;
  i64 row, lanes;
};
template <int W>
__device__ __forceinline__ bool group_of(int c, i64 lanes, Group& g) {
  int groups = c / W;
  i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (i64)groups * lanes) return false;
  g.ch = (int)(t % groups) * W;
  g.row = t / groups;
  g.lanes = lanes;
  return true;
}

// Two per-channel sums over the rows of a column of blocks (grid (ceil(C/32), G), block
// (32, COL_ROWS), the chunk of blockIdx.y being rows [y·rows, (y+1)·rows)). `add(r, ch, s1, s2)`
// adds row r of channel ch. Partials go to part[0][G][C] and part[1][G][C]; the last block of
// each column (ticket done[blockIdx.x], zero before the launch) adds them in order and returns
// true in its threadIdx.y == 0 threads with the totals in s1, s2. Every other thread returns
// false, after the block's last barrier.
template <typename Add>
__device__ bool column_sums2(Add add, i64 m, int c, i64 rows, float* part, unsigned* done,
                             float& s1, float& s2) {
  __shared__ bool last;
  int ch = blockIdx.x * 32 + threadIdx.x, g = gridDim.y;
  i64 r0 = (i64)blockIdx.y * rows, r1 = min(m, r0 + rows);
  s1 = 0.f;
  s2 = 0.f;
  if (ch < c)
    for (i64 r = r0 + threadIdx.y; r < r1; r += COL_ROWS) add(r, ch, s1, s2);
  s1 = column_sum(s1);
  s2 = column_sum(s2);
  if (threadIdx.y == 0 && ch < c) {
    part[(i64)blockIdx.y * c + ch] = s1;
    part[((i64)g + blockIdx.y) * c + ch] = s2;
  }
  __threadfence();  // the partials are visible before the ticket is taken
  __syncthreads();
  if (threadIdx.x == 0 && threadIdx.y == 0) last = atomicAdd(&done[blockIdx.x], 1u) == (unsigned)g - 1;
  __syncthreads();
  if (!last) return false;
  __threadfence();
  s1 = 0.f;
  s2 = 0.f;
  if (ch < c) {
    const volatile float* p = part;
    for (int j = threadIdx.y; j < g; j += COL_ROWS) {
      s1 += p[(i64)j * c + ch];
      s2 += p[((i64)g + j) * c + ch];
    }
  }
  s1 = column_sum(s1);
  s2 = column_sum(s2);
  return threadIdx.y == 0 && ch < c;
}
