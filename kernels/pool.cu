// Pooling over NHWC (src/ops/pool). Backward passes gather (each input element sums the outputs
// whose windows hold it, in output order) instead of scattering with atomics: deterministic.
// Max-pool backward reads the forward's output to tell the window's choice without re-deriving
// each covering window's argmax. Padding is per side: kernels take the leading offsets (ph, pw:
// cells before the first row / column); the caller sizes the output from the totals.
#include "image_groups.cuh"

// Window [lo, hi) of output o along one axis, clipped to the image.
__device__ __forceinline__ void window(int o, int stride, int pad, int k, int len, int* lo, int* hi) {
  int start = o * stride - pad;
  *lo = max(start, 0);
  *hi = max(min(start + k, len), 0);
}

// Index within the image of the first maximum of output (oh, ow, ch): the CPU's tie rule.
template <typename T>
__device__ int argmax(const T* xi, int h, int w, int c, int k, int s, int ph, int pw, int oh, int ow,
                      int ch) {
  int h0, h1, w0, w1;
  window(oh, s, ph, k, h, &h0, &h1);
  window(ow, s, pw, k, w, &w0, &w1);
  int best = -1;
  float bv = -INFINITY;
  for (int ih = h0; ih < h1; ++ih)
    for (int iw = w0; iw < w1; ++iw) {
      int i = (ih * w + iw) * c + ch;
      float v = to_f(xi[i]);
      if (best < 0 || v > bv) { bv = v; best = i; }
    }
  return best;
}

template <typename T>
__device__ void max_fwd(const T* x, T* y, int n, int h, int w, int c, int k, int s, int ph, int pw,
                        int ho, int wo) {
  i64 total = (i64)n * ho * wo * c;
  GRID_LOOP(i, total) {
    int ch = i % c; i64 r = i / c;
    int ow = r % wo; r /= wo;
    int oh = r % ho; int b = r / ho;
    const T* xi = x + (i64)b * h * w * c;
    int j = argmax(xi, h, w, c, k, s, ph, pw, oh, ow, ch);
    y[i] = j < 0 ? from_f<T>(0.f) : xi[j];
  }
}

// Outputs whose window holds input index ih along one axis: o with o·s − p ≤ ih < o·s − p + k.
__device__ __forceinline__ void covering(int ih, int s, int p, int k, int len_out, int* lo, int* hi) {
  int a = ih + p - k + 1;  // smallest o·s
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  *hi = min((ih + p) / s + 1, len_out);
}

// True when input index `self`, holding v, is the forward's choice for window (oh, ow), whose
// maximum the forward saved as m: the first element (in window order) equal to m, or the
// window's first element when m is NaN (the forward's strict > never moves past a leading NaN).
// Most inputs fail v == m and cost one load of y; only candidates scan the window.
template <typename T>
__device__ bool chosen(const T* xi, float v, float m, int self, int h, int w, int c, int k, int s,
                       int ph, int pw, int oh, int ow, int ch) {
  int h0, h1, w0, w1;
  window(oh, s, ph, k, h, &h0, &h1);
  window(ow, s, pw, k, w, &w0, &w1);
  if (isnan(m)) return self == (h0 * w + w0) * c + ch;
  if (!(v == m)) return false;
  for (int ih = h0; ih < h1; ++ih)
    for (int iw = w0; iw < w1; ++iw) {
      int i = (ih * w + iw) * c + ch;
      if (i == self || to_f(xi[i]) == m) return i == self;
    }
  return false;
}

template <typename T>
__device__ void max_bwd(const T* x, const T* y, const T* dy, T* dx, int n, int h, int w, int c,
                        int k, int s, int ph, int pw, int ho, int wo) {
  i64 total = (i64)n * h * w * c;
  GRID_LOOP(i, total) {
    int ch = i % c; i64 r = i / c;
    int iw = r % w; r /= w;
    int ih = r % h; int b = r / h;
    const T* xi = x + (i64)b * h * w * c;
    i64 out0 = (i64)b * ho * wo * c;
    int self = (ih * w + iw) * c + ch;
    float v = to_f(xi[self]), g = 0.f;
    int oh0, oh1, ow0, ow1;
    covering(ih, s, ph, k, ho, &oh0, &oh1);
    covering(iw, s, pw, k, wo, &ow0, &ow1);
    for (int oh = oh0; oh < oh1; ++oh)
      for (int ow = ow0; ow < ow1; ++ow) {
        i64 o = out0 + (oh * wo + ow) * c + ch;
        if (chosen(xi, v, to_f(y[o]), self, h, w, c, k, s, ph, pw, oh, ow, ch)) g += to_f(dy[o]);
      }
    dx[i] = from_f<T>(g);
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
  int groups = c / W;
  i64 total = (i64)n * ho * wo * groups;
  bool vec = aligned16(x) && aligned16(y);
  GRID_LOOP(i, total) {
    int ch = (int)(i % groups) * W;
    i64 r = i / groups;
    int ow = r % wo; r /= wo;
    int oh = r % ho; int b = r / ho;
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
  int groups = c / W;
  i64 total = (i64)n * h * w * groups;
  bool vec = aligned16(dy) && aligned16(dx);
  GRID_LOOP(i, total) {
    int ch = (int)(i % groups) * W;
    i64 r = i / groups;
    int iw = r % w; r /= w;
    int ih = r % h; int b = r / h;
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
    max_fwd(x, y, n, h, w, c, k, s, ph, pw, ho, wo);                                            \
  }                                                                                             \
  extern "C" __global__ void max_pool2d_backward_##sfx(const T* x, const T* y, const T* dy,     \
      T* dx, int n, int h, int w, int c, int k, int s, int ph, int pw, int ho, int wo) {         \
    max_bwd(x, y, dy, dx, n, h, w, c, k, s, ph, pw, ho, wo);                                    \
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
