// AVX-512 loops of the pool and concat kernels (qg_pool_concat_simd.h), for the vnni and amx
// paths: the AVX2 loops' algorithms (qg_pool_concat_avx2.cc) on 64 bytes or 32 u16 sums a
// step, and every tail under a mask instead of a scalar loop (Inception's 288 channels are
// 4 x 64 + 32). Compiled through function target attributes only.
#include <immintrin.h>

#include <algorithm>

#include "qg_pool_concat_simd.h"
#include "qg_pool_rows.h"

namespace qg {
namespace {

using pool_rows::ByteScratch;
using pool_rows::Cols;
using pool_rows::RowWindow;
using pool_rows::WindowOf;
using pool_rows::WordScratch;

#define QG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

inline __mmask32 Mask32(int64_t n) {
  return n >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((uint32_t{1} << n) - 1);
}
inline __mmask16 Mask16(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
}

// AvgDivider (qg_pool_concat_avx2.cc) on 32 u16 lanes: the same multiply-high, shift,
// remainder test and ties-to-even rounding, step by step in the same 16-bit arithmetic (the
// compares signed, as there); results above 255 saturate to 255 as packus does there
// (vpmovuswb: the lanes are never negative).
struct AvgDivider512 {
  int count = 0;
  __m512i m, c, one;
  __m128i shift;

  QG_AVX512 explicit AvgDivider512(int n) : count(n) {
    const int ceil_log2 = n >= 2 ? 32 - __builtin_clz(static_cast<unsigned>(n - 1)) : 1;
    const int64_t l = 15 + ceil_log2;
    m = _mm512_set1_epi16(static_cast<int16_t>(((int64_t{1} << l) + n - 1) / n));
    shift = _mm_cvtsi32_si128(static_cast<int>(l - 16));
    c = _mm512_set1_epi16(static_cast<int16_t>(n));
    one = _mm512_set1_epi16(1);
  }

  QG_AVX512 __m256i Round(__m512i sum) const {
    if (count == 1) return _mm512_cvtusepi16_epi8(sum);
    const __m512i q0 = _mm512_srl_epi16(_mm512_mulhi_epu16(sum, m), shift);
    const __m512i r2 = _mm512_slli_epi16(_mm512_sub_epi16(sum, _mm512_mullo_epi16(q0, c)), 1);
    const __mmask32 up = _mm512_cmpgt_epi16_mask(r2, c) |
                         (_mm512_cmpeq_epi16_mask(r2, c) & _mm512_test_epi16_mask(q0, one));
    return _mm512_cvtusepi16_epi8(_mm512_mask_add_epi16(q0, up, q0, one));
  }
};

// Max of n rows (or taps) of bytes, `stride` apart, over [0, len): whole zmm, then the tail in
// a ymm and under a mask (masked zmm loads on every step measured slower than the AVX2 loop).
template <int kN>
QG_AVX512 inline void MaxBytes(const uint8_t* p, int64_t stride, int count, int64_t len,
                               uint8_t* out) {
  const int n = kN > 0 ? kN : count;
  int64_t k = 0;
  for (; k + 64 <= len; k += 64) {
    __m512i v = _mm512_loadu_si512(p + k);
    for (int i = 1; i < n; ++i) v = _mm512_max_epu8(v, _mm512_loadu_si512(p + i * stride + k));
    _mm512_storeu_si512(out + k, v);
  }
  if (k + 32 <= len) {  // a 32-byte tail as one ymm (Inception's 288 channels)
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
    for (int i = 1; i < n; ++i) {
      const uint8_t* row = p + i * stride + k;
      v = _mm256_max_epu8(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), v);
    k += 32;
  }
  if (k < len) {
    const __mmask32 mk = Mask32(len - k);
    __m256i v = _mm256_maskz_loadu_epi8(mk, p + k);
    for (int i = 1; i < n; ++i)
      v = _mm256_max_epu8(v, _mm256_maskz_loadu_epi8(mk, p + i * stride + k));
    _mm256_mask_storeu_epi8(out + k, mk, v);
  }
}

template <int kN>
QG_AVX512 void VerticalMax(const uint8_t* p, int64_t stride, int rows, int64_t len,
                           uint8_t* out) {
  MaxBytes<kN>(p, stride, rows, len, out);
}

template <int kN>
QG_AVX512 void MaxPixel(const uint8_t* p, int64_t c, int taps, uint8_t* out) {
  MaxBytes<kN>(p, c, taps, c, out);
}

template <int kN>
QG_AVX512 void VerticalSum(const uint8_t* p, int64_t stride, int rows, int64_t len,
                           uint16_t* out) {
  const int n = kN > 0 ? kN : rows;
  int64_t k = 0;
  for (; k + 32 <= len; k += 32) {
    __m512i a = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k)));
    for (int i = 1; i < n; ++i) {
      a = _mm512_add_epi16(a, _mm512_cvtepu8_epi16(_mm256_loadu_si256(
                                  reinterpret_cast<const __m256i*>(p + i * stride + k))));
    }
    _mm512_storeu_si512(out + k, a);
  }
  if (k < len) {
    const __mmask32 mk = Mask32(len - k);
    __m512i a = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mk, p + k));
    for (int i = 1; i < n; ++i) {
      const __m256i row = _mm256_maskz_loadu_epi8(mk, p + i * stride + k);
      a = _mm512_add_epi16(a, _mm512_cvtepu8_epi16(row));
    }
    _mm512_mask_storeu_epi16(out + k, mk, a);
  }
}

