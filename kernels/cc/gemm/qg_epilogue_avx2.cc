// AVX2 epilogue row and activation widening (function target attributes; selected at run
// time). Same float32 operations in the same order as the portable row: cvtps_epi32 rounds
// half to even under the default rounding mode, max/min clamp (NaN -> lo as in the portable
// row), separate mul and add (no FMA).
#include <immintrin.h>

#include "qg_epilogue.h"

namespace qg {

#define QG_AVX2 __attribute__((target("avx2")))

QG_AVX2 static inline __m256 SummandTerm(const uint8_t* s, __m256i zp, __m256 mult) {
  const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s)));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), mult);
}

// One vector of accumulators to clamped, rounded int32 codes, the portable row's quint8
// operations in its order (every quint8 row on this path goes through it): acc * m + b
// (separate mul and add), with kSum the summand's term added after that, clamp to [lo, hi]
// (maxps(NaN, lo) = lo), round half to even.
template <bool kSum>
QG_AVX2 static inline __m256i Requantize256(__m256i acc, __m256 m, __m256 b, __m256 lo,
                                            __m256 hi, __m256 term) {
  __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), m), b);
  if (kSum) v = _mm256_add_ps(v, term);
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  return _mm256_cvtps_epi32(v);
}

// Rows to quint8, 16 channels at a time outside, the rows inside, so the per-channel factors
// stay in registers, and two 8-channel vectors packed to bytes together; the same operations
// per element as the portable row (the packs saturate values already clamped to [lo, hi]). kSum:
// with the summand (a fused residual Add), its bytes in the output's layout at the same index.
// Returns the first channel not done (the last < 16 are left to RowAvx2).
template <bool kSum>
QG_AVX2 static int RowsQuint8Avx2(const Epilogue& e, const int32_t* acc, int ldc, int count,
                                  int n0, int n1, int64_t index, int64_t stride,
                                  uint8_t* output) {
  uint8_t* q = output + index;
  const uint8_t* s = kSum ? e.summand + index : nullptr;
  const __m256 vlo = _mm256_set1_ps(e.lo), vhi = _mm256_set1_ps(e.hi);
  const __m256i zps = _mm256_set1_epi32(e.zp_s);
  const __m256 smult = _mm256_set1_ps(e.s_mult);
  __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
  int c = n0;
  for (; c + 16 <= n1; c += 16) {
    const __m256 m0 = _mm256_loadu_ps(e.m.data() + c), m1 = _mm256_loadu_ps(e.m.data() + c + 8);
    const __m256 b0 = _mm256_loadu_ps(e.b.data() + c), b1 = _mm256_loadu_ps(e.b.data() + c + 8);
    const int32_t* a = acc + (c - n0);
    for (int64_t i = 0, o = c; i < count; ++i, a += ldc, o += stride) {
      if (kSum) {
        t0 = SummandTerm(s + o, zps, smult);
        t1 = SummandTerm(s + o + 8, zps, smult);
      }
      const __m256i r0 = Requantize256<kSum>(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)), m0, b0, vlo, vhi, t0);
      const __m256i r1 = Requantize256<kSum>(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 8)), m1, b1, vlo, vhi, t1);
      // u16 lanes [0-3, 8-11 | 4-7, 12-15] -> [0-3, 4-7 | 8-11, 12-15] -> 16 bytes
      const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r0, r1), 0xD8);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + o),
                       _mm_packus_epi16(_mm256_castsi256_si128(p),
                                        _mm256_extracti128_si256(p, 1)));
    }
  }
  return c;
}

QG_AVX2 void Epilogue::RowAvx2(const int32_t* acc, int n0, int n1, int64_t index,
                               void* output) const {
  int c = n0;
  if (float_out) {
    const __m256i zps = _mm256_set1_epi32(zp_s);
    const __m256 smult = _mm256_set1_ps(s_mult);
    float* y = static_cast<float*>(output) + index;
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    for (; c + 8 <= n1; c += 8) {
      const __m256 a = _mm256_cvtepi32_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + (c - n0))));
      __m256 v = _mm256_mul_ps(a, _mm256_loadu_ps(sf.data() + c));
      v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
      if (summand != nullptr) v = _mm256_add_ps(v, SummandTerm(summand + index + c, zps, smult));
      if (act != Activation::kNone) v = _mm256_max_ps(v, zero);
      if (act == Activation::kRelu6) v = _mm256_min_ps(v, six);
      _mm256_storeu_ps(y + c, v);
    }
  } else {
    // quint8, 8 channels a step, through the same Requantize256 as RowsAvx2's loop (single
    // rows: the depthwise loop per pixel, RowsAvx2's last < 16 channels).
    uint8_t* q = static_cast<uint8_t*>(output) + index;
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i zps = _mm256_set1_epi32(zp_s);
    const __m256 smult = _mm256_set1_ps(s_mult);
    for (; c + 8 <= n1; c += 8) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + (c - n0)));
      const __m256 vm = _mm256_loadu_ps(m.data() + c), vb = _mm256_loadu_ps(b.data() + c);
      const __m256i i =
          summand != nullptr
              ? Requantize256<true>(a, vm, vb, vlo, vhi,
                                    SummandTerm(summand + index + c, zps, smult))
              : Requantize256<false>(a, vm, vb, vlo, vhi, _mm256_setzero_ps());
      const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(i),
                                           _mm256_extracti128_si256(i, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(q + c), _mm_packus_epi16(p16, p16));
    }
  }
  if (c < n1) RowPortable(acc + (c - n0), c, n1, index, output);
}

QG_AVX2 void Epilogue::RowsAvx2(const int32_t* acc, int ldc, int count, int n0, int n1,
                                int64_t index, int64_t stride, void* output) const {
  int c = n0;
  if (!float_out) {
    uint8_t* q = static_cast<uint8_t*>(output);
    c = summand != nullptr
            ? RowsQuint8Avx2<true>(*this, acc, ldc, count, n0, n1, index, stride, q)
            : RowsQuint8Avx2<false>(*this, acc, ldc, count, n0, n1, index, stride, q);
  }
  if (c < n1) {
    for (int i = 0; i < count; ++i)
      RowAvx2(acc + static_cast<int64_t>(i) * ldc + (c - n0), c, n1, index + i * stride,
              output);
  }
}

QG_AVX2 void WidenU8Avx2(const uint8_t* src, int n, int zp, int16_t* dst) {
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zp));
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i x =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_sub_epi16(x, z));
  }
  for (; i < n; ++i) dst[i] = static_cast<int16_t>(static_cast<int>(src[i]) - zp);
}

}  // namespace qg
