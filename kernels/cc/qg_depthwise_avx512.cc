// AVX-512 depthwise loop (qg_depthwise_simd.h). Compiled through function target attributes
// only, so the library still loads on CPUs without AVX-512; called only on the vnni and amx
// paths.
#include <immintrin.h>

#include <algorithm>

#include "qg_depthwise_simd.h"

namespace qg {

int64_t DwStreamChannels(int64_t c) {
  if (c <= 0 || c % kDw512Block == 0) return 0;
  int64_t a = c, b = kDw512Block;  // gcd
  while (b != 0) {
    const int64_t r = a % b;
    a = b;
    b = r;
  }
  const int64_t lcm = c / a * kDw512Block;
  return lcm / kDw512Block <= kDwStreamMaxBlocks ? lcm : 0;
}

void PrepareDwAvx512(const int8_t* f, int64_t taps, int64_t c, int64_t cv,
                     DwAvx512Weights* out) {
  const int64_t blocks = (cv + kDw512Block - 1) / kDw512Block;
  out->c = cv;
  out->c_real = c;
  out->blocks = blocks;
  out->w.assign(static_cast<size_t>(blocks * taps * 4 * kDw512Block), 0);
  out->wsum.assign(static_cast<size_t>(blocks * kDw512Block), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int k = 0; k < 4; ++k) {
      for (int j = 0; j < 16; ++j) {
        const int64_t lane = b * kDw512Block + 4 * j + k;  // virtual channel
        if (lane >= cv) continue;
        const int64_t ch = lane % c;
        int32_t sum = 0;
        for (int64_t t = 0; t < taps; ++t) {
          out->w[((b * taps + t) * 4 + k) * kDw512Block + 4 * j + k] = f[t * c + ch];
          sum += f[t * c + ch];
        }
        out->wsum[b * kDw512Block + 16 * k + j] = sum;
      }
    }
  }
}

void DwAvx512Call::Init(const DwAvx512Weights* weights, int64_t taps_in, int zero_point,
                        const Epilogue* epilogue, void* output) {
  w = weights;
  taps = taps_in;
  c = w->c;
  epi = epilogue;
  out = output;
  const size_t lanes = w->wsum.size();
  // -zp * sum_t w_t in int32 arithmetic modulo 2^32, like the accumulators (the exact result
  // fits int32, kernels/OPS.md "Accumulator", so the wrapped sum is exact too).
  corr.resize(lanes);
  for (size_t i = 0; i < lanes; ++i)
    corr[i] = static_cast<int32_t>(-static_cast<int64_t>(zero_point) * w->wsum[i]);
  m.clear();
  b.clear();
  if (epi->float_out || epi->summand != nullptr) return;
  m.assign(lanes, 0.0f);
  b.assign(lanes, 0.0f);
  for (size_t i = 0; i < lanes; ++i) {
    const int64_t blk = static_cast<int64_t>(i) / kDw512Block, r = i % kDw512Block;
    const int64_t lane = blk * kDw512Block + 4 * (r % 16) + r / 16;
    if (lane < c) {
      m[i] = epi->m[lane % w->c_real];
      b[i] = epi->b[lane % w->c_real];
    }
  }
}

namespace {

#define QG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// Bytes of one 128-bit lane after the two packs: position 4k + i holds channel 4i + k of that
// lane's 16; this vpshufb control puts channel p at position p.
alignas(64) constexpr int8_t kChannelOrder[64] = {
    0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14,
    3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13,
    2, 6, 10, 14, 3, 7, 11, 15};

template <bool kFull>
QG_AVX512 inline __m512i LoadX(const uint8_t* p, __mmask64 mask) {
  return kFull ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi8(mask, p);
}

// The quint8 epilogue (Epilogue::RowAvx512's operations: float(acc) * m + b, max lo, min hi,
// round half to even) on the four lane-order accumulators, then 64 bytes in channel order.
QG_AVX512 inline void StoreQuint8(const __m512i (&acc)[4], const float* m, const float* b,
                                  __m512 lo, __m512 hi, __m512i order, __mmask64 mask,
                                  uint8_t* dst) {
  __m512i q[4];
  for (int k = 0; k < 4; ++k) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[k]), _mm512_loadu_ps(m + 16 * k));
    v = _mm512_add_ps(v, _mm512_loadu_ps(b + 16 * k));
    v = _mm512_max_ps(v, lo);  // maxps(NaN, lo) = lo
    v = _mm512_min_ps(v, hi);
    q[k] = _mm512_cvtps_epi32(v);  // in [0, 255]: the packs below do not saturate
  }
  const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(q[0], q[1]),
                                            _mm512_packus_epi32(q[2], q[3]));
  _mm512_mask_storeu_epi8(dst, mask, _mm512_shuffle_epi8(bytes, order));
}

