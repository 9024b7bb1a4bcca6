// Shared by the .cu files: range parameters (host) and the fused epilogue (device), both
// exactly as kernels/OPS.md writes them. Device float math uses __fmul_rn/__fadd_rn/__fdiv_rn
// so nvcc cannot contract into FMA or use approximate division; the host side is built with
// -ffp-contract=off.
#ifndef QG_COMMON_CUH_
#define QG_COMMON_CUH_

#include <math.h>
#include <stdint.h>

#include "qg_cuda.h"

namespace qg_cuda {

// scale = (max - min) / 255, zero_point = clamp(rint(-min / scale), 0, 255), float32.
struct Range {
  float scale;
  int zero_point;
};

inline Range range_params(float min_v, float max_v) {
  Range r;
  r.scale = (max_v - min_v) / 255.0f;
  float zp = rintf(-min_v / r.scale);
  r.zero_point = zp < 0.0f ? 0 : (zp > 255.0f ? 255 : static_cast<int>(zp));
  return r;
}

// Everything the epilogue needs, by value in the kernel's parameters.
struct EpilogueArgs {
  const float* filter_scale;
  const float* bias;
  const uint8_t* summand;
  float scale_x;
  int zp_x;
  float scale_out;     // quint8 out
  float zp_out_f;      // (float)zero_point_out
  int lo, hi;          // clamp bounds of the quint8 output
  float summand_mul;   // quint8 out: scale_s / scale_out; float out: scale_s
  int zp_s;
  int activation;      // qg_activation
  int out_type;        // qg_out_type
};

inline EpilogueArgs make_epilogue(const qg_epilogue& ep) {
  EpilogueArgs a;
  a.filter_scale = ep.filter_scale;
  a.bias = ep.bias;
  a.summand = ep.summand;
  Range x = range_params(ep.min_input, ep.max_input);
  a.scale_x = x.scale;
  a.zp_x = x.zero_point;
  a.activation = ep.activation;
  a.out_type = ep.out_type;
  a.scale_out = 1.0f;
  a.zp_out_f = 0.0f;
  a.lo = 0;
  a.hi = 255;
  a.summand_mul = 0.0f;
  a.zp_s = 0;
  Range s = {1.0f, 0};
  if (ep.summand != nullptr) s = range_params(ep.min_summand, ep.max_summand);
  a.zp_s = s.zero_point;
  if (ep.out_type == QG_OUT_QUINT8) {
    Range o = range_params(ep.min_output, ep.max_output);
    a.scale_out = o.scale;
    a.zp_out_f = static_cast<float>(o.zero_point);
    if (ep.activation == QG_ACT_RELU || ep.activation == QG_ACT_RELU6) a.lo = o.zero_point;
    if (ep.activation == QG_ACT_RELU6) {
      float six = rintf(6.0f / o.scale);
      a.hi = six >= 255.0f ? 255 : (o.zero_point + static_cast<int>(six) > 255
                                        ? 255 : o.zero_point + static_cast<int>(six));
    }
    a.summand_mul = s.scale / o.scale;
  } else {
    a.summand_mul = s.scale;
  }
  return a;
}

#ifdef __CUDACC__

__device__ __forceinline__ uint8_t clamp_u8(float v, int lo, int hi) {
  // v is already rounded; compare in float so huge values cannot overflow an int conversion.
  if (v < static_cast<float>(lo)) return static_cast<uint8_t>(lo);
  if (v > static_cast<float>(hi)) return static_cast<uint8_t>(hi);
  return static_cast<uint8_t>(static_cast<int>(v));
}

// Per-output-channel constants, computed once per channel a thread touches.
struct ChannelConsts {
  float mul;  // quint8: scale_x * filter_scale[c] / scale_out; float: scale_x * filter_scale[c]
  float add;  // quint8: bias[c] / scale_out + zp_out;             float: bias[c]
};

__device__ __forceinline__ ChannelConsts channel_consts(const EpilogueArgs& e, int c) {
  ChannelConsts k;
  float fs = e.filter_scale[c];
  float b = e.bias != nullptr ? e.bias[c] : 0.0f;
  float sx_fs = __fmul_rn(e.scale_x, fs);
  if (e.out_type == QG_OUT_QUINT8) {
    k.mul = __fdiv_rn(sx_fs, e.scale_out);
    k.add = __fadd_rn(__fdiv_rn(b, e.scale_out), e.zp_out_f);
  } else {
    k.mul = sx_fs;
    k.add = b;
  }
  return k;
}

// Writes one output element: out is uint8_t* / float* / int32_t* by e.out_type; index is the
// element's offset in the output (and in the summand, which has the output's shape).
__device__ __forceinline__ void store_output(const EpilogueArgs& e, const ChannelConsts& k,
                                             int32_t acc, int64_t index, void* out) {
  if (e.out_type == QG_OUT_INT32) {
    static_cast<int32_t*>(out)[index] = acc;
    return;
  }
  float v = __fadd_rn(__fmul_rn(static_cast<float>(acc), k.mul), k.add);
  if (e.summand != nullptr) {
    int qs = static_cast<int>(e.summand[index]) - e.zp_s;
    v = __fadd_rn(v, __fmul_rn(static_cast<float>(qs), e.summand_mul));
  }
  if (e.out_type == QG_OUT_QUINT8) {
    static_cast<uint8_t*>(out)[index] = clamp_u8(rintf(v), e.lo, e.hi);
  } else {
    if (e.activation != QG_ACT_NONE) v = fmaxf(v, 0.0f);
    if (e.activation == QG_ACT_RELU6) v = fminf(v, 6.0f);
    static_cast<float*>(out)[index] = v;
  }
}

#endif  // __CUDACC__

constexpr int kThreads1D = 256;

inline unsigned blocks_for(int64_t n, int threads = kThreads1D) {
  int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b > 1048576 ? 1048576 : b);  // grid-stride loops cover the rest
}

}  // namespace qg_cuda

#endif  // QG_COMMON_CUH_
