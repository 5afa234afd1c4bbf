// Synchronised batch norm's statistics on the device (src/ops/moments/cuda.rs): each rank packs its
// per-channel mean and sum of squared deviations M2 with its row count into one row, the rows of
// all ranks are all-gathered on the device, and every rank combines them in rank order with
// Chan, Golub and LeVeque's pairwise update (in double: the combine is tiny and its error would
// otherwise add to every normalised value). Nothing goes through the host.
//
// Packed row layout (2c + 2 floats): [mean_0..c, M2_0..c, rows mod 2^24, rows / 2^24]; the
// count travels as two floats of 24 bits each, exact in fp32.
#include "common.cuh"

// out = [mean, var_u·(rows − 1), lo, hi]; var_u is the unbiased variance of `rows` rows.
extern "C" __global__ void moments_pack(const float* mean, const float* var_u, int c, float m1,
                                        float lo, float hi, float* out) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j < c) {
    out[j] = mean[j];
    out[c + j] = var_u[j] * m1;
  }
  if (j == 0) {
    out[2 * c] = lo;
    out[2 * c + 1] = hi;
  }
}

// The statistics of the union of w packed rows (all: [w, 2c + 2]): mean, biased variance,
// unbiased variance per channel, and share[0] = local / (rows over all ranks), the factor that
// turns the all-reduced gradient sums over the global rows into sums over `local` rows.
extern "C" __global__ void moments_combine(const float* all, int w, int c, float local,
                                           float* mean, float* var, float* var_u, float* share) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= c) return;
  const i64 stride = 2 * (i64)c + 2;
  double n = 0.0, mu = 0.0, m2 = 0.0;
  for (int r = 0; r < w; ++r) {
    const float* p = all + r * stride;
    double nb = (double)p[2 * c] + (double)p[2 * c + 1] * 16777216.0;
    if (nb == 0.0) continue;
    double mb = p[j], sb = p[c + j];
    if (n == 0.0) {
      n = nb;
      mu = mb;
      m2 = sb;
      continue;
    }
    double t = n + nb, d = mb - mu;
    mu += d * nb / t;
    m2 += sb + d * d * n * nb / t;
    n = t;
  }
  mean[j] = (float)mu;
  var[j] = (float)(m2 / n);
  var_u[j] = (float)(m2 / (n > 1.0 ? n - 1.0 : 1.0));
  if (j == 0) share[0] = (float)((double)local / n);
}

// out = s · share[0] (n elements).
extern "C" __global__ void moments_scale(const float* s, const float* share, int n, float* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = s[i] * share[0];
}
