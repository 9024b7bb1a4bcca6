// What the AVX2 and AVX-512 pool loops share (qg_pool_concat_avx2.cc, qg_pool_concat_avx512.cc):
// per-thread scratch rows and the geometry of one output row's windows. Pools are separable:
// for one output row, the window's input rows are first combined (max, or u16 sum) over every
// needed input column into a row buffer, then each output pixel combines its kw columns of that
// buffer. Border windows only clip the row and column ranges; no inner loop checks bounds.
#ifndef QG_KERNELS_CC_QG_POOL_ROWS_H_
#define QG_KERNELS_CC_QG_POOL_ROWS_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qg_shape.h"  // PoolShape

namespace qg {
namespace pool_rows {

// Per-thread scratch, grown as needed and reused across calls (no allocation per shard).
inline uint8_t* ByteScratch(size_t n) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

inline uint16_t* WordScratch(size_t n) {
  thread_local std::vector<uint16_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// The part of one output row's windows that lies inside the image.
struct RowWindow {
  const uint8_t* first_row;  // input row y0 of image b, column 0
  int rows;                  // y1 - y0 >= 1
  int64_t len;               // bytes of each input row the row's windows read: cols * c
};

inline RowWindow WindowOf(const PoolShape& s, const uint8_t* x, int64_t r) {
  const int64_t b = r / s.oh, oy = r % s.oh;
  const int64_t y0 = std::max<int64_t>(oy * s.sh - s.ph, 0);
  const int64_t y1 = std::min<int64_t>(oy * s.sh - s.ph + s.kh, s.h);
  const int64_t cols = std::min<int64_t>((s.ow - 1) * s.sw - s.pw + s.kw, s.w);
  return {x + (b * s.h + y0) * s.w * s.c, static_cast<int>(y1 - y0), cols * s.c};
}

// Columns [x0, x1) of output column ox's window.
inline void Cols(const PoolShape& s, int64_t ox, int64_t* x0, int64_t* x1) {
  *x0 = std::max<int64_t>(ox * s.sw - s.pw, 0);
  *x1 = std::min<int64_t>(ox * s.sw - s.pw + s.kw, s.w);
}

// F<1>, F<2>, F<3> or F<0> (run-time count) for n: the usual 1..3 window rows or taps unroll.
#define QG_POOL_BY_COUNT(n, F, ...) \
  switch (n) {                      \
    case 1:                         \
      F<1>(__VA_ARGS__);            \
      break;                        \
    case 2:                         \
      F<2>(__VA_ARGS__);            \
      break;                        \
    case 3:                         \
      F<3>(__VA_ARGS__);            \
      break;                        \
    default:                        \
      F<0>(__VA_ARGS__);            \
  }

}  // namespace pool_rows
}  // namespace qg

#endif  // QG_KERNELS_CC_QG_POOL_ROWS_H_
