// AMX byte GEMM (Intel Sapphire Rapids and later): tdpbusd multiplies a 16 x 64 tile of u8
// activations by a 64 x 16 tile of s8 weights into 16 x 16 int32, 16,384 exact u8 x s8
// products an instruction (sums of four in int32, as vpdpbusd; the int32 sums wrap and the
// true result fits, kernels/OPS.md "Accumulator").
//
// All eight tiles are 16 rows x 64 bytes: C in tmm0-3 (a 32 x 32 block), A in tmm4-5 (two 16-row
// blocks of 64 k), B in tmm6-7 (two 16-column panels of 64 k). A B tile is 16 consecutive
// k-quad rows of a packed byte panel ([Kq/4][16][4], PackedB, Kq a multiple of 64 on this path),
// which is exactly the layout tdpbusd wants. C starts from the zero point's correction: a tile
// load with stride 0 repeats the init row in all 16 rows.
//
// Blocking: a C block runs over all of K in its four tiles and is stored once; row pairs are the
// outer loop and column pairs the inner one, so a row pair's A tiles come from L1 and only the
// B tiles stream from L2 (2 KB a step against four tdpbusd). With the panels and buffers on
// 64-byte boundaries (AlignedVector) this runs 1,100-1,500 GMAC/s on one core of the shared
// Xeon (build-local timing; the old K-blocked, column-pair-outer loop on malloc's 16-byte offset
// reached 370-910).
//
// Rows are read in place where they lie in memory (1x1 stride-1 convs, MatMul), whole 16-row
// blocks at a time, with K a multiple of 64 or, given the row count, wherever the 64-byte steps
// of a block stay inside the rows; otherwise (and for a last, partial block) they are copied
// into a buffer with the bytes [K, Kq) and the missing rows zeroed. GemmImplicitAmxU8 reads
// A at any per-step offsets (the implicit-GEMM convolution, qg_conv_kernels.cc).
// The tile configuration is loaded at each call (TF's threads also run oneDNN, which configures
// tiles its own way; its lazy configuration reads the current one back with sttilecfg and
// compares, so our change between its calls is seen) and released at the end. Compiled through function target attributes and
// chosen at run time (CpuSupports(kAmx) also asks Linux for the tile state).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "qg_gemm.h"

namespace qg {

bool AmxPermitted() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM
  constexpr long kXtileData = 18;         // XFEATURE_XTILEDATA
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
#else
  return false;
#endif
}

