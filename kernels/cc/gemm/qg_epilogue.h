// The fused epilogue of kernels/OPS.md (TF-free): int32 accumulators of one output row to
// quint8 or float, per output channel c, in float32 and in exactly the contract's order (the
// library is built with -ffp-contract=off; the AVX2 and AVX-512 versions use separate mul and
// add).
#ifndef QG_KERNELS_CC_GEMM_QG_EPILOGUE_H_
#define QG_KERNELS_CC_GEMM_QG_EPILOGUE_H_

#include <cstdint>
#include <vector>

namespace qg {

struct Range;  // qg_common.h

enum class Activation { kNone, kRelu, kRelu6 };

struct Epilogue {
  bool float_out = false;
  Activation act = Activation::kNone;
  std::vector<float> m, b;   // quint8: acc * m[c] + b[c]
  std::vector<float> sf;     // float: acc * sf[c] + bias[c]
  const float* bias = nullptr;
  float lo = 0, hi = 255;    // quint8 clamp
  const uint8_t* summand = nullptr;  // same layout as the output
  int zp_s = 0;
  float s_mult = 0;          // scale_s / scale_out (quint8 out) or scale_s (float out)
  bool simd = false;         // use the AVX2 row
  bool simd512 = false;      // use the AVX-512 row (vnni path)

  // scale_out / zp_out: the output range (ignored for float output).
  void Init(float scale_x, const float* filter_scale, const float* bias_in, int64_t channels,
            bool float_output, float scale_out, int zp_out, Activation activation);
  void SetSummand(const uint8_t* data, float scale_s, int zero_point_s, float scale_out);

  // Channels [n0, n1) of one output row; `index` is the flat output index of channel 0 and
  // acc[0] belongs to channel n0.
  void Row(const int32_t* acc, int n0, int n1, int64_t index, void* output) const {
    if (simd512) {
      RowAvx512(acc, n0, n1, index, output);
    } else if (simd) {
      RowAvx2(acc, n0, n1, index, output);
    } else {
      RowPortable(acc, n0, n1, index, output);
    }
  }
  // `count` consecutive output rows: row i's accumulators at acc + i * ldc, its output at
  // index + i * stride (the same as Row on each; one call, the per-channel factors loaded
  // once for all the rows on the AVX-512 and AVX2 paths).
  void Rows(const int32_t* acc, int ldc, int count, int n0, int n1, int64_t index,
            int64_t stride, void* output) const {
    if (simd512) {
      RowsAvx512(acc, ldc, count, n0, n1, index, stride, output);
      return;
    }
    if (simd) {
      RowsAvx2(acc, ldc, count, n0, n1, index, stride, output);
      return;
    }
    for (int i = 0; i < count; ++i) Row(acc + static_cast<int64_t>(i) * ldc, n0, n1, index + i * stride, output);
  }
  void RowsAvx512(const int32_t* acc, int ldc, int count, int n0, int n1, int64_t index,
                  int64_t stride, void* output) const;
  void RowsAvx2(const int32_t* acc, int ldc, int count, int n0, int n1, int64_t index,
                int64_t stride, void* output) const;
  void RowPortable(const int32_t* acc, int n0, int n1, int64_t index, void* output) const;
  void RowAvx2(const int32_t* acc, int n0, int n1, int64_t index, void* output) const;
  void RowAvx512(const int32_t* acc, int n0, int n1, int64_t index, void* output) const;
};

// dst[i] = src[i] - zp as int16 (an activation row for the GEMM); AVX2 where selected.
void WidenU8(const uint8_t* src, int n, int zp, int16_t* dst);

}  // namespace qg

#endif  // QG_KERNELS_CC_GEMM_QG_EPILOGUE_H_
