// AVX2 and AVX-512 loops of QgQuantizedMaxPool, QgQuantizedAvgPool and QgQuantizedConcat
// (TF-free).
//
// Compiled through function target attributes only (qg_pool_concat_avx2.cc,
// qg_pool_concat_avx512.cc), like the GEMM's micro-kernels; the AVX2 loops run on the avx2
// path, the AVX-512 ones (the same algorithms, 64 bytes a step, tails under masks) on the
// vnni and amx paths (Avx512Path). Results are bit-identical to the portable loops in
// qg_pool_concat_kernels.cc (kernels/OPS.md):
//   max  exact by construction (byte max);
//   avg  integer window sums (u16, exact while the window has at most 257 taps, since
//        255 * 257 = 65535), then rint(sum / count) in integers (multiply-high, shift,
//        remainder test, ties to even), checked exhaustively for every count and sum against
//        the float32 division + round-half-even of the portable loop (AvgDivider in
//        qg_pool_concat_avx2.cc);
//   concat  the same float32 operations, in the same order, that build the portable loop's
//        256-entry table, one lane per byte.
#ifndef QG_KERNELS_CC_QG_POOL_CONCAT_SIMD_H_
#define QG_KERNELS_CC_QG_POOL_CONCAT_SIMD_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "gemm/qg_gemm.h"
#include "qg_shape.h"  // PoolShape

namespace qg {

// The scalar formulas both paths share (OPS.md), so their float operations are the same.
// AvgPool: rint(sum / count) in float32 (count >= 1 always: SAME never makes an all-padding
// window; guarded anyway).
inline uint8_t AvgRound(int32_t sum, int count) {
  float v = static_cast<float>(sum) / static_cast<float>(std::max(count, 1));
  v = ClampNanLow(v, 0.0f, 255.0f);
  return static_cast<uint8_t>(static_cast<int>(RoundHalfEven(v)));
}

// Concat: one input byte re-mapped into the output range.
inline uint8_t RequantByte(int q, int zero_point, float ratio, float zp_out) {
  float v = static_cast<float>(q - zero_point) * ratio;
  v = v + zp_out;
  v = ClampNanLow(v, 0.0f, 255.0f);
  return static_cast<uint8_t>(static_cast<int>(RoundHalfEven(v)));
}

// The largest window the SIMD average pools take (their u16 sums must not overflow).
constexpr int kAvgPoolMaxTaps = 257;

// Output rows [r0, r1) of the n * oh output rows (each row is ow pixels x c channels).
void MaxPoolRowsAvx2(const PoolShape& s, const uint8_t* x, uint8_t* y, int64_t r0, int64_t r1);
// Requires s.kh * s.kw <= kAvgPoolMaxTaps.
void AvgPoolRowsAvx2(const PoolShape& s, const uint8_t* x, uint8_t* y, int64_t r0, int64_t r1);

// RequantByte over rows [0, rows) of len bytes: src rows are contiguous, dst rows dst_stride
// apart (one input's slice of the concat output).
void RequantRowsAvx2(const uint8_t* src, int64_t len, int64_t rows, uint8_t* dst,
                     int64_t dst_stride, int zero_point, float ratio, float zp_out);

// The same three on the AVX-512 paths.
void MaxPoolRowsAvx512(const PoolShape& s, const uint8_t* x, uint8_t* y, int64_t r0, int64_t r1);
void AvgPoolRowsAvx512(const PoolShape& s, const uint8_t* x, uint8_t* y, int64_t r0, int64_t r1);
void RequantRowsAvx512(const uint8_t* src, int64_t len, int64_t rows, uint8_t* dst,
                       int64_t dst_stride, int zero_point, float ratio, float zp_out);

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_POOL_CONCAT_SIMD_H_