namespace {

#define QG_AMX __attribute__((target("amx-tile,amx-int8,avx512f")))

constexpr int kTileRows = 16;
constexpr int kTileK = 64;
constexpr int kTileBytes = kTileRows * kTileK;  // one B tile: 16 k-quads of a panel

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// The A tiles of a C block at step s: from row blocks laid out along K (a packed or in-place
// block, each with its own stride) ...
struct StridedA {
  const uint8_t* a0;
  int64_t lda0;
  const uint8_t* a1;
  int64_t lda1;
  const uint8_t* first(int s) const { return a0 + s * kTileK; }
  const uint8_t* second(int s) const { return a1 + s * kTileK; }
};

// ... or, for the implicit GEMM, at a0 + aoff[s] and a1 + aoff[s] with one stride.
struct OffsetA {
  const uint8_t* a0;
  int64_t lda0;
  const uint8_t* a1;
  int64_t lda1;
  const int64_t* aoff;
  const uint8_t* first(int s) const { return a0 + aoff[s]; }
  const uint8_t* second(int s) const { return a1 + aoff[s]; }
};

// One C block: (ROWS2 ? 32 : 16) rows x (COLS2 ? 32 : 16) columns over all of K (Kq / 64
// steps), from the init row (a tile load with stride 0 repeats it in all 16 rows) to c.
// a: the two 16-row blocks; b0, b1: the two panels. The A rows (32 x K) stay in L1 while the
// caller passes every column pair over them; the B tiles come from L2, 2 KB per step against
// 4 tdpbusd (64 cycles).
template <bool ROWS2, bool COLS2, class A>
QG_AMX void Block(const A& a, const int8_t* b0, const int8_t* b1, int steps,
                  const int32_t* init, int32_t* c, int64_t ldc_bytes) {
  _tile_loadd(0, init, 0);
  if (COLS2) _tile_loadd(1, init + 16, 0);
  if (ROWS2) _tile_loadd(2, init, 0);
  if (ROWS2 && COLS2) _tile_loadd(3, init + 16, 0);
  for (int s = 0; s < steps; ++s) {
    _tile_loadd(4, a.first(s), a.lda0);
    _tile_loadd(6, b0 + s * kTileBytes, kTileK);
    _tile_dpbusd(0, 4, 6);
    if (COLS2) {
      _tile_loadd(7, b1 + s * kTileBytes, kTileK);
      _tile_dpbusd(1, 4, 7);
    }
    if (ROWS2) {
      _tile_loadd(5, a.second(s), a.lda1);
      _tile_dpbusd(2, 5, 6);
      if (COLS2) _tile_dpbusd(3, 5, 7);
    }
  }
  const int64_t row16 = ldc_bytes / 4 * kTileRows;
  _tile_stored(0, c, ldc_bytes);
  if (COLS2) _tile_stored(1, c + 16, ldc_bytes);
  if (ROWS2) _tile_stored(2, c + row16, ldc_bytes);
  if (ROWS2 && COLS2) _tile_stored(3, c + row16 + 16, ldc_bytes);
}

// Block with the row and column pairs chosen at run time (tails of M and N).
template <class A>
QG_AMX void AnyBlock(bool rows2, bool cols2, const A& a, const int8_t* b0, const int8_t* b1,
                     int steps, const int32_t* init, int32_t* c, int64_t ldc_bytes) {
  if (rows2 && cols2) {
    Block<true, true>(a, b0, b1, steps, init, c, ldc_bytes);
  } else if (rows2) {
    Block<true, false>(a, b0, b1, steps, init, c, ldc_bytes);
  } else if (cols2) {
    Block<false, true>(a, b0, b1, steps, init, c, ldc_bytes);
  } else {
    Block<false, false>(a, b0, b1, steps, init, c, ldc_bytes);
  }
}

// Every tile 16 rows x 64 bytes (A, B and C alike).
QG_AMX void ConfigureTiles() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = kTileK;
    cfg.rows[t] = kTileRows;
  }
  _tile_loadconfig(&cfg);
}

}  // namespace

