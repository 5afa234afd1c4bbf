// In-place SGD on fp32 master weights (src/optim), PyTorch's formulation:
// g ← g + wd·w; v ← m·v + g (v ← g on the first step); w ← w − lr·v.
// The gradient may be bf16 (from bf16 activations) or f32; v and w are f32.
#include "common.cuh"

template <typename G>
__device__ void sgd(float* w, const G* g, float* v, i64 n, float lr, float m, float wd, int first) {
  GRID_LOOP(i, n) {
    float d = to_f(g[i]) + wd * w[i];
    if (v) {
      d = first ? d : m * v[i] + d;
      v[i] = d;
    }
    w[i] -= lr * d;
  }
}

#define SGD_KERNELS(sfx, T)                                                                      \
  extern "C" __global__ void sgd_update_##sfx(float* w, const T* g, float* v, i64 n, float lr,   \
                                              float m, float wd, int first) {                    \
    sgd(w, g, v, n, lr, m, wd, first);                                                           \
  }
FOR_DTYPES(SGD_KERNELS)
