// What batch norm's kernels share (kernels/batch_norm.cu, kernels/bn_act.cu): the pre-activation
// and the source of the ReLU mask. The forward's output is relu(pre [+ res]); the backward's
// mask is pre > 0 taken from x when there is no residual (x is read anyway, y need not be), so
// both sides compute pre with this one function and the mask agrees with the forward bit for
// bit (one fused multiply-add, whatever the compiler contracts elsewhere).
#pragma once
#include "vec.cuh"

// Where the backward's ReLU mask comes from (src/ops/batch_norm/cuda_backward.rs `Relu`).
#define MASK_NONE 0  // no ReLU: dy as is
#define MASK_Y 1     // y > 0 of the saved output (BN + add + ReLU: y depends on the residual)
#define MASK_PRE 2   // bn_pre(x) > 0 (BN + ReLU): needs gamma and beta

// (x − mean)·k + beta with k = invstd·gamma (bn_scale).
__device__ __forceinline__ float bn_pre(float x, float mean, float k, float beta) {
  return fmaf(x - mean, k, beta);
}
__device__ __forceinline__ float bn_scale(const float* gamma, const float* invstd, int ch) {
  return invstd[ch] * gamma[ch];
}
