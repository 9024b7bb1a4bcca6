// AVX-512 VNNI byte GEMM: vpdpbusd multiplies 4 raw u8 activations by 4 s8 weights and adds
// the four products to an int32 lane, 64 products per zmm, without an int16 step (so it is exact
// for any weights, unlike vpmaddubsw; the int32 sums wrap, and the true result fits int32).
//
// Tiles of ROWS (<= kMRV = 12) rows x NV zmm (NV = 2: 32 columns, two packed 16-column panels;
// NV = 1 for the last 16): 24 accumulators, 2 weight vectors and the broadcast row value fill
// 27 of the 32 zmm registers, and 24 independent vpdpbusd chains cover its latency (5 cycles)
// at two per cycle. Each step loads 2 weight vectors and 12 broadcast dwords for 24 vpdpbusd.
// GemmRowsVnniU8 runs them on im2col (or in-place) rows; GemmImplicitVnniU8 on rows read from
// a padded input, one K segment per filter row (the 12-row tiles MicroVnniU8Seg12x2 / 12x1).
// Compiled through function target attributes; chosen at run time (PackedB::byte_path).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "qg_gemm.h"

namespace qg {
namespace {

typedef int32_t __attribute__((may_alias, aligned(1))) i32_alias;

#define QG_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// c[ROWS][16 * NV] (row stride ldc) (+)= a[ROWS rows, stride lda] . panels b, b + bstride;
// without `accumulate` every row starts from init[0, 16 * NV).
using VnniKernel = void (*)(const uint8_t* a, int lda, const int8_t* b, size_t bstride,
                            int kquads, int32_t* c, int ldc, bool accumulate,
                            const int32_t* init);

template <int ROWS, int NV>
QG_VNNI void MicroVnniU8(const uint8_t* a, int lda, const int8_t* b, size_t bstride, int kquads,
                         int32_t* c, int ldc, bool accumulate, const int32_t* init) {
  __m512i acc[ROWS][NV];
  for (int v = 0; v < NV; ++v) {
    const __m512i start = _mm512_loadu_si512(init + 16 * v);
    for (int r = 0; r < ROWS; ++r)
      acc[r][v] = accumulate ? _mm512_loadu_si512(c + r * ldc + 16 * v) : start;
  }
  const i32_alias* rows[ROWS];
  for (int r = 0; r < ROWS; ++r) rows[r] = reinterpret_cast<const i32_alias*>(a + r * lda);
  for (int g = 0; g < kquads; ++g) {
    __m512i w[NV];
    for (int v = 0; v < NV; ++v) w[v] = _mm512_loadu_si512(b + v * bstride + 64 * g);
    for (int r = 0; r < ROWS; ++r) {
      const __m512i x = _mm512_set1_epi32(rows[r][g]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x, w[v]);
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < NV; ++v) _mm512_storeu_si512(c + r * ldc + 16 * v, acc[r][v]);
}

// The full 12 x 32 tile in assembly: the template above, compiled by GCC, keeps twelve row
// pointers, runs out of general registers and spills accumulators every step (~40% of the
// vpdpbusd ceiling, `make gemm-check`). Here the rows are addressed from two bases (rows 0-5
// and 6-11) with lda, 3 * lda and 5 * lda: 8 general registers, accumulators zmm0-23, weights
// zmm24-25, broadcast rows zmm26-27.
QG_VNNI void MicroVnniU8Tile12x2(const uint8_t* a, int lda, const int8_t* b, size_t bstride,
                                 int kquads, int32_t* c, int ldc, bool accumulate,
                                 const int32_t* init) {
  int32_t* crow[kMRV];
  const int32_t* start[kMRV];
  for (int r = 0; r < kMRV; ++r) {
    crow[r] = c + r * ldc;
    start[r] = accumulate ? crow[r] : init;
  }
  const int64_t ld = lda, ld3 = 3 * ld, ld5 = 5 * ld;
  const uint8_t* pa = a;
  const uint8_t* pb = a + 6 * ld;
  int64_t k = kquads;
#define QG_LOAD(r, z0, z1)                  \
  "movq " #r "*8(%[start]), %%rax\n\t"      \
  "vmovdqu32 (%%rax), %%zmm" #z0 "\n\t"     \
  "vmovdqu32 64(%%rax), %%zmm" #z1 "\n\t"
#define QG_STORE(r, z0, z1)                 \
  "movq " #r "*8(%[crow]), %%rax\n\t"       \
  "vmovdqu32 %%zmm" #z0 ", (%%rax)\n\t"     \
  "vmovdqu32 %%zmm" #z1 ", 64(%%rax)\n\t"
#define QG_ROW(addr, x, z0, z1)                  \
  "vpbroadcastd " addr ", %%zmm" #x "\n\t"       \
  "vpdpbusd %%zmm24, %%zmm" #x ", %%zmm" #z0 "\n\t" \
  "vpdpbusd %%zmm25, %%zmm" #x ", %%zmm" #z1 "\n\t"
#define QG_ALL_ROWS(X)                                                                      \
  X(0, 0, 1) X(1, 2, 3) X(2, 4, 5) X(3, 6, 7) X(4, 8, 9) X(5, 10, 11) X(6, 12, 13)          \
  X(7, 14, 15) X(8, 16, 17) X(9, 18, 19) X(10, 20, 21) X(11, 22, 23)
  __asm__ volatile(
      QG_ALL_ROWS(QG_LOAD)
      "testq %[k], %[k]\n\t"
      "jle 2f\n\t"
      "1:\n\t"
      "vmovdqu8 (%[b]), %%zmm24\n\t"
      "vmovdqu8 (%[b],%[bstride]), %%zmm25\n\t"
      QG_ROW("(%[pa])", 26, 0, 1)
      QG_ROW("(%[pa],%[ld])", 27, 2, 3)
      QG_ROW("(%[pa],%[ld],2)", 26, 4, 5)
      QG_ROW("(%[pa],%[ld3])", 27, 6, 7)
      QG_ROW("(%[pa],%[ld],4)", 26, 8, 9)
      QG_ROW("(%[pa],%[ld5])", 27, 10, 11)
      QG_ROW("(%[pb])", 26, 12, 13)
      QG_ROW("(%[pb],%[ld])", 27, 14, 15)
      QG_ROW("(%[pb],%[ld],2)", 26, 16, 17)
      QG_ROW("(%[pb],%[ld3])", 27, 18, 19)
      QG_ROW("(%[pb],%[ld],4)", 26, 20, 21)
      QG_ROW("(%[pb],%[ld5])", 27, 22, 23)
      "addq $4, %[pa]\n\t"
      "addq $4, %[pb]\n\t"
      "addq $64, %[b]\n\t"
      "decq %[k]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      QG_ALL_ROWS(QG_STORE)
      : [pa] "+r"(pa), [pb] "+r"(pb), [b] "+r"(b), [k] "+r"(k)
      : [ld] "r"(ld), [ld3] "r"(ld3), [ld5] "r"(ld5), [bstride] "r"(bstride),
        [start] "r"(start), [crow] "r"(crow)
      : "rax", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
        "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26",
        "xmm27");
#undef QG_ALL_ROWS
#undef QG_ROW
#undef QG_STORE
#undef QG_LOAD
}

// The implicit-GEMM tiles (GemmImplicitVnniU8): 12 rows x NV zmm over all of K in one call,
// K in nseg segments of seg_quads k-quads; segment s of row r starts at
// base + soff[s] + r * lda (one filter row of a stride-1 conv, read straight from the padded
// input). The accumulators stay in registers across the segments, so there is no C reload
// between filter rows (an earlier version called the 12 x 32 kernel once per segment and was
// no faster than im2col). The values used only at the start, between segments and at the end
// are memory operands: 9 general registers in the loop.
#define QG_SEG_LOAD(r, z0, z1)                \
  "movq %[startp], %%rax\n\t"                 \
  "movq " #r "*8(%%rax), %%rax\n\t"           \
  "vmovdqu32 (%%rax), %%zmm" #z0 "\n\t" QG_SEG_SECOND_LOAD(z1)
#define QG_SEG_STORE(r, z0, z1)               \
  "movq %[crowp], %%rax\n\t"                  \
  "movq " #r "*8(%%rax), %%rax\n\t"           \
  "vmovdqu32 %%zmm" #z0 ", (%%rax)\n\t" QG_SEG_SECOND_STORE(z1)
#define QG_SEG_ROW(addr, x, z0, z1)                   \
  "vpbroadcastd " addr ", %%zmm" #x "\n\t"            \
  "vpdpbusd %%zmm24, %%zmm" #x ", %%zmm" #z0 "\n\t" QG_SEG_SECOND_DP(x, z1)
#define QG_SEG_ALL_ROWS(X)                                                                  \
  X(0, 0, 1) X(1, 2, 3) X(2, 4, 5) X(3, 6, 7) X(4, 8, 9) X(5, 10, 11) X(6, 12, 13)          \
  X(7, 14, 15) X(8, 16, 17) X(9, 18, 19) X(10, 20, 21) X(11, 22, 23)
#define QG_SEG_BODY                                                                         \
  __asm__ volatile(                                                                         \
      QG_SEG_ALL_ROWS(QG_SEG_LOAD)                                                          \
      "3:\n\t"                                                                              \
      "movq %[sp], %%rax\n\t"                                                               \
      "movq (%%rax), %%rax\n\t"                                                             \
      "addq $8, %[sp]\n\t"                                                                  \
      "movq %[base], %[pa]\n\t"                                                             \
      "addq %%rax, %[pa]\n\t"                                                               \
      "leaq (%[pa],%[ld5]), %[pb]\n\t"                                                      \
      "addq %[ld], %[pb]\n\t"                                                               \
      "movq %[sq], %[k]\n\t"                                                                \
      "1:\n\t"                                                                              \
      "vmovdqu8 (%[b]), %%zmm24\n\t" QG_SEG_SECOND_B                                        \
      QG_SEG_ROW("(%[pa])", 26, 0, 1)                                                       \
      QG_SEG_ROW("(%[pa],%[ld])", 27, 2, 3)                                                 \
      QG_SEG_ROW("(%[pa],%[ld],2)", 26, 4, 5)                                               \
      QG_SEG_ROW("(%[pa],%[ld3])", 27, 6, 7)                                                \
      QG_SEG_ROW("(%[pa],%[ld],4)", 26, 8, 9)                                               \
      QG_SEG_ROW("(%[pa],%[ld5])", 27, 10, 11)                                              \
      QG_SEG_ROW("(%[pb])", 26, 12, 13)                                                     \
      QG_SEG_ROW("(%[pb],%[ld])", 27, 14, 15)                                               \
      QG_SEG_ROW("(%[pb],%[ld],2)", 26, 16, 17)                                             \
      QG_SEG_ROW("(%[pb],%[ld3])", 27, 18, 19)                                              \
      QG_SEG_ROW("(%[pb],%[ld],4)", 26, 20, 21)                                             \
      QG_SEG_ROW("(%[pb],%[ld5])", 27, 22, 23)                                              \
      "addq $4, %[pa]\n\t"                                                                  \
      "addq $4, %[pb]\n\t"                                                                  \
      "addq $64, %[b]\n\t"                                                                  \
      "decq %[k]\n\t"                                                                       \
      "jnz 1b\n\t"                                                                          \
      "decq %[ns]\n\t"                                                                      \
      "jnz 3b\n\t"                                                                          \
      QG_SEG_ALL_ROWS(QG_SEG_STORE)                                                         \
      : [pa] "=&r"(pa), [pb] "=&r"(pb), [b] "+r"(b), [k] "=&r"(k), [sp] "+m"(sp),          \
        [ns] "+m"(ns)                                                                       \
      : [ld] "r"(ld), [ld3] "r"(ld3), [ld5] "r"(ld5), [bstride] "r"(bstride),              \
        [base] "m"(base), [sq] "m"(sq), [startp] "m"(startp), [crowp] "m"(crowp)            \
      : "rax", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",      \
        "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",       \
        "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",    \
        "xmm25", "xmm26", "xmm27");

// c[12][16 * NV] (row stride ldc) = init + rows [0, 12) of the segmented A . panels b,
// b + bstride. seg_quads >= 1, nseg >= 1.
using VnniSegKernel = void (*)(const uint8_t* base, int64_t lda, const int64_t* soff,
                               int64_t nseg, int64_t seg_quads, const int8_t* b,
                               size_t bstride, int32_t* c, int ldc, const int32_t* init);

#define QG_SEG_PROLOGUE                                                     \
  int32_t* crow[kMRV];                                                      \
  const int32_t* start[kMRV];                                               \
  for (int r = 0; r < kMRV; ++r) {                                          \
    crow[r] = c + r * ldc;                                                  \
    start[r] = init;                                                        \
  }                                                                         \
  int32_t* const* crowp = crow;                                             \
  const int32_t* const* startp = start;                                     \
  const int64_t ld = lda, ld3 = 3 * ld, ld5 = 5 * ld;                       \
  const int64_t* sp = soff;                                                 \
  int64_t ns = nseg, sq = seg_quads, k;                                     \
  const uint8_t *pa, *pb;

#define QG_SEG_SECOND_LOAD(z1) "vmovdqu32 64(%%rax), %%zmm" #z1 "\n\t"
#define QG_SEG_SECOND_STORE(z1) "vmovdqu32 %%zmm" #z1 ", 64(%%rax)\n\t"
#define QG_SEG_SECOND_DP(x, z1) "vpdpbusd %%zmm25, %%zmm" #x ", %%zmm" #z1 "\n\t"
#define QG_SEG_SECOND_B "vmovdqu8 (%[b],%[bstride]), %%zmm25\n\t"
QG_VNNI void MicroVnniU8Seg12x2(const uint8_t* base, int64_t lda, const int64_t* soff,
                                int64_t nseg, int64_t seg_quads, const int8_t* b,
                                size_t bstride, int32_t* c, int ldc, const int32_t* init) {
  QG_SEG_PROLOGUE
  QG_SEG_BODY
}
#undef QG_SEG_SECOND_LOAD
#undef QG_SEG_SECOND_STORE
#undef QG_SEG_SECOND_DP
#undef QG_SEG_SECOND_B

// The last 16 columns (NV = 1): the second accumulator of each row is left alone.
#define QG_SEG_SECOND_LOAD(z1)
#define QG_SEG_SECOND_STORE(z1)
#define QG_SEG_SECOND_DP(x, z1)
#define QG_SEG_SECOND_B
QG_VNNI void MicroVnniU8Seg12x1(const uint8_t* base, int64_t lda, const int64_t* soff,
                                int64_t nseg, int64_t seg_quads, const int8_t* b,
                                size_t bstride, int32_t* c, int ldc, const int32_t* init) {
  QG_SEG_PROLOGUE
  QG_SEG_BODY
}
#undef QG_SEG_SECOND_LOAD
#undef QG_SEG_SECOND_STORE
#undef QG_SEG_SECOND_DP
#undef QG_SEG_SECOND_B
#undef QG_SEG_PROLOGUE
#undef QG_SEG_BODY
#undef QG_SEG_ALL_ROWS
#undef QG_SEG_ROW
#undef QG_SEG_STORE
#undef QG_SEG_LOAD

#define QG_KERNELS_FOR(NV)                                                                \
  {nullptr,              MicroVnniU8<1, NV>,  MicroVnniU8<2, NV>, MicroVnniU8<3, NV>,   \
   MicroVnniU8<4, NV>,   MicroVnniU8<5, NV>,  MicroVnniU8<6, NV>, MicroVnniU8<7, NV>,   \
   MicroVnniU8<8, NV>,   MicroVnniU8<9, NV>,  MicroVnniU8<10, NV>, MicroVnniU8<11, NV>, \
   NV == 2 ? MicroVnniU8Tile12x2 : MicroVnniU8<12, NV>}
// kKernels[NV - 1][rows]
const VnniKernel kKernels[2][kMRV + 1] = {QG_KERNELS_FOR(1), QG_KERNELS_FOR(2)};
#undef QG_KERNELS_FOR

// K blocks of about equal size, each at most kKCV bytes and a multiple of 4 (as KBlock in
// qg_gemm.cc, with a larger block: a 12 x 32 tile's loads and stores are paid once a block).
// 2048 rather than 512: one block for every K of Inception-v3 but its 8x8 3x3 (4032), 3-8%
// faster on its GEMM shapes (driver alone, CPU time, e.g. M=9600 K=576 N=96 326 -> 362 GMAC/s);
// the weights of a column pair (2048 x 32 bytes) then come from L2, as the rows do.
constexpr int kKCV = 2048;
int KBlockV(int k) {
  const int blocks = (k + kKCV - 1) / kKCV;
  const int per = (k + blocks - 1) / blocks;
  return (per + 3) / 4 * 4;
}

}  // namespace

void GemmRowsVnniU8(const PackedB& b, const int32_t* init, int64_t r0, int64_t r1, int n0,
                    int n1, const RowFillerU8& fill, const TileSink& sink, GemmWorkspace* ws,
                    int mb, const uint8_t* in_place, int64_t in_place_ld, KRange kr) {
  static_assert(kNR == 16, "one packed panel is one zmm of int32");
  const int Kq = b.Kq;
  const int ldc = (n1 - n0 + kNR - 1) / kNR * kNR;
  // Whole chunks of rows: rows of the packed panels never straddle two chunks.
  if (ws->a8.size() < static_cast<size_t>(mb + kMRV) * Kq)
    ws->a8.resize(static_cast<size_t>(mb + kMRV) * Kq);
  if (ws->c.size() < static_cast<size_t>(mb + kMRV) * ldc)
    ws->c.resize(static_cast<size_t>(mb + kMRV) * ldc);
  // In place (a 1x1 stride-1 conv, a MatMul): any count of rows is read where it lies, no
  // copy and no zero rows.
  const bool direct = in_place != nullptr && Kq == b.K;
  const int kc = KBlockV(kr.k1 - kr.k0);
  const size_t bstride = static_cast<size_t>(Kq) * kNR;
  uint8_t* a = ws->a8.data();
  int32_t* c = ws->c.data();
  for (int64_t rc = r0; rc < r1; rc += mb) {
    const int rows = static_cast<int>(std::min<int64_t>(mb, r1 - rc));
    const uint8_t* base;
    int lda;
    if (direct) {
      base = in_place + rc * in_place_ld;
      lda = static_cast<int>(in_place_ld);
    } else {
      base = a;
      lda = Kq;
      fill(rc, rows, a, Kq);  // one call for the chunk: its per-call set-up is not per panel
      ZeroRowTails(a, rows, b.K, Kq);
    }
    for (int kb = kr.k0; kb < kr.k1; kb += kc) {
      const int kquads = std::min(kc, kr.k1 - kb) / 4;
      for (int n = n0; n < n1;) {
        const int nv = n + 2 * kNR <= n0 + ldc ? 2 : 1;
        const int8_t* bp = b.panel8(n / kNR) + static_cast<size_t>(kb) * kNR;
        for (int i = 0; i < rows; i += kMRV) {
          const int count = std::min(kMRV, rows - i);
          kKernels[nv - 1][count](base + static_cast<size_t>(i) * lda + kb, lda, bp, bstride,
                                  kquads, c + static_cast<size_t>(i) * ldc + (n - n0), ldc,
                                  kb > kr.k0, init + (n - n0));
        }
        n += nv * kNR;
      }
    }
    sink(rc, rows, n0, n1, c, ldc);
  }
}

QG_VNNI void GemmImplicitVnniU8(const PackedB& b, int zero_point, const uint8_t* base,
                                int64_t ld, const int64_t* soff, int nseg, int rows, int n0,
                                int n1, GemmWorkspace* ws, const RowsDone& done,
                                const TileSegments* tile_segs) {
  static_assert(kNR == 16, "one packed panel is one zmm of int32");
  const int ldc = (n1 - n0 + kNR - 1) / kNR * kNR;
  const int tiles = (rows + kMRV - 1) / kMRV;
  if (ws->c.size() < static_cast<size_t>(tiles) * kMRV * ldc)
    ws->c.resize(static_cast<size_t>(tiles) * kMRV * ldc);
  const int32_t* init = ZeroPointInit(b, zero_point, n0, ldc, ws);
  int32_t* c = ws->c.data();
  const int64_t seg_quads = b.Kq / nseg / 4;
  const size_t bstride = static_cast<size_t>(b.Kq) * kNR;
  // Each tile's segments, and the starting sums of those that skip some (their own zero point
  // correction, over their segments only).
  thread_local std::vector<SliceSpan> segs;
  thread_local std::vector<const int32_t*> inits;
  thread_local AlignedVector<int32_t> own;
  segs.assign(tiles, SliceSpan{0, nseg});
  inits.assign(tiles, init);
  if (tile_segs != nullptr && b.slices == nseg) {
    own.resize(static_cast<size_t>(tiles) * ldc);
    for (int i = 0; i < tiles; ++i) {
      const SliceSpan r = (*tile_segs)(i);
      if (r.s0 >= r.s1 || (r.s0 == 0 && r.s1 == nseg)) continue;
      segs[i] = r;
      inits[i] = own.data() + static_cast<size_t>(i) * ldc;
      ZeroPointInitSlices(b, zero_point, n0, ldc, r.s0, r.s1, own.data() + i * ldc);
    }
  }
  // Column pairs outside, row tiles inside (as GemmRowsVnniU8): a column pair's weights stay
  // in L1 while the rows pass.
  for (int n = n0; n < n1;) {
    const int nv = n + 2 * kNR <= n0 + ldc ? 2 : 1;
    for (int i = 0; i < tiles; ++i) {
      const int s0 = segs[i].s0;
      (nv == 2 ? MicroVnniU8Seg12x2 : MicroVnniU8Seg12x1)(
          base + static_cast<int64_t>(i) * kMRV * ld, ld, soff + s0, segs[i].s1 - s0,
          seg_quads, b.panel8(n / kNR) + s0 * seg_quads * 64, bstride,
          c + static_cast<size_t>(i) * kMRV * ldc + (n - n0), ldc, inits[i] + (n - n0));
    }
    n += nv * kNR;
  }
  done(0, rows, c, ldc);
}

}  // namespace qg