template <int kN>
QG_AVX512 void AvgPixel(const uint16_t* p, int64_t c, int taps, const AvgDivider512& d,
                        uint8_t* out) {
  const int n = kN > 0 ? kN : taps;
  int64_t k = 0;
  for (; k + 32 <= c; k += 32) {
    __m512i a = _mm512_loadu_si512(p + k);
    for (int j = 1; j < n; ++j) a = _mm512_add_epi16(a, _mm512_loadu_si512(p + j * c + k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), d.Round(a));
  }
  if (k < c) {
    const __mmask32 mk = Mask32(c - k);
    __m512i a = _mm512_maskz_loadu_epi16(mk, p + k);
    for (int j = 1; j < n; ++j)
      a = _mm512_add_epi16(a, _mm512_maskz_loadu_epi16(mk, p + j * c + k));
    _mm256_mask_storeu_epi8(out + k, mk, d.Round(a));
  }
}

// RequantByte's float operations, in its order, on 16 bytes: a separate multiply and add (no
// FMA), max(v, 0) (NaN -> 0) then min 255, and cvtps_epi32's round half to even under the
// default rounding mode, which is RoundHalfEven's result on [0, 255].
struct Requant16 {
  __m512i zp;
  __m512 m, b, lo, hi;
  QG_AVX512 Requant16(int zero_point, float ratio, float zp_out)
      : zp(_mm512_set1_epi32(zero_point)),
        m(_mm512_set1_ps(ratio)),
        b(_mm512_set1_ps(zp_out)),
        lo(_mm512_setzero_ps()),
        hi(_mm512_set1_ps(255.0f)) {}
  QG_AVX512 __m128i Bytes(__m128i q8) const {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(q8), zp)), m);
    v = _mm512_add_ps(v, b);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v));
  }
};

}  // namespace

QG_AVX512 void MaxPoolRowsAvx512(const PoolShape& s, const uint8_t* x, uint8_t* y, int64_t r0,
                                 int64_t r1) {
  const int64_t c = s.c, row_stride = s.w * s.c;
  for (int64_t r = r0; r < r1; ++r) {
    const RowWindow win = WindowOf(s, x, r);
    const uint8_t* vb = win.first_row;  // a single row needs no vertical pass
    if (win.rows > 1) {
      uint8_t* buf = ByteScratch(win.len);
      QG_POOL_BY_COUNT(win.rows, VerticalMax, win.first_row, row_stride, win.rows, win.len, buf);
      vb = buf;
    }
    uint8_t* out = y + r * s.ow * c;
    for (int64_t ox = 0; ox < s.ow; ++ox, out += c) {
      int64_t x0, x1;
      Cols(s, ox, &x0, &x1);
      const int taps = static_cast<int>(x1 - x0);
      QG_POOL_BY_COUNT(taps, MaxPixel, vb + x0 * c, c, taps, out);
    }
  }
}

QG_AVX512 void AvgPoolRowsAvx512(const PoolShape& s, const uint8_t* x, uint8_t* y, int64_t r0,
                                 int64_t r1) {
  const int64_t c = s.c, row_stride = s.w * s.c;
  AvgDivider512 d(1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowWindow win = WindowOf(s, x, r);
    // u16 sums: <= 255 * kh after the vertical pass, <= 255 * kh * kw <= 65535 after the
    // horizontal one (kh * kw <= kAvgPoolMaxTaps).
    uint16_t* vs = WordScratch(win.len);
    QG_POOL_BY_COUNT(win.rows, VerticalSum, win.first_row, row_stride, win.rows, win.len, vs);
    uint8_t* out = y + r * s.ow * c;
    for (int64_t ox = 0; ox < s.ow; ++ox, out += c) {
      int64_t x0, x1;
      Cols(s, ox, &x0, &x1);
      const int taps = static_cast<int>(x1 - x0);
      const int count = win.rows * taps;
      if (count != d.count) d = AvgDivider512(count);
      QG_POOL_BY_COUNT(taps, AvgPixel, vs + x0 * c, c, taps, d, out);
    }
  }
}

QG_AVX512 void RequantRowsAvx512(const uint8_t* src, int64_t len, int64_t rows, uint8_t* dst,
                                 int64_t dst_stride, int zero_point, float ratio,
                                 float zp_out) {
  const Requant16 f(zero_point, ratio, zp_out);
  for (int64_t r = 0; r < rows; ++r, src += len, dst += dst_stride) {
    int64_t k = 0;
    for (; k + 16 <= len; k += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k),
                       f.Bytes(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k))));
    if (k < len) {
      const __mmask16 mk = Mask16(len - k);
      _mm_mask_storeu_epi8(dst + k, mk, f.Bytes(_mm_maskz_loadu_epi8(mk, src + k)));
    }
  }
}

#undef QG_AVX512

}  // namespace qg