// Any other output form: the accumulators back in channel order, then Epilogue::Row.
QG_AVX512 void StoreRow(const DwAvx512Call& call, __m512i a0, __m512i a1, __m512i a2,
                        __m512i a3, int64_t c0, int64_t n, int64_t index) {
  alignas(64) int32_t lanes[kDw512Block], chans[kDw512Block];
  _mm512_store_si512(lanes, a0);
  _mm512_store_si512(lanes + 16, a1);
  _mm512_store_si512(lanes + 32, a2);
  _mm512_store_si512(lanes + 48, a3);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 16; ++j) chans[4 * j + k] = lanes[16 * k + j];
  call.epi->Row(chans, static_cast<int>(c0), static_cast<int>(c0 + n), index, call.out);
}

// Channels [c0, c0 + 64) of pixels [k0, k1) (pixel k's tap t at tap[t] + k * step; k1 - k0 a
// multiple of kP), kP pixels at a time: they share each weight load and give 4 * kP
// independent vpdpbusd chains.
template <int kTaps, bool kFull, bool kFused, int kP>
QG_AVX512 void Block(const DwAvx512Call& call, const uint8_t* const* tap, int64_t step,
                     int64_t k0, int64_t k1, int64_t index0, int64_t blk) {
  const int64_t taps = kTaps > 0 ? kTaps : call.taps;
  const int64_t c = call.c, c0 = blk * kDw512Block, n = std::min<int64_t>(kDw512Block, c - c0);
  const __mmask64 mask =
      n == kDw512Block ? ~__mmask64{0} : static_cast<__mmask64>((uint64_t{1} << n) - 1);
  const float* m = kFused ? call.m.data() + c0 : nullptr;
  const float* b = kFused ? call.b.data() + c0 : nullptr;
  const __m512 lo = _mm512_set1_ps(call.epi->lo), hi = _mm512_set1_ps(call.epi->hi);
  const __m512i order = _mm512_load_si512(kChannelOrder);
  const int8_t* wb = call.w->w.data() + blk * taps * 4 * kDw512Block;
  const int32_t* corr = call.corr.data() + c0;
  uint8_t* out = static_cast<uint8_t*>(call.out) + c0;
  for (int64_t k = k0; k < k1; k += kP) {
    __m512i acc[kP][4];
    for (int i = 0; i < 4; ++i) {
      const __m512i start = _mm512_loadu_si512(corr + 16 * i);
      for (int p = 0; p < kP; ++p) acc[p][i] = start;
    }
    const int64_t off = k * step + c0;
    for (int64_t t = 0; t < taps; ++t) {
      __m512i x[kP];
      for (int p = 0; p < kP; ++p) x[p] = LoadX<kFull>(tap[t] + off + p * step, mask);
      const int8_t* w = wb + t * 4 * kDw512Block;
      for (int i = 0; i < 4; ++i) {
        __m512i wv = _mm512_loadu_si512(w + i * kDw512Block);
        if (kP > 1) __asm__("" : "+v"(wv));  // one load for the kP uses, not one folded each
        for (int p = 0; p < kP; ++p) acc[p][i] = _mm512_dpbusd_epi32(acc[p][i], x[p], wv);
      }
    }
    for (int p = 0; p < kP; ++p) {
      const int64_t index = index0 + (k + p) * c;
      if (kFused) {
        StoreQuint8(acc[p], m, b, lo, hi, order, mask, out + index);
      } else {
        StoreRow(call, acc[p][0], acc[p][1], acc[p][2], acc[p][3], c0, n, index);
      }
    }
  }
}

template <int kTaps, bool kFull, bool kFused>
QG_AVX512 void Pixels(const DwAvx512Call& call, const uint8_t* const* tap, int64_t step,
                      int64_t k0, int64_t k1, int64_t index0, int64_t blk) {
  constexpr int kP = 2;
  const int64_t whole = k0 + (k1 - k0) / kP * kP;
  if (whole > k0) Block<kTaps, kFull, kFused, kP>(call, tap, step, k0, whole, index0, blk);
  if (whole < k1) Block<kTaps, kFull, kFused, 1>(call, tap, step, whole, k1, index0, blk);
}

template <int kTaps, bool kFused>
QG_AVX512 void Run(const DwAvx512Call& call, const uint8_t* const* tap, int64_t step,
                   int64_t k0, int64_t k1, int64_t index0) {
  const int64_t full = call.c / kDw512Block;
  for (int64_t blk = 0; blk < full; ++blk)
    Pixels<kTaps, true, kFused>(call, tap, step, k0, k1, index0, blk);
  if (full < call.w->blocks) Pixels<kTaps, false, kFused>(call, tap, step, k0, k1, index0, full);
}

}  // namespace

void DwRunAvx512(const DwAvx512Call& call, const uint8_t* const* tap, int64_t step, int64_t k0,
                 int64_t k1, int64_t index0) {
  if (k1 <= k0) return;
  const bool fused = !call.m.empty();
  if (call.taps == 9) {  // 3x3: the tap loop unrolled
    fused ? Run<9, true>(call, tap, step, k0, k1, index0)
          : Run<9, false>(call, tap, step, k0, k1, index0);
  } else {
    fused ? Run<0, true>(call, tap, step, k0, k1, index0)
          : Run<0, false>(call, tap, step, k0, k1, index0);
  }
}

#undef QG_AVX512

}  // namespace qg
