// AVX-512 epilogue row (the vnni path; function target attributes, chosen at run time): 16
// channels a step and the last < 16 under a mask, so no scalar tail. Same float32 operations in
// the same order as the portable row: cvtps_epi32 rounds half to even under the default
// rounding mode, max/min clamp (maxps(NaN, lo) = lo, as the portable row), separate mul and add.
#include <immintrin.h>

#include "qg_epilogue.h"

namespace qg {

#define QG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

QG_AVX512 static inline __m512 SummandTerm512(__mmask16 k, const uint8_t* s, __m512i zp,
                                              __m512 mult) {
  const __m512i q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, s));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q, zp)), mult);
}

QG_AVX512 void Epilogue::RowAvx512(const int32_t* acc, int n0, int n1, int64_t index,
                                   void* output) const {
  if (float_out) {
    const __m512i zps = _mm512_set1_epi32(zp_s);
    const __m512 smult = _mm512_set1_ps(s_mult);
    float* y = static_cast<float*>(output) + index;
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int c = n0; c < n1; c += 16) {
      const __mmask16 k = n1 - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n1 - c)) - 1);
      const __m512 a = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, acc + (c - n0)));
      __m512 v = _mm512_mul_ps(a, _mm512_maskz_loadu_ps(k, sf.data() + c));
      v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + c));
      if (summand != nullptr)
        v = _mm512_add_ps(v, SummandTerm512(k, summand + index + c, zps, smult));
      if (act != Activation::kNone) v = _mm512_max_ps(v, zero);
      if (act == Activation::kRelu6) v = _mm512_min_ps(v, six);
      _mm512_mask_storeu_ps(y + c, k, v);
    }
    return;
  }
  RowsAvx512(acc, 0, 1, n0, n1, index, 0, output);  // quint8: the rows' loop, one row
}

// One vector of accumulators to clamped, rounded int32 codes: acc * m + b (separate mul and
// add), with kSum the summand's term added after that, clamp to [lo, hi] (maxps(NaN, lo) = lo),
// round half to even: the portable row's quint8 operations in its order, for every quint8 row
// on this path (RowAvx512 runs RowsAvx512's loop on one row).
template <bool kSum>
QG_AVX512 static inline __m512i Requantize512(__m512i acc, __m512 m, __m512 b, __m512 lo,
                                              __m512 hi, __m512 term) {
  __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), m), b);
  if (kSum) v = _mm512_add_ps(v, term);
  v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  return _mm512_cvtps_epi32(v);
}

// Rows to quint8: 16 channels at a time outside, the rows inside, so the per-channel factors
// stay in registers. kSum: with the summand (a fused residual Add, ResNet's and MobileNet-v2's
// 1x1 projections, where K is small and this loop is a large part of the conv): its bytes are
// in the output's layout, at the same index.
template <bool kSum>
QG_AVX512 static void RowsQuint8Avx512(const Epilogue& e, const int32_t* acc, int ldc,
                                       int count, int n0, int n1, int64_t index,
                                       int64_t stride, uint8_t* output) {
  uint8_t* q = output + index;
  const uint8_t* s = kSum ? e.summand + index : nullptr;
  const __m512 vlo = _mm512_set1_ps(e.lo), vhi = _mm512_set1_ps(e.hi);
  const __m512i zps = _mm512_set1_epi32(e.zp_s);
  const __m512 smult = _mm512_set1_ps(e.s_mult);
  __m512 term[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                    _mm512_setzero_ps()};
  int c = n0;
  // 64 channels a row: four vectors packed to bytes together (the packs saturate values
  // already clamped to [lo, hi]) and one 64-byte store, instead of four vpmovusdb (2 uops each)
  // and four 16-byte stores. After the packs, dword 4l + j holds vector j's elements 4l..4l+3.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (; c + 64 <= n1; c += 64) {
    __m512 vm[4], vb[4];
    for (int j = 0; j < 4; ++j) {
      vm[j] = _mm512_loadu_ps(e.m.data() + c + 16 * j);
      vb[j] = _mm512_loadu_ps(e.b.data() + c + 16 * j);
    }
    const int32_t* a = acc + (c - n0);
    for (int64_t i = 0, o = c; i < count; ++i, a += ldc, o += stride) {
      __m512i r[4];
      for (int j = 0; j < 4; ++j) {
        if (kSum) term[j] = SummandTerm512(0xFFFF, s + o + 16 * j, zps, smult);
        r[j] = Requantize512<kSum>(_mm512_loadu_si512(a + 16 * j), vm[j], vb[j], vlo, vhi,
                                   term[j]);
      }
      const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(r[0], r[1]),
                                                _mm512_packus_epi32(r[2], r[3]));
      _mm512_storeu_si512(q + o, _mm512_permutexvar_epi32(order, bytes));
    }
  }
  for (; c < n1; c += 16) {
    const __mmask16 k = n1 - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n1 - c)) - 1);
    const __m512 vm = _mm512_maskz_loadu_ps(k, e.m.data() + c);
    const __m512 vb = _mm512_maskz_loadu_ps(k, e.b.data() + c);
    const int32_t* a = acc + (c - n0);
    for (int64_t i = 0, o = c; i < count; ++i, a += ldc, o += stride) {
      if (kSum) term[0] = SummandTerm512(k, s + o, zps, smult);
      const __m512i r = Requantize512<kSum>(_mm512_maskz_loadu_epi32(k, a), vm, vb, vlo, vhi,
                                            term[0]);
      _mm_mask_storeu_epi8(q + o, k, _mm512_cvtusepi32_epi8(r));
    }
  }
}

QG_AVX512 void Epilogue::RowsAvx512(const int32_t* acc, int ldc, int count, int n0, int n1,
                                    int64_t index, int64_t stride, void* output) const {
  if (float_out) {  // the less common form (a last layer): row by row
    for (int i = 0; i < count; ++i)
      RowAvx512(acc + static_cast<int64_t>(i) * ldc, n0, n1, index + i * stride, output);
    return;
  }
  uint8_t* q = static_cast<uint8_t*>(output);
  if (summand != nullptr) {
    RowsQuint8Avx512<true>(*this, acc, ldc, count, n0, n1, index, stride, q);
  } else {
    RowsQuint8Avx512<false>(*this, acc, ldc, count, n0, n1, index, stride, q);
  }
}

}  // namespace qg
