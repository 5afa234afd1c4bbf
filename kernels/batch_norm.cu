// Batch norm's per-channel reductions over x viewed as [M, C] (src/cuda/bn.rs): the batch
// statistics of the forward and the parameter-gradient sums of the backward, each one pass over
// its inputs with the finish folded in (kernels/vec.cuh, column_sums2): one launch each. The
// elementwise passes (apply, backward) are kernels/bn_act.cu. Statistics and parameter
// gradients are fp32 whatever x's dtype; gamma, mean, invstd, var and the running averages are
// fp32 arrays.
#include "vec.cuh"

// Mean, invstd and unbiased variance from shifted sums: d = x − K with K = x[row 0] of the
// channel (one value every block agrees on), s1 = Σ d, s2 = Σ d², so var = s2/M − (s1/M)²
// loses nothing to cancellation when |mean| ≫ std. Given run_mean/run_var (else null), also
// new_mean/new_var = (1 − momentum)·running + momentum·(batch mean, unbiased batch variance).
// part: 2·G·C floats; done: ceil(C/32) zeroed tickets.
template <typename T>
__device__ void stats_impl(const T* x, i64 m, int c, i64 rows, float eps, float momentum,
                           const float* run_mean, const float* run_var, float* part,
                           unsigned* done, float* mean, float* invstd, float* var_u,
                           float* new_mean, float* new_var) {
  int ch = blockIdx.x * 32 + threadIdx.x;
  float k = ch < c ? to_f(x[ch]) : 0.f;
  auto add = [&](i64 r, int col, float& s1, float& s2) {
    float d = to_f(x[r * c + col]) - k;
    s1 += d;
    s2 += d * d;
  };
  float s1, s2;
  if (!column_sums2(add, m, c, rows, part, done, s1, s2)) return;
  float inv_m = 1.f / (float)m, dm = s1 * inv_m;
  float var = fmaxf(s2 * inv_m - dm * dm, 0.f);
  float mu = k + dm, vu = var * ((float)m / (float)(m > 1 ? m - 1 : 1));
  mean[ch] = mu;
  invstd[ch] = 1.f / sqrtf(var + eps);
  var_u[ch] = vu;
  if (run_mean) {
    new_mean[ch] = (1.f - momentum) * run_mean[ch] + momentum * mu;
    new_var[ch] = (1.f - momentum) * run_var[ch] + momentum * vu;
  }
}

// dbeta = Σ dy', dgamma = Σ dy'·x̂ with x̂ = (x − mean)·invstd and dy' = dy, or dy·[y > 0]
// when y is given (BN + ReLU: the mask is the saved output's sign). Layout as stats_impl.
template <typename T>
__device__ void reduce_impl(const T* x, const T* y, const T* dy, const float* mean,
                            const float* invstd, i64 m, int c, i64 rows, float* part,
                            unsigned* done, float* dbeta, float* dgamma) {
  int ch = blockIdx.x * 32 + threadIdx.x;
  float mu = ch < c ? mean[ch] : 0.f, is = ch < c ? invstd[ch] : 0.f;
  auto add = [&](i64 r, int col, float& s1, float& s2) {
    i64 i = r * c + col;
    float g = to_f(dy[i]);
    if (y && !(to_f(y[i]) > 0.f)) g = 0.f;
    s1 += g;
    s2 += g * ((to_f(x[i]) - mu) * is);
  };
  float s1, s2;
  if (!column_sums2(add, m, c, rows, part, done, s1, s2)) return;
  dbeta[ch] = s1;
  dgamma[ch] = s2;
}

#define BN_KERNELS(sfx, T)                                                                     \
  extern "C" __global__ void batch_norm_stats_##sfx(                                           \
      const T* x, i64 m, int c, i64 rows, float eps, float momentum, const float* run_mean,   \
      const float* run_var, float* part, unsigned* done, float* mean, float* invstd,         \
      float* var_u, float* new_mean, float* new_var) {                                         \
    stats_impl(x, m, c, rows, eps, momentum, run_mean, run_var, part, done, mean, invstd,     \
               var_u, new_mean, new_var);                                                      \
  }                                                                                            \
  extern "C" __global__ void batch_norm_reduce_##sfx(                                          \
      const T* x, const T* y, const T* dy, const float* mean, const float* invstd, i64 m,      \
      int c, i64 rows, float* part, unsigned* done, float* dbeta, float* dgamma) {             \
    reduce_impl(x, y, dy, mean, invstd, m, c, rows, part, done, dbeta, dgamma);                \
  }
FOR_DTYPES(BN_KERNELS)

// invstd = 1/sqrt(var + eps) of given running statistics (eval mode).
extern "C" __global__ void batch_norm_invstd(const float* var, float eps, int c, float* invstd) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch < c) invstd[ch] = 1.f / sqrtf(var[ch] + eps);
}
