// CPU kernels of QgQuantizedConv2D and QgQuantizedMatMul (the int8 GEMM core, gemm/), each with
// the fused epilogue of kernels/OPS.md (QgQuantizedDepthwiseConv2D: qg_depthwise_kernels.cc).
#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "qg_common.h"
#include "qg_fused_base.h"
#include "qg_parallel.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/types.h"

namespace qg {
namespace {

using ::tensorflow::DT_FLOAT;
using ::tensorflow::DT_QUINT8;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

// memcpy for the short spans of an im2col row (9 bytes for a 3x3 conv on RGB), where the
// library call costs more than the copy: 8-byte moves, which the compiler inlines.
inline void CopyBytes(void* dst, const void* src, size_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  if (n >= 64) {
    std::memcpy(d, s, n);
    return;
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(d + i, s + i, 8);
  for (; i < n; ++i) d[i] = s[i];
}

// One W-byte move (W = 16 or 32) as a single vector load and store.
template <int W>
__attribute__((target("avx2"), always_inline)) inline void MoveBytes(uint8_t* dst,
                                                                    const uint8_t* src) {
  if (W == 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
  } else {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
  }
}

// `count` im2col rows of windows whose kh rows are short (span <= W bytes, W = 16 or 32: 9
// bytes for a 3x3 conv on RGB, the stem; 21 for ResNet's 7x7 one) and inside the input:
// window k's row i at src + k * step + i * row_step, GEMM row k at dst + k * ld, then
// `rows_after` more rows of the filler's call. Each window row is one W-byte move where the
// input has W bytes there (before src_end) and the call's rows have room: the bytes written
// past a window row are overwritten by the next window row or GEMM row, or are the row's
// padding to Kq, which meets zero weights. Locals only: through references, every byte store
// made the loop reload the geometry (the 9-byte copies of the generic filler were half of the
// stem's time).
// Compiled for AVX2 (the byte paths' fillers only run where it is) and not inlined into the
// generic-ISA filler: one 32-byte move a window row, where GCC's memcpy of 32 bytes was two
// 16-byte ones (ResNet-50's 7x7/2 stem, b8 on vnni: 2.36 -> 2.29 ms with the target alone).
// Windows whose every row can take the wide move (all but the last of a call and the input's
// last bytes) run without per-row checks.
template <int W>
__attribute__((target("avx2"), noinline)) void CopyShortWindows(
    const uint8_t* src, int64_t step, int64_t row_step, int64_t kh, int64_t span, int count,
    int rows_after, uint8_t* dst, int64_t ld, const uint8_t* src_end) {
  const int64_t need = (kh - 1) * span + W;  // bytes a window's wide moves write
  for (int k = 0; k < count; ++k, src += step, dst += ld) {
    const int64_t room = static_cast<int64_t>(count - k + rows_after) * ld;
    const bool wide = src + (kh - 1) * row_step + W <= src_end;
    if (wide && need <= room) {
      const uint8_t* s = src;
      uint8_t* d = dst;
      for (int64_t i = 0; i < kh; ++i, s += row_step, d += span) MoveBytes<W>(d, s);
      continue;
    }
    for (int64_t i = 0; i < kh; ++i) {
      if (wide && i * span + W <= room) {
        MoveBytes<W>(dst + i * span, src + i * row_step);
      } else {
        CopyBytes(dst + i * span, src + i * row_step, span);
      }
    }
  }
}

// How ParallelGemm and ConvImplicit divide rows x column panels: as if into one part per
// thread, tr row ranges of rows_per rows x tc column ranges of panels_per panels (the work
// units, RunUnits, are chunks of those rows x those column ranges).
struct GemmParts {
  int tr = 1, tc = 1;
  int64_t rows_per = 0;
  int panels_per = 0;
};

// tc is chosen to make a thread's share cheapest: its multiplies (rows padded to `align`) plus
// the bytes it streams, its rows of A (K each, copied by the filler) and its panels of B (16K
// each, which a row split makes every thread read in full). A byte counts as 8 multiply-adds:
// with the weights in L3 the AVX2 kernel ran 78 GMAC/s instead of 97 (2048 x 2048 weights, 49
// rows); few rows and many weights (ResNet-50's last stage at batch 1) then split columns.
// A part gets at least kMinPartMacs multiply-adds (~10 µs on AVX2): a smaller GEMM runs on
// the calling thread alone. panel_step: column ranges of whole pairs of panels where there are
// enough (the AMX and VNNI tiles are 32 columns wide).
constexpr double kMinPartMacs = 1 << 20;
GemmParts PartitionGemm(int64_t rows, int panels, int64_t K, int threads, int align,
                        int panel_step = 1) {
  const double all_macs = static_cast<double>(rows) * panels * kNR * K;
  if (all_macs < threads * kMinPartMacs)
    threads = static_cast<int>(std::max(1.0, all_macs / kMinPartMacs));
  GemmParts best;
  double best_cost = -1;
  for (int tc = 1; tc <= threads; ++tc) {
    if (threads % tc != 0 || tc > panels) continue;
    const int tr = threads / tc;
    const int64_t per = (rows + tr - 1) / tr;
    const int64_t rows_per = (per + align - 1) / align * align;
    int panels_per = (panels + tc - 1) / tc;
    if (panels_per < panels) panels_per = (panels_per + panel_step - 1) / panel_step * panel_step;
    const double macs = static_cast<double>(rows_per) * panels_per * kNR * K;
    const double bytes = static_cast<double>(K) * (rows_per + panels_per * kNR);
    const double cost = macs + 8 * bytes;
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best.tc = tc;
      best.rows_per = rows_per;
      best.panels_per = panels_per;
    }
  }
  best.tr = static_cast<int>((rows + best.rows_per - 1) / best.rows_per);
  best.tc = (panels + best.panels_per - 1) / best.panels_per;
  return best;
}

// The multiply-adds a GEMM work unit should have at least (ParallelGemm), ~3 µs on VNNI.
constexpr double kMinUnitMacs = 1 << 20;

// Rows [r0, r1) of the GEMM that run over K slices [s0, s1) only (s0 = s1 = 0: all of K).
struct RowBlock {
  int64_t r0, r1;
  int s0, s1;
};

// Rows x N of the GEMM over TF's CPU worker pool, one part (PartitionGemm) per thread, each
// part's rows in chunks of at most kMB (the packed rows stay in L2, each K block of them streams
// past an L1-resident weight panel). With `blocks` (covering [0, rows) in order), chunks do not
// cross blocks and run over their block's K slices.
void ParallelGemm(OpKernelContext* ctx, const PackedB& b, int64_t rows, int zero_point,
                  const RowFiller& fill, const RowFillerU8& fill8, const TileSink& sink,
                  const uint8_t* in_place = nullptr, int64_t in_place_ld = 0,
                  const std::vector<RowBlock>* blocks = nullptr) {
  const int threads = ctx->device()->tensorflow_cpu_worker_threads()->workers->NumThreads();
  const bool u8 = UseU8(b);
  // Whole micro-kernel panels: kMR rows, 16-row tiles on AMX (64 rows on 2 threads: 2 x 32,
  // two full tiles each, not 2 x 36 with a third tile of 4 rows), 12-row tiles on VNNI (a
  // chunk of 90 rows ran 7 tiles of 12 and one of 6 through the slower template kernel).
  const int align = !u8                              ? kMR
                    : b.byte_path == CpuPath::kAmx  ? 16
                    : b.byte_path == CpuPath::kVnni ? kMRV
                                                    : kMR;
  const int panels = b.Np / kNR;
  const GemmParts parts = PartitionGemm(rows, panels, u8 ? b.Kq : b.Kp, threads, align,
                                        Avx512Path(b.byte_path) ? 2 : 1);
  // Chunks of equal size within a part (289 rows: 4 x 78, not 3 x 96 + 1), so a thread's
  // share is whole chunks.
  const int64_t chunks = (parts.rows_per + kMB - 1) / kMB;
  const int64_t per_chunk = (parts.rows_per + chunks - 1) / chunks;
  const int mb = static_cast<int>(std::min<int64_t>(kMB, (per_chunk + align - 1) / align * align));
  std::vector<RowBlock> chunk_list;
  if (blocks != nullptr) {
    for (const RowBlock& blk : *blocks) {
      const int64_t n = blk.r1 - blk.r0, pieces = (n + mb - 1) / mb;
      const int64_t per = ((n + pieces - 1) / pieces + align - 1) / align * align;
      for (int64_t r = blk.r0; r < blk.r1; r += per)
        chunk_list.push_back({r, std::min(blk.r1, r + per), blk.s0, blk.s1});
    }
  }
  // Without blocks, a unit is `group` consecutive chunks where a chunk is little work (the
  // stem conv, K = 27: 96 rows are ~80k multiply-adds, and per-unit costs were ~20% of it),
  // keeping at least 4 units a thread.
  int64_t group = 1;
  if (blocks == nullptr) {
    const double chunk_macs = static_cast<double>(mb) * (u8 ? b.Kq : b.Kp) * parts.panels_per * kNR;
    const int64_t chunks_all = (rows + mb - 1) / mb;
    const int tasks = parts.tr * parts.tc;
    group = std::max<int64_t>(1, std::min<int64_t>(static_cast<int64_t>(kMinUnitMacs / chunk_macs),
                                                   chunks_all * parts.tc / (4 * tasks)));
  }
  const int64_t unit_rows = group * mb;
  const int64_t row_chunks = blocks != nullptr ? static_cast<int64_t>(chunk_list.size())
                                               : (rows + unit_rows - 1) / unit_rows;
  const MicroKernel micro = MicroKernelFor(SelectedPath());
  RunUnits(ctx, row_chunks * parts.tc, parts.tr * parts.tc, [&](int64_t u) {
    // One workspace per thread, kept between ops: allocating it per op cost page faults.
    thread_local GemmWorkspace ws;
    const int64_t rc = u / parts.tc;
    const RowBlock chunk =
        blocks != nullptr ? chunk_list[rc]
                          : RowBlock{rc * unit_rows, std::min(rows, (rc + 1) * unit_rows), 0, 0};
    const int64_t r0 = chunk.r0, r1 = chunk.r1;
    const int cs = static_cast<int>(u % parts.tc);
    const int n0 = cs * parts.panels_per * kNR;
    const int n1 = std::min(b.N, (cs + 1) * parts.panels_per * kNR);
    if (u8) {
      GemmRowsU8(b, zero_point, r0, r1, n0, n1, fill8, sink, &ws, mb, in_place, in_place_ld,
                 in_place != nullptr ? rows : 0, chunk.s0, chunk.s1);
    } else {
      GemmRows(b, r0, r1, n0, n1, fill, sink, micro, &ws, mb);
    }
  });
}

// Rows (or columns) of the int16 kernel's padded copy of the input: the input with its leading
// padding, or as far as the last window reaches if that is further.
int64_t PaddedExtent(int64_t in, int64_t pad, int64_t out, int stride, int64_t k, int dilation) {
  return std::max(in + pad, (out - 1) * stride + (k - 1) * dilation + 1);
}

// Whether the int16 kernel's padded copy of the input would be more than 4x the input (plus
// 1 MiB): dilated windows under SAME padding can ask for padding of about 2^31 pixels.
bool PaddedTooLarge(const ConvGeometry& g) {
  const int64_t hp = PaddedExtent(g.h, g.ph, g.oh, g.sh, g.kh, g.dh);
  const int64_t wp = PaddedExtent(g.w, g.pw, g.ow, g.sw, g.kw, g.dw);
  const int64_t limit = 4 * g.n * g.h * g.w * g.c + (int64_t{1} << 20);
  // Divisions instead of products, which could overflow.
  return hp > limit || wp > limit / hp || g.n * g.c > limit / (hp * wp);
}

// The taps [s0, s1) along one axis of a window starting at output position o whose input
// positions lie inside the input (the others read only padding: zero_point, whose products the
// column sums take out again): size, pad, stride, taps and dilation of that axis.
SliceSpan ValidTaps(int64_t o, int64_t size, int64_t pad, int64_t stride, int64_t taps,
                    int64_t dilation) {
  SliceSpan r;
  const int64_t first = o * stride - pad;  // input position of tap 0
  const int64_t lo = first >= 0 ? 0 : (-first + dilation - 1) / dilation;
  const int64_t hi = size - 1 - first >= 0 ? (size - 1 - first) / dilation + 1 : 0;
  r.s0 = static_cast<int>(std::min<int64_t>(lo, taps));
  r.s1 = static_cast<int>(std::max<int64_t>(r.s0, std::min<int64_t>(hi, taps)));
  return r;
}
SliceSpan ValidFilterRows(const ConvGeometry& g, int64_t oy) {
  return ValidTaps(oy, g.h, g.ph, g.sh, g.kh, g.dh);
}

// Whether an im2col conv trims along its columns (a 1 x k filter: Inception-v3's 1x7 and 1x3,
// whose taps outside the input lie left and right) rather than its rows.
bool TrimColumns(const ConvGeometry& g) { return g.kh == 1 && g.kw > 1 && g.pw > 0; }

// Where an im2col conv on the avx2 and vnni byte paths skips the taps that see only padding:
// what oneDNN's direct conv skips (a 7x1 conv on 17x17 multiplies 10% padding, a 3x3 on 8x8 8%
// vertically). The output "lines" (rows oy; columns ox where TrimColumns) near the borders run
// over their valid filter rows (columns) only. Its GEMM rows then go line by line across the
// batch, r = (line * n + b) * length + position along the line, so that the lines of one kind
// in all images form one block (8 images of 17x17: blocks of 136 rows, not 17 rows each padded
// to whole micro-kernel panels). Only where it pays after that rounding. False: no trimming
// (AMX, no padding along the axis, slices that are not whole k-quads).
bool TrimmedRowBlocks(const ConvGeometry& g, const PackedB& b, bool columns,
                      std::vector<RowBlock>* blocks) {
  const int64_t taps = columns ? g.kw : g.kh;
  const int64_t lines = columns ? g.ow : g.oh, length = g.n * (columns ? g.oh : g.ow);
  if (taps < 2 || b.slices != taps || (b.K / b.slices) % 4 != 0 ||
      (b.byte_path != CpuPath::kAvx2 && b.byte_path != CpuPath::kVnni))
    return false;
  const int64_t align = b.byte_path == CpuPath::kVnni ? kMRV : kMR;
  std::vector<SliceSpan> ranges(lines);
  for (int64_t o = 0; o < lines; ++o) {
    SliceSpan r = columns ? ValidTaps(o, g.w, g.pw, g.sw, g.kw, g.dw) : ValidFilterRows(g, o);
    if (r.s0 >= r.s1) r = SliceSpan{0, static_cast<int>(taps)};  // all padding: run as is
    ranges[o] = r;
  }
  double gain = 0;
  for (int64_t o = 0; o < lines;) {
    int64_t end = o + 1;
    while (end < lines && ranges[end].s0 == ranges[o].s0 && ranges[end].s1 == ranges[o].s1)
      ++end;
    const int64_t kept = ranges[o].s1 - ranges[o].s0, rows = (end - o) * length;
    const int64_t junk = (rows + align - 1) / align * align - rows;
    if (kept < taps) gain += static_cast<double>(rows * (taps - kept) - junk * kept);
    const bool full = kept == taps;
    blocks->push_back({o * length, end * length, full ? 0 : ranges[o].s0,
                       full ? 0 : ranges[o].s1});
    o = end;
  }
  if (gain <= 0) blocks->clear();
  return gain > 0;
}

// The GEMM kernels (conv, MatMul): FusedBase plus their packed [K, N] weights.
class GemmBase : public FusedBase {
 public:
  explicit GemmBase(OpKernelConstruction* ctx) : FusedBase(ctx) {}

