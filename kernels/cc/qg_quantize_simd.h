// AVX-512 loop of QgQuantize (TF-free; qg_quantize_avx512.cc), called only on the vnni path
// and amx paths (qg::Avx512Path). Identical to the portable QuantizeSpan in
// qg_quantize_kernels.cc: the same float32 division, clamp (NaN -> lo) and round half to even.
#ifndef QG_KERNELS_CC_QG_QUANTIZE_SIMD_H_
#define QG_KERNELS_CC_QG_QUANTIZE_SIMD_H_

#include <cstdint>

namespace qg {

// q = clamp(rint(x / scale), lo, hi) + zp, n elements.
void QuantizeSpanAvx512(const float* x, uint8_t* q, int64_t n, float scale, float lo, float hi,
                        int zp);

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_QUANTIZE_SIMD_H_
