// The int8 GEMM core of the Qg op library: TF-free, so it can be built and tested alone.
//
// C[r, n] = sum_k A[r, k] * B[k, n] in int32, where A holds activations minus their zero point
// (int16 in [-255, 255]) and B qint8 weights (widened to int16). Every product and every sum of
// two products fits int32, so the result is exact; see kernels/OPS.md ("Accumulator").
//
// Four paths, picked at run time:
//   amx      AMX tiles (Sapphire Rapids and later): tdpbusd, 16 x 16 int32 tiles over 64 u8 x s8
//            k at a time, the same byte panels padded to whole 64-k tiles (qg_gemm_amx.cc)
//   vnni     AVX-512 VNNI vpdpbusd on raw u8 activations x s8 weights (four products summed
//            straight into int32: exact for any weights), 512-bit vectors (qg_gemm_vnni_u8.cc)
//   avx2     vpmaddubsw byte kernel where the weight pairs cannot saturate its int16 sums
//            (PackedB::pairs_fit), else vpmaddwd + vpaddd on int16 pairs
//   portable plain C++ on int16 pairs
// (MicroVnni, vpdpwssd on int16 pairs, is kept for gemm-check's comparison only.)
// QG_CPU_PATH=amx|vnni|avx2|portable forces one; forcing one this CPU lacks is an error reported by
// PathError() (the ops refuse to run), never an illegal instruction.
#ifndef QG_KERNELS_CC_GEMM_QG_GEMM_H_
#define QG_KERNELS_CC_GEMM_QG_GEMM_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <vector>

namespace qg {

// Storage on 64-byte (cache line) boundaries. std::vector's default comes from malloc, whose
// large blocks start 16 bytes into a page: every 64-byte weight row of a packed panel and every
// AMX tile row then straddles two cache lines, which halved the AMX kernel's speed (a 2 x 2
// tile block over L2-resident panels: ~2,000 GMAC/s aligned, ~800 at offset 16; build/exp).
template <typename T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAligned() = default;
  template <typename U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const CacheAligned<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheAligned<U>&) const { return false; }
};
template <typename T>
using AlignedVector = std::vector<T, CacheAligned<T>>;

constexpr int kMR = 6;    // rows per micro-kernel call
constexpr int kNR = 16;   // columns per micro-kernel call (one packed B panel)
constexpr int kMB = 96;   // at most this many rows packed together (a multiple of kMR)
constexpr int kKC = 256;  // K block kept in L1 (even), int16 kernels
// K block of the AVX2 byte kernel: 1024 bytes, A's chunk then lives in L2 and each 6x16 tile's
// C loads and stores are paid 4x less often than at 256 (Inception-v3's convs op by op,
// tools/bench_conv_ops.py on the avx2 path: 0.91x -> 0.93-0.94x of oneDNN's CPU time, 512
// 0.92x, 2048 0.93x).
constexpr int kKCU8 = 1024;

enum class CpuPath { kPortable = 0, kAvx2 = 1, kVnni = 2, kAmx = 3 };

// The AVX-512 paths (vnni, amx): they share the AVX-512 epilogue and element loops.
inline bool Avx512Path(CpuPath path) { return path == CpuPath::kVnni || path == CpuPath::kAmx; }

// The path every kernel uses (chosen once, at library load).
CpuPath SelectedPath();
const char* PathName(CpuPath path);
// Non-empty when QG_CPU_PATH is invalid or names a path this CPU cannot run.
const std::string& PathError();
bool CpuSupports(CpuPath path);

// acc (or +=) C[kMR][kNR] (row stride ldc) = A[kMR rows, stride lda int16] . B panel,
// over kpairs pairs of k. B panel layout: [kpairs][kNR][2] int16.
using MicroKernel = void (*)(const int16_t* a, int lda, const int16_t* b, int kpairs,
                             int32_t* c, int ldc, bool accumulate);
MicroKernel MicroKernelFor(CpuPath path);

void MicroPortable(const int16_t* a, int lda, const int16_t* b, int kpairs, int32_t* c,
                   int ldc, bool accumulate);
