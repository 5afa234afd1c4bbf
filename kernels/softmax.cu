// Softmax and log-softmax over the last dimension (src/ops/softmax): one block per row, fp32.
#include "common.cuh"

// log Σ exp(x) of row xr, shifted by the maximum for stability.
template <typename T>
__device__ float row_logsumexp(const T* xr, int c) {
  float m = -INFINITY;
  for (int j = threadIdx.x; j < c; j += blockDim.x) m = fmaxf(m, to_f(xr[j]));
  m = block_max(m);
  float s = 0.f;
  for (int j = threadIdx.x; j < c; j += blockDim.x) s += expf(to_f(xr[j]) - m);
  return m + logf(block_sum(s));
}

template <typename T>
__device__ void fwd(const T* x, T* y, int c, bool log) {
  const T* xr = x + (i64)blockIdx.x * c;
  T* yr = y + (i64)blockIdx.x * c;
  float l = row_logsumexp(xr, c);
  for (int j = threadIdx.x; j < c; j += blockDim.x) {
    float v = to_f(xr[j]) - l;
    yr[j] = from_f<T>(log ? v : expf(v));
  }
}

// softmax: dx = y·(dy − Σ dy·y); log-softmax: dx = dy − exp(y)·Σ dy.
template <typename T>
__device__ void bwd(const T* y, const T* dy, T* dx, int c, bool log) {
  i64 o = (i64)blockIdx.x * c;
  float s = 0.f;
  for (int j = threadIdx.x; j < c; j += blockDim.x) s += log ? to_f(dy[o + j]) : to_f(dy[o + j]) * to_f(y[o + j]);
  s = block_sum(s);
  for (int j = threadIdx.x; j < c; j += blockDim.x) {
    float a = to_f(y[o + j]), g = to_f(dy[o + j]);
    dx[o + j] = from_f<T>(log ? g - expf(a) * s : a * (g - s));
  }
}

#define SOFTMAX_KERNELS(sfx, T)                                                                  \
  extern "C" __global__ void softmax_forward_##sfx(const T* x, T* y, int c) { fwd(x, y, c, false); } \
  extern "C" __global__ void log_softmax_forward_##sfx(const T* x, T* y, int c) { fwd(x, y, c, true); } \
  extern "C" __global__ void softmax_backward_##sfx(const T* y, const T* dy, T* dx, int c) {     \
    bwd(y, dy, dx, c, false);                                                                    \
  }                                                                                              \
  extern "C" __global__ void log_softmax_backward_##sfx(const T* y, const T* dy, T* dx, int c) { \
    bwd(y, dy, dx, c, true);                                                                     \
  }
FOR_DTYPES(SOFTMAX_KERNELS)
