// Batch norm's elementwise passes over x viewed as [M, C] (src/ops/batch_norm/cuda.rs, src/ops/bn_act/cuda.rs),
// optionally fused with a residual add and a ReLU: the forward apply and the backward apply,
// each reading its inputs once and writing its outputs once. The reductions are
// kernels/batch_norm.cu. Channel-group geometry and 16-byte accesses: kernels/vec.cuh (W = 8
// when C % 8 == 0, else 1; the vector path when every tensor operand is 16-byte aligned).
// gamma, beta, mean, invstd, dgamma, dbeta are fp32. The pre-activation and the ReLU mask's
// source: kernels/bn.cuh.
#include "bn.cuh"

// y = (x − mean)·(invstd·gamma) + beta [+ res], then max(0, ·) when relu; beta, res may be null.
template <int W, typename T>
__device__ void apply_w(const T* x, const T* res, const float* mean, const float* invstd,
                        const float* gamma, const float* beta, i64 m, int c, i64 lanes,
                        int relu, T* y) {
  Group g;
  if (!group_of<W>(c, lanes, g)) return;
  float mu[W], k[W], b[W];
#pragma unroll
  for (int j = 0; j < W; ++j) {
    int ch = g.ch + j;
    mu[j] = mean[ch];
    k[j] = bn_scale(gamma, invstd, ch);
    b[j] = beta ? beta[ch] : 0.f;
  }
  bool vec = aligned16(x) && aligned16(res) && aligned16(y);
  for (i64 r = g.row; r < m; r += g.lanes) {
    i64 o = r * c + g.ch;
    float v[W], q[W];
    load_w<W>(x + o, vec, v);
    if (res) load_w<W>(res + o, vec, q);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      v[j] = bn_pre(v[j], mu[j], k[j], b[j]);
      if (res) v[j] += q[j];
      if (relu) v[j] = fmaxf(v[j], 0.f);
    }
    store_w<W>(y + o, vec, v);
  }
}

// dy' = dy masked as `mask` says (kernels/bn.cuh: MASK_Y reads y, MASK_PRE recomputes the
// pre-activation from x, gamma, beta and the statistics); with batch statistics over `count`
// rows, dx = gamma·invstd·(dy' − dbeta/count − x̂·dgamma/count), x̂ = (x − mean)·invstd;
// without, dx = gamma·invstd·dy' (x is then read only for MASK_PRE). dres = dy' when dres is
// not null.
template <int W, typename T>
__device__ void backward_w(const T* x, const T* y, const T* dy, const float* gamma,
                           const float* beta, const float* mean, const float* invstd,
                           const float* dgamma, const float* dbeta, int mask, i64 m, int c,
                           i64 lanes, i64 count, int batch_stats, T* dx, T* dres) {
  Group g;
  if (!group_of<W>(c, lanes, g)) return;
  bool pre = mask == MASK_PRE, read_x = batch_stats || pre;
  float inv_m = 1.f / (float)count, k[W], mu[W], is[W], b[W], db[W], dg[W];
#pragma unroll
  for (int j = 0; j < W; ++j) {
    int ch = g.ch + j;
    k[j] = bn_scale(gamma, invstd, ch);
    mu[j] = read_x ? mean[ch] : 0.f;
    is[j] = invstd[ch];
    b[j] = pre ? beta[ch] : 0.f;
    db[j] = batch_stats ? dbeta[ch] * inv_m : 0.f;
    dg[j] = batch_stats ? dgamma[ch] * inv_m : 0.f;
  }
  bool vec = aligned16(x) && aligned16(y) && aligned16(dy) && aligned16(dx) && aligned16(dres);
  for (i64 r = g.row; r < m; r += g.lanes) {
    i64 o = r * c + g.ch;
    float d[W], v[W] = {}, q[W];
    load_w<W>(dy + o, vec, d);
    if (read_x) load_w<W>(x + o, vec, v);
    if (mask == MASK_Y) {
      load_w<W>(y + o, vec, q);
#pragma unroll
      for (int j = 0; j < W; ++j) d[j] = q[j] > 0.f ? d[j] : 0.f;
    } else if (pre) {
#pragma unroll
      for (int j = 0; j < W; ++j) d[j] = bn_pre(v[j], mu[j], k[j], b[j]) > 0.f ? d[j] : 0.f;
    }
    if (dres) store_w<W>(dres + o, vec, d);
#pragma unroll
    for (int j = 0; j < W; ++j) {
      if (batch_stats) d[j] = d[j] - db[j] - (v[j] - mu[j]) * is[j] * dg[j];
      d[j] *= k[j];
    }
    store_w<W>(dx + o, vec, d);
  }
}

#define BN_ACT_KERNELS(sfx, T)                                                                   \
  extern "C" __global__ void batch_norm_apply_##sfx(                                             \
      const T* x, const T* res, const float* mean, const float* invstd, const float* gamma,      \
      const float* beta, i64 m, int c, i64 lanes, int relu, T* y) {                              \
    if (c % 8 == 0)                                                                              \
      apply_w<8>(x, res, mean, invstd, gamma, beta, m, c, lanes, relu, y);                       \
    else                                                                                         \
      apply_w<1>(x, res, mean, invstd, gamma, beta, m, c, lanes, relu, y);                       \
  }                                                                                              \
  extern "C" __global__ void batch_norm_backward_##sfx(                                          \
      const T* x, const T* y, const T* dy, const float* gamma, const float* beta,                \
      const float* mean, const float* invstd, const float* dgamma, const float* dbeta, int mask, \
      i64 m, int c, i64 lanes, i64 count, int batch_stats, T* dx, T* dres) {                     \
    if (c % 8 == 0)                                                                              \
      backward_w<8>(x, y, dy, gamma, beta, mean, invstd, dgamma, dbeta, mask, m, c, lanes, count, \
                    batch_stats, dx, dres);                                                      \
    else                                                                                         \
      backward_w<1>(x, y, dy, gamma, beta, mean, invstd, dgamma, dbeta, mask, m, c, lanes, count, \
                    batch_stats, dx, dres);                                                      \
  }
FOR_DTYPES(BN_ACT_KERNELS)