 protected:
  // slices > 1: also the column sums of K's `slices` equal slices (a conv's filter rows).
  std::shared_ptr<const PackedB> PackedWeights(const Tensor& weights, int K, int N,
                                               int slices = 1) {
    return cache_.Get(weights, {K, N, slices}, fused_.constant_weights,
                      [K, N, slices](const int8_t* b, PackedB* out) {
                        PackB(b, K, N, N, out);
                        if (slices > 1) SliceColumnSums(b, K, N, N, slices, out);
                      });
  }

  // The weights of a conv run as an implicit GEMM (ConvImplicit): each filter row's kw * C
  // taps (contiguous in [kh, kw, C, N]) padded with zero weights to spanq (a multiple of 64
  // for AMX tiles, of 4 for VNNI's k-quads), packed for `path`: K = kh * spanq.
  std::shared_ptr<const PackedB> PackedWeightsImplicit(const Tensor& weights, int64_t kh,
                                                       int64_t span, int64_t spanq, int N,
                                                       CpuPath path) {
    WeightCache<PackedB>& cache = path == CpuPath::kAmx ? implicit_cache_ : implicit_vnni_cache_;
    return cache.Get(
        weights, {kh, span, spanq, N}, fused_.constant_weights,
        [kh, span, spanq, N, path](const int8_t* b, PackedB* out) {
          std::vector<int8_t> padded(static_cast<size_t>(kh * spanq) * N, 0);
          for (int64_t i = 0; i < kh; ++i)
            std::memcpy(padded.data() + i * spanq * N, b + i * span * N, span * N);
          PackB(padded.data(), static_cast<int>(kh * spanq), N, N, out, path);
          if (kh > 1)
            SliceColumnSums(padded.data(), static_cast<int>(kh * spanq), N, N,
                            static_cast<int>(kh), out);
        });
  }

