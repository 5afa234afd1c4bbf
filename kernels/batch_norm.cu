// Batch norm over the last dimension of x viewed as [M, C] (src/ops/batch_norm).
// Statistics and parameter gradients are fp32 whatever x's dtype; gamma, beta, mean, invstd and
// var are fp32 arrays. Per-channel sums run in two stages (partials per row chunk, then a fixed-
// order sum of the partials), so results are deterministic.
#include "common.cuh"

// mode 0: s1 = Σ x; mode 1: s1 = Σ (x − mean)²; mode 2: s1 = Σ dy, s2 = Σ dy·(x − mean)·invstd.
// Grid (ceil(C/32), G), block (32, COL_ROWS); block y covers rows [y·rows, (y+1)·rows).
template <typename T>
__device__ void reduce_impl(const T* x, const T* dy, const float* mean, const float* invstd,
                            i64 m, int c, i64 rows, int mode, float* p1, float* p2) {
  int ch = blockIdx.x * 32 + threadIdx.x;
  i64 r0 = (i64)blockIdx.y * rows, r1 = min(m, r0 + rows);
  float s1 = 0.f, s2 = 0.f;
  if (ch < c) {
    float mu = mode > 0 ? mean[ch] : 0.f;
    float is = mode == 2 ? invstd[ch] : 0.f;
    for (i64 r = r0 + threadIdx.y; r < r1; r += COL_ROWS) {
      float v = to_f(x[r * c + ch]);
      if (mode == 0) {
        s1 += v;
      } else if (mode == 1) {
        s1 += (v - mu) * (v - mu);
      } else {
        float g = to_f(dy[r * c + ch]);
        s1 += g;
        s2 += g * ((v - mu) * is);
      }
    }
  }
  s1 = column_sum(s1);
  s2 = column_sum(s2);
  if (threadIdx.y == 0 && ch < c) {
    p1[(i64)blockIdx.y * c + ch] = s1;
    if (mode == 2) p2[(i64)blockIdx.y * c + ch] = s2;
  }
}

// y = (x − mean)·(invstd·gamma) + beta (beta may be null).
template <typename T>
__device__ void apply_impl(const T* x, const float* mean, const float* invstd, const float* gamma,
                           const float* beta, T* y, i64 n, int c) {
  GRID_LOOP(i, n) {
    int ch = (int)(i % c);
    float b = beta ? beta[ch] : 0.f;
    y[i] = from_f<T>((to_f(x[i]) - mean[ch]) * (invstd[ch] * gamma[ch]) + b);
  }
}

// dx = gamma·invstd·(dy − dbeta/M − x̂·dgamma/M) with batch statistics, gamma·invstd·dy without.
template <typename T>
__device__ void backward_impl(const T* x, const T* dy, const float* gamma, const float* mean,
                              const float* invstd, const float* dgamma, const float* dbeta,
                              i64 n, int c, i64 m, int batch_stats, T* dx) {
  float inv_m = 1.f / (float)m;
  GRID_LOOP(i, n) {
    int ch = (int)(i % c);
    float k = gamma[ch] * invstd[ch], g = to_f(dy[i]);
    if (batch_stats) {
      float xhat = (to_f(x[i]) - mean[ch]) * invstd[ch];
      dx[i] = from_f<T>(k * (g - dbeta[ch] * inv_m - xhat * dgamma[ch] * inv_m));
    } else {
      dx[i] = from_f<T>(k * g);
    }
  }
}

#define BN_KERNELS(sfx, T)                                                                     \
  extern "C" __global__ void batch_norm_reduce_##sfx(const T* x, const T* dy, const float* mean, \
                                                     const float* invstd, i64 m, int c,        \
                                                     i64 rows, int mode, float* p1, float* p2) { \
    reduce_impl(x, dy, mean, invstd, m, c, rows, mode, p1, p2);                                \
  }                                                                                            \
  extern "C" __global__ void batch_norm_apply_##sfx(const T* x, const float* mean,             \
                                                    const float* invstd, const float* gamma,   \
                                                    const float* beta, T* y, i64 n, int c) {   \
    apply_impl(x, mean, invstd, gamma, beta, y, n, c);                                         \
  }                                                                                            \
  extern "C" __global__ void batch_norm_backward_##sfx(                                        \
      const T* x, const T* dy, const float* gamma, const float* mean, const float* invstd,     \
      const float* dgamma, const float* dbeta, i64 n, int c, i64 m, int batch_stats, T* dx) {  \
    backward_impl(x, dy, gamma, mean, invstd, dgamma, dbeta, n, c, m, batch_stats, dx);        \
  }
FOR_DTYPES(BN_KERNELS)

// Adds the g partial rows in order, then finishes per channel:
// mode 0: o1 = mean; mode 1: o1 = invstd, o2 = unbiased var; mode 2: o1 = dbeta, o2 = dgamma.
extern "C" __global__ void batch_norm_finish(const float* p1, const float* p2, int g, int c,
                                             i64 m, float eps, int mode, float* o1, float* o2) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  float s1 = 0.f, s2 = 0.f;
  for (int j = 0; j < g; ++j) {
    s1 += p1[(i64)j * c + ch];
    if (mode == 2) s2 += p2[(i64)j * c + ch];
  }
  if (mode == 0) {
    o1[ch] = s1 / (float)m;
  } else if (mode == 1) {
    float var = s1 / (float)m;
    o1[ch] = 1.f / sqrtf(var + eps);
    o2[ch] = var * ((float)m / (float)(m > 1 ? m - 1 : 1));
  } else {
    o1[ch] = s1;
    o2[ch] = s2;
  }
}

// invstd = 1/sqrt(var + eps) of given running statistics (eval mode).
extern "C" __global__ void batch_norm_invstd(const float* var, float eps, int c, float* invstd) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch < c) invstd[ch] = 1.f / sqrtf(var[ch] + eps);
}
