// NT-Xent fused and tiled (src/ops/ntxent): the 2N x (2N + K) similarity matrix is never
// stored. Candidates are the 2N batch rows followed by the K queue rows ("columns" below).
//
//   stats: one block per 64 anchors walks every 64-column tile, computes the 64x64 dot
//          products from 32-wide slices of z in shared memory and keeps an online
//          log-sum-exp per anchor (plus its positive and largest negative logit);
//   grad:  one block per (64 rows, 128 gradient columns) recomputes the same tiles, turns them
//          into the coefficients C_jk = P_jk + P_kj − 2[k = p(j)] (queue: P_jq) and
//          accumulates C·Z in registers: dz_j = Σ_k C_jk z_k / (2Nτ);
//   mean:  one block sums lse − pos in a fixed order.
// Each thread owns a 4x4 (stats) or 4x8 (grad) register tile with stride 16, so shared-memory
// reads are broadcasts or consecutive. fp32 arithmetic; fixed orders, so deterministic.
#include "common.cuh"

#define BM 64    // anchors (rows) per block
#define BN 64    // candidates (columns) per tile
#define BK 32    // width of a z slice in shared memory
#define DC 128   // gradient columns per block of the grad kernel
#define TPB 256  // 16 x 16 threads

struct DotTiles {
  float a[BK][BM + 1];
  float b[BK][BN + 1];
};

// Row `row` of the candidate list: batch row, queue row, or nothing (zeros).
template <typename T>
__device__ __forceinline__ float cand(const T* z, const T* q, int n2, int nq, int d, int row, int col) {
  if (col >= d) return 0.f;
  if (row < n2) return to_f(z[(i64)row * d + col]);
  if (row < n2 + nq) return to_f(q[(i64)(row - n2) * d + col]);
  return 0.f;
}

// s[a][b] = z_{i0+ty+16a} · cand_{c0+tx+16b} over the full width d.
template <typename T>
__device__ void tile_dots(const T* z, const T* q, int n2, int nq, int d, int i0, int c0,
                          DotTiles& t, float s[4][4]) {
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b) s[a][b] = 0.f;
  for (int k0 = 0; k0 < d; k0 += BK) {
    __syncthreads();  // the previous slice (or the aliased gradient slice) is consumed
    for (int e = threadIdx.x; e < BM * BK; e += TPB) {
      int r = e / BK, k = e % BK;
      t.a[k][r] = cand(z, q, n2, 0, d, i0 + r, k0 + k);  // anchors are batch rows only
      t.b[k][r] = cand(z, q, n2, nq, d, c0 + r, k0 + k);
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < BK; ++k) {
      float av[4], bv[4];
#pragma unroll
      for (int a = 0; a < 4; ++a) av[a] = t.a[k][ty + 16 * a];
#pragma unroll
      for (int b = 0; b < 4; ++b) bv[b] = t.b[k][tx + 16 * b];
#pragma unroll
      for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) s[a][b] += av[a] * bv[b];
    }
  }
}

// Merges the running log-sum-exp (m2, s2) into (m, s).
__device__ __forceinline__ void lse_merge(float& m, float& s, float m2, float s2) {
  float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;
  s = s * expf(m - mx) + s2 * expf(m2 - mx);
  m = mx;
}

template <typename T>
__device__ void stats(const T* z, const T* q, int n2, int nq, int d, float inv_tau, float* lse,
                      float* pos, float* neg) {
  __shared__ DotTiles t;
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  int i0 = blockIdx.x * BM, half = n2 / 2, cols = n2 + nq;
  float m[4], sum[4], p[4], ng[4];
#pragma unroll
  for (int a = 0; a < 4; ++a) m[a] = -INFINITY, sum[a] = 0.f, p[a] = -INFINITY, ng[a] = -INFINITY;
  for (int c0 = 0; c0 < cols; c0 += BN) {
    float s[4][4];
    tile_dots(z, q, n2, nq, d, i0, c0, t, s);
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      int i = i0 + ty + 16 * a, pi = (i + half) % n2;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        int c = c0 + tx + 16 * b;
        if (i >= n2 || c >= cols || c == i) continue;
        float l = s[a][b] * inv_tau;
        if (l > m[a]) {
          sum[a] = sum[a] * expf(m[a] - l) + 1.f;
          m[a] = l;
        } else {
          sum[a] += expf(l - m[a]);
        }
        if (c == pi) p[a] = l;
        else ng[a] = fmaxf(ng[a], l);
      }
    }
  }
  // The 16 threads of a row group are 16 consecutive lanes: a fixed butterfly combines them.
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    for (int o = 8; o > 0; o >>= 1) {
      float m2 = __shfl_xor_sync(0xffffffffu, m[a], o), s2 = __shfl_xor_sync(0xffffffffu, sum[a], o);
      lse_merge(m[a], sum[a], m2, s2);
      p[a] = fmaxf(p[a], __shfl_xor_sync(0xffffffffu, p[a], o));
      ng[a] = fmaxf(ng[a], __shfl_xor_sync(0xffffffffu, ng[a], o));
    }
    int i = i0 + ty + 16 * a;
    if (tx == 0 && i < n2) {
      lse[i] = m[a] + logf(sum[a]);
      pos[i] = p[a];
      neg[i] = ng[a];
    }
  }
}