 private:
  WeightCache<PackedB> cache_;
  WeightCache<PackedB> implicit_cache_;
  WeightCache<PackedB> implicit_vnni_cache_;
};

// The implicit GEMM may do at most this much more multiply work than the im2col GEMM (the
// junk columns of the padded width, each filter row's taps padded to 64 bytes on AMX, to 4 on
// VNNI): copying the windows costs about a sixth to a half of the GEMM on the AMX path (perf,
// Inception-v3).
constexpr double kImplicitMaxWork = 1.3;
// On VNNI the copy weighs less against the slower GEMM: single ops at batch 8 (CPU ms, im2col
// vs implicit; /tmp-style runs noted in docs/profile.md) 3x3 149x149x32->32 9.5 vs 6.1-7.3,
// 147x147x32->64 16.1 vs 12.6-13.2, 35x35 and 7x1 shapes within noise, but 3x3 and 1x3 on
// 8x8 (25% junk columns) 3.1 vs 3.5-4.0 and 1.0 vs 1.0-1.3: so a lower limit.
constexpr double kImplicitMaxWorkVnni = 1.12;

// QG_CONV_IMPLICIT=0 turns the implicit GEMM off (im2col everywhere), for comparisons; a value
// above 1 replaces the path's limit.
double ImplicitMaxWork(CpuPath path) {
  static const double env_limit = [] {
    const char* env = std::getenv("QG_CONV_IMPLICIT");
    if (env == nullptr || env[0] == '\0') return -1.0;
    const double v = std::atof(env);
    return v == 0 ? 0.0 : v > 1 ? v : -1.0;
  }();
  if (env_limit >= 0) return env_limit;
  return path == CpuPath::kAmx ? kImplicitMaxWork : kImplicitMaxWorkVnni;
}

// A stride-1 convolution without im2col, on AMX or AVX-512 VNNI: a band of the input's rows is
// copied with its padding (zero_point) around it, rows of wp = ow + kw - 1 pixels, and output
// pixel (oy, ox) becomes "virtual row" v = oy * wp + ox (oy counted from the band's first),
// whose window row i is the kw * c contiguous bytes at (v + i * wp) * c. So the A rows of a
// tile of consecutive virtual rows are one strided read (row stride c) per filter row,
// straight from that copy: an AMX tile load per 64-byte step, or VNNI broadcasts k-quad by
// k-quad.
// Rows with ox >= ow (across the right padding) are computed and thrown away; bytes read past
// a span meet zero weights. The caller checks that it applies (stride 1, no dilation, weights
// packed for b.byte_path by PackedWeightsImplicit, a padded copy of moderate size).
void ConvImplicit(OpKernelContext* ctx, const ConvGeometry& g, const PackedB& b,
                  const uint8_t* x, int zp, const Epilogue& epi, void* out) {
  const bool amx = b.byte_path == CpuPath::kAmx;
  const int tile = amx ? 16 : kMRV;  // rows a tile computes (the last one partly junk)
  const int64_t c = g.c, spanq = b.Kq / g.kh;
  const int64_t wp = g.ow + g.kw - 1;
  const int64_t cout = b.N;
  // AMX: the offset of each 64-byte K step from a row's first byte; VNNI: of each filter row.
  std::vector<int64_t> aoff;
  if (amx) {
    aoff.resize(b.Kq / 64);
    for (size_t s = 0; s < aoff.size(); ++s) {
      const int64_t per = spanq / 64;
      const int64_t i = static_cast<int64_t>(s) / per, q = static_cast<int64_t>(s) % per;
      aoff[s] = i * wp * c + q * 64;
    }
  } else {
    for (int64_t i = 0; i < g.kh; ++i) aoff.push_back(i * wp * c);
  }
  const int threads = ctx->device()->tensorflow_cpu_worker_threads()->workers->NumThreads();
  const uint8_t fill_byte = static_cast<uint8_t>(zp);
  const int64_t left = std::min<int64_t>(g.pw, wp);
  const int64_t cols = std::max<int64_t>(0, std::min<int64_t>(g.w, wp - left));
  // Work units: bands of output rows of one image x the column ranges of PartitionGemm. A unit
  // copies its band's padded input rows (band + kh - 1 of them) into a buffer of its thread and
  // multiplies them there, in chunks of up to 6 AMX tiles or 8 VNNI tiles (96 virtual rows):
  // the rows stay in that core's L2. (A padded copy of the whole input, made first, was 5.7 MB
  // for Inception-v3's 147x147x32 at batch 8, written by both cores and read back across them:
  // the copy alone took 4-9% of the conv.) Bands of about kBandRows virtual rows, fewer where
  // that leaves under 4 units a thread.
  constexpr int64_t kBandRows = 768;
  const GemmParts parts =
      PartitionGemm(g.n * g.oh * wp, b.Np / kNR, b.Kq, threads, tile, 2);
  const int pps = parts.panels_per;
  int64_t band = std::max<int64_t>(1, std::min<int64_t>(g.oh, kBandRows / wp));
  const int64_t want = (4 * threads + parts.tc - 1) / parts.tc;  // bands over all images
  if (g.n * ((g.oh + band - 1) / band) < want)
    band = std::max<int64_t>(1, g.oh * g.n / want);
  const int64_t bands = (g.oh + band - 1) / band;
  const int64_t chunk_rows = 96 / tile * tile;
  // A band's buffer, with slack after it for the junk rows of its last tile: they end at most
  // 2 * tile virtual rows and a padded span past the band.
  const int64_t slack = (2 * tile + g.kw) * c + spanq + 128;
  // Tiles near the top and bottom skip the filter rows that see only padding (VNNI; AMX runs
  // whole 64-byte K steps).
  const bool trim = !amx && g.kh > 1 && b.slices == g.kh &&
                    (ValidFilterRows(g, 0).s0 > 0 || ValidFilterRows(g, g.oh - 1).s1 < g.kh);
  RunUnits(ctx, g.n * bands * parts.tc, parts.tr * parts.tc, [&](int64_t u) {
    thread_local GemmWorkspace ws;
    thread_local AlignedVector<uint8_t> buf;
    const int cs = static_cast<int>(u % parts.tc);
    const int64_t t = u / parts.tc, bi = t / bands, oy0 = (t % bands) * band;
    const int64_t oy1 = std::min(g.oh, oy0 + band);
    const int n0 = cs * pps * kNR;
    const int n1 = static_cast<int>(std::min<int64_t>(cout, (cs + 1) * pps * kNR));
    // Padded rows [oy0, oy1 + kh - 1) of image bi (stride 1: output row oy's window starts at
    // padded row oy).
    const int64_t prows = oy1 - oy0 + g.kh - 1;
    if (buf.size() < static_cast<size_t>(prows * wp * c + slack))
      buf.resize(static_cast<size_t>(prows * wp * c + slack));
    uint8_t* xp = buf.data();
    for (int64_t pr = 0; pr < prows; ++pr) {
      const int64_t y = oy0 + pr - g.ph;
      uint8_t* dst = xp + pr * wp * c;
      if (y < 0 || y >= g.h) {
        std::memset(dst, fill_byte, wp * c);
        continue;
      }
      std::memset(dst, fill_byte, left * c);
      std::memcpy(dst + left * c, x + ((bi * g.h + y) * g.w) * c, cols * c);
      std::memset(dst + (left + cols) * c, fill_byte, (wp - left - cols) * c);
    }
    std::memset(xp + prows * wp * c, 0, slack);
    const int64_t V = (oy1 - oy0) * wp;  // the band's virtual rows
    for (int64_t v0 = 0; v0 < V; v0 += chunk_rows) {
      const int64_t v1 = std::min(V, v0 + chunk_rows);
      const uint8_t* base = xp + v0 * c;
      // Each finished run of rows: its virtual rows inside the output (ox < ow), run by run.
      auto done = [&](int first, int count, const int32_t* acc, int ldc) {
        const int64_t w0 = v0 + first, w1 = std::min(v1, w0 + count);
        for (int64_t v = w0; v < w1;) {
          const int64_t oy = v / wp, ox = v % wp;
          if (ox >= g.ow) {
            v = (oy + 1) * wp;
            continue;
          }
          const int64_t end = std::min(w1, oy * wp + g.ow);
          const int64_t r = (bi * g.oh + oy0 + oy) * g.ow + ox;
          epi.Rows(acc + (v - w0) * ldc, ldc, static_cast<int>(end - v), n0, n1, r * cout,
                   cout, out);
          v = end;
        }
      };
      if (amx) {
        GemmImplicitAmxU8(b, zp, base, c, aoff.data(), static_cast<int>(v1 - v0), n0, n1, &ws,
                          done);
        continue;
      }
      // Tile i's virtual rows span output rows oy_a..oy_b: the filter rows valid for any of
      // them (ValidFilterRows; padding rows of the copy hold zero_point, so the union is
      // exact). Only for chunks that reach a row with padding taps.
      const int64_t oy_first = oy0 + v0 / wp, oy_last = oy0 + (v1 - 1) / wp;
      const bool border = trim && (ValidFilterRows(g, oy_first).s0 > 0 ||
                                   ValidFilterRows(g, std::min(g.oh - 1, oy_last + 1)).s1 < g.kh);
      const TileSegments segs = [&](int i) {
        const int64_t va = v0 + static_cast<int64_t>(i) * kMRV;
        const int64_t oya = std::min<int64_t>(g.oh - 1, oy0 + va / wp);
        const int64_t oyb = std::min<int64_t>(g.oh - 1, oy0 + (va + kMRV - 1) / wp);
        return SliceSpan{ValidFilterRows(g, oyb).s0, ValidFilterRows(g, oya).s1};
      };
      GemmImplicitVnniU8(b, zp, base, c, aoff.data(), static_cast<int>(g.kh),
                         static_cast<int>(v1 - v0), n0, n1, &ws, done,
                         border ? &segs : nullptr);
    }
  });
}

class QgQuantizedConv2DOp : public GemmBase {
 public:
  explicit QgQuantizedConv2DOp(OpKernelConstruction* ctx) : GemmBase(ctx), attrs_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    ConvGeometry g;
    if (!attrs_.Geometry(ctx, &g)) return;
    const Tensor& f = ctx->input(1);
    const int64_t cout = f.dim_size(3);
    FusedArgs args;
    if (!Prepare(ctx, cout, TensorShape({g.n, g.oh, g.ow, cout}), "min_input", "max_input",
                 "filter_scale", &args)) {
      return;
    }
    const int64_t rows = g.n * g.oh * g.ow;
    if (rows == 0 || cout == 0) return;
    // kh * kw <= kMaxReduction (Geometry), so this product cannot overflow.
    const int64_t K64 = g.kh * g.kw * g.c;
    OP_REQUIRES_OK(ctx, CheckReduction(type_string(), "filter taps x input channels", K64));
    if (K64 == 0) {  // no input channels: every accumulator is 0
      std::vector<int32_t> zeros(cout, 0);
      void* out = OutData(args);
      for (int64_t r = 0; r < rows; ++r)
        args.epi.Row(zeros.data(), 0, static_cast<int>(cout), r * cout, out);
      return;
    }
    const int K = static_cast<int>(K64);
    const CpuPath path = SelectedPath();
    // On VNNI a k x 1 filter runs faster as im2col, whose rows are then kh plain copies and
    // whose border rows skip their padding taps in blocks across the batch (Inception-v3's 7x1
    // on 17x17x192 at batch 8: 0.87x of oneDNN implicit, 0.95x im2col).
    if (Avx512Path(path) && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
        g.kh * g.kw > 1 && (path == CpuPath::kAmx || g.kw > 1)) {
      const bool amx = path == CpuPath::kAmx;
      const int64_t step = amx ? 64 : 4;  // K granule: an AMX tile's 64 bytes, a k-quad
      const int64_t span = g.kw * g.c, spanq = (span + step - 1) / step * step;
      const int64_t wp = g.ow + g.kw - 1, hp = g.oh + g.kh - 1;
      const double work = static_cast<double>(g.kh * spanq) * wp /
                          (static_cast<double>((K64 + step - 1) / step * step) * g.ow);
      // The padded copy may not dwarf the input (as PaddedTooLarge).
      const bool fits = hp * wp <= 4 * g.h * g.w + (int64_t{1} << 20) / std::max<int64_t>(1, g.c);
      if (work <= ImplicitMaxWork(path) && fits) {
        auto packed = PackedWeightsImplicit(f, g.kh, span, spanq, static_cast<int>(cout), path);
        if (packed->byte_path == path) {
          ConvImplicit(ctx, g, *packed, reinterpret_cast<const uint8_t*>(
                                            ctx->input(0).tensor_data().data()),
                       args.in.zero_point, args.epi, OutData(args));
          return;
        }
      }
    }
    auto packed = PackedWeights(f, K, static_cast<int>(cout),
                                static_cast<int>(TrimColumns(g) ? g.kw : g.kh));
    const uint8_t* x = reinterpret_cast<const uint8_t*>(ctx->input(0).tensor_data().data());
    const int zp = args.in.zero_point;
    const bool u8 = UseU8(*packed);
    RowFiller fill;
    RowFillerU8 fill8;
    std::vector<int16_t> padded;
    const uint8_t* in_place = nullptr;  // A's rows already in memory: a 1x1 stride-1 conv
    if (g.kh == 1 && g.kw == 1) {
      if (g.sh == 1 && g.sw == 1) in_place = x;
      // 1x1 (any stride, never padded): a row of A is one input pixel.
      auto pixel = [&g, x](int64_t r) {
        const int64_t ox = r % g.ow, t = r / g.ow, oy = t % g.oh, b = t / g.oh;
        return x + ((b * g.h + oy * g.sh) * g.w + ox * g.sw) * g.c;
      };
      fill = [&, pixel](int64_t r, int16_t* dst) {
        WidenU8(pixel(r), static_cast<int>(g.c), zp, dst);
      };
      fill8 = [&, pixel](int64_t r, int count, uint8_t* dst, int ld) {
        for (int i = 0; i < count; ++i) std::memcpy(dst + i * ld, pixel(r + i), g.c);
      };
    } else if (u8) {
      // Windows straight from the input: inside it, kh (or kh * kw, when dilated) plain
      // copies; across its border, taps outside are real 0 (zero_point). No padded copy of
      // the input, whose memset and copy cost as much as filling the rows.
      const int64_t c = g.c, span = g.kw * c, row_stride = g.w * c;
      const int64_t y_last = (g.kh - 1) * g.dh, x_last = (g.kw - 1) * g.dw;
      const uint8_t fill_byte = static_cast<uint8_t>(zp);
      auto window = [&g, x, c, span, row_stride, y_last, x_last, fill_byte](
                        int64_t b, int64_t oy, int64_t ox, uint8_t* dst) {
        const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
        const uint8_t* image = x + b * g.h * row_stride;
        if (y0 >= 0 && y0 + y_last < g.h && x0 >= 0 && x0 + x_last < g.w) {
          const uint8_t* base = image + y0 * row_stride + x0 * c;
          for (int64_t i = 0; i < g.kh; ++i) {
            const uint8_t* src = base + i * g.dh * row_stride;
            if (g.dw == 1) {
              CopyBytes(dst + i * span, src, span);
            } else {
              for (int64_t j = 0; j < g.kw; ++j)
                CopyBytes(dst + i * span + j * c, src + j * g.dw * c, c);
            }
          }
          return;
        }
        if (g.dw == 1) {
          // Across the border, undilated along the row: each filter row is at most three
          // moves (zero_point left of the input, the taps inside in one copy, zero_point right)
          // instead of one call per tap (ResNet-50's 7x7/2 stem on RGB: 49 3-byte calls per
          // border window, 7% of its windows, about as long as all its interior windows).
          const int64_t j0 = std::min<int64_t>(g.kw, std::max<int64_t>(0, -x0));
          const int64_t j1 = std::max<int64_t>(j0, std::min<int64_t>(g.kw, g.w - x0));
          for (int64_t i = 0; i < g.kh; ++i) {
            uint8_t* row = dst + i * span;
            const int64_t y = y0 + i * g.dh;
            if (y < 0 || y >= g.h || j0 == j1) {
              std::memset(row, fill_byte, span);
              continue;
            }
            if (j0 > 0) std::memset(row, fill_byte, j0 * c);
            CopyBytes(row + j0 * c, image + (y * g.w + x0 + j0) * c, (j1 - j0) * c);
            if (j1 < g.kw) std::memset(row + j1 * c, fill_byte, (g.kw - j1) * c);
          }
          return;
        }
        // Captures by value: the byte stores may alias anything, so what they read through a
        // reference would be reloaded after every store.
        ForEachTap(
            g, b, oy, ox,
            [dst, x, c](int64_t tap, int64_t pixel) {
              CopyBytes(dst + tap * c, x + pixel * c, c);
            },
            [dst, c, fill_byte](int64_t tap) { std::memset(dst + tap * c, fill_byte, c); });
      };
      // Output columns [ox_lo, ox_hi) have windows inside the input horizontally.
      const int64_t ox_lo = std::min(g.ow, (g.pw + g.sw - 1) / g.sw);
      const int64_t ox_hi = std::max(
          ox_lo, std::min(g.ow, g.w - 1 - x_last + g.pw >= 0
                                    ? (g.w - 1 - x_last + g.pw) / g.sw + 1 : 0));
      const bool short_rows = g.dw == 1 && span <= 32;
      const uint8_t* x_end = x + g.n * g.h * row_stride;
      // A run of rows: one division for its first pixel, then steps (divisions per row cost
      // as much as copying a 27-byte window); runs of short interior windows in one output row
      // go to CopyShortWindows.
      // (Everything declared in this block by value: the filler runs after the block ends.)
      fill8 = [&g, x, window, c, span, row_stride, y_last, ox_lo, ox_hi, short_rows, x_end](
                  int64_t r, int count, uint8_t* dst, int ld) {
        int64_t ox = r % g.ow, t = r / g.ow, oy = t % g.oh, b = t / g.oh;
        for (int i = 0; i < count;) {
          const int64_t y0 = oy * g.sh - g.ph;
          if (short_rows && ox >= ox_lo && ox < ox_hi && y0 >= 0 && y0 + y_last < g.h) {
            const int n = static_cast<int>(std::min<int64_t>(count - i, ox_hi - ox));
            const uint8_t* src = x + ((b * g.h + y0) * g.w + ox * g.sw - g.pw) * c;
            uint8_t* rows_dst = dst + static_cast<int64_t>(i) * ld;
            if (span <= 16) {
              CopyShortWindows<16>(src, g.sw * c, g.dh * row_stride, g.kh, span, n,
                                   count - i - n, rows_dst, ld, x_end);
            } else {
              CopyShortWindows<32>(src, g.sw * c, g.dh * row_stride, g.kh, span, n,
                                   count - i - n, rows_dst, ld, x_end);
            }
            i += n;
            ox += n;
          } else {
            window(b, oy, ox, dst + static_cast<int64_t>(i) * ld);
            ++i;
            ++ox;
          }
          if (ox == g.ow) {
            ox = 0;
            if (++oy == g.oh) {
              oy = 0;
              ++b;
            }
          }
        }
      };
    } else if (PaddedTooLarge(g)) {
      // The int16 kernel when a padded copy would dwarf the input (a large dilation with
      // SAME padding pads by up to half the dilated window): each window is widened tap by
      // tap, taps outside the input are real 0.
      const int64_t c = g.c;
      fill = [&, c](int64_t r, int16_t* dst) {
        const int64_t ox = r % g.ow, t = r / g.ow, oy = t % g.oh, b = t / g.oh;
        ForEachTap(
            g, b, oy, ox,
            [dst, x, c, zp](int64_t tap, int64_t pixel) {
              WidenU8(x + pixel * c, static_cast<int>(c), zp, dst + tap * c);
            },
            [dst, c](int64_t tap) { std::memset(dst + tap * c, 0, sizeof(int16_t) * c); });
      };
    } else {
      // The int16 kernel: the input once more, widened to x - zero_point with the padding
      // around it (real 0), so a row of A is kh (or kh * kw, when dilated) plain copies.
      const int64_t hp = PaddedExtent(g.h, g.ph, g.oh, g.sh, g.kh, g.dh);
      const int64_t wp = PaddedExtent(g.w, g.pw, g.ow, g.sw, g.kw, g.dw);
      padded.assign(g.n * hp * wp * g.c, 0);
      ParallelRange(ctx, g.n * g.h, g.w * g.c, [&](int64_t s, int64_t e) {
        for (int64_t row = s; row < e; ++row) {
          const int64_t b = row / g.h, y = row % g.h;
          const int64_t at = ((b * hp + y + g.ph) * wp + g.pw) * g.c;
          WidenU8(x + row * g.w * g.c, static_cast<int>(g.w * g.c), zp, padded.data() + at);
        }
      });
      const int64_t c = g.c, span = g.kw * c;
      fill = [&, hp, wp, c, span](int64_t r, int16_t* dst) {
        const int64_t ox = r % g.ow, t = r / g.ow, oy = t % g.oh, b = t / g.oh;
        const int16_t* base = padded.data() + ((b * hp + oy * g.sh) * wp + ox * g.sw) * c;
        for (int64_t i = 0; i < g.kh; ++i) {
          const int16_t* src = base + i * g.dh * wp * c;
          if (g.dw == 1) {
            std::memcpy(dst + i * span, src, sizeof(int16_t) * span);
          } else {
            for (int64_t j = 0; j < g.kw; ++j)
              std::memcpy(dst + i * span + j * c, src + j * g.dw * c, sizeof(int16_t) * c);
          }
        }
      };
    }
    void* out = OutData(args);
    const Epilogue& epi = args.epi;
    TileSink sink = [&](int64_t r0, int nrows, int n0, int n1, const int32_t* c, int ldc) {
      epi.Rows(c, ldc, nrows, n0, n1, r0 * cout, cout, out);
    };
    std::vector<RowBlock> blocks;
    const bool columns = TrimColumns(g);
    const bool trim = u8 && TrimmedRowBlocks(g, *packed, columns, &blocks);
    if (trim && (columns || g.n > 1)) {
      // GEMM row r = (line * n + b) * length + i (TrimmedRowBlocks): the windows and outputs
      // in runs along one line of one image (a run of rows: consecutive pixels, filled as one;
      // a run of columns: pixels ow apart, filled one by one).
      const int64_t length = columns ? g.oh : g.ow;
      auto pixel = [&g, columns, length](int64_t r, int64_t* run_left) {
        const int64_t i = r % length, t = r / length, bi = t % g.n, o = t / g.n;
        *run_left = length - i;
        return columns ? (bi * g.oh + i) * g.ow + o : (bi * g.oh + o) * g.ow + i;
      };
      RowFillerU8 by_pixel = fill8;
      fill8 = [by_pixel, pixel, columns](int64_t r, int count, uint8_t* dst, int ld) {
        for (int i = 0; i < count;) {
          int64_t left;
          const int64_t p = pixel(r + i, &left);
          const int run = columns ? 1 : static_cast<int>(std::min<int64_t>(count - i, left));
          by_pixel(p, run, dst + static_cast<int64_t>(i) * ld, ld);
          i += run;
        }
      };
      const int64_t step = (columns ? g.ow : 1) * cout;
      sink = [&, pixel, step](int64_t r0, int nrows, int n0, int n1, const int32_t* c,
                              int ldc) {
        for (int i = 0; i < nrows;) {
          int64_t left;
          const int64_t p = pixel(r0 + i, &left);
          const int run = static_cast<int>(std::min<int64_t>(nrows - i, left));
          epi.Rows(c + static_cast<int64_t>(i) * ldc, ldc, run, n0, n1, p * cout, step, out);
          i += run;
        }
      };
    }
    ParallelGemm(ctx, *packed, rows, zp, fill, fill8, sink, in_place, g.c,
                 trim ? &blocks : nullptr);
  }