void MicroAvx2(const int16_t* a, int lda, const int16_t* b, int kpairs, int32_t* c, int ldc,
               bool accumulate);
void MicroVnni(const int16_t* a, int lda, const int16_t* b, int kpairs, int32_t* c, int ldc,
               bool accumulate);

// Weights packed for the micro-kernels: panels of kNR columns, each [Kp/2][kNR][2] int16,
// zero-padded to Kp (K rounded up to even) and Np (N rounded up to kNR).
//
// The weights are also packed as bytes, panels [Kq/4][kNR][4] (Kq = K rounded up to 4; one
// 64-byte row is one zmm of vpdpbusd, or two ymm of the AVX2 byte kernel), with the column
// sums that take the zero point out afterwards, for `byte_path`:
//   amx   where K rounded up to 64 (Kq: whole tiles; a B tile is 16 k-quads of a panel) pads
//         at most a quarter of it, else the vnni packing (small K runs faster there);
//   vnni  always (vpdpbusd sums four u8 x s8 products in int32: no saturation);
//   avx2  where every pair of weights vpmaddubsw adds in int16 (k = 2m, 2m + 1 of one column)
//         has |w[2m]| + |w[2m+1]| <= 128 or opposite signs (|a0 w0 + a1 w1| <= 255 * 128
//         fits int16), i.e. pairs_fit;
//   portable: no bytes (the int16 kernels run).
struct PackedB {
  int K = 0, N = 0, Kp = 0, Np = 0;
  std::vector<int16_t> data;
  const int16_t* panel(int p) const { return data.data() + static_cast<size_t>(p) * Kp * kNR; }

  bool pairs_fit = false;
  CpuPath byte_path = CpuPath::kPortable;
  int Kq = 0;
  AlignedVector<int8_t> data8;
  std::vector<int32_t> colsum;
  const int8_t* panel8(int p) const { return data8.data() + static_cast<size_t>(p) * Kq * kNR; }

  // K as `slices` equal slices (a conv's filter rows, K / slices bytes each) with the column
  // sums of each, slice_colsum[s * Np + n] (SliceColumnSums): the byte kernels can then run
  // over slices [s0, s1) only, skipping a conv's filter rows that lie wholly in the padding
  // above or below the input (GemmRowsU8, GemmImplicitVnniU8). 0: not computed.
  int slices = 0;
  std::vector<int32_t> slice_colsum;
};

// Fills out->slices and out->slice_colsum from the same b, K, N, ldb as PackB; K % slices == 0.
void SliceColumnSums(const int8_t* b, int K, int N, int ldb, int slices, PackedB* out);

// Bytes [k0, k1) of K.
struct KRange {
  int k0 = 0, k1 = 0;
};
// Slices [s0, s1) of K (a conv's filter rows, or its taps along one axis).
struct SliceSpan {
  int s0 = 0, s1 = 0;
};
// Zeroes bytes [k, kq) of `rows` packed rows of kq bytes each: an im2col row's padding to
// whole k-quads (at most 3 bytes), where the weights are 0, so any byte would do; zeroed so no
// stale bytes are read. Single stores: GCC turned the byte loop back into a memset call per row
// (6% of Inception-v3's stem conv on vnni).
inline void ZeroRowTails(uint8_t* a, int rows, int k, int kq) {
  const int pad = kq - k;
  if (pad <= 0) return;
  if (pad > 3) {
    for (int i = 0; i < rows; ++i) std::memset(a + static_cast<size_t>(i) * kq + k, 0, pad);
    return;
  }
  for (int i = 0; i < rows; ++i) {
    uint8_t* p = a + static_cast<size_t>(i) * kq + k;
    p[0] = 0;
    if (pad > 1) p[1] = 0;
    if (pad > 2) p[2] = 0;
  }
}

// K range of slices [s0, s1): [s0 * K / slices, s1 * K / slices), the end rounded up to Kq
// where it is K (whole k-quads); s0 = s1 = 0: all of K.
KRange SliceRange(const PackedB& b, int s0, int s1);

