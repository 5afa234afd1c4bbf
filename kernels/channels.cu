// Concatenation and slicing along the last dimension (src/ops/channels): a strided copy of
// `len` channels per row, from column src_off of a [rows, src_c] array to column dst_off of a
// [rows, dst_c] array. Concat launches it once per input.
#include "common.cuh"

template <typename T>
__device__ void copy_cols(const T* src, int src_c, int src_off, T* dst, int dst_c, int dst_off,
                          i64 rows, int len) {
  i64 total = rows * len;
  GRID_LOOP(i, total) {
    i64 r = i / len;
    int j = (int)(i % len);
    dst[r * dst_c + dst_off + j] = src[r * src_c + src_off + j];
  }
}

#define CHANNEL_KERNELS(sfx, T)                                                                  \
  extern "C" __global__ void concat_channels_##sfx(const T* src, int src_c, T* dst, int dst_c,   \
                                                   int dst_off, i64 rows) {                      \
    copy_cols(src, src_c, 0, dst, dst_c, dst_off, rows, src_c);                                  \
  }                                                                                              \
  extern "C" __global__ void narrow_channels_##sfx(const T* src, int src_c, int start, T* dst,   \
                                                   int len, i64 rows) {                          \
    copy_cols(src, src_c, start, dst, len, 0, rows, len);                                        \
  }
FOR_DTYPES(CHANNEL_KERNELS)
