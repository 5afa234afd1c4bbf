// Batch norm's per-channel reductions over x viewed as [M, C] (src/ops/batch_norm/cuda.rs): the batch
// statistics of the forward and the parameter-gradient sums of the backward, each one pass over
// its inputs with the finish folded in (kernels/vec.cuh, column_sums_w): one launch each. A
// thread owns W = 8 channels when C % 8 == 0 (16-byte loads when every tensor operand is
// 16-byte aligned, else element by element), one otherwise. The elementwise passes (apply,
// backward) are kernels/bn_act.cu. Statistics and parameter gradients are fp32 whatever x's
// dtype; gamma, beta, mean, invstd, var and the running averages are fp32 arrays.
#include "bn.cuh"

// Mean, invstd and unbiased variance from shifted sums: d = x − K with K = x[row 0] of the
// channel (one value every block agrees on), s1 = Σ d, s2 = Σ d², so var = s2/M − (s1/M)²
// loses nothing to cancellation when |mean| ≫ std. Given run_mean/run_var (else null), also
// new_mean/new_var = (1 − momentum)·running + momentum·(batch mean, unbiased batch variance).
// part: 2·G·C floats; done: one zeroed ticket per column of blocks.
template <int W, typename T>
__device__ void stats_w(const T* x, i64 m, int c, i64 rows, float eps, float momentum,
                        const float* run_mean, const float* run_var, float* part, unsigned* done,
                        float* mean, float* invstd, float* var_u, float* new_mean,
                        float* new_var) {
  RedPlace p = red_place<W>(c);
  bool vec = aligned16(x);
  float k[W] = {};
  if (p.live) load_w<W>(x + p.ch, vec, k);
  auto add = [&](i64 r, int ch, float (&a)[W], float (&b)[W]) {
    float v[W];
    load_w<W>(x + r * c + ch, vec, v);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      float d = v[j] - k[j];
      a[j] += d;
      b[j] += d * d;
    }
  };
  float s1[W], s2[W];
  if (!column_sums_w<W>(add, p, m, c, rows, part, done, s1, s2)) return;
  float inv_m = 1.f / (float)m, bessel = (float)m / (float)(m > 1 ? m - 1 : 1);
#pragma unroll
  for (int j = 0; j < W; ++j) {
    int ch = p.ch + j;
    float dm = s1[j] * inv_m, var = fmaxf(s2[j] * inv_m - dm * dm, 0.f);
    float mu = k[j] + dm, vu = var * bessel;
    mean[ch] = mu;
    invstd[ch] = 1.f / sqrtf(var + eps);
    var_u[ch] = vu;
    if (run_mean) {
      new_mean[ch] = (1.f - momentum) * run_mean[ch] + momentum * mu;
      new_var[ch] = (1.f - momentum) * run_var[ch] + momentum * vu;
    }
  }
}

// dbeta = Σ dy', dgamma = Σ dy'·x̂ with x̂ = (x − mean)·invstd and dy' = dy masked as `mask`
// says (kernels/bn.cuh): MASK_Y reads y, MASK_PRE recomputes the pre-activation from the x
// it reads anyway (gamma and beta given). Layout as stats_w.
template <int W, typename T>
__device__ void reduce_w(const T* x, const T* y, const T* dy, const float* gamma,
                         const float* beta, const float* mean, const float* invstd, int mask,
                         i64 m, int c, i64 rows, float* part, unsigned* done, float* dbeta,
                         float* dgamma) {
  RedPlace p = red_place<W>(c);
  float mu[W] = {}, is[W] = {}, k[W] = {}, b[W] = {};
  if (p.live)
#pragma unroll
    for (int j = 0; j < W; ++j) {
      int ch = p.ch + j;
      mu[j] = mean[ch];
      is[j] = invstd[ch];
      if (mask == MASK_PRE) {
        k[j] = bn_scale(gamma, invstd, ch);
        b[j] = beta[ch];
      }
    }
  bool vec = aligned16(x) && aligned16(y) && aligned16(dy);
  auto add = [&](i64 r, int ch, float (&a)[W], float (&s)[W]) {
    i64 o = r * c + ch;
    float v[W], g[W], q[W] = {};
    load_w<W>(dy + o, vec, g);
    load_w<W>(x + o, vec, v);
    if (mask == MASK_Y) load_w<W>(y + o, vec, q);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      if (mask == MASK_Y && !(q[j] > 0.f)) g[j] = 0.f;
      if (mask == MASK_PRE && !(bn_pre(v[j], mu[j], k[j], b[j]) > 0.f)) g[j] = 0.f;
      a[j] += g[j];
      s[j] += g[j] * ((v[j] - mu[j]) * is[j]);
    }
  };
  float s1[W], s2[W];
  if (!column_sums_w<W>(add, p, m, c, rows, part, done, s1, s2)) return;
#pragma unroll
  for (int j = 0; j < W; ++j) {
    dbeta[p.ch + j] = s1[j];
    dgamma[p.ch + j] = s2[j];
  }
}

#define BN_KERNELS(sfx, T)                                                                     \
  extern "C" __global__ void batch_norm_stats_##sfx(                                           \
      const T* x, i64 m, int c, i64 rows, float eps, float momentum, const float* run_mean,   \
      const float* run_var, float* part, unsigned* done, float* mean, float* invstd,         \
      float* var_u, float* new_mean, float* new_var) {                                         \
    if (c % 8 == 0)                                                                            \
      stats_w<8>(x, m, c, rows, eps, momentum, run_mean, run_var, part, done, mean, invstd,    \
                 var_u, new_mean, new_var);                                                    \
    else                                                                                       \
      stats_w<1>(x, m, c, rows, eps, momentum, run_mean, run_var, part, done, mean, invstd,    \
                 var_u, new_mean, new_var);                                                    \
  }                                                                                            \
  extern "C" __global__ void batch_norm_reduce_##sfx(                                          \
      const T* x, const T* y, const T* dy, const float* gamma, const float* beta,              \
      const float* mean, const float* invstd, int mask, i64 m, int c, i64 rows, float* part,   \
      unsigned* done, float* dbeta, float* dgamma) {                                           \
    if (c % 8 == 0)                                                                            \
      reduce_w<8>(x, y, dy, gamma, beta, mean, invstd, mask, m, c, rows, part, done, dbeta,    \
                  dgamma);                                                                     \
    else                                                                                       \
      reduce_w<1>(x, y, dy, gamma, beta, mean, invstd, mask, m, c, rows, part, done, dbeta,    \
                  dgamma);                                                                     \
  }
FOR_DTYPES(BN_KERNELS)

// invstd = 1/sqrt(var + eps) of given running statistics (eval mode).
extern "C" __global__ void batch_norm_invstd(const float* var, float eps, int c, float* invstd) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch < c) invstd[ch] = 1.f / sqrtf(var[ch] + eps);
}
