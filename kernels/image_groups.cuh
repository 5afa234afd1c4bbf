// Per-image channel-group geometry of the NHWC kernels that reduce over, or broadcast across,
// the pixels of each image (SK attention, global average pool; launch side
// src/cuda/image_groups.rs): a thread owns a fixed group of W channels (W = 8 when C % 8 == 0,
// else 1; 16-byte accesses when the operands are aligned, vec.cuh) of one image for its whole
// life and walks that image's pixels with a fixed stride. grid.x = N · chunks · gx, where gx
// blocks cover the C / W groups (gb groups per block, lanes = block / gb pixel lanes) and
// `chunks` splits the pixels (1 for the reductions, so a block reduces whole images and no
// second pass is needed). Integer division happens once per thread, none per element.
#pragma once
#include "vec.cuh"

// A thread's image, channel group and pixel walk.
struct ImagePlace {
  i64 n;       // image
  int ch;      // first channel of the group
  int lane;    // pixel lane within the block
  int slot;    // group within the block
  int gb;      // groups per block
  int lanes;   // pixel lanes per block
  int first;   // first pixel
  int stride;  // pixel stride
  bool live;   // false for threads without a group (they still join the block's barriers)
};

template <int W>
__device__ __forceinline__ ImagePlace image_place(int c, int chunks) {
  ImagePlace s;
  int groups = c / W;
  s.gb = min(groups, (int)blockDim.x);
  s.lanes = blockDim.x / s.gb;
  int gx = (groups + s.gb - 1) / s.gb;
  int b = blockIdx.x;
  int gblk = b % gx;
  b /= gx;
  int chunk = b % chunks;
  s.n = b / chunks;
  s.slot = threadIdx.x % s.gb;
  s.lane = threadIdx.x / s.gb;
  int g = gblk * s.gb + s.slot;
  s.live = s.lane < s.lanes && g < groups;
  s.ch = g * W;
  s.first = chunk * s.lanes + s.lane;
  s.stride = chunks * s.lanes;
  return s;
}

// Adds the W per-thread sums of every lane of the block in a fixed order and calls
// out(channel, total) once for each channel of the block's groups (channels ≥ C included: the
// caller skips them). Blocks have at most IMAGE_THREADS threads.
#define IMAGE_THREADS 256
template <int W, typename Out>
__device__ void image_block_sum(const ImagePlace& s, const float (&acc)[W], Out out) {
  __shared__ float red[IMAGE_THREADS * W];
  int row = s.gb * W;
  if (s.lane < s.lanes)
#pragma unroll
    for (int j = 0; j < W; ++j) red[s.lane * row + s.slot * W + j] = s.live ? acc[j] : 0.f;
  __syncthreads();
  int base = s.ch - s.slot * W;  // the block's first channel
  for (int k = threadIdx.x; k < row; k += blockDim.x) {
    float t = 0.f;
    for (int l = 0; l < s.lanes; ++l) t += red[l * row + k];
    out(base + k, t);
  }
}

