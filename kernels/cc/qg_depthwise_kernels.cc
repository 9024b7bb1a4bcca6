// CPU kernel of QgQuantizedDepthwiseConv2D (kernels/OPS.md): a direct loop over output pixels,
// then the fused epilogue (Epilogue::Row) per pixel.
//
// Channel multiplier 1 (every MobileNet) on the AVX-512 paths (vnni, amx): the AVX-512 loop of
// qg_depthwise_avx512.cc (64 channels a block, vpdpbusd, its own fused epilogue;
// qg_depthwise_simd.h). On the avx2 path: 32
// channels at a time, taps in pairs. The raw u8 activations of two taps are interleaved and
// widened to int16 pairs (x_t[c], x_t+1[c]), vpmaddwd multiplies them with the weight pairs
// (w_t[c], w_t+1[c]) into int32 and vpaddd accumulates: sum_t x_t[c] * w_t[c], exact (each pair
// sum is at most 2 * 255 * 128). The zero point comes out afterwards as -zp * sum_t w_t[c];
// a tap in the padding reads a row of zero_point bytes, so it adds zp * w - zp * w = 0 and the
// border needs no other code than choosing that row. Bit-identical to the portable loops.
//
// Everything else (QG_CPU_PATH=portable, multiplier > 1) runs the portable loops. The weights are
// prepared once per kernel instance and reused while they are unchanged (WeightCache).
#include <immintrin.h>

#include <cstring>
#include <memory>
#include <vector>

