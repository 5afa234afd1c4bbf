// Pooling over NHWC (src/ops/pool), every kernel in W-channel groups (8 channels and 16-byte
// accesses per thread when C % 8 == 0). Backward passes gather (each input element sums the
// outputs whose windows hold it, in output order) instead of scattering with atomics:
// deterministic. Max-pool backward reads the forward's output to tell the window's choice
// without re-deriving each covering window's argmax. Padding is per side: kernels take the
// leading offsets (ph, pw: cells before the first row / column); the caller sizes the output
// from the totals.
#include "image_groups.cuh"

// Grid item i over W-channel groups of every pixel of an [n, rows, cols, c] tensor: the image,
// row, column and first channel it owns (c a multiple of W).
struct PixelGroup {
  int b, row, col, ch;
};
template <int W>
__device__ __forceinline__ PixelGroup pixel_group(i64 i, int c, int rows, int cols) {
  int groups = c / W;
  i64 r = i / groups;
  PixelGroup p;
  p.ch = (int)(i % groups) * W;
  p.col = (int)(r % cols);
  r /= cols;
  p.row = (int)(r % rows);
  p.b = (int)(r / rows);
  return p;
}

// Window [lo, hi) of output o along one axis, clipped to the image.
__device__ __forceinline__ void window(int o, int stride, int pad, int k, int len, int* lo, int* hi) {
  int start = o * stride - pad;
  *lo = max(start, 0);
  *hi = max(min(start + k, len), 0);
}

// Max pool, a thread owning W channels (W = 8 when C % 8 == 0, else 1) of one output pixel
// (forward) or one input pixel (backward): the window's bounds are worked out once for W
// channels, each cell read with one 16-byte access when every tensor is 16-byte aligned. The
// CPU's tie rule: the first maximum in window order (strict >), so a NaN is chosen only as the
// window's first cell; an empty window gives 0. Launch with ceil(pixels·C/W) threads or fewer.
template <int W, typename T>
__device__ void max_fwd(const T* x, T* y, int n, int h, int w, int c, int k, int s, int ph, int pw,
                        int ho, int wo) {
  bool vec = aligned16(x) && aligned16(y);
  GRID_LOOP(i, (i64)n * ho * wo * (c / W)) {
    PixelGroup p = pixel_group<W>(i, c, ho, wo);
    int b = p.b, oh = p.row, ow = p.col, ch = p.ch;
    int h0, h1, w0, w1;
    window(oh, s, ph, k, h, &h0, &h1);
    window(ow, s, pw, k, w, &w0, &w1);
    float best[W] = {};
    bool first = true;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) {
        float a[W];
        load_w<W>(x + (((i64)b * h + ih) * w + iw) * c + ch, vec, a);
#pragma unroll
        for (int j = 0; j < W; ++j)
          if (first || a[j] > best[j]) best[j] = a[j];
        first = false;
      }
    store_w<W>(y + (((i64)b * ho + oh) * wo + ow) * c + ch, vec, best);
  }
}

// Outputs whose window holds input index ih along one axis: o with o·s − p ≤ ih < o·s − p + k.
__device__ __forceinline__ void covering(int ih, int s, int p, int k, int len_out, int* lo, int* hi) {
  int a = ih + p - k + 1;  // smallest o·s
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  *hi = min((ih + p) / s + 1, len_out);
}

// Bit j set when input cell (ih, iw), holding v[j], is the forward's choice for channel ch + j
// of window (oh, ow), whose maximum the forward saved as m[j]: the first cell (in window order)
// equal to m[j], or the window's first cell when m[j] is NaN. Channels where v != m are decided
// at once; the window is scanned, W channels a cell, only while some channel is undecided.
template <int W, typename T>
__device__ unsigned chosen(const T* xi, const float* v, const float* m, int ih, int iw, int h,
                           int w, int c, int k, int s, int ph, int pw, int oh, int ow, int ch,
                           bool vec) {
  int h0, h1, w0, w1;
  window(oh, s, ph, k, h, &h0, &h1);
  window(ow, s, pw, k, w, &w0, &w1);
  unsigned take = 0, pending = 0;
  bool first_cell = ih == h0 && iw == w0;
#pragma unroll
  for (int j = 0; j < W; ++j) {
    if (isnan(m[j])) take |= first_cell ? 1u << j : 0u;
    else if (v[j] == m[j]) pending |= 1u << j;
  }
  for (int qh = h0; qh < h1 && pending; ++qh)
    for (int qw = w0; qw < w1 && pending; ++qw) {
      if (qh == ih && qw == iw) {
        take |= pending;
        pending = 0;
        break;
      }
      float a[W];
      load_w<W>(xi + ((i64)qh * w + qw) * c + ch, vec, a);
#pragma unroll
      for (int j = 0; j < W; ++j)
        if (a[j] == m[j]) pending &= ~(1u << j);
    }
  return take;
}

