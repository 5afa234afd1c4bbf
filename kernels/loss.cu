// Cross-entropy of logits [N, K] against int32 labels, mean over rows, fused with the gradient
// of the mean loss (src/ops/loss). fp32 throughout; the loss is written as fp32 by the row kernel
// and summed in row order by the mean kernel (deterministic).
#include "common.cuh"

// One block per row: row_loss[i] = logsumexp(x_i) − x_i[label]; grad = (softmax − onehot)/N.
template <typename T>
__device__ void rows(const T* x, const int* labels, int n, int k, float* row_loss, T* grad) {
  const T* xr = x + (i64)blockIdx.x * k;
  T* gr = grad + (i64)blockIdx.x * k;
  float m = -INFINITY;
  for (int j = threadIdx.x; j < k; j += blockDim.x) m = fmaxf(m, to_f(xr[j]));
  m = block_max(m);
  float s = 0.f;
  for (int j = threadIdx.x; j < k; j += blockDim.x) s += expf(to_f(xr[j]) - m);
  float l = m + logf(block_sum(s));
  int label = labels[blockIdx.x];
  float inv_n = 1.f / (float)n;
  for (int j = threadIdx.x; j < k; j += blockDim.x) {
    float g = expf(to_f(xr[j]) - l) * inv_n;
    if (j == label) g -= inv_n;
    gr[j] = from_f<T>(g);
  }
  if (threadIdx.x == 0) row_loss[blockIdx.x] = l - to_f(xr[label]);
}

// One block: out = Σ row_loss / N.
template <typename T>
__device__ void mean(const float* row_loss, int n, T* out) {
  float s = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += row_loss[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = from_f<T>(s / (float)n);
}

#define LOSS_KERNELS(sfx, T)                                                                   \
  extern "C" __global__ void cross_entropy_##sfx(const T* x, const int* labels, int n, int k,  \
                                                 float* row_loss, T* grad) {                   \
    rows(x, labels, n, k, row_loss, grad);                                                     \
  }                                                                                            \
  extern "C" __global__ void cross_entropy_mean_##sfx(const float* row_loss, int n, T* out) {  \
    mean(row_loss, n, out);                                                                    \
  }
FOR_DTYPES(LOSS_KERNELS)