#include "qg_common.h"
#include "qg_depthwise_simd.h"
#include "qg_fused_base.h"
#include "qg_parallel.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace qg {
namespace {

using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

constexpr int kDwBlock = 32;  // channels per AVX2 block (one 256-bit load of u8 activations)

// Which loop runs: the portable loops, or (multiplier 1) the AVX2 or the AVX-512 loop.
enum class DwLoop { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

// The filter [kh, kw, C, mult] in the layouts the loops read.
struct DwWeights {
  int64_t taps = 0, c = 0, mult = 0;
  // [taps][C * mult] int16 (output channel c * mult + m, the TF layout): the portable loops.
  std::vector<int16_t> plain;
  // mult == 1 only (the AVX2 loop). For block b (channels 32b..32b+31), tap pair p (taps 2p,
  // 2p + 1; the missing partner of an odd last tap weighs 0) and register k = 0..3, 8 int16
  // pairs (w_2p[ch], w_2p+1[ch]) for the channels the interleaved activations hold there:
  // ch = 32b + 16 * (j / 4) + 4k + j % 4, j = 0..7 (vpunpck works within 128-bit lanes).
  // Channels >= C weigh 0.
  int64_t pairs = 0, blocks = 0;
  std::vector<int16_t> paired;
  std::vector<int32_t> wsum;  // [blocks * 32]: sum over taps of w_t[c] (0 beyond C)
  DwAvx512Weights avx512;     // the AVX-512 loop's layout (qg_depthwise_simd.h)
  DwAvx512Weights stream;     // its virtual pixels (blocks == 0 where they do not pay)
};

void PrepareDw(const int8_t* f, int64_t taps, int64_t c, int64_t mult, DwLoop loop,
               DwWeights* out) {
  const int64_t cout = c * mult;
  out->taps = taps;
  out->c = c;
  out->mult = mult;
  out->plain.assign(f, f + taps * cout);
  out->paired.clear();
  out->wsum.clear();
  out->stream = DwAvx512Weights();
  if (loop == DwLoop::kAvx512) {
    PrepareDwAvx512(f, taps, c, c, &out->avx512);
    if (const int64_t cv = DwStreamChannels(c)) PrepareDwAvx512(f, taps, c, cv, &out->stream);
  }
  if (loop != DwLoop::kAvx2) return;
  out->pairs = (taps + 1) / 2;
  out->blocks = (c + kDwBlock - 1) / kDwBlock;
  out->paired.assign(out->blocks * out->pairs * 4 * 16, 0);
  out->wsum.assign(out->blocks * kDwBlock, 0);
  for (int64_t ch = 0; ch < c; ++ch) {
    int32_t s = 0;
    for (int64_t t = 0; t < taps; ++t) s += f[t * c + ch];
    out->wsum[ch] = s;
  }
  int16_t* d = out->paired.data();
  for (int64_t b = 0; b < out->blocks; ++b) {
    for (int64_t p = 0; p < out->pairs; ++p) {
      for (int k = 0; k < 4; ++k) {
        for (int j = 0; j < 8; ++j, d += 2) {
          const int64_t ch = b * kDwBlock + 16 * (j / 4) + 4 * k + j % 4;
          if (ch >= c) continue;
          d[0] = f[(2 * p) * c + ch];
          if (2 * p + 1 < taps) d[1] = f[(2 * p + 1) * c + ch];
        }
      }
    }
  }
}

// Prepared weights, reused while the weights are unchanged: with constant_weights the same
// buffer (held, so it cannot be freed and reused), else the same bytes (a depthwise filter is
// small: 9 * C bytes).
// One output pixel: the taps at tap[t] + shift.
__attribute__((target("avx2"), always_inline)) inline void DwPixelAvx2(
    const uint8_t* const* tap, int64_t shift, int64_t pairs, int64_t c, const int16_t* w,
    const int32_t* corr, int32_t* acc, uint8_t* stage, int32_t* tail, uintptr_t x_begin,
    uintptr_t x_end) {
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t c0 = 0; c0 < c; c0 += kDwBlock) {
    const bool full = c0 + kDwBlock <= c;
    // The last, partial block reads 32 bytes in place too (the channels beyond C weigh 0, their
    // sums are dropped) unless that would read past the end of the input (zrow has room).
    bool direct = full;
    if (!full) {
      direct = true;
      for (int64_t t = 0; t < 2 * pairs; ++t) {
        const uintptr_t at = reinterpret_cast<uintptr_t>(tap[t] + shift + c0);
        if (at >= x_begin && at < x_end && at + kDwBlock > x_end) direct = false;
      }
    }
    const uint8_t* const* src = tap;
    const uint8_t* staged[2];
    int64_t off = c0 + shift;
    if (!direct) {  // the last channels: copied to 32-byte rows, so the loads stay inside
      for (int64_t t = 0; t < 2 * pairs; ++t) {
        std::memset(stage + t * kDwBlock, 0, kDwBlock);
        std::memcpy(stage + t * kDwBlock, tap[t] + shift + c0, c - c0);
      }
      off = 0;
    }
    __m256i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    for (int64_t p = 0; p < pairs; ++p, w += 64) {
      if (direct) {
        staged[0] = src[2 * p] + off;
        staged[1] = src[2 * p + 1] + off;
      } else {
        staged[0] = stage + 2 * p * kDwBlock;
        staged[1] = staged[0] + kDwBlock;
      }
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(staged[0]));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(staged[1]));
      const __m256i lo = _mm256_unpacklo_epi8(x0, x1);  // ch 0-7 | 16-23, taps interleaved
      const __m256i hi = _mm256_unpackhi_epi8(x0, x1);  // ch 8-15 | 24-31
      const __m256i* wp = reinterpret_cast<const __m256i*>(w);
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi8(lo, zero),
                                                  _mm256_loadu_si256(wp)));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi8(lo, zero),
                                                  _mm256_loadu_si256(wp + 1)));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_unpacklo_epi8(hi, zero),
                                                  _mm256_loadu_si256(wp + 2)));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_unpackhi_epi8(hi, zero),
                                                  _mm256_loadu_si256(wp + 3)));
    }
    // a0: ch 0-3 | 16-19, a1: 4-7 | 20-23, a2: 8-11 | 24-27, a3: 12-15 | 28-31.
    int32_t* dst = full ? acc + c0 : tail;
    const __m256i* cv = reinterpret_cast<const __m256i*>(corr + c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                        _mm256_add_epi32(_mm256_permute2x128_si256(a0, a1, 0x20),
                                         _mm256_loadu_si256(cv)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8),
                        _mm256_add_epi32(_mm256_permute2x128_si256(a2, a3, 0x20),
                                         _mm256_loadu_si256(cv + 1)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16),
                        _mm256_add_epi32(_mm256_permute2x128_si256(a0, a1, 0x31),
                                         _mm256_loadu_si256(cv + 2)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 24),
                        _mm256_add_epi32(_mm256_permute2x128_si256(a2, a3, 0x31),
                                         _mm256_loadu_si256(cv + 3)));
    if (!full) std::memcpy(acc + c0, tail, (c - c0) * sizeof(int32_t));
  }
}