 private:
  ConvAttrs attrs_;
};

class QgQuantizedMatMulOp : public GemmBase {
 public:
  explicit QgQuantizedMatMulOp(OpKernelConstruction* ctx) : GemmBase(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    int64_t M, K64, N;
    if (!MatMulGeometry(ctx, &M, &K64, &N)) return;
    const Tensor& a = ctx->input(0);
    const Tensor& b = ctx->input(1);
    FusedArgs args;
    if (!Prepare(ctx, N, TensorShape({M, N}), "min_a", "max_a", "b_scale", &args)) return;
    if (M == 0 || N == 0) return;
    OP_REQUIRES_OK(ctx, CheckReduction(type_string(), "K (columns of a)", K64));
    const int K = static_cast<int>(K64);
    void* out = OutData(args);
    const Epilogue& epi = args.epi;
    if (K == 0) {  // empty sum: every accumulator is 0
      std::vector<int32_t> zeros(N, 0);
      for (int64_t r = 0; r < M; ++r) epi.Row(zeros.data(), 0, static_cast<int>(N), r * N, out);
      return;
    }
    auto packed = PackedWeights(b, K, static_cast<int>(N));
    const uint8_t* x = reinterpret_cast<const uint8_t*>(a.tensor_data().data());
    const int zp = args.in.zero_point;
    RowFiller fill = [&](int64_t r, int16_t* dst) { WidenU8(x + r * K, K, zp, dst); };
    RowFillerU8 fill8 = [&](int64_t r, int count, uint8_t* dst, int ld) {
      for (int i = 0; i < count; ++i) std::memcpy(dst + i * ld, x + (r + i) * K, K);
    };
    TileSink sink = [&](int64_t r0, int nrows, int n0, int n1, const int32_t* c, int ldc) {
      epi.Rows(c, ldc, nrows, n0, n1, r0 * N, N, out);
    };
    ParallelGemm(ctx, *packed, M, zp, fill, fill8, sink, x, K);
  }
};

REGISTER_KERNEL_BUILDER(Name("QgQuantizedConv2D").Device(::tensorflow::DEVICE_CPU),
                        QgQuantizedConv2DOp);
REGISTER_KERNEL_BUILDER(Name("QgQuantizedMatMul").Device(::tensorflow::DEVICE_CPU),
                        QgQuantizedMatMulOp);

}  // namespace
}  // namespace qg
