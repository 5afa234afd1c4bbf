// Concatenation and slicing along the last dimension (src/ops/channels): a strided copy of
// `len` channels per row, from column src_off of a [rows, src_c] array to column dst_off of a
// [rows, dst_c] array. Concat launches it once per input. Channel-group geometry (vec.cuh): a
// thread owns W = 8 consecutive columns (one 16-byte access of bf16, two of f32) when every
// width and offset is a multiple of 8 (`w8`, set by the launcher), else W = 1, and walks the
// rows with a stride of `lanes`.
#include "vec.cuh"

template <int W, typename T>
__device__ void copy_cols(const T* src, int src_c, int src_off, T* dst, int dst_c, int dst_off,
                          i64 rows, int len, i64 lanes) {
  Group g;
  if (!group_of<W>(len, lanes, g)) return;
  bool vec = aligned16(src) && aligned16(dst);
  for (i64 r = g.row; r < rows; r += g.lanes) {
    float v[W];  // exact for f32 and bf16
    load_w<W>(src + r * src_c + src_off + g.ch, vec, v);
    store_w<W>(dst + r * dst_c + dst_off + g.ch, vec, v);
  }
}

#define COPY_W(...)                \
  if (w8)                          \
    copy_cols<8>(__VA_ARGS__);     \
  else                             \
    copy_cols<1>(__VA_ARGS__)

#define CHANNEL_KERNELS(sfx, T)                                                                  \
  extern "C" __global__ void concat_channels_##sfx(const T* src, int src_c, T* dst, int dst_c,   \
                                                   int dst_off, i64 rows, i64 lanes, int w8) {   \
    COPY_W(src, src_c, 0, dst, dst_c, dst_off, rows, src_c, lanes);                              \
  }                                                                                              \
  extern "C" __global__ void narrow_channels_##sfx(const T* src, int src_c, int start, T* dst,   \
                                                   int len, i64 rows, i64 lanes, int w8) {       \
    COPY_W(src, src_c, start, dst, len, 0, rows, len, lanes);                                    \
  }
FOR_DTYPES(CHANNEL_KERNELS)
