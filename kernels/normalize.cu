// L2 normalisation of each row (src/ops/normalize): y = x / max(‖x‖, eps). One block per row.
#include "common.cuh"

template <typename T>
__device__ float row_norm(const T* xr, int c) {
  float s = 0.f;
  for (int j = threadIdx.x; j < c; j += blockDim.x) { float v = to_f(xr[j]); s += v * v; }
  return sqrtf(block_sum(s));
}

template <typename T>
__device__ void fwd(const T* x, T* y, int c, float eps) {
  i64 o = (i64)blockIdx.x * c;
  float n = fmaxf(row_norm(x + o, c), eps);
  for (int j = threadIdx.x; j < c; j += blockDim.x) y[o + j] = from_f<T>(to_f(x[o + j]) / n);
}

// dx = (dy − y·(dy·y)) / ‖x‖ where ‖x‖ > eps, dy / eps otherwise.
template <typename T>
__device__ void bwd(const T* x, const T* dy, T* dx, int c, float eps) {
  i64 o = (i64)blockIdx.x * c;
  float n = row_norm(x + o, c);
  float dot = 0.f;
  for (int j = threadIdx.x; j < c; j += blockDim.x) dot += to_f(x[o + j]) * to_f(dy[o + j]);
  dot = block_sum(dot) / n;
  for (int j = threadIdx.x; j < c; j += blockDim.x) {
    float a = to_f(x[o + j]), g = to_f(dy[o + j]);
    dx[o + j] = from_f<T>(n > eps ? (g - a / n * dot) / n : g / eps);
  }
}

#define NORM_KERNELS(sfx, T)                                                                     \
  extern "C" __global__ void l2_normalize_forward_##sfx(const T* x, T* y, int c, float eps) {    \
    fwd(x, y, c, eps);                                                                           \
  }                                                                                              \
  extern "C" __global__ void l2_normalize_backward_##sfx(const T* x, const T* dy, T* dx, int c,  \
                                                         float eps) {                            \
    bwd(x, dy, dx, c, eps);                                                                      \
  }
FOR_DTYPES(NORM_KERNELS)