QG_AMX void GemmRowsAmxU8(const PackedB& b, const int32_t* init, int64_t r0, int64_t r1, int n0,
                          int n1, const RowFillerU8& fill, const TileSink& sink,
                          GemmWorkspace* ws, int mb, const uint8_t* in_place,
                          int64_t in_place_ld, int64_t in_place_rows) {
  static_assert(kNR == 16, "one packed panel is one tile's 16 columns");
  const int Kq = b.Kq;  // a multiple of kTileK
  const int steps = Kq / kTileK;
  const int ldc = (n1 - n0 + kNR - 1) / kNR * kNR;
  const int mb_tiles = (mb + kTileRows - 1) / kTileRows * kTileRows;
  if (ws->a8.size() < static_cast<size_t>(mb_tiles) * Kq)
    ws->a8.resize(static_cast<size_t>(mb_tiles) * Kq);
  if (ws->c.size() < static_cast<size_t>(mb_tiles) * ldc)
    ws->c.resize(static_cast<size_t>(mb_tiles) * ldc);
  // In place: a block's last row may read Kq - K bytes past its end (the next row's bytes,
  // times zero weights) where those still lie among the in_place_rows rows.
  const bool direct = in_place != nullptr && (Kq == b.K || in_place_rows > 0);
  const int64_t in_place_bytes = in_place_rows * in_place_ld;
  uint8_t* a = ws->a8.data();
  int32_t* c = ws->c.data();
  ConfigureTiles();
  const uint8_t* block_a[kMB / kTileRows + 1];
  int64_t block_lda[kMB / kTileRows + 1];
  const int64_t ldc_bytes = static_cast<int64_t>(ldc) * 4;
  const size_t panel_bytes = static_cast<size_t>(Kq) * kNR;
  for (int64_t rc = r0; rc < r1; rc += mb) {
    const int rows = static_cast<int>(std::min<int64_t>(mb, r1 - rc));
    const int blocks = (rows + kTileRows - 1) / kTileRows;
    for (int i = 0; i < blocks; ++i) {
      const int first = i * kTileRows, count = std::min(kTileRows, rows - first);
      if (direct && count == kTileRows &&
          (Kq == b.K || (rc + first + kTileRows - 1) * in_place_ld + Kq <= in_place_bytes)) {
        block_a[i] = in_place + (rc + first) * in_place_ld;
        block_lda[i] = in_place_ld;
        continue;
      }
      uint8_t* dst = a + static_cast<size_t>(first) * Kq;
      block_a[i] = dst;
      block_lda[i] = Kq;
      for (int j = 0; j < count; j += kMR) fill(rc + first + j, std::min(kMR, count - j),
                                                dst + static_cast<size_t>(j) * Kq, Kq);
      for (int j = 0; j < kTileRows; ++j) {
        if (j < count) {
          if (Kq != b.K) std::memset(dst + static_cast<size_t>(j) * Kq + b.K, 0, Kq - b.K);
        } else {
          std::memset(dst + static_cast<size_t>(j) * Kq, 0, Kq);
        }
      }
    }
    // Row pairs outside, column pairs inside: a row pair's 32 x K bytes are read from L1 by
    // every column pair; each C block runs over all of K in its tiles and is stored once.
    for (int i = 0; i < blocks; i += 2) {
      const bool rows2 = i + 1 < blocks;
      const uint8_t* a0 = block_a[i];
      const uint8_t* a1 = rows2 ? block_a[i + 1] : a0;
      const int64_t lda0 = block_lda[i], lda1 = rows2 ? block_lda[i + 1] : lda0;
      int32_t* crow = c + static_cast<size_t>(i) * kTileRows * ldc;
      for (int n = n0; n < n1; n += 2 * kNR) {
        const bool cols2 = n + 2 * kNR <= n0 + ldc;
        const int8_t* b0 = b.panel8(n / kNR);
        const int8_t* b1 = cols2 ? b0 + panel_bytes : b0;
        int32_t* ci = crow + (n - n0);
        const int32_t* in = init + (n - n0);
        AnyBlock(rows2, cols2, StridedA{a0, lda0, a1, lda1}, b0, b1, steps, in, ci, ldc_bytes);
      }
      // The row pair's epilogue while its C rows are still in L1 / L2.
      const int first = i * kTileRows;
      sink(rc + first, std::min(2 * kTileRows, rows - first), n0, n1, crow, ldc);
    }
  }
  _tile_release();
}

QG_AMX void GemmImplicitAmxU8(const PackedB& b, int zero_point, const uint8_t* base, int64_t ld,
                              const int64_t* aoff, int rows, int n0, int n1, GemmWorkspace* ws,
                              const RowsDone& done) {
  const int steps = b.Kq / kTileK;
  const int ldc = (n1 - n0 + kNR - 1) / kNR * kNR;
  const int blocks = (rows + kTileRows - 1) / kTileRows;
  if (ws->c.size() < static_cast<size_t>(blocks) * kTileRows * ldc)
    ws->c.resize(static_cast<size_t>(blocks) * kTileRows * ldc);
  const int32_t* init = ZeroPointInit(b, zero_point, n0, ldc, ws);
  int32_t* c = ws->c.data();
  ConfigureTiles();
  const int64_t ldc_bytes = static_cast<int64_t>(ldc) * 4;
  const size_t panel_bytes = static_cast<size_t>(b.Kq) * kNR;
  for (int i = 0; i < blocks; i += 2) {
    const bool rows2 = i + 1 < blocks;
    const uint8_t* a0 = base + static_cast<int64_t>(i) * kTileRows * ld;
    const uint8_t* a1 = a0 + kTileRows * ld;
    int32_t* crow = c + static_cast<size_t>(i) * kTileRows * ldc;
    for (int n = n0; n < n1; n += 2 * kNR) {
      const bool cols2 = n + 2 * kNR <= n0 + ldc;
      const int8_t* b0 = b.panel8(n / kNR);
      const int8_t* b1 = cols2 ? b0 + panel_bytes : b0;
      int32_t* ci = crow + (n - n0);
      const int32_t* in = init + (n - n0);
      AnyBlock(rows2, cols2, OffsetA{a0, ld, a1, ld, aoff}, b0, b1, steps, in, ci, ldc_bytes);
    }
    const int first = i * kTileRows;
    done(first, std::min(2 * kTileRows, rows - first), crow, ldc);
  }
  _tile_release();
}

}  // namespace qg
