// Selective-kernel attention (src/ops/sk). Paths u = [u0 | u1] are [N, H, W, 2C]; mixing logits
// z = [z0 | z1] are [N, 2C]; a0 = softmax(z0, z1)[0] per channel, y = a0·u0 + (1 − a0)·u1.
// Per-(image, channel) reductions use grid (ceil(C/32), N), block (32, COL_ROWS).
#include "common.cuh"

__device__ __forceinline__ float weight0(float z0, float z1) {
  float m = fmaxf(z0, z1), e0 = expf(z0 - m), e1 = expf(z1 - m);
  return e0 / (e0 + e1);
}

// y[n, c] = mean over H·W of (u0 + u1).
template <typename T>
__device__ void pool_fwd(const T* u, T* y, int hw, int c) {
  int ch = blockIdx.x * 32 + threadIdx.x, b = blockIdx.y;
  float acc = 0.f;
  if (ch < c)
    for (int p = threadIdx.y; p < hw; p += COL_ROWS) {
      const T* px = u + ((i64)b * hw + p) * 2 * c;
      acc += to_f(px[ch]) + to_f(px[c + ch]);
    }
  acc = column_sum(acc);
  if (threadIdx.y == 0 && ch < c) y[(i64)b * c + ch] = from_f<T>(acc * (1.f / (float)hw));
}

template <typename T>
__device__ void pool_bwd(const T* dy, T* du, i64 total, int hw, int c) {
  float inv = 1.f / (float)hw;
  GRID_LOOP(i, total) {
    int ch = (int)(i % (2 * c)) % c;
    i64 b = i / (2 * c) / hw;
    du[i] = from_f<T>(to_f(dy[b * c + ch]) * inv);
  }
}

template <typename T>
__device__ void mix_fwd(const T* u, const T* z, T* y, i64 total, int hw, int c) {
  GRID_LOOP(i, total) {
    int ch = (int)(i % c);
    i64 pix = i / c, b = pix / hw;
    float a0 = weight0(to_f(z[b * 2 * c + ch]), to_f(z[b * 2 * c + c + ch]));
    const T* px = u + pix * 2 * c;
    y[i] = from_f<T>(a0 * to_f(px[ch]) + (1.f - a0) * to_f(px[c + ch]));
  }
}

// du0 = dy·a0, du1 = dy·(1 − a0).
template <typename T>
__device__ void mix_bwd_u(const T* z, const T* dy, T* du, i64 total, int hw, int c) {
  GRID_LOOP(i, total) {
    int j = (int)(i % (2 * c)), ch = j % c;
    i64 pix = i / (2 * c), b = pix / hw;
    float a0 = weight0(to_f(z[b * 2 * c + ch]), to_f(z[b * 2 * c + c + ch]));
    float g = to_f(dy[pix * c + ch]);
    du[i] = from_f<T>(j < c ? g * a0 : g * (1.f - a0));
  }
}

// s = Σ_hw dy·(u0 − u1); dz0 = s·a0·(1 − a0), dz1 = −dz0.
template <typename T>
__device__ void mix_bwd_z(const T* u, const T* z, const T* dy, T* dz, int hw, int c) {
  int ch = blockIdx.x * 32 + threadIdx.x, b = blockIdx.y;
  float s = 0.f;
  if (ch < c)
    for (int p = threadIdx.y; p < hw; p += COL_ROWS) {
      i64 pix = (i64)b * hw + p;
      s += to_f(dy[pix * c + ch]) * (to_f(u[pix * 2 * c + ch]) - to_f(u[pix * 2 * c + c + ch]));
    }
  s = column_sum(s);
  if (threadIdx.y == 0 && ch < c) {
    float a0 = weight0(to_f(z[(i64)b * 2 * c + ch]), to_f(z[(i64)b * 2 * c + c + ch]));
    float d = s * a0 * (1.f - a0);
    dz[(i64)b * 2 * c + ch] = from_f<T>(d);
    dz[(i64)b * 2 * c + c + ch] = from_f<T>(-d);
  }
}

#define SK_KERNELS(sfx, T)                                                                       \
  extern "C" __global__ void sk_pool_forward_##sfx(const T* u, T* y, int hw, int c) {            \
    pool_fwd(u, y, hw, c);                                                                       \
  }                                                                                              \
  extern "C" __global__ void sk_pool_backward_##sfx(const T* dy, T* du, i64 total, int hw, int c) { \
    pool_bwd(dy, du, total, hw, c);                                                              \
  }                                                                                              \
  extern "C" __global__ void sk_mix_forward_##sfx(const T* u, const T* z, T* y, i64 total, int hw, \
                                                  int c) {                                       \
    mix_fwd(u, z, y, total, hw, c);                                                              \
  }                                                                                              \
  extern "C" __global__ void sk_mix_backward_##sfx(const T* z, const T* dy, T* du, i64 total,    \
                                                   int hw, int c) {                              \
    mix_bwd_u(z, dy, du, total, hw, c);                                                          \
  }                                                                                              \
  extern "C" __global__ void sk_mix_backward_dz_##sfx(const T* u, const T* z, const T* dy, T* dz, \
                                                      int hw, int c) {                           \
    mix_bwd_z(u, z, dy, dz, hw, c);                                                              \
  }
FOR_DTYPES(SK_KERNELS)
