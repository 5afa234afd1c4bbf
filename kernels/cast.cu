// Element type conversions between the GPU's storage types (Tensor::to_dtype).
#include "common.cuh"

extern "C" __global__ void cast_f32_to_bf16(const float* x, bf16* y, i64 n) {
  GRID_LOOP(i, n) y[i] = __float2bfloat16_rn(x[i]);
}
extern "C" __global__ void cast_bf16_to_f32(const bf16* x, float* y, i64 n) {
  GRID_LOOP(i, n) y[i] = __bfloat162float(x[i]);
}
