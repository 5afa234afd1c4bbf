// SimCLR's pretraining augmentation on the GPU (src/data/augment/cuda.rs): from u8 RGB images
// (HWC, packed one after another) to normalised f32/bf16 NHWC views, one block per view, all
// views of a batch in one launch. The random parameters are drawn on the host
// (src/data/augment/params.rs) and arrive in an AugView table; every stage mirrors the CPU
// code it is tested against: antialiased bilinear resampling with taps computed in double
// (src/data/augment/crop.rs), colour jitter in the drawn order with a clip after each op and
// grayscale (color.rs), separable Gaussian blur with replicated edges (blur.rs), normalisation.
// Stages run in place on an f32 work image per view (two, for the blur's passes), separated by
// __syncthreads; contrast's mean is a block reduction.
#include "common.cuh"

#define AUG_MAX_KSIZE 512

struct AugView {
  i64 src;             // offset of the image's first byte in the packed u8 buffer
  int h, w;            // its size (as decoded)
  int cy, cx, ch, cw;  // the crop, in the decoded image's pixels
  int flip, jitter, gray, blur;
  int order[4];        // jitter ops: 0 brightness, 1 contrast, 2 saturation, 3 hue
  float param[4];      // each op's factor (hue: shift in turns), indexed by op
  float sigma;         // blur's standard deviation
  int pad;
};

// Bilinear taps of output o along an axis (crop.rs `taps`): first source index and count.
struct Axis {
  double scale, stretch, radius;
  int per;
};

__device__ Axis axis(int n_in, int n_out) {
  Axis a;
  a.scale = (double)n_in / (double)n_out;
  a.stretch = fmax(a.scale, 1.0);
  a.radius = a.stretch;
  a.per = 2 * (int)ceil(a.radius) + 1;
  return a;
}

__device__ __forceinline__ double tri(double t) { return fmax(1.0 - fabs(t), 0.0); }

// The taps of output o: first source index, centre, and the sum that normalises the weights.
struct Taps {
  long long first;
  double centre, sum;
};

__device__ Taps taps(const Axis& a, int o) {
  Taps t;
  t.centre = ((double)o + 0.5) * a.scale - 0.5;
  t.first = (long long)ceil(t.centre - a.radius);
  t.sum = 0.0;
  for (int j = 0; j < a.per; ++j) t.sum += tri((double)(t.first + j) - t.centre) / a.stretch;
  return t;
}

// Normalised f32 weight of tap k, and its (clamped, offset) source index.
__device__ void tap(const Axis& a, const Taps& t, int k, int start, int n_in, int limit, float* w,
                    int* idx) {
  long long first = t.first;
  *w = (float)(tri((double)(first + k) - t.centre) / a.stretch / t.sum);
  long long i = first + k;
  i = i < 0 ? 0 : (i > n_in - 1 ? n_in - 1 : i);
  int s = start + (int)i;
  *idx = s < limit - 1 ? s : limit - 1;
}

