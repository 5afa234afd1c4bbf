// Same-shape elementwise ops and the full sum (src/ops/elementwise). fp32 arithmetic.
#include "vec.cuh"

// Every op moves 8 elements per thread per step (one 16-byte access per operand for bf16, two
// for f32, when every operand is 16-byte aligned; else element by element), the n % 8 tail
// one element per thread (vec.cuh `flat_chunks`).
template <typename T, typename Op>
__device__ __forceinline__ void binary_impl(const T* a, const T* b, T* y, i64 n, Op op) {
  bool vec = aligned16(a) && aligned16(b) && aligned16(y);
  flat_chunks(n, [&](i64 i, auto w) {
    constexpr int W = decltype(w)::value;
    float p[W], q[W];
    load_w<W>(a + i, vec, p);
    load_w<W>(b + i, vec, q);
#pragma unroll
    for (int j = 0; j < W; ++j) p[j] = op(p[j], q[j]);
    store_w<W>(y + i, vec, p);
  });
}
template <typename T, typename Op>
__device__ __forceinline__ void unary_impl(const T* x, T* y, i64 n, Op op) {
  bool vec = aligned16(x) && aligned16(y);
  flat_chunks(n, [&](i64 i, auto w) {
    constexpr int W = decltype(w)::value;
    float p[W];
    load_w<W>(x + i, vec, p);
#pragma unroll
    for (int j = 0; j < W; ++j) p[j] = op(p[j]);
    store_w<W>(y + i, vec, p);
  });
}

#define DEF_BINARY(name, expr)                                                                \
  template <typename T> __device__ __forceinline__ void name##_impl(const T* a, const T* b,  \
                                                                    T* y, i64 n) {            \
    binary_impl(a, b, y, n, [](float p, float q) { return expr; });                           \
  }
#define DEF_UNARY(name, expr)                                                                 \
  template <typename T> __device__ __forceinline__ void name##_impl(const T* x, T* y, i64 n,  \
                                                                    float s) {                \
    unary_impl(x, y, n, [s](float p) { return expr; });                                       \
  }

DEF_BINARY(add, p + q)
DEF_BINARY(sub, p - q)
DEF_BINARY(mul, p * q)
// dx = dy where x > 0 (the subgradient at 0 is 0, as on the CPU); p is x, q is dy.
DEF_BINARY(relu_backward, p > 0.f ? q : 0.f)
DEF_UNARY(scale, p * s)
DEF_UNARY(relu_forward, p > 0.f ? p : 0.f)
DEF_UNARY(exp, expf(p))
DEF_UNARY(ln, logf(p))
DEF_UNARY(recip, 1.f / p)

#define BIN_KERNELS(sfx, T)                                                                  \
  extern "C" __global__ void add_forward_##sfx(const T* a, const T* b, T* y, i64 n) { add_impl(a, b, y, n); } \
  extern "C" __global__ void sub_forward_##sfx(const T* a, const T* b, T* y, i64 n) { sub_impl(a, b, y, n); } \
  extern "C" __global__ void mul_forward_##sfx(const T* a, const T* b, T* y, i64 n) { mul_impl(a, b, y, n); } \
  extern "C" __global__ void relu_backward_##sfx(const T* x, const T* dy, T* dx, i64 n) {     \
    relu_backward_impl(x, dy, dx, n);                                                         \
  }
#define UN_KERNELS(sfx, T)                                                                   \
  extern "C" __global__ void scale_forward_##sfx(const T* x, T* y, i64 n, float s) { scale_impl(x, y, n, s); } \
  extern "C" __global__ void relu_forward_##sfx(const T* x, T* y, i64 n) { relu_forward_impl(x, y, n, 0.f); } \
  extern "C" __global__ void exp_forward_##sfx(const T* x, T* y, i64 n) { exp_impl(x, y, n, 0.f); }    \
  extern "C" __global__ void ln_forward_##sfx(const T* x, T* y, i64 n) { ln_impl(x, y, n, 0.f); }      \
  extern "C" __global__ void recip_forward_##sfx(const T* x, T* y, i64 n) { recip_impl(x, y, n, 0.f); }
FOR_DTYPES(BIN_KERNELS)
FOR_DTYPES(UN_KERNELS)

// Sum of all elements in one launch: each block writes its fp32 partial sum, and the last block
// to finish (counted in *done, zero on entry) adds the partials in block order, so the result
// is deterministic. partial has gridDim.x floats.
template <typename T>
__device__ void sum_all_impl(const T* x, i64 n, float* partial, unsigned* done, T* out) {
  float v = 0.f;
  bool vec = aligned16(x);
  flat_chunks(n, [&](i64 i, auto w) {
    constexpr int W = decltype(w)::value;
    float p[W];
    load_w<W>(x + i, vec, p);
#pragma unroll
    for (int j = 0; j < W; ++j) v += p[j];
  });
  v = block_sum(v);
  __shared__ bool last;
  if (threadIdx.x == 0) {
    partial[blockIdx.x] = v;
    __threadfence();
    last = atomicAdd(done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  float t = 0.f;
  for (unsigned b = threadIdx.x; b < gridDim.x; b += blockDim.x) t += ((volatile float*)partial)[b];
  t = block_sum(t);
  if (threadIdx.x == 0) {
    out[0] = from_f<T>(t);
    *done = 0;  // ready for the next launch
  }
}
#define SUM_KERNELS(sfx, T)                                                                   \
  extern "C" __global__ void sum_all_##sfx(const T* x, i64 n, float* partial, unsigned* done, \
                                           T* out) {                                          \
    sum_all_impl(x, n, partial, done, out);                                                   \
  }
FOR_DTYPES(SUM_KERNELS)
