// Element type conversions between the GPU's storage types (Tensor::to_dtype), 8 elements per
// thread per step with 16-byte accesses when aligned, the n % 8 tail one element per thread
// (vec.cuh `flat_chunks`).
#include "vec.cuh"

template <typename S, typename D>
__device__ __forceinline__ void cast_impl(const S* x, D* y, i64 n) {
  bool vec = aligned16(x) && aligned16(y);
  flat_chunks(n, [&](i64 i, auto w) {
    constexpr int W = decltype(w)::value;
    float p[W];
    load_w<W>(x + i, vec, p);
    store_w<W>(y + i, vec, p);
  });
}

extern "C" __global__ void cast_f32_to_bf16(const float* x, bf16* y, i64 n) { cast_impl(x, y, n); }
extern "C" __global__ void cast_bf16_to_f32(const bf16* x, float* y, i64 n) { cast_impl(x, y, n); }
