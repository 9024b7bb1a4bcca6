// AVX2 loops of the pool and concat kernels (qg_pool_concat_simd.h). Compiled for AVX2 through
// function target attributes only, so the library still loads on CPUs without it.
//
// Pools are separable: for one output row, the window's input rows are first combined
// (max, or u16 sum) over every needed input column into a row buffer, then each output pixel
// combines its kw columns of that buffer. Border windows only clip the row and column ranges;
// no inner loop checks bounds.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "qg_pool_concat_simd.h"

namespace qg {
namespace {

// Per-thread scratch, grown as needed and reused across calls (no allocation per shard).
uint8_t* ByteScratch(size_t n) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

uint16_t* WordScratch(size_t n) {
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

RowWindow WindowOf(const PoolShape& s, const uint8_t* x, int64_t r) {
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

// 16 u16 sums / count -> 16 bytes, as AvgRound: float32 division, round half to even. The
// clamp to [0, 255] of AvgRound is left out: sum <= 255 * count, so the correctly rounded
// quotient already lies in [0, 255]. Adding 1.5 * 2^23 rounds to an integer (ties to even)
// that sits in the low mantissa bits.
__attribute__((target("avx2"))) inline __m128i AvgFinish(__m256i sum, __m256 count) {
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256i magic_bits = _mm256_set1_epi32(0x4B400000);
  const __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(sum));
  const __m256i hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(sum, 1));
  const __m256 qlo = _mm256_div_ps(_mm256_cvtepi32_ps(lo), count);
  const __m256 qhi = _mm256_div_ps(_mm256_cvtepi32_ps(hi), count);
  const __m256i ilo = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(qlo, magic)), magic_bits);
  const __m256i ihi = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(qhi, magic)), magic_bits);
  // packus works per 128-bit lane: put the quadwords back in channel order after each pack.
  __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(ilo, ihi), 0xD8);
  w = _mm256_permute4x64_epi64(_mm256_packus_epi16(w, w), 0x08);
  return _mm256_castsi256_si128(w);
}

// RequantByte on 8 bytes -> 8 int32 lanes in [0, 255].
struct Requant8 {
  __m256i zp, magic_bits;
  __m256 m, b, lo, hi, magic;
  __attribute__((target("avx2"))) Requant8(int zero_point, float ratio, float zp_out)
      : zp(_mm256_set1_epi32(zero_point)),
        magic_bits(_mm256_set1_epi32(0x4B400000)),
        m(_mm256_set1_ps(ratio)),
        b(_mm256_set1_ps(zp_out)),
        lo(_mm256_setzero_ps()),
        hi(_mm256_set1_ps(255.0f)),
        magic(_mm256_set1_ps(12582912.0f)) {}
  __attribute__((target("avx2"))) __m256i Eight(const uint8_t* p) const {
    const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), m);
    v = _mm256_add_ps(v, b);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(v, magic)), magic_bits);
  }
};

}  // namespace

__attribute__((target("avx2"))) void MaxPoolRowsAvx2(const PoolShape& s, const uint8_t* x,
                                                      uint8_t* y, int64_t r0, int64_t r1) {
  const int64_t c = s.c, row_stride = s.w * s.c;
  for (int64_t r = r0; r < r1; ++r) {
    const RowWindow win = WindowOf(s, x, r);
    // Vertical max of the window's rows.
    const uint8_t* vb = win.first_row;
    if (win.rows > 1) {
      uint8_t* buf = ByteScratch(win.len);
      int64_t k = 0;
      for (; k + 32 <= win.len; k += 32) {
        const uint8_t* p = win.first_row + k;
        __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        for (int i = 1; i < win.rows; ++i) {
          m = _mm256_max_epu8(
              m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i * row_stride)));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf + k), m);
      }
      for (; k < win.len; ++k) {
        uint8_t m = win.first_row[k];
        for (int i = 1; i < win.rows; ++i) m = std::max(m, win.first_row[k + i * row_stride]);
        buf[k] = m;
      }
      vb = buf;
    }
    // Horizontal max over each output pixel's columns.
    uint8_t* out = y + r * s.ow * c;
    for (int64_t ox = 0; ox < s.ow; ++ox, out += c) {
      int64_t x0, x1;
      Cols(s, ox, &x0, &x1);
      const uint8_t* p = vb + x0 * c;
      const int taps = static_cast<int>(x1 - x0);
      int64_t k = 0;
      for (; k + 32 <= c; k += 32) {
        __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
        for (int j = 1; j < taps; ++j) {
          m = _mm256_max_epu8(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j * c + k)));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), m);
      }
      if (k + 16 <= c) {
        __m128i m = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k));
        for (int j = 1; j < taps; ++j) {
          m = _mm_max_epu8(m, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + j * c + k)));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), m);
        k += 16;
      }
      for (; k < c; ++k) {
        uint8_t m = p[k];
        for (int j = 1; j < taps; ++j) m = std::max(m, p[j * c + k]);
        out[k] = m;
      }
    }
  }
}

