// AVX-512 QgQuantize loop (qg_quantize_simd.h): 16 floats a step, the last < 16 under a mask.
// divps is the IEEE division of the scalar loop; maxps(v, lo) returns lo for NaN as
// ClampNanLow does; cvtps_epi32 rounds half to even (default rounding mode).
#include <immintrin.h>

#include "qg_quantize_simd.h"

namespace qg {

__attribute__((target("avx512f,avx512bw,avx512vl"))) void QuantizeSpanAvx512(
    const float* x, uint8_t* q, int64_t n, float scale, float lo, float hi, int zp) {
  const __m512 vs = _mm512_set1_ps(scale), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const __m512i vzp = _mm512_set1_epi32(zp);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k =
        n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), vs);
    v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
    const __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(v), vzp);
    _mm_mask_storeu_epi8(q + i, k, _mm512_cvtusepi32_epi8(c));
  }
}

}  // namespace qg