// C[kMR][kNR] (+)= raw u8 activations A[kMR rows, stride lda bytes] . byte panel, kquads
// groups of 4 k. AVX2 vpmaddubsw + vpmaddwd(1) + vpaddd; exact only when pairs_fit. Without
// `accumulate` the sums start from init[0, kNR) (the zero point's correction) in every row.
// The first pf_lines k-quads also prefetch one 64-byte line each from pf.
void MicroAvx2U8(const uint8_t* a, int lda, const int8_t* b, int kquads, int32_t* c, int ldc,
                 bool accumulate, const int32_t* init, const int8_t* pf = nullptr,
                 int pf_lines = 0);

// The u8 kernels run where the weights were packed as bytes (b.byte_path).
bool UseU8(const PackedB& b);

// b[k * ldb + n], k < K, n < N; bytes packed for `path`'s byte kernel where it is exact.
void PackB(const int8_t* b, int K, int N, int ldb, PackedB* out, CpuPath path);
inline void PackB(const int8_t* b, int K, int N, int ldb, PackedB* out) {
  PackB(b, K, N, ldb, out, SelectedPath());
}

// Writes row r of A (K values, activation - zero point) into dst[0, K); dst has Kp entries and
// the caller zeroes dst[K] when K is odd.
using RowFiller = std::function<void(int64_t r, int16_t* dst)>;
// Receives rows [r0, r0 + rows) x columns [n0, n1) of C; c[i * ldc + (n - n0)].
using TileSink =
    std::function<void(int64_t r0, int rows, int n0, int n1, const int32_t* c, int ldc)>;

// Buffers of one worker, reused across GemmRows calls.
struct GemmWorkspace {
  std::vector<int16_t> a;
  AlignedVector<uint8_t> a8;
  AlignedVector<int32_t> c;
  std::vector<int32_t> init;
};

// C for rows [r0, r1) (any count) and columns [n0, n1) (n0 a multiple of kNR), in chunks of
// mb rows (a multiple of kMR, <= kMB): fill packs them, the micro-kernel multiplies, sink gets
// each finished chunk.
void GemmRows(const PackedB& b, int64_t r0, int64_t r1, int n0, int n1, const RowFiller& fill,
              const TileSink& sink, MicroKernel micro, GemmWorkspace* ws, int mb);

// The same with raw u8 activation rows (fill writes K bytes a row: the activations, zero_point
// where the window is padding); the zero point is taken out with the column sums. Where the
// rows already lie in memory as the GEMM reads them (a 1x1 stride-1 conv, a MatMul: row r at
// in_place + r * in_place_ld) and K is a multiple of 4, pass in_place: whole panels of kMR rows
// are read there without a copy.
// The filler writes `count` consecutive rows from r, row i at dst + i * ld (one call per panel
// of kMR rows: a call per row costs as much as copying a short row, e.g. the 27 bytes of a
// 3x3 conv on RGB).
using RowFillerU8 = std::function<void(int64_t r, int count, uint8_t* dst, int ld)>;
// The byte kernels' starting accumulators for columns [n0, n0 + ldc), -zero_point * column
// sum (the zero point taken out of sum a * w), written to ws->init; returns ws->init.data().
const int32_t* ZeroPointInit(const PackedB& b, int zero_point, int n0, int ldc,
                             GemmWorkspace* ws);
// The same over K slices [s0, s1) only (b.slice_colsum), into init[0, ldc).
void ZeroPointInitSlices(const PackedB& b, int zero_point, int n0, int ldc, int s0, int s1,
                         int32_t* init);
// Runs the kernel of b.byte_path (AVX2 vpmaddubsw, or GemmRowsVnniU8 below). in_place_rows:
// how many rows lie at in_place (0: unknown); the AMX driver then reads whole 64-byte steps of
// rows in place even where K is not a multiple of 64 (the bytes past a row, the next row's,
// meet zero weights), as long as they stay inside those rows.
// s0 < s1: only K slices [s0, s1) (b.slices; avx2 and vnni byte paths, each slice a whole
// number of k-quads): the rows' bytes outside them are not read.
void GemmRowsU8(const PackedB& b, int zero_point, int64_t r0, int64_t r1, int n0, int n1,
                const RowFillerU8& fill, const TileSink& sink, GemmWorkspace* ws, int mb,
                const uint8_t* in_place = nullptr, int64_t in_place_ld = 0,
                int64_t in_place_rows = 0, int s0 = 0, int s1 = 0);
