// AVX2 QgQuantize loop (qg_quantize_simd.h): 8 floats a step; the caller finishes the last < 8
// with the portable loop. divps is the IEEE division of the scalar loop; maxps(v, lo) returns
// lo for NaN as ClampNanLow does; cvtps_epi32 rounds half to even (default rounding mode), as
// the portable loop's RoundHalfEven does for the clamped values.
#include <immintrin.h>

#include "qg_quantize_simd.h"

namespace qg {

__attribute__((target("avx2"))) int64_t QuantizeSpanAvx2(const float* x, uint8_t* q,
                                                         int64_t n, float scale, float lo,
                                                         float hi, int zp) {
  const __m256 vs = _mm256_set1_ps(scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const __m256i vzp = _mm256_set1_epi32(zp);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
    v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
    const __m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(v), vzp);  // in [0, 255]
    const __m128i p16 =
        _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packus_epi16(p16, p16));
  }
  return i;
}

}  // namespace qg
