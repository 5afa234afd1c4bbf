// The bias half of linear layers (src/ops/matmul); the products themselves go to cuBLAS.
#include "common.cuh"

// y = x + b per row of x [rows, c].
template <typename T>
__device__ void add_bias_impl(const T* x, const T* b, T* y, i64 n, int c) {
  GRID_LOOP(i, n) y[i] = from_f<T>(to_f(x[i]) + to_f(b[i % c]));
}

// out[c] = Σ_rows x[r, c]: grid ceil(C/32), block (32, COL_ROWS), fp32 sums in fixed order.
template <typename T>
__device__ void sum_rows_impl(const T* x, T* out, i64 rows, int c) {
  int ch = blockIdx.x * 32 + threadIdx.x;
  float s = 0.f;
  if (ch < c)
    for (i64 r = threadIdx.y; r < rows; r += COL_ROWS) s += to_f(x[r * c + ch]);
  s = column_sum(s);
  if (threadIdx.y == 0 && ch < c) out[ch] = from_f<T>(s);
}

#define MATMUL_KERNELS(sfx, T)                                                                   \
  extern "C" __global__ void add_bias_##sfx(const T* x, const T* b, T* y, i64 n, int c) {        \
    add_bias_impl(x, b, y, n, c);                                                                \
  }                                                                                              \
  extern "C" __global__ void sum_rows_##sfx(const T* x, T* out, i64 rows, int c) {               \
    sum_rows_impl(x, out, rows, c);                                                              \
  }
FOR_DTYPES(MATMUL_KERNELS)
