// AVX2 micro-kernel: int16 pairs, vpmaddwd + vpaddd. Compiled for AVX2 through function
// target attributes only, so the library still loads and runs on CPUs without it.
#include <immintrin.h>

#include "qg_gemm.h"

#ifndef QG_PF_HINT
#define QG_PF_HINT _MM_HINT_T0
#endif

namespace qg {
namespace {
typedef int32_t __attribute__((may_alias, aligned(1))) i32_alias;
}

// Both micro-kernels keep their 6x16 int32 tile in twelve named registers c<row><half> (an
// array of them spilled several to the stack) and read 4 bytes of each of the 6 activation
// rows a<row> per step. QG_ROWS(X) applies X to the row numbers.
#define QG_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define QG_TILE_LOAD(r)                                          \
  c##r##0 = _mm256_loadu_si256((const __m256i*)(c + r * ldc));   \
  c##r##1 = _mm256_loadu_si256((const __m256i*)(c + r * ldc + 8));
#define QG_TILE_STORE(r)                                 \
  _mm256_storeu_si256((__m256i*)(c + r * ldc), c##r##0); \
  _mm256_storeu_si256((__m256i*)(c + r * ldc + 8), c##r##1);
#define QG_ROW_POINTER(r) const i32_alias* a##r = reinterpret_cast<const i32_alias*>(a + r * lda);

__attribute__((target("avx2"))) void MicroAvx2(const int16_t* a, int lda, const int16_t* b,
                                                int kpairs, int32_t* c, int ldc,
                                                bool accumulate) {
  static_assert(kMR == 6 && kNR == 16, "MicroAvx2 is written for a 6x16 tile");
  __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
    QG_ROWS(QG_TILE_LOAD)
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 =
        _mm256_setzero_si256();
  }
  QG_ROWS(QG_ROW_POINTER)
  for (int k = 0; k < kpairs; ++k) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)(b + 32 * k));
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 32 * k + 16));
    __m256i x;
#define QG_ROW(r)                                                 \
  x = _mm256_set1_epi32(a##r[k]);                                 \
  c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(x, b0)); \
  c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(x, b1));
    QG_ROWS(QG_ROW)
#undef QG_ROW
  }
  QG_ROWS(QG_TILE_STORE)
}

__attribute__((target("avx2"))) void MicroAvx2U8(const uint8_t* a, int lda, const int8_t* b,
                                                  int kquads, int32_t* c, int ldc,
                                                  bool accumulate, const int32_t* init,
                                                  const int8_t* pf, int pf_lines) {
  static_assert(kMR == 6 && kNR == 16, "MicroAvx2U8 is written for a 6x16 tile");
  // 12 accumulators, 2 weight vectors, the broadcast activations, one product and the ones
  // make 17 values for 16 ymm registers, so one of them still lives in L1 (measured: ~80
  // GMAC/s on one core, near the ~83 of the instructions alone; `make gemm-check`).
  __m256i c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (accumulate) {
    QG_ROWS(QG_TILE_LOAD)
  } else {
    c00 = c10 = c20 = c30 = c40 = c50 = _mm256_loadu_si256((const __m256i*)init);
    c01 = c11 = c21 = c31 = c41 = c51 = _mm256_loadu_si256((const __m256i*)(init + 8));
  }
  const __m256i ones = _mm256_set1_epi16(1);
  QG_ROWS(QG_ROW_POINTER)
  // 4 activations of a row against 4 k of 16 columns; the int16 pair sums cannot saturate
  // because the weights were checked (PackedB::pairs_fit).
#define QG_ROW(r)                                                                          \
  x = _mm256_set1_epi32(a##r[g]);                                                          \
  c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones)); \
  c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones));
#define QG_STEP                                                          \
  const __m256i b0 = _mm256_loadu_si256((const __m256i*)(b + 64 * g));      \
  const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 64 * g + 32)); \
  __m256i x;                                                             \
  QG_ROWS(QG_ROW)
  // The first pf_lines steps also fetch a 64-byte line of the weights the driver multiplies
  // next (see GemmRowsU8).
  int g = 0;
  for (; g < pf_lines; ++g) {
    _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * g), QG_PF_HINT);
    QG_STEP
  }
  for (; g < kquads; ++g) {
    QG_STEP
  }
#undef QG_STEP
#undef QG_ROW
  QG_ROWS(QG_TILE_STORE)
}

#undef QG_ROW_POINTER
#undef QG_TILE_STORE
#undef QG_TILE_LOAD
#undef QG_ROWS

}  // namespace qg
