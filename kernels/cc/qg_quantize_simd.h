// AVX-512 and AVX2 loops of QgQuantize (TF-free; qg_quantize_avx512.cc on the vnni and amx
// paths (qg::Avx512Path), qg_quantize_avx2.cc on the avx2 path). Identical to the portable
// QuantizeSpan in qg_quantize_kernels.cc: the same float32 division, clamp (NaN -> lo) and
// round half to even.
#ifndef QG_KERNELS_CC_QG_QUANTIZE_SIMD_H_
#define QG_KERNELS_CC_QG_QUANTIZE_SIMD_H_

#include <cstdint>

namespace qg {

// q = clamp(rint(x / scale), lo, hi) + zp, n elements.
void QuantizeSpanAvx512(const float* x, uint8_t* q, int64_t n, float scale, float lo, float hi,
                        int zp);
// The same on the avx2 path (qg_quantize_avx2.cc) for whole steps of 8: returns how many
// elements it did (n rounded down to 8).
int64_t QuantizeSpanAvx2(const float* x, uint8_t* q, int64_t n, float scale, float lo,
                         float hi, int zp);

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_QUANTIZE_SIMD_H_
