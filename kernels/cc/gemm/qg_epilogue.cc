// Epilogue set-up and its portable row (see qg_epilogue.h).
#include "qg_epilogue.h"

#include <algorithm>
#include <cmath>

#include "qg_gemm.h"

namespace qg {

void Epilogue::Init(float scale_x, const float* filter_scale, const float* bias_in,
                    int64_t channels, bool float_output, float scale_out, int zp_out_int,
                    Activation activation) {
  float_out = float_output;
  act = activation;
  bias = bias_in;
  simd = SelectedPath() != CpuPath::kPortable;
  simd512 = Avx512Path(SelectedPath());
  if (float_out) {
    sf.resize(channels);
    for (int64_t c = 0; c < channels; ++c) sf[c] = scale_x * filter_scale[c];
    return;
  }
  m.resize(channels);
  b.resize(channels);
  const float zp_out = static_cast<float>(zp_out_int);
  for (int64_t c = 0; c < channels; ++c) {
    const float s = scale_x * filter_scale[c];
    m[c] = s / scale_out;
    const float bq = bias_in[c] / scale_out;
    b[c] = bq + zp_out;
  }
  lo = activation == Activation::kNone ? 0.0f : zp_out;
  hi = 255.0f;
  if (activation == Activation::kRelu6) {
    const float six = 6.0f / scale_out;
    hi = std::min(255.0f, zp_out + std::nearbyint(six));
  }
}

void Epilogue::SetSummand(const uint8_t* data, float scale_s, int zero_point_s,
                          float scale_out) {
  summand = data;
  zp_s = zero_point_s;
  s_mult = float_out ? scale_s : scale_s / scale_out;
}

// clamp then round == round then clamp (lo, hi are integers); NaN becomes lo.
static inline uint8_t ClampRound(float v, float lo, float hi) {
  return static_cast<uint8_t>(static_cast<int>(RoundHalfEven(ClampNanLow(v, lo, hi))));
}

void Epilogue::RowPortable(const int32_t* acc, int n0, int n1, int64_t index,
                           void* output) const {
  if (float_out) {
    float* y = static_cast<float*>(output) + index;
    for (int c = n0; c < n1; ++c) {
      float v = static_cast<float>(acc[c - n0]) * sf[c];
      v = v + bias[c];
      if (summand != nullptr) {
        const float d = static_cast<float>(static_cast<int>(summand[index + c]) - zp_s);
        v = v + d * s_mult;
      }
      if (act != Activation::kNone) v = std::max(v, 0.0f);
      if (act == Activation::kRelu6) v = std::min(v, 6.0f);
      y[c] = v;
    }
    return;
  }
  uint8_t* q = static_cast<uint8_t*>(output) + index;
  if (summand == nullptr) {
    for (int c = n0; c < n1; ++c) {
      float v = static_cast<float>(acc[c - n0]) * m[c];
      v = v + b[c];
      q[c] = ClampRound(v, lo, hi);
    }
  } else {
    const uint8_t* s = summand + index;
    for (int c = n0; c < n1; ++c) {
      float v = static_cast<float>(acc[c - n0]) * m[c];
      v = v + b[c];
      const float d = static_cast<float>(static_cast<int>(s[c]) - zp_s);
      v = v + d * s_mult;
      q[c] = ClampRound(v, lo, hi);
    }
  }
}

void WidenU8Portable(const uint8_t* src, int n, int zp, int16_t* dst) {
  for (int i = 0; i < n; ++i) dst[i] = static_cast<int16_t>(static_cast<int>(src[i]) - zp);
}
void WidenU8Avx2(const uint8_t* src, int n, int zp, int16_t* dst);

void WidenU8(const uint8_t* src, int n, int zp, int16_t* dst) {
  static const bool simd = SelectedPath() != CpuPath::kPortable;
  if (simd) {
    WidenU8Avx2(src, n, zp, dst);
  } else {
    WidenU8Portable(src, n, zp, dst);
  }
}

}  // namespace qg