__device__ __forceinline__ float clip01(float v) { return fminf(fmaxf(v, 0.f), 1.f); }
__device__ __forceinline__ float luma(const float* p) {
  return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

__device__ void hue_shift(float* p, float shift) {
  float r = p[0], g = p[1], b = p[2];
  float mx = fmaxf(fmaxf(r, g), b), mn = fminf(fminf(r, g), b), d = mx - mn;
  if (d <= 0.f) return;
  float h;
  if (mx == r) {
    h = fmodf((g - b) / d, 6.f);
    if (h < 0.f) h += 6.f;
  } else if (mx == g) {
    h = (b - r) / d + 2.f;
  } else {
    h = (r - g) / d + 4.f;
  }
  float t = fmodf(h / 6.f + shift, 1.f);
  if (t < 0.f) t += 1.f;
  h = t * 6.f;
  float s = d / mx, v = mx;
  int sector = min((int)floorf(h), 5);
  float f = h - (float)sector;
  float pp = v * (1.f - s), q = v * (1.f - s * f), tt = v * (1.f - s * (1.f - f));
  // The sector's (r, g, b) picked by a switch: a table indexed at run time lives in local memory.
  float r2, g2, b2;
  switch (sector) {
    case 0: r2 = v, g2 = tt, b2 = pp; break;
    case 1: r2 = q, g2 = v, b2 = pp; break;
    case 2: r2 = pp, g2 = v, b2 = tt; break;
    case 3: r2 = pp, g2 = q, b2 = v; break;
    case 4: r2 = tt, g2 = pp, b2 = v; break;
    default: r2 = v, g2 = pp, b2 = q; break;
  }
  p[0] = clip01(r2);
  p[1] = clip01(g2);
  p[2] = clip01(b2);
}

// One pass of the separable blur, along x or y, edges replicated; the vertical (last) pass
// clips to [0, 1] as blur.rs does.
__device__ void blur_pass(const float* in, float* out, const float* bw, int ksize, int size,
                          bool along_x) {
  int r = ksize / 2, n = size * size;
  for (int p = threadIdx.x; p < n; p += blockDim.x) {
    int y = p / size, x = p % size;
    float a[3] = {0.f, 0.f, 0.f};
    for (int j = 0; j < ksize; ++j) {
      int q = along_x ? y * size + min(max(x + j - r, 0), size - 1)
                      : min(max(y + j - r, 0), size - 1) * size + x;
      for (int c = 0; c < 3; ++c) a[c] += bw[j] * in[q * 3 + c];
    }
    for (int c = 0; c < 3; ++c) out[p * 3 + c] = along_x ? a[c] : clip01(a[c]);
  }
}

template <typename T>
__device__ void augment(const unsigned char* src, const AugView* views, T* out, float* work,
                        int size, int ksize, const float* norm) {
  const AugView& v = views[blockIdx.x];
  const int n = size * size;
  float* img = work + (i64)blockIdx.x * 2 * n * 3;
  float* tmp = img + (i64)n * 3;
  const unsigned char* im = src + v.src;
  Axis ax = axis(v.cw, size), ay = axis(v.ch, size);
  // Resample: horizontal sums per vertical tap, then the vertical sum (the CPU's order).
  for (int p = threadIdx.x; p < n; p += blockDim.x) {
    int oy = p / size, ox = p % size;
    int tx = v.flip ? size - 1 - ox : ox;
    float acc[3] = {0.f, 0.f, 0.f};
    Taps ty = taps(ay, oy), txs = taps(ax, tx);
    for (int k = 0; k < ay.per; ++k) {
      float wy;
      int sy;
      tap(ay, ty, k, v.cy, v.ch, v.h, &wy, &sy);
      float hs[3] = {0.f, 0.f, 0.f};
      for (int j = 0; j < ax.per; ++j) {
        float wx;
        int sx;
        tap(ax, txs, j, v.cx, v.cw, v.w, &wx, &sx);
        const unsigned char* px = im + ((i64)sy * v.w + sx) * 3;
        for (int c = 0; c < 3; ++c) hs[c] += wx * (float)px[c];
      }
      for (int c = 0; c < 3; ++c) acc[c] += wy * hs[c];
    }
    for (int c = 0; c < 3; ++c) img[p * 3 + c] = clip01(acc[c] * (1.0f / 255.0f));
  }
  __syncthreads();
  if (v.jitter) {
    for (int s = 0; s < 4; ++s) {
      int op = v.order[s];
      float f = v.param[op];
      float mean = 0.f;
      if (op == 1) {
        float part = 0.f;
        for (int p = threadIdx.x; p < n; p += blockDim.x) part += luma(img + p * 3);
        mean = block_sum(part) / (float)n;
      }
      for (int p = threadIdx.x; p < n; p += blockDim.x) {
        float* q = img + p * 3;
        if (op == 0) {
          for (int c = 0; c < 3; ++c) q[c] = clip01(q[c] * f);
        } else if (op == 1) {
          for (int c = 0; c < 3; ++c) q[c] = clip01(mean + f * (q[c] - mean));
        } else if (op == 2) {
          float g = luma(q);
          for (int c = 0; c < 3; ++c) q[c] = clip01(g + f * (q[c] - g));
        } else {
          hue_shift(q, f);
        }
      }
      __syncthreads();
    }
  }
  if (v.gray) {
    for (int p = threadIdx.x; p < n; p += blockDim.x) {
      float g = clip01(luma(img + p * 3));
      for (int c = 0; c < 3; ++c) img[p * 3 + c] = g;
    }
    __syncthreads();
  }
  if (v.blur && ksize > 1) {
    // The f32 weights (blur.rs `weights`), ksize <= AUG_MAX_KSIZE (checked by the host).
    __shared__ float bw[AUG_MAX_KSIZE];
    int r = ksize / 2;
    double sum = 0.0;
    for (int j = 0; j < ksize; ++j) sum += exp(-(double)((j - r) * (j - r)) / (2.0 * (double)v.sigma * v.sigma));
    for (int j = threadIdx.x; j < ksize; j += blockDim.x)
      bw[j] = (float)(exp(-(double)((j - r) * (j - r)) / (2.0 * (double)v.sigma * v.sigma)) / sum);
    __syncthreads();
    // Horizontal into tmp, then vertical back into img, edges replicated (blur.rs).
    blur_pass(img, tmp, bw, ksize, size, true);
    __syncthreads();
    blur_pass(tmp, img, bw, ksize, size, false);
    __syncthreads();
  }
  T* o = out + (i64)blockIdx.x * n * 3;
  for (int p = threadIdx.x; p < n; p += blockDim.x)
    for (int c = 0; c < 3; ++c) {
      float x = img[p * 3 + c];
      if (norm) x = (x - norm[c]) / norm[3 + c];
      o[p * 3 + c] = from_f<T>(x);
    }
}

#define AUGMENT_KERNELS(sfx, T)                                                                   \
  extern "C" __global__ void augment_views_##sfx(const unsigned char* src, const AugView* views, \
                                                  T* out, float* work, int size, int ksize,      \
                                                  const float* norm) {                           \
    augment(src, views, out, work, size, ksize, norm);                                           \
  }
FOR_DTYPES(AUGMENT_KERNELS)