template <typename T>
__device__ void grad(const T* z, const T* q, int n2, int nq, int d, float inv_tau,
                     const float* lse, float scale, T* dz) {
  __shared__ union {
    DotTiles t;
    float zs[BK][DC];
  } sm;
  __shared__ float cs[BM][BN + 1];
  int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  int j0 = blockIdx.x * BM, d0 = blockIdx.y * DC, half = n2 / 2, cols = n2 + nq;
  float acc[4][8];
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int b = 0; b < 8; ++b) acc[a][b] = 0.f;
  for (int c0 = 0; c0 < cols; c0 += BN) {
    float s[4][4];
    tile_dots(z, q, n2, nq, d, j0, c0, sm.t, s);
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      int j = j0 + ty + 16 * a, pj = (j + half) % n2;
      float lj = j < n2 ? lse[j] : 0.f;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        int c = c0 + tx + 16 * b;
        float cv = 0.f;
        if (j < n2 && c < cols && c != j) {
          float l = s[a][b] * inv_tau;
          cv = expf(l - lj);
          if (c < n2) {
            cv += expf(l - lse[c]);
            if (c == pj) cv -= 2.f;
          }
        }
        cs[ty + 16 * a][tx + 16 * b] = cv;
      }
    }
    for (int k0 = 0; k0 < BN; k0 += BK) {
      __syncthreads();  // cs is written; the dot slices (aliased by zs) are consumed
      for (int e = threadIdx.x; e < BK * DC; e += TPB) {
        int k = e / DC, col = e % DC;
        sm.zs[k][col] = cand(z, q, n2, nq, d, c0 + k0 + k, d0 + col);
      }
      __syncthreads();
#pragma unroll 4
      for (int k = 0; k < BK; ++k) {
        float cv[4], zv[8];
#pragma unroll
        for (int a = 0; a < 4; ++a) cv[a] = cs[ty + 16 * a][k0 + k];
#pragma unroll
        for (int b = 0; b < 8; ++b) zv[b] = sm.zs[k][tx + 16 * b];
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
          for (int b = 0; b < 8; ++b) acc[a][b] += cv[a] * zv[b];
      }
    }
  }
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    int j = j0 + ty + 16 * a;
    if (j >= n2) continue;
#pragma unroll
    for (int b = 0; b < 8; ++b) {
      int col = d0 + tx + 16 * b;
      if (col < d) dz[(i64)j * d + col] = from_f<T>(acc[a][b] * scale);
    }
  }
}

// out = Σ_i (lse_i − pos_i) / 2N.
template <typename T>
__device__ void mean(const float* lse, const float* pos, int n2, T* out) {
  float s = 0.f;
  for (int i = threadIdx.x; i < n2; i += blockDim.x) s += lse[i] - pos[i];
  s = block_sum(s);
  if (threadIdx.x == 0) out[0] = from_f<T>(s / (float)n2);
}

// The backward of the mean loss: out = dz · g[0], the upstream gradient read on the device
// (no host read of g). Same product as scale(dz, g) with g's value as a float.
template <typename T>
__device__ void scale_by(const T* dz, const T* g, i64 n, T* out) {
  float s = to_f(g[0]);
  GRID_LOOP(i, n) out[i] = from_f<T>(to_f(dz[i]) * s);
}

// hits[0] = number of anchors whose positive logit beats the largest negative strictly (a
// float: exact below 2^24 anchors; the host divides by 2N when it reads it). One block.
extern "C" __global__ void ntxent_hits(const float* pos, const float* neg, int n2, float* hits) {
  float c = 0.f;
  for (int i = threadIdx.x; i < n2; i += blockDim.x) c += pos[i] > neg[i] ? 1.f : 0.f;
  c = block_sum(c);
  if (threadIdx.x == 0) hits[0] = c;
}

// stats at 4 blocks per SM: ptxas then fits it in 64 registers without spilling (with the
// block size alone it spilled 12 bytes per thread at 64 registers; tests/kernel_resources.rs).
#define NTXENT_KERNELS(sfx, T)                                                                  \
  extern "C" __global__ void __launch_bounds__(TPB, 4) ntxent_stats_##sfx(                       \
      const T* z, const T* q, int n2, int nq, int d, float inv_tau, float* lse, float* pos,     \
      float* neg) {                                                                             \
    stats(z, q, n2, nq, d, inv_tau, lse, pos, neg);                                             \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(TPB) ntxent_grad_##sfx(                           \
      const T* z, const T* q, int n2, int nq, int d, float inv_tau, const float* lse,           \
      float scale, T* dz) {                                                                     \
    grad(z, q, n2, nq, d, inv_tau, lse, scale, dz);                                             \
  }                                                                                             \
  extern "C" __global__ void ntxent_mean_##sfx(const float* lse, const float* pos, int n2, T* out) { \
    mean(lse, pos, n2, out);                                                                    \
  }                                                                                             \
  extern "C" __global__ void ntxent_scale_##sfx(const T* dz, const T* g, i64 n, T* out) {       \
    scale_by(dz, g, n, out);                                                                    \
  }
FOR_DTYPES(NTXENT_KERNELS)
