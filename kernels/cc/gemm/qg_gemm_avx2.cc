// AVX2 micro-kernel: int16 pairs, vpmaddwd + vpaddd. Compiled for AVX2 through function
// target attributes only, so the library still loads and runs on CPUs without it.
#include <immintrin.h>

#include "qg_gemm.h"

namespace qg {
namespace {
typedef int32_t __attribute__((may_alias, aligned(1))) i32_alias;
}

__attribute__((target("avx2"))) void MicroAvx2(const int16_t* a, int lda, const int16_t* b,
                                                int kpairs, int32_t* c, int ldc,
                                                bool accumulate) {
  static_assert(kMR == 6 && kNR == 16, "MicroAvx2 is written for a 6x16 tile");
  __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
#define QG_LOAD(r) \
  c##r##0 = _mm256_loadu_si256((const __m256i*)(c + r * ldc)); \
  c##r##1 = _mm256_loadu_si256((const __m256i*)(c + r * ldc + 8));
    QG_LOAD(0) QG_LOAD(1) QG_LOAD(2) QG_LOAD(3) QG_LOAD(4) QG_LOAD(5)
#undef QG_LOAD
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 =
        _mm256_setzero_si256();
  }
  const i32_alias* a0 = reinterpret_cast<const i32_alias*>(a);
  const i32_alias* a1 = reinterpret_cast<const i32_alias*>(a + lda);
  const i32_alias* a2 = reinterpret_cast<const i32_alias*>(a + 2 * lda);
  const i32_alias* a3 = reinterpret_cast<const i32_alias*>(a + 3 * lda);
  const i32_alias* a4 = reinterpret_cast<const i32_alias*>(a + 4 * lda);
  const i32_alias* a5 = reinterpret_cast<const i32_alias*>(a + 5 * lda);
  for (int k = 0; k < kpairs; ++k) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)(b + 32 * k));
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 32 * k + 16));
    __m256i x;
#define QG_ROW(r)                                                 \
  x = _mm256_set1_epi32(a##r[k]);                                 \
  c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(x, b0)); \
  c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(x, b1));
    QG_ROW(0) QG_ROW(1) QG_ROW(2) QG_ROW(3) QG_ROW(4) QG_ROW(5)
#undef QG_ROW
  }
#define QG_STORE(r)                                              \
  _mm256_storeu_si256((__m256i*)(c + r * ldc), c##r##0);         \
  _mm256_storeu_si256((__m256i*)(c + r * ldc + 8), c##r##1);
  QG_STORE(0) QG_STORE(1) QG_STORE(2) QG_STORE(3) QG_STORE(4) QG_STORE(5)
#undef QG_STORE
}

__attribute__((target("avx2"))) void MicroAvx2U8(const uint8_t* a, int lda, const int8_t* b,
                                                  int kquads, int32_t* c, int ldc,
                                                  bool accumulate, const int32_t* init) {
  static_assert(kMR == 6 && kNR == 16, "MicroAvx2U8 is written for a 6x16 tile");
  // Named accumulators (an array of them spilled several to the stack): 12 accumulators,
  // 2 weight vectors, the broadcast activations, one product and the ones make 17 values
  // for 16 ymm registers, so one of them still lives in L1 (measured: ~80 GMAC/s on one
  // core, near the ~83 of the instructions alone; `make gemm-check`).
  __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
#define QG_LOAD(r) \
  c##r##0 = _mm256_loadu_si256((const __m256i*)(c + r * ldc)); \
  c##r##1 = _mm256_loadu_si256((const __m256i*)(c + r * ldc + 8));
    QG_LOAD(0) QG_LOAD(1) QG_LOAD(2) QG_LOAD(3) QG_LOAD(4) QG_LOAD(5)
#undef QG_LOAD
  } else {
    c00 = c10 = c20 = c30 = c40 = c50 = _mm256_loadu_si256((const __m256i*)init);
    c01 = c11 = c21 = c31 = c41 = c51 = _mm256_loadu_si256((const __m256i*)(init + 8));
  }
  const __m256i ones = _mm256_set1_epi16(1);
  const i32_alias* a0 = reinterpret_cast<const i32_alias*>(a);
  const i32_alias* a1 = reinterpret_cast<const i32_alias*>(a + lda);
  const i32_alias* a2 = reinterpret_cast<const i32_alias*>(a + 2 * lda);
  const i32_alias* a3 = reinterpret_cast<const i32_alias*>(a + 3 * lda);
  const i32_alias* a4 = reinterpret_cast<const i32_alias*>(a + 4 * lda);
  const i32_alias* a5 = reinterpret_cast<const i32_alias*>(a + 5 * lda);
  for (int g = 0; g < kquads; ++g) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)(b + 64 * g));
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 64 * g + 32));
    __m256i x;
    // 4 activations of a row against 4 k of 16 columns; the int16 pair sums cannot saturate
    // because the weights were checked (PackedB::pairs_fit).
#define QG_ROW(r)                                                                          \
  x = _mm256_set1_epi32(a##r[g]);                                                          \
  c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones)); \
  c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones));
    QG_ROW(0) QG_ROW(1) QG_ROW(2) QG_ROW(3) QG_ROW(4) QG_ROW(5)
#undef QG_ROW
  }
#define QG_STORE(r)                                              \
  _mm256_storeu_si256((__m256i*)(c + r * ldc), c##r##0);         \
  _mm256_storeu_si256((__m256i*)(c + r * ldc + 8), c##r##1);
  QG_STORE(0) QG_STORE(1) QG_STORE(2) QG_STORE(3) QG_STORE(4) QG_STORE(5)
#undef QG_STORE
}

}  // namespace qg