// The AMX driver (qg_gemm_amx.cc): 32 x 32 blocks of four int32 tiles, K in steps of 64.
void GemmRowsAmxU8(const PackedB& b, const int32_t* init, int64_t r0, int64_t r1, int n0,
                   int n1, const RowFillerU8& fill, const TileSink& sink, GemmWorkspace* ws,
                   int mb, const uint8_t* in_place, int64_t in_place_ld,
                   int64_t in_place_rows = 0);
// Implicit GEMM on AMX (a stride-1 convolution read straight from a padded copy of its input,
// qg_conv_kernels.cc): row r's k-step s (64 bytes) lies at base + r * ld + aoff[s], s <
// b.Kq / 64 (b packed for AMX). Computes rows [0, rows) rounded up to a multiple of 16 (the
// caller keeps those bytes readable; their sums are not used) x columns [n0, n1), 32 rows at
// a time: done(first, count, c, ldc) gets rows [first, first + count) (count <= 32, only rows
// < rows), c[i * ldc + (n - n0)], while they are still in cache. zero_point: as in GemmRowsU8
// (taken out with the column sums).
using RowsDone = std::function<void(int first, int count, const int32_t* c, int ldc)>;
void GemmImplicitAmxU8(const PackedB& b, int zero_point, const uint8_t* base, int64_t ld,
                       const int64_t* aoff, int rows, int n0, int n1, GemmWorkspace* ws,
                       const RowsDone& done);
// The same on AVX-512 VNNI (qg_gemm_vnni_u8.cc), b packed for vnni with K = nseg equal
// segments (each a multiple of 4 bytes): row r's segment s lies at base + r * ld + soff[s].
// Rows [0, rows) rounded up to a multiple of kMRV are computed (the caller keeps those bytes
// readable); done gets all rows [0, rows) at the end. With tile_segs (b.slices == nseg), tile
// i (rows [i * kMRV, (i + 1) * kMRV)) runs over segments [tile_segs(i).s0, .s1) only.
using TileSegments = std::function<SliceSpan(int tile)>;
void GemmImplicitVnniU8(const PackedB& b, int zero_point, const uint8_t* base, int64_t ld,
                        const int64_t* soff, int nseg, int rows, int n0, int n1,
                        GemmWorkspace* ws, const RowsDone& done,
                        const TileSegments* tile_segs = nullptr);
// Asks Linux for the AMX tile state (arch_prctl); false where it is refused or not Linux.
bool AmxPermitted();
// The AVX-512 VNNI driver (qg_gemm_vnni_u8.cc): tiles of up to kMRV rows x 32 columns.
constexpr int kMRV = 12;
void GemmRowsVnniU8(const PackedB& b, const int32_t* init, int64_t r0, int64_t r1, int n0,
                    int n1, const RowFillerU8& fill, const TileSink& sink, GemmWorkspace* ws,
                    int mb, const uint8_t* in_place, int64_t in_place_ld, KRange kr);

// Rounds to the nearest integer, ties to even (the default FP rounding mode), for |v| < 2^22:
// the callers clamp first. Plain float adds, so it vectorizes and is exact (no -ffast-math).
inline float RoundHalfEven(float v) {
  const float magic = 12582912.0f;  // 1.5 * 2^23
  return (v + magic) - magic;
}

// clamp(v, lo, hi) with NaN -> lo. Comparisons (maxps / minps semantics) rather than
// std::fmax / std::fmin, which are library calls here and keep loops scalar.
inline float ClampNanLow(float v, float lo, float hi) {
  v = v > lo ? v : lo;
  return v < hi ? v : hi;
}

}  // namespace qg

#endif  // QG_KERNELS_CC_GEMM_QG_GEMM_H_
