// Selective-kernel attention (src/ops/sk). Paths u = [u0 | u1] are [N, H, W, 2C]; mixing logits
// z = [z0 | z1] are [N, 2C]; a0 = softmax(z0, z1)[0] per channel, y = a0·u0 + (1 − a0)·u1.
//
// Four kernels, each reading its inputs once and writing its outputs once (issue 15; bytes in
// src/cuda/traffic_floor.rs): forward, the pool (u → s) then the mix (u, z → y); backward, the
// logit gradient (u, dy → dz) then every term of du in one pass (dy, z, ds → du), so the pool's
// and the mix's gradients of u are never added by a third kernel.
// Geometry: image_groups.cuh (a thread owns W channels of one image and walks its pixels).
#include "image_groups.cuh"

__device__ __forceinline__ float weight0(float z0, float z1) {
  float m = fmaxf(z0, z1), e0 = expf(z0 - m), e1 = expf(z1 - m);
  return e0 / (e0 + e1);
}

// s[n, c] = mean over H·W of (u0 + u1).
template <int W, typename T>
__device__ void pool_fwd(const T* u, T* y, int hw, int c) {
  ImagePlace s = image_place<W>(c, 1);
  float acc[W] = {};
  bool vec = aligned16(u);
  if (s.live)
    for (int p = s.first; p < hw; p += s.stride) {
      const T* px = u + (s.n * hw + p) * 2 * c + s.ch;
      float a[W], b[W];
      load_w<W>(px, vec, a);
      load_w<W>(px + c, vec, b);
#pragma unroll
      for (int j = 0; j < W; ++j) acc[j] += a[j] + b[j];
    }
  image_block_sum<W>(s, acc, [&](int ch, float t) {
    if (ch < c) y[s.n * c + ch] = from_f<T>(t * (1.f / (float)hw));
  });
}

template <int W, typename T>
__device__ __forceinline__ void weights(const T* z, i64 n, int c, int ch, float (&a0)[W]) {
#pragma unroll
  for (int j = 0; j < W; ++j) a0[j] = weight0(to_f(z[n * 2 * c + ch + j]), to_f(z[n * 2 * c + c + ch + j]));
}

template <int W, typename T>
__device__ void mix_fwd(const T* u, const T* z, T* y, int hw, int c, int chunks) {
  ImagePlace s = image_place<W>(c, chunks);
  if (!s.live) return;
  float a0[W];
  weights<W>(z, s.n, c, s.ch, a0);
  bool vec = aligned16(u) && aligned16(y);
  for (int p = s.first; p < hw; p += s.stride) {
    i64 pix = s.n * hw + p;
    float a[W], b[W];
    load_w<W>(u + pix * 2 * c + s.ch, vec, a);
    load_w<W>(u + pix * 2 * c + c + s.ch, vec, b);
#pragma unroll
    for (int j = 0; j < W; ++j) a[j] = a0[j] * a[j] + (1.f - a0[j]) * b[j];
    store_w<W>(y + pix * c + s.ch, vec, a);
  }
}

// s = Σ_hw dy·(u0 − u1); dz0 = s·a0·(1 − a0), dz1 = −dz0.
template <int W, typename T>
__device__ void mix_bwd_z(const T* u, const T* z, const T* dy, T* dz, int hw, int c) {
  ImagePlace s = image_place<W>(c, 1);
  float acc[W] = {};
  bool vec = aligned16(u) && aligned16(dy);
  if (s.live)
    for (int p = s.first; p < hw; p += s.stride) {
      i64 pix = s.n * hw + p;
      float a[W], b[W], g[W];
      load_w<W>(u + pix * 2 * c + s.ch, vec, a);
      load_w<W>(u + pix * 2 * c + c + s.ch, vec, b);
      load_w<W>(dy + pix * c + s.ch, vec, g);
#pragma unroll
      for (int j = 0; j < W; ++j) acc[j] += g[j] * (a[j] - b[j]);
    }
  image_block_sum<W>(s, acc, [&](int ch, float t) {
    if (ch >= c) return;
    float a0 = weight0(to_f(z[s.n * 2 * c + ch]), to_f(z[s.n * 2 * c + c + ch]));
    float d = t * a0 * (1.f - a0);
    dz[s.n * 2 * c + ch] = from_f<T>(d);
    dz[s.n * 2 * c + c + ch] = from_f<T>(-d);
  });
}

// du0 = dy·a0 + ds/hw, du1 = dy·(1 − a0) + ds/hw: the mix's and the pool's gradients of u in
// one pass. dy (with z) or ds may be null: the term is then absent.
template <int W, typename T>
__device__ void backward_du(const T* z, const T* dy, const T* ds, T* du, int hw, int c, int chunks) {
  ImagePlace s = image_place<W>(c, chunks);
  if (!s.live) return;
  float a0[W] = {}, d[W];
  if (dy) weights<W>(z, s.n, c, s.ch, a0);
  float inv = 1.f / (float)hw;
#pragma unroll
  for (int j = 0; j < W; ++j) d[j] = ds ? to_f(ds[s.n * c + s.ch + j]) * inv : 0.f;
  bool vec = aligned16(dy) && aligned16(du);
  for (int p = s.first; p < hw; p += s.stride) {
    i64 pix = s.n * hw + p;
    float g[W], a[W], b[W];
    if (dy) {
      load_w<W>(dy + pix * c + s.ch, vec, g);
    } else {
#pragma unroll
      for (int j = 0; j < W; ++j) g[j] = 0.f;
    }
#pragma unroll
    for (int j = 0; j < W; ++j) {
      a[j] = dy ? g[j] * a0[j] + d[j] : d[j];
      b[j] = dy ? g[j] * (1.f - a0[j]) + d[j] : d[j];
    }
    store_w<W>(du + pix * 2 * c + s.ch, vec, a);
    store_w<W>(du + pix * 2 * c + c + s.ch, vec, b);
  }
}

// Instantiates a kernel body for W = 8 (C % 8 == 0) and W = 1.
#define SK_W(f, ...)  \
  if (c % 8 == 0)      \
    f<8>(__VA_ARGS__); \
  else                 \
    f<1>(__VA_ARGS__)

#define SK_KERNELS(sfx, T)                                                                       \
  extern "C" __global__ void sk_pool_forward_##sfx(const T* u, T* y, int hw, int c) {            \
    SK_W(pool_fwd, u, y, hw, c);                                                               \
  }                                                                                              \
  extern "C" __global__ void sk_mix_forward_##sfx(const T* u, const T* z, T* y, int hw, int c,   \
                                                  int chunks) {                                  \
    SK_W(mix_fwd, u, z, y, hw, c, chunks);                                                     \
  }                                                                                              \
  extern "C" __global__ void sk_mix_backward_dz_##sfx(const T* u, const T* z, const T* dy, T* dz, \
                                                      int hw, int c) {                           \
    SK_W(mix_bwd_z, u, z, dy, dz, hw, c);                                                      \
  }                                                                                              \
  extern "C" __global__ void sk_backward_du_##sfx(const T* z, const T* dy, const T* ds, T* du,   \
                                                  int hw, int c, int chunks) {                   \
    SK_W(backward_du, z, dy, ds, du, hw, c, chunks);                                           \
  }
FOR_DTYPES(SK_KERNELS)