__attribute__((target("avx2"))) void AvgPoolRowsAvx2(const PoolShape& s, const uint8_t* x,
                                                      uint8_t* y, int64_t r0, int64_t r1) {
  const int64_t c = s.c, row_stride = s.w * s.c;
  for (int64_t r = r0; r < r1; ++r) {
    const RowWindow win = WindowOf(s, x, r);
    // Vertical u16 sums of the window's rows (<= 255 * kh each).
    uint16_t* vs = WordScratch(win.len);
    int64_t k = 0;
    for (; k + 16 <= win.len; k += 16) {
      const uint8_t* p = win.first_row + k;
      __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      for (int i = 1; i < win.rows; ++i) {
        a = _mm256_add_epi16(a, _mm256_cvtepu8_epi16(_mm_loadu_si128(
                                    reinterpret_cast<const __m128i*>(p + i * row_stride))));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(vs + k), a);
    }
    for (; k < win.len; ++k) {
      uint16_t a = 0;
      for (int i = 0; i < win.rows; ++i) a += win.first_row[k + i * row_stride];
      vs[k] = a;
    }
    // Horizontal sums (<= 255 * kh * kw <= 65535) and the division by the tap count.
    uint8_t* out = y + r * s.ow * c;
    for (int64_t ox = 0; ox < s.ow; ++ox, out += c) {
      int64_t x0, x1;
      Cols(s, ox, &x0, &x1);
      const uint16_t* p = vs + x0 * c;
      const int taps = static_cast<int>(x1 - x0);
      const int count = win.rows * taps;
      const __m256 cnt = _mm256_set1_ps(static_cast<float>(count));
      int64_t k = 0;
      for (; k + 16 <= c; k += 16) {
        __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
        for (int j = 1; j < taps; ++j) {
          a = _mm256_add_epi16(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j * c + k)));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), AvgFinish(a, cnt));
      }
      for (; k < c; ++k) {
        int32_t a = 0;
        for (int j = 0; j < taps; ++j) a += p[j * c + k];
        out[k] = AvgRound(a, count);
      }
    }
  }
}

__attribute__((target("avx2"))) void RequantBytesAvx2(const uint8_t* src, uint8_t* dst,
                                                       int64_t len, int zero_point, float ratio,
                                                       float zp_out) {
  // RequantByte's float operations, in its order, 8 lanes at a time (no FMA: separate
  // multiply and add, as the portable table is built under -ffp-contract=off).
  const Requant8 f(zero_point, ratio, zp_out);
  // Bytes of four 8-lane groups after the two packs are in dword order 0,4,1,5,2,6,3,7.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t k = 0;
  for (; k + 32 <= len; k += 32) {
    const __m256i a = _mm256_packus_epi32(f.Eight(src + k), f.Eight(src + k + 8));
    const __m256i c = _mm256_packus_epi32(f.Eight(src + k + 16), f.Eight(src + k + 24));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, c), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), bytes);
  }
  for (; k < len; ++k) dst[k] = RequantByte(src[k], zero_point, ratio, zp_out);
}

}  // namespace qg
