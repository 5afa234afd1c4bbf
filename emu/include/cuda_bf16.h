// Host stand-in for CUDA's <cuda_bf16.h> in the emulated build (emu/README.md): the bf16 storage
// type and the conversions our kernels use, bit-exact with CUDA (round to nearest even; NaN
// becomes the canonical 0x7fff as __float2bfloat16_rn does on the GPU).
#pragma once
#include <stdint.h>
#include <string.h>

struct __nv_bfloat16 {
  unsigned short __x;
};
typedef __nv_bfloat16 nv_bfloat16;

static inline __attribute__((always_inline)) float __bfloat162float(__nv_bfloat16 h) {
  uint32_t u = (uint32_t)h.__x << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline __attribute__((always_inline)) __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  __nv_bfloat16 h;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.__x = 0x7fff;
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    h.__x = (unsigned short)(u >> 16);
  }
  return h;
}
static inline __attribute__((always_inline)) __nv_bfloat16 __float2bfloat16(float f) {
  return __float2bfloat16_rn(f);
}
// Round toward zero (truncation), as CUDA's __float2bfloat16_rz (NaN stays a NaN).
static inline __attribute__((always_inline)) __nv_bfloat16 __float2bfloat16_rz(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  __nv_bfloat16 h;
  h.__x = (u & 0x7fffffffu) > 0x7f800000u ? (unsigned short)0x7fff : (unsigned short)(u >> 16);
  return h;
}
