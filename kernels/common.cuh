// Shared helpers of every kernel file: element loads/stores that compute in fp32 whatever the
// storage type, block reductions, and the macro that instantiates a kernel for each dtype.
//
// Naming rule: the Rust op `relu_forward` launches `relu_forward_f32` / `relu_forward_bf16`;
// multi-stage ops add a stage name before the dtype (`batch_norm_reduce_bf16`).
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

typedef long long i64;
typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }

// Instantiates M(suffix, type) for every storage type the GPU backend holds.
#define FOR_DTYPES(M) M(f32, float) M(bf16, bf16)

// Grid-stride loop over n elements.
#define GRID_LOOP(i, n) \
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a 1-D block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// The order is fixed, so results are deterministic.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float s[32];
  __syncthreads();  // s may still be read by a previous call
  v = warp_sum(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) s[warp] = v;
  __syncthreads();
  int nw = (blockDim.x + 31) >> 5;
  v = lane < nw ? s[lane] : 0.f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v) {
  __shared__ float s[32];
  __syncthreads();
  v = warp_max(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) s[warp] = v;
  __syncthreads();
  int nw = (blockDim.x + 31) >> 5;
  v = lane < nw ? s[lane] : -INFINITY;
  return warp_max(v);
}

// Column sums of a 2-D block (32 channels in x, COL_ROWS row-strided threads in y): reduces
// over threadIdx.y; the result is valid in threads with threadIdx.y == 0.
#define COL_ROWS 8
__device__ __forceinline__ float column_sum(float v) {
  __shared__ float s[COL_ROWS][33];
  __syncthreads();
  s[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.y == 0) {
    float t = 0.f;
    for (int r = 0; r < COL_ROWS; ++r) t += s[r][threadIdx.x];
    v = t;
  }
  return v;
}
