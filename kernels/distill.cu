// Distillation loss fused with its gradient (src/ops/distill), one block per row, fp32:
//   soft term (alpha > 0):  −α Σ_c P_T(c) log P_S(c) at temperature τ, gradient α(P_S − P_T)/τ;
//   hard term (labels, 1−α > 0): (1−α)·CE(softmax(s), y) at temperature 1.
// Row losses are fp32; the mean kernel sums them in row order (deterministic).
#include "common.cuh"

// log Σ_j exp(x_j · scale) over one row.
template <typename T>
__device__ float row_lse(const T* x, int c, float scale) {
  float m = -INFINITY;
  for (int j = threadIdx.x; j < c; j += blockDim.x) m = fmaxf(m, to_f(x[j]) * scale);
  m = block_max(m);
  float s = 0.f;
  for (int j = threadIdx.x; j < c; j += blockDim.x) s += expf(to_f(x[j]) * scale - m);
  return m + logf(block_sum(s));
}

// labels may be null (pure distillation); grad is divided by the batch size b.
template <typename T>
__device__ void rows(const T* s, const T* t, const int* labels, int b, int c, float alpha,
                     float tau, float* row_loss, T* grad) {
  i64 o = (i64)blockIdx.x * c;
  const T* sr = s + o;
  const T* tr = t + o;
  float inv_tau = 1.f / tau, hard = 1.f - alpha, inv_b = 1.f / (float)b;
  bool soft_on = alpha > 0.f, hard_on = labels != nullptr && hard > 0.f;
  float ls = 0.f, lt = 0.f, l1 = 0.f;
  if (soft_on) {
    ls = row_lse(sr, c, inv_tau);
    lt = row_lse(tr, c, inv_tau);
  }
  if (hard_on) l1 = row_lse(sr, c, 1.f);
  int y = hard_on ? labels[blockIdx.x] : -1;
  float loss = 0.f;
  for (int j = threadIdx.x; j < c; j += blockDim.x) {
    float sv = to_f(sr[j]), g = 0.f;
    if (soft_on) {
      float a = sv * inv_tau, pt = expf(to_f(tr[j]) * inv_tau - lt);
      loss -= alpha * pt * (a - ls);
      g += alpha * (expf(a - ls) - pt) * inv_tau;
    }
    if (hard_on) {
      g += hard * expf(sv - l1);
      if (j == y) {
        g -= hard;
        loss += hard * (l1 - sv);
      }
    }
    grad[o + j] = from_f<T>(g * inv_b);
  }
  loss = block_sum(loss);
  if (threadIdx.x == 0) row_loss[blockIdx.x] = loss;
}

// One block: out = Σ row_loss / b.
template <typename T>
__device__ void mean(const float* row_loss, int b, T* out) {
  float s = 0.f;
  for (int i = threadIdx.x; i < b; i += blockDim.x) s += row_loss[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = from_f<T>(s / (float)b);
}

#define DISTILL_KERNELS(sfx, T)                                                                 \
  extern "C" __global__ void distill_##sfx(const T* s, const T* t, const int* labels, int b,    \
                                           int c, float alpha, float tau, float* row_loss,      \
                                           T* grad) {                                           \
    rows(s, t, labels, b, c, alpha, tau, row_loss, grad);                                       \
  }                                                                                             \
  extern "C" __global__ void distill_mean_##sfx(const float* row_loss, int b, T* out) {         \
    mean(row_loss, b, out);                                                                     \
  }
FOR_DTYPES(DISTILL_KERNELS)
