// Helpers of the memory-bound kernels that run at their byte floor (issue 15):
//
// - 16-byte loads and stores of W consecutive elements (8 bf16 = one 16-byte access, 8 f32 =
//   two), used when the caller checked alignment; otherwise the same elements one by one;
// - the channel-group geometry of NHWC kernels: a thread owns W consecutive channels of a
//   [M, C] tensor for its whole life (its parameters stay in registers) and walks the rows with
//   a stride of `lanes`; one integer division per thread, none per element. The host side of
//   the geometry is src/cuda/groups.rs (W = 8 when C % 8 == 0, else 1);
// - per-channel sums in one pass, two at a time, in the same W-channel groups, with the finish
//   done by the last block of each column of blocks (a ticket counter, zeroed by the launcher),
//   so a reduction plus its finish is one launch. Partials are added in a fixed order: results
//   are deterministic.
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

// Per-channel reductions over [M, C] in W-channel groups (W = 8 when C % 8 == 0, else 1): a block
// of RED_THREADS threads holds gb = min(C/W, RED_GROUPS) groups (cb = gb·W channels) by
// lanes = RED_THREADS / gb row lanes; thread t owns group t % gb and row lane t / gb, so a warp
// reads consecutive W-element pieces of a row (and of the next rows when a row is short). Grid
// (ceil(C/W / RED_GROUPS), G): blockIdx.y sums rows [y·rows, (y+1)·rows). The host side is
// src/cuda/groups.rs (`reduce_launch`, `chunks`).
#define RED_THREADS 256
#define RED_GROUPS 32

struct RedPlace {
  int gb, cb, lanes, gi, lane, ch;  // ch: the thread's first channel
  bool live;                        // the thread has a group and a row lane
};
template <int W>
__device__ __forceinline__ RedPlace red_place(int c) {
  RedPlace p;
  int groups = c / W;
  p.gb = max(min(groups, RED_GROUPS), 1);
  p.cb = p.gb * W;
  p.lanes = RED_THREADS / p.gb;
  p.gi = threadIdx.x % p.gb;
  p.lane = threadIdx.x / p.gb;
  int grp = blockIdx.x * p.gb + p.gi;
  p.ch = grp * W;
  p.live = p.lane < p.lanes && grp < groups;
  return p;
}

// res[o] = Σ_{l < len} get(o, l) for o < n (n ≤ 2·RED_THREADS), by every thread of the block in
// a fixed order: when n < RED_THREADS, `parts` threads share an output, each taking every
// parts-th l, and their sums are added in part order. tmp holds RED_THREADS floats. Starts
// and ends with a barrier (all threads must call it).
template <typename Get>
__device__ void fold(int n, int len, Get get, float* tmp, float* res) {
  __syncthreads();
  int t = threadIdx.x, parts = n >= RED_THREADS ? 1 : max(min(len, RED_THREADS / n), 1);
  if (parts == 1) {
    for (int o = t; o < n; o += RED_THREADS) {
      float s = 0.f;
      for (int l = 0; l < len; ++l) s += get(o, l);
      res[o] = s;
    }
    __syncthreads();
    return;
  }
  if (t < n * parts) {
    int o = t % n;
    float s = 0.f;
    for (int l = t / n; l < len; l += parts) s += get(o, l);
    tmp[t] = s;
  }
  __syncthreads();
  if (t < n) {
    float s = 0.f;
    for (int q = 0; q < parts; ++q) s += tmp[q * n + t];
    res[t] = s;
  }
  __syncthreads();
}

// Two per-channel sums over the rows of a column of blocks, with the finish folded in:
// `add(r, ch, a, b)` adds row r of channels [ch, ch + W) into a[0..W), b[0..W). Each block
// writes its sums to part[0][G][C] and part[1][G][C]; the last block of each column (ticket
// done[blockIdx.x], zero before the launch) adds them in order and returns true in the live
// threads of row lane 0, with the totals in s1, s2. Every other thread returns false after the
// block's last barrier. Deterministic: every sum is in an order fixed by the shape alone.
template <int W, typename Add>
__device__ bool column_sums_w(Add add, const RedPlace& p, i64 m, int c, i64 rows, float* part,
                              unsigned* done, float (&s1)[W], float (&s2)[W]) {
  __shared__ float lane_sums[2 * RED_THREADS * W];
  __shared__ float tmp[RED_THREADS], res[2 * RED_THREADS];
  __shared__ bool last;
  int g = gridDim.y, n = 2 * p.cb, c0 = blockIdx.x * p.cb;
  i64 r0 = (i64)blockIdx.y * rows, r1 = min(m, r0 + rows);
#pragma unroll
  for (int j = 0; j < W; ++j) s1[j] = s2[j] = 0.f;
  if (p.live)
    for (i64 r = r0 + p.lane; r < r1; r += p.lanes) add(r, p.ch, s1, s2);
  // lane_sums[l][k·cb + channel]: lane l's sum k of each channel of the block.
  if (p.lane < p.lanes)
#pragma unroll
    for (int j = 0; j < W; ++j) {
      lane_sums[p.lane * n + p.gi * W + j] = s1[j];
      lane_sums[p.lane * n + p.cb + p.gi * W + j] = s2[j];
    }
  fold(n, p.lanes, [&](int o, int l) { return lane_sums[l * n + o]; }, tmp, res);
  for (int o = threadIdx.x; o < n; o += RED_THREADS) {
    int ch = c0 + o % p.cb;
    if (ch < c) part[((i64)(o / p.cb) * g + blockIdx.y) * c + ch] = res[o];
  }
  __threadfence();  // the partials are visible before the ticket is taken
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&done[blockIdx.x], 1u) == (unsigned)g - 1;
  __syncthreads();
  if (!last) return false;
  __threadfence();
  const volatile float* vp = part;
  auto get = [&](int o, int l) {
    int ch = c0 + o % p.cb;
    return ch < c ? vp[((i64)(o / p.cb) * g + l) * c + ch] : 0.f;
  };
  fold(n, g, get, tmp, res);
  if (!(p.live && p.lane == 0)) return false;
#pragma unroll
  for (int j = 0; j < W; ++j) {
    s1[j] = res[p.gi * W + j];
    s2[j] = res[p.cb + p.gi * W + j];
  }
  return true;
}
