// AVX2 loops of the pool and concat kernels (qg_pool_concat_simd.h). Compiled for AVX2 through
// function target attributes only, so the library still loads on CPUs without it. The pools
// are separable (qg_pool_rows.h).
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "qg_pool_concat_simd.h"
#include "qg_pool_rows.h"

namespace qg {
namespace {

using pool_rows::ByteScratch;
using pool_rows::Cols;
using pool_rows::RowWindow;
using pool_rows::WindowOf;
using pool_rows::WordScratch;

// 16 u16 lanes holding values <= 255 -> 16 bytes (packus works per 128-bit lane; the
// permute puts the two halves back together).
__attribute__((target("avx2"))) inline __m128i PackBytes(__m256i w) {
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi16(w, w), 0x08));
}

// rint(sum / count) (AvgRound) of 16 u16 window sums <= 255 * count, one count for all lanes,
// in integers only: q0 = floor(sum / count), near enough, by multiply-high with
// M = ceil(2^L / count), L = 15 + ceil(log2 count) (so M < 2^16), then a shift by L - 16;
// r = sum - q0 * count (mod 2^16, read as int16); round up when 2r > count, or 2r == count
// and q0 is odd (ties to even). For some counts above 185, q0 is one too high for a few sums,
// always where r then comes out negative and the rounded result is still right. The whole
// thing, u16 wrap-around included, is checked for every count 2..257 and every sum against
// AvgRound's float32 division + rint by tests/test_kernels_ops.py
// (test_avg_pool_integer_rounding_matches_float_division); count 1 is the sum itself.
struct AvgDivider {
  int count = 0;
  __m256i m, c, one;
  __m128i shift;

  __attribute__((target("avx2"))) explicit AvgDivider(int n) : count(n) {
    const int ceil_log2 = n >= 2 ? 32 - __builtin_clz(static_cast<unsigned>(n - 1)) : 1;
    const int64_t l = 15 + ceil_log2;
    m = _mm256_set1_epi16(static_cast<int16_t>(((int64_t{1} << l) + n - 1) / n));
    shift = _mm_cvtsi32_si128(static_cast<int>(l - 16));
    c = _mm256_set1_epi16(static_cast<int16_t>(n));
    one = _mm256_set1_epi16(1);
  }

  __attribute__((target("avx2"))) __m128i Round(__m256i sum) const {
    if (count == 1) return PackBytes(sum);
    const __m256i q0 = _mm256_srl_epi16(_mm256_mulhi_epu16(sum, m), shift);
    const __m256i r2 = _mm256_slli_epi16(_mm256_sub_epi16(sum, _mm256_mullo_epi16(q0, c)), 1);
    const __m256i odd = _mm256_cmpeq_epi16(_mm256_and_si256(q0, one), one);
    const __m256i up = _mm256_or_si256(_mm256_cmpgt_epi16(r2, c),
                                       _mm256_and_si256(_mm256_cmpeq_epi16(r2, c), odd));
    return PackBytes(_mm256_sub_epi16(q0, up));  // up is -1 where rounding up
  }
};

// The vertical and horizontal passes, with the count of rows / taps a template argument for
// the usual 1..3 (so the loops unroll) and a run-time one when kN is 0.
template <int kN>
__attribute__((target("avx2"))) void VerticalMax(const uint8_t* p, int64_t stride, int rows,
                                                 int64_t len, uint8_t* out) {
  const int n = kN > 0 ? kN : rows;
  int64_t k = 0;
  for (; k + 32 <= len; k += 32) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
    for (int i = 1; i < n; ++i) {
      v = _mm256_max_epu8(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i * stride + k)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), v);
  }
  for (; k < len; ++k) {
    uint8_t v = p[k];
    for (int i = 1; i < n; ++i) v = std::max(v, p[i * stride + k]);
    out[k] = v;
  }
}

template <int kN>
__attribute__((target("avx2"))) void MaxPixel(const uint8_t* p, int64_t c, int taps,
                                              uint8_t* out) {
  const int n = kN > 0 ? kN : taps;
  int64_t k = 0;
  for (; k + 32 <= c; k += 32) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
    for (int j = 1; j < n; ++j) {
      v = _mm256_max_epu8(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j * c + k)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), v);
  }
  if (k + 16 <= c) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k));
    for (int j = 1; j < n; ++j) {
      v = _mm_max_epu8(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + j * c + k)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), v);
    k += 16;
  }
  for (; k < c; ++k) {
    uint8_t v = p[k];
    for (int j = 1; j < n; ++j) v = std::max(v, p[j * c + k]);
    out[k] = v;
  }
}

template <int kN>
__attribute__((target("avx2"))) void VerticalSum(const uint8_t* p, int64_t stride, int rows,
                                                 int64_t len, uint16_t* out) {
  const int n = kN > 0 ? kN : rows;
  int64_t k = 0;
  for (; k + 16 <= len; k += 16) {
    __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k)));
    for (int i = 1; i < n; ++i) {
      a = _mm256_add_epi16(a, _mm256_cvtepu8_epi16(_mm_loadu_si128(
                                  reinterpret_cast<const __m128i*>(p + i * stride + k))));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), a);
  }
  for (; k < len; ++k) {
    uint16_t a = 0;
    for (int i = 0; i < n; ++i) a = static_cast<uint16_t>(a + p[i * stride + k]);
    out[k] = a;
  }
}

template <int kN>
__attribute__((target("avx2"))) void AvgPixel(const uint16_t* p, int64_t c, int taps,
                                              const AvgDivider& d, uint8_t* out) {
  const int n = kN > 0 ? kN : taps;
  int64_t k = 0;
  for (; k + 16 <= c; k += 16) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + k));
    for (int j = 1; j < n; ++j) {
      a = _mm256_add_epi16(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j * c + k)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), d.Round(a));
  }
  for (; k < c; ++k) {
    int32_t a = 0;
    for (int j = 0; j < n; ++j) a += p[j * c + k];
    out[k] = AvgRound(a, d.count);
  }
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

__attribute__((target("avx2"))) void AvgPoolRowsAvx2(const PoolShape& s, const uint8_t* x,
                                                      uint8_t* y, int64_t r0, int64_t r1) {
  const int64_t c = s.c, row_stride = s.w * s.c;
  AvgDivider d(1);
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
      if (count != d.count) d = AvgDivider(count);
      QG_POOL_BY_COUNT(taps, AvgPixel, vs + x0 * c, c, taps, d, out);
    }
  }
}

__attribute__((target("avx2"))) void RequantRowsAvx2(const uint8_t* src, int64_t len,
                                                      int64_t rows, uint8_t* dst,
                                                      int64_t dst_stride, int zero_point,
                                                      float ratio, float zp_out) {
  // RequantByte's float operations, in its order, 8 lanes at a time (no FMA: separate
  // multiply and add, as the portable table is built under -ffp-contract=off).
  const Requant8 f(zero_point, ratio, zp_out);
  // Bytes of four 8-lane groups after the two packs are in dword order 0,4,1,5,2,6,3,7.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t r = 0; r < rows; ++r, src += len, dst += dst_stride) {
    int64_t k = 0;
    for (; k + 32 <= len; k += 32) {
      const __m256i a = _mm256_packus_epi32(f.Eight(src + k), f.Eight(src + k + 8));
      const __m256i c = _mm256_packus_epi32(f.Eight(src + k + 16), f.Eight(src + k + 24));
      const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, c), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), bytes);
    }
    for (; k < len; ++k) dst[k] = RequantByte(src[k], zero_point, ratio, zp_out);
  }
}

}  // namespace qg