template <int W, typename T>
__device__ void max_bwd(const T* x, const T* y, const T* dy, T* dx, int n, int h, int w, int c,
                        int k, int s, int ph, int pw, int ho, int wo) {
  bool vec = aligned16(x) && aligned16(y) && aligned16(dy) && aligned16(dx);
  GRID_LOOP(i, (i64)n * h * w * (c / W)) {
    PixelGroup p = pixel_group<W>(i, c, h, w);
    int b = p.b, ih = p.row, iw = p.col, ch = p.ch;
    const T* xi = x + (i64)b * h * w * c;
    float v[W], g[W] = {};
    load_w<W>(xi + ((i64)ih * w + iw) * c + ch, vec, v);
    int oh0, oh1, ow0, ow1;
    covering(ih, s, ph, k, ho, &oh0, &oh1);
    covering(iw, s, pw, k, wo, &ow0, &ow1);
    for (int oh = oh0; oh < oh1; ++oh)
      for (int ow = ow0; ow < ow1; ++ow) {
        i64 o = (((i64)b * ho + oh) * wo + ow) * c + ch;
        float m[W], d[W];
        load_w<W>(y + o, vec, m);
        load_w<W>(dy + o, vec, d);
        unsigned take = chosen<W>(xi, v, m, ih, iw, h, w, c, k, s, ph, pw, oh, ow, ch, vec);
#pragma unroll
        for (int j = 0; j < W; ++j)
          if (take >> j & 1u) g[j] += d[j];
      }
    store_w<W>(dx + (((i64)b * h + ih) * w + iw) * c + ch, vec, g);
  }
}

// Average pool, k x k windows at stride s from the leading padding (ph, pw), clipped to the
// image. The divisor is k·k when padding counts (cp != 0), else the cells inside the image.
__device__ __forceinline__ float avg_inv(int oh, int ow, int h, int w, int k, int s, int ph, int pw,
                                         int cp, int* h0, int* h1, int* w0, int* w1) {
  window(oh, s, ph, k, h, h0, h1);
  window(ow, s, pw, k, w, w0, w1);
  return 1.f / (float)(cp ? k * k : (*h1 - *h0) * (*w1 - *w0));
}

// A thread owns W channels (W = 8 when C % 8 == 0, else 1) of one output pixel (forward) or
// one input pixel (backward): the window's bounds and divisor are worked out once for W
// channels, read and written with 16-byte accesses when every tensor is 16-byte aligned.
// Launch with ceil(pixels·C/W) threads or fewer (grid-stride).
template <int W, typename T>
__device__ void avg_fwd(const T* x, T* y, int n, int h, int w, int c, int k, int s, int ph, int pw,
                        int cp, int ho, int wo) {
  bool vec = aligned16(x) && aligned16(y);
  GRID_LOOP(i, (i64)n * ho * wo * (c / W)) {
    PixelGroup p = pixel_group<W>(i, c, ho, wo);
    int b = p.b, oh = p.row, ow = p.col, ch = p.ch;
    int h0, h1, w0, w1;
    float inv = avg_inv(oh, ow, h, w, k, s, ph, pw, cp, &h0, &h1, &w0, &w1), acc[W] = {};
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) {
        float a[W];
        load_w<W>(x + (((i64)b * h + ih) * w + iw) * c + ch, vec, a);
#pragma unroll
        for (int j = 0; j < W; ++j) acc[j] += a[j] * inv;
      }
    store_w<W>(y + (((i64)b * ho + oh) * wo + ow) * c + ch, vec, acc);
  }
}

