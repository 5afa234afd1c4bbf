// Multi-tensor optimizer kernels (src/optim): every parameter tensor of a step in one launch.
// The host uploads a table of tensors (pointers, sizes, hyper-parameters) and a table mapping
// each block to a (tensor, chunk) pair; chunks are MT_CHUNK elements. fp32 master weights and
// velocities; gradients f32 or bf16 (the dtype suffix).
//
//   lars_norms:  per chunk, Σ w² and Σ (g + wd·w)² into partials[2·chunk + {0, 1}];
//   lars_update: each block first sums its tensor's partials in chunk order (deterministic),
//                forms the trust ratio, then updates its chunk:
//                g ← g + wd·w; v ← m·v + lr·trust·g; w_out ← w − v (w_out = w updates
//                in place: each element is read before it is written, by the same thread).
//                Excluded tensors have wd = 0 and trust = 1 (set by the host and here).
//   ema_update:  out ← m·target + (1 − m)·online, m per tensor (m = 0 copies).
//
// The learning rate is either a launch parameter (`lr`) or, for a step replayed as a CUDA
// graph, read on the device from a schedule table at a step counter kept there
// (`lr_table[min(*lr_step, lr_steps − 1)]`; `lr_table` null means the parameter): a replayed
// launch repeats its parameters, so a rate that changes every step cannot be one of them.
// `lr_schedule_step` sets the counter (`set`) or advances it by one, at the end of each step.
#include "common.cuh"

#define MT_CHUNK 16384

// 56 bytes, laid out like the seven u64 words the host packs (src/optim/cuda/lars.rs).
struct LarsTensor {
  float* w_out;
  const float* w;
  const void* g;
  float* v;
  i64 n;
  int first_chunk;
  int chunks;
  float wd;
  int excluded;
};

// 40 bytes (src/optim/cuda/ema.rs).
struct EmaTensor {
  void* out;
  const void* target;
  const void* online;
  i64 n;
  float m;
  int first_chunk;
};

template <typename G>
__device__ void lars_norms(const LarsTensor* ts, const int* chunk_tensor, float* partials) {
  int c = blockIdx.x;
  const LarsTensor& t = ts[chunk_tensor[c]];
  const G* g = (const G*)t.g;
  i64 lo = (i64)(c - t.first_chunk) * MT_CHUNK;
  i64 hi = min(lo + (i64)MT_CHUNK, t.n);
  float sw = 0.f, sg = 0.f;
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float w = t.w[i], gd = to_f(g[i]) + t.wd * w;
    sw += w * w;
    sg += gd * gd;
  }
  sw = block_sum(sw);
  sg = block_sum(sg);
  if (threadIdx.x == 0) {
    partials[2 * c] = sw;
    partials[2 * c + 1] = sg;
  }
}

template <typename G>
__device__ void lars_update(const LarsTensor* ts, const int* chunk_tensor, const float* partials,
                            float lr, const float* lr_table, const unsigned* lr_step,
                            unsigned lr_steps, float m, float eta) {
  int c = blockIdx.x;
  if (lr_table) lr = lr_table[min(*lr_step, lr_steps - 1)];
  const LarsTensor& t = ts[chunk_tensor[c]];
  const G* g = (const G*)t.g;
  float trust = 1.f;
  if (!t.excluded) {
    float sw = 0.f, sg = 0.f;
    for (int k = threadIdx.x; k < t.chunks; k += blockDim.x) {
      sw += partials[2 * (t.first_chunk + k)];
      sg += partials[2 * (t.first_chunk + k) + 1];
    }
    float wn = sqrtf(block_sum(sw)), gn = sqrtf(block_sum(sg));
    if (wn > 0.f && gn > 0.f) trust = eta * wn / gn;
  }
  float wd = t.excluded ? 0.f : t.wd, step = lr * trust;
  i64 lo = (i64)(c - t.first_chunk) * MT_CHUNK;
  i64 hi = min(lo + (i64)MT_CHUNK, t.n);
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float w = t.w[i];
    float v = m * t.v[i] + step * (to_f(g[i]) + wd * w);
    t.v[i] = v;
    t.w_out[i] = w - v;
  }
}

template <typename T>
__device__ void ema_update(const EmaTensor* ts, const int* chunk_tensor) {
  int c = blockIdx.x;
  const EmaTensor& t = ts[chunk_tensor[c]];
  const T* a = (const T*)t.target;
  const T* b = (const T*)t.online;
  T* out = (T*)t.out;
  i64 lo = (i64)(c - t.first_chunk) * MT_CHUNK;
  i64 hi = min(lo + (i64)MT_CHUNK, t.n);
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x)
    // m = 0 copies exactly, even over a non-finite target.
    out[i] = t.m == 0.f ? b[i] : from_f<T>(t.m * to_f(a[i]) + (1.f - t.m) * to_f(b[i]));
}

// Points rows first..first+count-1 of a resident LARS table at this step's gradients, passed
// as launch parameters: the table stays on the device across steps and only the gradient
// pointers change, without a host-to-device copy. Up to 16 per launch, one thread each.
#define MT_BIND 16
template <typename G>
__device__ void lars_bind(LarsTensor* ts, int first, int count, const G* const* g) {
  int k = threadIdx.x;
  // Thread k's pointer by a chain of selects at constant indices: the table indexed by the
  // thread would be copied to local memory (128 bytes per thread).
  const G* p = g[0];
#pragma unroll
  for (int j = 1; j < MT_BIND; ++j) p = j == k ? g[j] : p;
  if (k < count && k < MT_BIND) ts[first + k].g = p;
}

#define MULTI_TENSOR_KERNELS(sfx, T)                                                              \
  extern "C" __global__ void lars_bind_grads_##sfx(                                               \
      LarsTensor* ts, int first, int count, const T* g0, const T* g1, const T* g2, const T* g3,    \
      const T* g4, const T* g5, const T* g6, const T* g7, const T* g8, const T* g9,                \
      const T* g10, const T* g11, const T* g12, const T* g13, const T* g14, const T* g15) {       \
    const T* g[MT_BIND] = {g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, g11, g12, g13, g14, g15}; \
    lars_bind<T>(ts, first, count, g);                                                            \
  }                                                                                               \
  extern "C" __global__ void lars_norms_##sfx(const LarsTensor* ts, const int* chunk_tensor,      \
                                              float* partials) {                                  \
    lars_norms<T>(ts, chunk_tensor, partials);                                                    \
  }                                                                                               \
  extern "C" __global__ void lars_update_##sfx(const LarsTensor* ts, const int* chunk_tensor,     \
                                               const float* partials, float lr,                   \
                                               const float* lr_table, const unsigned* lr_step,    \
                                               unsigned lr_steps, float m, float eta) {           \
    lars_update<T>(ts, chunk_tensor, partials, lr, lr_table, lr_step, lr_steps, m, eta);          \
  }                                                                                               \
  extern "C" __global__ void ema_update_##sfx(const EmaTensor* ts, const int* chunk_tensor) {     \
    ema_update<T>(ts, chunk_tensor);                                                              \
  }
FOR_DTYPES(MULTI_TENSOR_KERNELS)

// One thread: the schedule's step counter set to `value` (`set` ≠ 0) or advanced by one.
extern "C" __global__ void lr_schedule_step(unsigned* step, unsigned value, int set) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *step = set ? value : *step + 1;
}
