// AVX-512 loop of QgQuantizedDepthwiseConv2D for channel multiplier 1 (TF-free), used on the
// AVX-512 paths (Avx512Path(SelectedPath()): vnni, amx); qg_depthwise_avx512.cc.
//
// 64 channels a block, no shuffles in the tap loop: the raw u8 activations of one tap are one
// 64-byte load (the last, partial block under a mask), and vpdpbusd multiplies them with four
// weight vectors that each keep one byte of every dword (vector k: byte 4j + k = w_t[4j + k],
// the other three 0). Accumulator k then holds channel 4j + k in lane j: each vpdpbusd adds
// one u8 x s8 product per lane (exact, any int8 weight including -128). The zero point comes
// out as the AVX2 loop's does (the sums start from -zp * sum_t w_t[c]; padding reads a row of
// zero_point bytes). The quint8 epilogue runs in that lane order (its factors are permuted to
// match) and one vpshufb puts the packed bytes back in channel order; float outputs go through
// Epilogue::Row after a transpose. Bit-identical to the portable loops.
//
// Stride 1 with C not a multiple of 64 (MobileNet's 8, 16, 32, 144 channels): a run of output
// pixels inside the image reads each tap's input as one contiguous stream of count * C bytes,
// and its output is one too. There the loop runs on "virtual pixels" of L = lcm(64, C) bytes
// (L / C real pixels; the filter and the epilogue factors repeated to L channels), so no block
// is partial: 32 channels fill a 64-byte block with two pixels, 8 channels with eight. The
// pixels left over (fewer than L / C) run as real pixels.
#ifndef QG_KERNELS_CC_QG_DEPTHWISE_SIMD_H_
#define QG_KERNELS_CC_QG_DEPTHWISE_SIMD_H_

#include <cstdint>

#include "gemm/qg_epilogue.h"
#include "gemm/qg_gemm.h"

namespace qg {

constexpr int kDw512Block = 64;  // channels per block (one zmm of u8 activations)
// The most blocks of 64 a virtual pixel may have (its filter: 2,304 bytes a block for 3x3).
constexpr int64_t kDwStreamMaxBlocks = 16;

// L = lcm(64, C) where a virtual pixel pays (C not a multiple of 64, L / 64 <= 16), else 0.
int64_t DwStreamChannels(int64_t c);

// The filter [taps][C] (multiplier 1) for the AVX-512 loop, for `c` (virtual) channels: the
// real C, or L for virtual pixels (channel i is real channel i % c_real).
struct DwAvx512Weights {
  int64_t c = 0, c_real = 0, blocks = 0;
  // [blocks][taps][4][64] bytes, vector k of block b and tap t: byte 4j + k = w_t[64b + 4j + k]
  // (0 for channels >= C), the other bytes 0.
  AlignedVector<int8_t> w;
  // [blocks * 64] in lane order (entry 64b + 16k + j is channel 64b + 4j + k): sum_t w_t.
  std::vector<int32_t> wsum;
};
// f: [taps][c] int8; cv: c, or DwStreamChannels(c).
void PrepareDwAvx512(const int8_t* f, int64_t taps, int64_t c, int64_t cv, DwAvx512Weights* out);

// One op call's constants, in lane order (as DwAvx512Weights::wsum): the accumulators' start
// -zp * sum_t w_t, and for a quint8 output without summand (always, for this op) the epilogue's
// per-channel factors m and b.
struct DwAvx512Call {
  const DwAvx512Weights* w = nullptr;
  int64_t taps = 0, c = 0;
  AlignedVector<int32_t> corr;
  AlignedVector<float> m, b;
  const Epilogue* epi = nullptr;
  void* out = nullptr;
  void Init(const DwAvx512Weights* weights, int64_t taps, int zero_point,
            const Epilogue* epilogue, void* output);
};

// Output pixels [k0, k1) of a run, pixel k's taps at tap[t] + k * step (t < taps), each of
// call.c channels (real or virtual), written at output index index0 + k * call.c.
void DwRunAvx512(const DwAvx512Call& call, const uint8_t* const* tap, int64_t step, int64_t k0,
                 int64_t k1, int64_t index0);

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_DEPTHWISE_SIMD_H_