template <int W, typename T>
__device__ void avg_bwd(const T* dy, T* dx, int n, int h, int w, int c, int k, int s, int ph, int pw,
                        int cp, int ho, int wo) {
  bool vec = aligned16(dy) && aligned16(dx);
  GRID_LOOP(i, (i64)n * h * w * (c / W)) {
    PixelGroup p = pixel_group<W>(i, c, h, w);
    int b = p.b, ih = p.row, iw = p.col, ch = p.ch;
    int oh0, oh1, ow0, ow1;
    covering(ih, s, ph, k, ho, &oh0, &oh1);
    covering(iw, s, pw, k, wo, &ow0, &ow1);
    float g[W] = {};
    for (int oh = oh0; oh < oh1; ++oh)
      for (int ow = ow0; ow < ow1; ++ow) {
        int h0, h1, w0, w1;
        float inv = avg_inv(oh, ow, h, w, k, s, ph, pw, cp, &h0, &h1, &w0, &w1), d[W];
        load_w<W>(dy + (((i64)b * ho + oh) * wo + ow) * c + ch, vec, d);
#pragma unroll
        for (int j = 0; j < W; ++j) g[j] += d[j] * inv;
      }
    store_w<W>(dx + (((i64)b * h + ih) * w + iw) * c + ch, vec, g);
  }
}

// Average-pool backward when the windows tile the image (k == s): each window's cells get its
// one gradient, so a thread owns W channels of one output pixel, reads its dy once and writes
// its window's dx, cells past the last window (no window covers them) as 0: dy read once, dx
// written once, the floor. Launch with ceil(out pixels·C/W) threads or fewer (grid-stride).
template <int W, typename T>
__device__ void avg_bwd_tiles(const T* dy, T* dx, int n, int h, int w, int c, int k, int ph,
                              int pw, int cp, int ho, int wo) {
  bool vec = aligned16(dy) && aligned16(dx);
  GRID_LOOP(i, (i64)n * ho * wo * (c / W)) {
    PixelGroup p = pixel_group<W>(i, c, ho, wo);
    int b = p.b, oh = p.row, ow = p.col, ch = p.ch;
    int h0, h1, w0, w1;
    float inv = avg_inv(oh, ow, h, w, k, k, ph, pw, cp, &h0, &h1, &w0, &w1), d[W];
    load_w<W>(dy + (((i64)b * ho + oh) * wo + ow) * c + ch, vec, d);
#pragma unroll
    for (int j = 0; j < W; ++j) d[j] *= inv;
    // The last window along an axis also owns the uncovered cells after it.
    int he = oh == ho - 1 ? h : h1, we = ow == wo - 1 ? w : w1;
    // Values chosen lane by lane: a pointer to one of two arrays would put both in local memory.
    for (int ih = h0; ih < he; ++ih)
      for (int iw = w0; iw < we; ++iw) {
        bool covered = ih < h1 && iw < w1;
        float o[W];
#pragma unroll
        for (int j = 0; j < W; ++j) o[j] = covered ? d[j] : 0.f;
        store_w<W>(dx + (((i64)b * h + ih) * w + iw) * c + ch, vec, o);
      }
  }
}

// Mean over H·W per (image, channel), one block per image and channel block
// (image_groups.cuh, one pixel chunk).
template <int W, typename T>
__device__ void gap_fwd(const T* x, T* y, int hw, int c) {
  ImagePlace s = image_place<W>(c, 1);
  float acc[W] = {};
  bool vec = aligned16(x);
  if (s.live)
    for (int p = s.first; p < hw; p += s.stride) {
      float a[W];
      load_w<W>(x + (s.n * hw + p) * c + s.ch, vec, a);
#pragma unroll
      for (int j = 0; j < W; ++j) acc[j] += a[j];
    }
  image_block_sum<W>(s, acc, [&](int ch, float t) {
    if (ch < c) y[s.n * c + ch] = from_f<T>(t * (1.f / (float)hw));
  });
}

