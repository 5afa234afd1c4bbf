// Batch norm fused with ReLU, and with a residual add before the ReLU (src/ops/bn_act), over the
// last dimension of x viewed as [M, C]. The statistics come from kernels/batch_norm.cu; here
// are the one-pass apply, the masked reduction of the backward (partials finished by
// batch_norm_finish mode 2) and the one-pass backward apply. gamma, beta, mean, invstd, dgamma,
// dbeta are fp32; the ReLU mask is y > 0.
#include "common.cuh"

// y = max(0, (x − mean)·(invstd·gamma) + beta [+ res]); res may be null.
template <typename T>
__device__ void apply(const T* x, const T* res, const float* mean, const float* invstd,
                      const float* gamma, const float* beta, T* y, i64 n, int c) {
  GRID_LOOP(i, n) {
    int ch = (int)(i % c);
    float v = (to_f(x[i]) - mean[ch]) * (invstd[ch] * gamma[ch]) + beta[ch];
    if (res) v += to_f(res[i]);
    y[i] = from_f<T>(fmaxf(v, 0.f));
  }
}

// Per-channel partials of Σ dy' and Σ dy'·x̂ with dy' = dy·[y > 0]; layout as batch_norm_reduce.
template <typename T>
__device__ void reduce(const T* x, const T* y, const T* dy, const float* mean,
                       const float* invstd, i64 m, int c, i64 rows, float* p1, float* p2) {
  int ch = blockIdx.x * 32 + threadIdx.x;
  i64 r0 = (i64)blockIdx.y * rows, r1 = min(m, r0 + rows);
  float s1 = 0.f, s2 = 0.f;
  if (ch < c) {
    float mu = mean[ch], is = invstd[ch];
    for (i64 r = r0 + threadIdx.y; r < r1; r += COL_ROWS) {
      i64 i = r * c + ch;
      float g = to_f(y[i]) > 0.f ? to_f(dy[i]) : 0.f;
      s1 += g;
      s2 += g * ((to_f(x[i]) - mu) * is);
    }
  }
  s1 = column_sum(s1);
  s2 = column_sum(s2);
  if (threadIdx.y == 0 && ch < c) {
    p1[(i64)blockIdx.y * c + ch] = s1;
    p2[(i64)blockIdx.y * c + ch] = s2;
  }
}

// dx = gamma·invstd·(dy' − dbeta/M − x̂·dgamma/M) (batch statistics) or gamma·invstd·dy';
// dres = dy' when dres is not null.
template <typename T>
__device__ void backward(const T* x, const T* y, const T* dy, const float* gamma,
                         const float* mean, const float* invstd, const float* dgamma,
                         const float* dbeta, i64 n, int c, i64 m, int batch_stats, T* dx, T* dres) {
  float inv_m = 1.f / (float)m;
  GRID_LOOP(i, n) {
    int ch = (int)(i % c);
    float g = to_f(y[i]) > 0.f ? to_f(dy[i]) : 0.f;
    float k = gamma[ch] * invstd[ch], d = g;
    if (batch_stats) {
      float xhat = (to_f(x[i]) - mean[ch]) * invstd[ch];
      d = g - dbeta[ch] * inv_m - xhat * dgamma[ch] * inv_m;
    }
    dx[i] = from_f<T>(k * d);
    if (dres) dres[i] = from_f<T>(g);
  }
}

#define BN_ACT_KERNELS(sfx, T)                                                                   \
  extern "C" __global__ void batch_norm_relu_forward_##sfx(                                      \
      const T* x, const float* mean, const float* invstd, const float* gamma, const float* beta, \
      T* y, i64 n, int c) {                                                                      \
    apply<T>(x, nullptr, mean, invstd, gamma, beta, y, n, c);                                    \
  }                                                                                              \
  extern "C" __global__ void batch_norm_add_relu_forward_##sfx(                                  \
      const T* x, const T* res, const float* mean, const float* invstd, const float* gamma,      \
      const float* beta, T* y, i64 n, int c) {                                                   \
    apply<T>(x, res, mean, invstd, gamma, beta, y, n, c);                                        \
  }                                                                                              \
  extern "C" __global__ void batch_norm_relu_reduce_##sfx(                                       \
      const T* x, const T* y, const T* dy, const float* mean, const float* invstd, i64 m, int c, \
      i64 rows, float* p1, float* p2) {                                                          \
    reduce<T>(x, y, dy, mean, invstd, m, c, rows, p1, p2);                                       \
  }                                                                                              \
  extern "C" __global__ void batch_norm_relu_backward_##sfx(                                     \
      const T* x, const T* y, const T* dy, const float* gamma, const float* mean,                \
      const float* invstd, const float* dgamma, const float* dbeta, i64 n, int c, i64 m,         \
      int batch_stats, T* dx, T* dres) {                                                         \
    backward<T>(x, y, dy, gamma, mean, invstd, dgamma, dbeta, n, c, m, batch_stats, dx, dres);   \
  }
FOR_DTYPES(BN_ACT_KERNELS)
