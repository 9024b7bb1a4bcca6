// AVX-512 VNNI micro-kernel: vpdpwssd multiplies int16 pairs and accumulates into int32 in one
// instruction (exact: no saturation, unlike vpdpwssds). One zmm holds a whole 16-column panel
// row. Compiled through function target attributes; selected only where the CPU has VNNI.
#include <immintrin.h>

#include "qg_gemm.h"

namespace qg {
namespace {
typedef int32_t __attribute__((may_alias, aligned(2))) i32_alias;
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void MicroVnni(
    const int16_t* a, int lda, const int16_t* b, int kpairs, int32_t* c, int ldc,
    bool accumulate) {
  static_assert(kMR == 6 && kNR == 16, "MicroVnni is written for a 6x16 tile");
  __m512i acc[kMR];
  for (int r = 0; r < kMR; ++r)
    acc[r] = accumulate ? _mm512_loadu_si512(c + r * ldc) : _mm512_setzero_si512();
  const i32_alias* rows[kMR];
  for (int r = 0; r < kMR; ++r) rows[r] = reinterpret_cast<const i32_alias*>(a + r * lda);
  for (int k = 0; k < kpairs; ++k) {
    const __m512i bk = _mm512_loadu_si512(b + 32 * k);
    for (int r = 0; r < kMR; ++r)
      acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_set1_epi32(rows[r][k]), bk);
  }
  for (int r = 0; r < kMR; ++r) _mm512_storeu_si512(c + r * ldc, acc[r]);
}

}  // namespace qg