// A run of `count` output pixels of multiplier 1, channels [0, C) each, pixel k's taps at
// tap[t] + k * step (t < 2 * pairs; tap[2 * pairs - 1] may repeat an odd last tap: it weighs 0):
// acc[ch] = sum_t x_t[ch] * w_t[ch] + corr[ch], then the epilogue row of output index
// index0 + k * C. stage: (2 * pairs) x 32 bytes and tail: 32 int32, scratch for the last,
// partial block of channels.
__attribute__((target("avx2"))) void DwRunAvx2(const uint8_t* const* tap, int64_t step,
                                                int64_t count, int64_t pairs, int64_t c,
                                                const int16_t* weights, const int32_t* corr,
                                                int32_t* acc, uint8_t* stage, int32_t* tail,
                                                const Epilogue& epi, int64_t index0,
                                                void* out, uintptr_t x_begin, uintptr_t x_end) {
  for (int64_t k = 0; k < count; ++k) {
    DwPixelAvx2(tap, k * step, pairs, c, weights, corr, acc, stage, tail, x_begin, x_end);
    epi.Row(acc, 0, static_cast<int>(c), index0 + k * c, out);
  }
}

class QgQuantizedDepthwiseConv2DOp : public FusedBase {
 public:
  explicit QgQuantizedDepthwiseConv2DOp(OpKernelConstruction* ctx)
      : FusedBase(ctx), attrs_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    ConvGeometry g;
    if (!attrs_.Geometry(ctx, &g)) return;
    const Tensor& f = ctx->input(1);
    const int64_t mult = f.dim_size(3), cout = g.c * mult;
    FusedArgs args;
    if (!Prepare(ctx, cout, TensorShape({g.n, g.oh, g.ow, cout}), "min_input", "max_input",
                 "filter_scale", &args)) {
      return;
    }
    const int64_t rows = g.n * g.oh * g.ow;
    if (rows == 0 || cout == 0) return;
    const int64_t taps = g.kh * g.kw;  // <= kMaxReduction (Geometry)
    const DwLoop loop = mult != 1                        ? DwLoop::kPortable
                        : Avx512Path(SelectedPath())     ? DwLoop::kAvx512
                        : SelectedPath() != CpuPath::kPortable ? DwLoop::kAvx2
                                                         : DwLoop::kPortable;
    const bool simd = loop != DwLoop::kPortable;
    auto w = weights_.Get(f, {taps, g.c, mult, static_cast<int64_t>(loop)},
                          fused_.constant_weights, [&](const int8_t* bytes, DwWeights* out) {
                            PrepareDw(bytes, taps, g.c, mult, loop, out);
                          });
    const uint8_t* x = reinterpret_cast<const uint8_t*>(ctx->input(0).tensor_data().data());
    const int zp = args.in.zero_point;
    void* out = OutData(args);
    const Epilogue& epi = args.epi;
    if (simd) {
      // -zp * sum_t w_t[c], in int32 arithmetic modulo 2^32 like the accumulators (the exact
      // result fits int32, kernels/OPS.md "Accumulator", so the wrapped sum is exact too).
      std::vector<int32_t> corr(w->wsum.size());
      for (size_t i = 0; i < corr.size(); ++i)
        corr[i] = static_cast<int32_t>(-static_cast<int64_t>(zp) * w->wsum[i]);
      DwAvx512Call call512, stream;
      if (loop == DwLoop::kAvx512) {
        call512.Init(&w->avx512, taps, zp, &epi, out);
        // Virtual pixels: stride 1 (a run's taps and outputs are contiguous), quint8 output.
        if (w->stream.blocks > 0 && g.sw == 1) stream.Init(&w->stream, taps, zp, &epi, out);
      }
      const int64_t per_virtual = stream.m.empty() ? 0 : stream.c / g.c;
      // An input row of zero_point bytes (real 0): taps in the padding read it, so every pixel
      // runs the same loop; rows above and below the image are this row.
      std::vector<uint8_t> zrow(std::max(g.w * g.c, w->blocks * kDwBlock) + kDwBlock,
                                static_cast<uint8_t>(zp));
      const uintptr_t x_begin = reinterpret_cast<uintptr_t>(x);
      const uintptr_t x_end = x_begin + g.n * g.h * g.w * g.c;
      const int64_t pairs = w->pairs;
      // Output columns [lo, hi) read only columns inside the image: there the taps just step
      // by sw pixels, no bounds checks.
      const int64_t span = (g.kw - 1) * g.dw;
      const int64_t lo = std::min(g.ow, (g.pw + g.sw - 1) / g.sw);
      const int64_t hi = std::max(
          lo, std::min(g.ow, g.w - 1 - span + g.pw >= 0 ? (g.w - 1 - span + g.pw) / g.sw + 1
                                                          : 0));
      // Ranges of output rows (b, oy); the cost is per output row.
      ParallelRange(ctx, g.n * g.oh, g.ow * taps * cout,
          [&](int64_t start, int64_t limit) {
            std::vector<int32_t> acc(cout);
            std::vector<const uint8_t*> tap(taps + 1), rowp(g.kh);
            std::vector<uint8_t> stage(2 * pairs * kDwBlock);
            int32_t tail[kDwBlock];
            auto set_taps = [&](int64_t ox, bool check) {
              const int64_t x0 = ox * g.sw - g.pw;
              for (int64_t i = 0; i < g.kh; ++i) {
                for (int64_t j = 0; j < g.kw; ++j) {
                  const int64_t xx = x0 + j * g.dw;
                  tap[i * g.kw + j] =
                      check && (xx < 0 || xx >= g.w) ? zrow.data() : rowp[i] + xx * g.c;
                }
              }
              if (taps % 2 == 1) tap[taps] = tap[taps - 1];  // weighs 0
            };
            for (int64_t row = start; row < limit; ++row) {
              const int64_t b = row / g.oh, oy = row % g.oh;
              for (int64_t i = 0; i < g.kh; ++i) {
                const int64_t y = oy * g.sh - g.ph + i * g.dh;
                rowp[i] = (y < 0 || y >= g.h) ? zrow.data() : x + (b * g.h + y) * g.w * g.c;
              }
              const int64_t index = row * g.ow * cout;
              auto run = [&](int64_t ox, int64_t count) {
                if (loop == DwLoop::kAvx512) {
                  const int64_t k0 = per_virtual > 0 ? count / per_virtual * per_virtual : 0;
                  if (k0 > 0) DwRunAvx512(stream, tap.data(), stream.c, 0, k0 / per_virtual,
                                          index + ox * cout);
                  DwRunAvx512(call512, tap.data(), g.sw * g.c, k0, count, index + ox * cout);
                  return;
                }
                DwRunAvx2(tap.data(), g.sw * g.c, count, pairs, g.c, w->paired.data(),
                          corr.data(), acc.data(), stage.data(), tail, epi, index + ox * cout,
                          out, x_begin, x_end);
              };
              for (int64_t ox = 0; ox < lo; ++ox) {
                set_taps(ox, true);
                run(ox, 1);
              }
              if (hi > lo) {
                set_taps(lo, false);
                run(lo, hi - lo);
              }
              for (int64_t ox = hi; ox < g.ow; ++ox) {
                set_taps(ox, true);
                run(ox, 1);
              }
            }
          });
      return;
    }
    const int16_t* wp16 = w->plain.data();
    ParallelRange(ctx, rows, taps * cout * 2,
        [&](int64_t start, int64_t limit) {
          std::vector<int32_t> acc(cout);
          for (int64_t r = start; r < limit; ++r) {
            const int64_t ox = r % g.ow, t = r / g.ow, oy = t % g.oh, b = t / g.oh;
            std::fill(acc.begin(), acc.end(), 0);
            for (int64_t i = 0; i < g.kh; ++i) {
              const int64_t y = oy * g.sh - g.ph + i * g.dh;
              if (y < 0 || y >= g.h) continue;  // padding contributes real 0
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t xx = ox * g.sw - g.pw + j * g.dw;
                if (xx < 0 || xx >= g.w) continue;
                const uint8_t* px = x + ((b * g.h + y) * g.w + xx) * g.c;
                const int16_t* pw = wp16 + (i * g.kw + j) * cout;
                if (mult == 1) {
                  for (int64_t c = 0; c < cout; ++c)
                    acc[c] += (static_cast<int32_t>(px[c]) - zp) * pw[c];
                } else {
                  for (int64_t c = 0; c < g.c; ++c) {
                    const int32_t v = static_cast<int32_t>(px[c]) - zp;
                    for (int64_t m = 0; m < mult; ++m) acc[c * mult + m] += v * pw[c * mult + m];
                  }
                }
              }
            }
            epi.Row(acc.data(), 0, static_cast<int>(cout), r * cout, out);
          }
        });
  }

 private:
  ConvAttrs attrs_;
  WeightCache<DwWeights> weights_;
};

REGISTER_KERNEL_BUILDER(Name("QgQuantizedDepthwiseConv2D").Device(::tensorflow::DEVICE_CPU),
                        QgQuantizedDepthwiseConv2DOp);

}  // namespace
}  // namespace qg