// dx = dy / (H·W) at every pixel: the thread's W values of dy stay in registers.
template <int W, typename T>
__device__ void gap_bwd(const T* dy, T* dx, int hw, int c, int chunks) {
  ImagePlace s = image_place<W>(c, chunks);
  if (!s.live) return;
  float d[W];
#pragma unroll
  for (int j = 0; j < W; ++j) d[j] = to_f(dy[s.n * c + s.ch + j]) * (1.f / (float)hw);
  bool vec = aligned16(dx);
  for (int p = s.first; p < hw; p += s.stride) store_w<W>(dx + (s.n * hw + p) * c + s.ch, vec, d);
}

#define POOL_KERNELS(sfx, T)                                                                    \
  extern "C" __global__ void max_pool2d_forward_##sfx(const T* x, T* y, int n, int h, int w,    \
      int c, int k, int s, int ph, int pw, int ho, int wo) {                                    \
    if (c % 8 == 0)                                                                             \
      max_fwd<8>(x, y, n, h, w, c, k, s, ph, pw, ho, wo);                                       \
    else                                                                                        \
      max_fwd<1>(x, y, n, h, w, c, k, s, ph, pw, ho, wo);                                       \
  }                                                                                             \
  extern "C" __global__ void max_pool2d_backward_##sfx(const T* x, const T* y, const T* dy,     \
      T* dx, int n, int h, int w, int c, int k, int s, int ph, int pw, int ho, int wo) {         \
    if (c % 8 == 0)                                                                             \
      max_bwd<8>(x, y, dy, dx, n, h, w, c, k, s, ph, pw, ho, wo);                               \
    else                                                                                        \
      max_bwd<1>(x, y, dy, dx, n, h, w, c, k, s, ph, pw, ho, wo);                               \
  }                                                                                             \
  extern "C" __global__ void avg_pool2d_forward_##sfx(const T* x, T* y, int n, int h, int w,    \
      int c, int k, int s, int ph, int pw, int cp, int ho, int wo) {                            \
    if (c % 8 == 0)                                                                             \
      avg_fwd<8>(x, y, n, h, w, c, k, s, ph, pw, cp, ho, wo);                                   \
    else                                                                                        \
      avg_fwd<1>(x, y, n, h, w, c, k, s, ph, pw, cp, ho, wo);                                   \
  }                                                                                             \
  extern "C" __global__ void avg_pool2d_backward_##sfx(const T* dy, T* dx, int n, int h, int w, \
      int c, int k, int s, int ph, int pw, int cp, int ho, int wo) {                            \
    if (c % 8 == 0)                                                                             \
      avg_bwd<8>(dy, dx, n, h, w, c, k, s, ph, pw, cp, ho, wo);                                 \
    else                                                                                        \
      avg_bwd<1>(dy, dx, n, h, w, c, k, s, ph, pw, cp, ho, wo);                                 \
  }                                                                                             \
  extern "C" __global__ void avg_pool2d_backward_tiles_##sfx(const T* dy, T* dx, int n, int h,  \
      int w, int c, int k, int ph, int pw, int cp, int ho, int wo) {                            \
    if (c % 8 == 0)                                                                             \
      avg_bwd_tiles<8>(dy, dx, n, h, w, c, k, ph, pw, cp, ho, wo);                              \
    else                                                                                        \
      avg_bwd_tiles<1>(dy, dx, n, h, w, c, k, ph, pw, cp, ho, wo);                              \
  }                                                                                             \
  extern "C" __global__ void global_avg_pool_forward_##sfx(const T* x, T* y, int hw, int c) {   \
    if (c % 8 == 0)                                                                             \
      gap_fwd<8>(x, y, hw, c);                                                                  \
    else                                                                                        \
      gap_fwd<1>(x, y, hw, c);                                                                  \
  }                                                                                             \
  extern "C" __global__ void global_avg_pool_backward_##sfx(const T* dy, T* dx, int hw, int c,  \
                                                            int chunks) {                       \
    if (c % 8 == 0)                                                                             \
      gap_bwd<8>(dy, dx, hw, c, chunks);                                                        \
    else                                                                                        \
      gap_bwd<1>(dy, dx, hw, c, chunks);                                                        \
  }
FOR_DTYPES(POOL_KERNELS)
