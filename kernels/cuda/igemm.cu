// Int8 implicit-GEMM convolution (and MatMul, a 1x1 convolution) with the fused epilogue.
//
// GEMM view: rows m = (n, oh, ow) of the output, columns = output channels, k = (kh, kw, ci).
// A[m][k] is the quint8 input gathered on the fly (padding reads zero_point, i.e. real 0),
// B is the filter packed once as [n_pad][k_pad] int8 (k contiguous) plus int32 column sums.
// The product sums q_x * w in int32 (u8 x s8), and the zero point comes out exactly:
//     acc = sum_k (q_x - zp_x) * w = sum_k q_x * w - zp_x * colsum(w)
// (padded taps read zp_x, so they contribute zp_x * w - zp_x * w = 0). int32 arithmetic wraps,
// so the result is exact whenever the true accumulator fits in int32.
//
// Tiles: BM x BN per block, BK = 64 per stage, two shared-memory stages fed through registers
// (global -> registers for stage k+1 while stage k is multiplied). Inner product per warp:
//   sm_80 and newer: mma.sync.m16n8k32 u8.s8 -> s32, fragments loaded with ldmatrix;
//   sm_75:           dp4a (u32.s32) on the same fragment layout.
// Both produce each thread's accumulators in the mma C layout, so one epilogue serves both.
#include <cuda_runtime.h>

#include "qg_common.cuh"
#include "../cc/qg_shape.h"  // WindowOutputSize, shared with the TF kernels

namespace qg_cuda {
namespace {

constexpr int kBK = 64;        // k per shared-memory stage (two m16n8k32 steps)
constexpr int kRowBytes = 80;  // 64 + 16 bytes: 16-byte aligned, ldmatrix/lds bank-conflict free
constexpr int kPackN = 128;    // n padding of the packed filter (the largest BN)

inline int round_up(int v, int m) { return (v + m - 1) / m * m; }
// Packed row length: a multiple of kBK, at least one stage (K = 0 packs one zero stage, so the
// kernel needs no special case and an empty reduction gives acc = 0).
inline int packed_k(int k) { return round_up(k > 0 ? k : 1, kBK); }

struct ConvGeom {
  int batch, in_h, in_w, in_c;
  int filter_h, filter_w;
  int stride_h, stride_w, dilation_h, dilation_w;
  int pad_top, pad_left;
  int out_h, out_w;
  int m, n, k, k_pad;  // GEMM sizes; k_pad = packed row length
};

// ---------------------------------------------------------------------------------------------
// Filter packing.

__global__ void pack_filter_kernel(const int8_t* __restrict__ w, int k, int n, int k_pad,
                                   int n_pad, int8_t* __restrict__ packed) {
  int64_t total = static_cast<int64_t>(n_pad) * k_pad;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int col = static_cast<int>(i / k_pad);
    int kk = static_cast<int>(i % k_pad);
    packed[i] = (col < n && kk < k) ? w[static_cast<int64_t>(kk) * n + col] : int8_t(0);
  }
}

__global__ void column_sums_kernel(const int8_t* __restrict__ w, int k, int n, int n_pad,
                                   int32_t* __restrict__ sums) {
  int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= n_pad) return;
  int32_t s = 0;
  if (col < n)
    for (int kk = 0; kk < k; ++kk) s += w[static_cast<int64_t>(kk) * n + col];
  sums[col] = s;
}

// ---------------------------------------------------------------------------------------------
// Inner products on one warp's fragments.

// Each arch compiles only the helpers it uses (no unused-function warnings).
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned& r0, unsigned& r1, unsigned& r2,
                                            unsigned& r3, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(smem_addr(p))
               : "memory");  // reads the stage the block just stored: keep it after the barrier
}

// d += a (16x32 u8, row) * b (32x8 s8, col)
__device__ __forceinline__ void mma_u8s8(int (&d)[4], const unsigned (&a)[4],
                                         const unsigned (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
#endif

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 800
__device__ __forceinline__ int dp4a_u8s8(unsigned a, unsigned b, int c) {
  int d;
  asm("dp4a.u32.s32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
#endif

// ---------------------------------------------------------------------------------------------
// The kernel.

template <int BM, int BN, int WM, int WN>
struct Tile {
  static constexpr int kWarpsM = BM / WM;
  static constexpr int kWarpsN = BN / WN;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  static constexpr int kMT = WM / 16;  // m16 tiles per warp
  static constexpr int kNT = WN / 8;   // n8 tiles per warp
  // 16-byte chunks each thread moves per stage (BM or BN rows x 4 chunks of 16 bytes).
  static constexpr int kAChunks = BM * 4 / kThreads;
  static constexpr int kBChunks = BN * 4 / kThreads;
  static_assert(BM * 4 % kThreads == 0 && BN * 4 % kThreads == 0, "chunks per thread");
  static_assert(kNT % 2 == 0, "B fragments are loaded two n8 tiles at a time");
};

// Where one A row (output pixel) reads from; m >= M rows are marked invalid.
struct RowSource {
  int64_t image_offset;  // n * in_h * in_w * in_c
  int ih0, iw0;          // top-left input position of the window (may be negative)
  bool valid;
};

__device__ __forceinline__ RowSource row_source(const ConvGeom& g, int m) {
  RowSource r;
  r.valid = m < g.m;
  int mm = r.valid ? m : 0;
  int ow = mm % g.out_w;
  int t = mm / g.out_w;
  int oh = t % g.out_h;
  int n = t / g.out_h;
  r.image_offset = static_cast<int64_t>(n) * g.in_h * g.in_w * g.in_c;
  r.ih0 = oh * g.stride_h - g.pad_top;
  r.iw0 = ow * g.stride_w - g.pad_left;
  return r;
}

// One input byte of A[m][k] (k < K): the input value, or zp outside the image.
__device__ __forceinline__ unsigned a_byte(const uint8_t* __restrict__ x, const ConvGeom& g,
                                           const RowSource& r, int k, unsigned zp) {
  int ci = k % g.in_c;
  int tap = k / g.in_c;
  int kw = tap % g.filter_w;
  int kh = tap / g.filter_w;
  int ih = r.ih0 + kh * g.dilation_h;
  int iw = r.iw0 + kw * g.dilation_w;
  if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) return zp;
  return x[r.image_offset + (static_cast<int64_t>(ih) * g.in_w + iw) * g.in_c + ci];
}

// 16 bytes of A row r at k .. k+15. VEC: in_c % 16 == 0 and x 16-byte aligned, so the 16 bytes
// are 16 consecutive channels of one tap: one 128-bit load.
template <bool VEC>
__device__ __forceinline__ uint4 load_a_chunk(const uint8_t* __restrict__ x, const ConvGeom& g,
                                              const RowSource& r, int k, unsigned zp) {
  const unsigned zp4 = zp * 0x01010101u;
  if (!r.valid || k >= g.k) return make_uint4(0, 0, 0, 0);  // B is zero there
  if (VEC) {
    int ci = k % g.in_c;
    int tap = k / g.in_c;
    int kw = tap % g.filter_w;
    int kh = tap / g.filter_w;
    int ih = r.ih0 + kh * g.dilation_h;
    int iw = r.iw0 + kw * g.dilation_w;
    if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) return make_uint4(zp4, zp4, zp4, zp4);
    return *reinterpret_cast<const uint4*>(
        x + r.image_offset + (static_cast<int64_t>(ih) * g.in_w + iw) * g.in_c + ci);
  } else {
    unsigned w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      unsigned v = 0;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        int kk = k + j * 4 + b;
        unsigned byte = kk < g.k ? a_byte(x, g, r, kk, zp) : 0u;
        v |= byte << (8 * b);
      }
      w[j] = v;
    }
    return make_uint4(w[0], w[1], w[2], w[3]);
  }
}

template <int BM, int BN, int WM, int WN, bool VEC>
__global__ void __launch_bounds__(Tile<BM, BN, WM, WN>::kThreads)
    igemm_kernel(const uint8_t* __restrict__ x, const int8_t* __restrict__ packed,
                 const int32_t* __restrict__ col_sums, ConvGeom g, EpilogueArgs e, void* out) {
  using T = Tile<BM, BN, WM, WN>;
  __shared__ __align__(16) uint8_t As[2][BM][kRowBytes];
  __shared__ __align__(16) uint8_t Bs[2][BN][kRowBytes];

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int warp_m = warp % T::kWarpsM;
  const int warp_n = warp / T::kWarpsM;
  const int m0 = blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;
  const unsigned zp = static_cast<unsigned>(e.zp_x);

  // This thread's load assignments: chunk c -> row c / 4, bytes (c % 4) * 16 of the stage.
  RowSource rows[T::kAChunks];
#pragma unroll
  for (int i = 0; i < T::kAChunks; ++i) rows[i] = row_source(g, m0 + (tid + i * T::kThreads) / 4);

  uint4 a_regs[T::kAChunks];
  uint4 b_regs[T::kBChunks];
  auto load_stage = [&](int k0) {
#pragma unroll
    for (int i = 0; i < T::kAChunks; ++i) {
      int c = tid + i * T::kThreads;
      a_regs[i] = load_a_chunk<VEC>(x, g, rows[i], k0 + (c % 4) * 16, zp);
    }
#pragma unroll
    for (int i = 0; i < T::kBChunks; ++i) {
      int c = tid + i * T::kThreads;
      // packed is [n_pad][k_pad] with n_pad % 128 == 0 and k_pad % 64 == 0: always in bounds.
      b_regs[i] = *reinterpret_cast<const uint4*>(
          packed + static_cast<int64_t>(n0 + c / 4) * g.k_pad + k0 + (c % 4) * 16);
    }
  };
  auto store_stage = [&](int buf) {
#pragma unroll
    for (int i = 0; i < T::kAChunks; ++i) {
      int c = tid + i * T::kThreads;
      *reinterpret_cast<uint4*>(&As[buf][c / 4][(c % 4) * 16]) = a_regs[i];
    }
#pragma unroll
    for (int i = 0; i < T::kBChunks; ++i) {
      int c = tid + i * T::kThreads;
      *reinterpret_cast<uint4*>(&Bs[buf][c / 4][(c % 4) * 16]) = b_regs[i];
    }
  };

  int acc[T::kMT][T::kNT][4];
#pragma unroll
  for (int i = 0; i < T::kMT; ++i)
#pragma unroll
    for (int j = 0; j < T::kNT; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;

  const int group = lane >> 2;  // mma groupID
  const int quad = lane & 3;    // mma threadID_in_group
  const int num_stages = g.k_pad / kBK;

  load_stage(0);
  store_stage(0);
  __syncthreads();

  for (int s = 0; s < num_stages; ++s) {
    const int buf = s & 1;
    if (s + 1 < num_stages) load_stage((s + 1) * kBK);

#pragma unroll
    for (int kk = 0; kk < kBK; kk += 32) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
      // A fragment of an m16 tile: ldmatrix x4 over (rows 0-7 | 8-15) x (k 0-15 | 16-31);
      // lane l addresses row (l & 7) of matrix l >> 3. Register j is then
      // a[j] = rows group (+8 for j odd), bytes quad*4 (+16 for j >= 2): the mma A layout.
      unsigned a[T::kMT][4];
      unsigned b[T::kNT][2];
      {
        const int mat = lane >> 3;
        const int row_in = lane & 7;
#pragma unroll
        for (int i = 0; i < T::kMT; ++i) {
          int row = warp_m * WM + i * 16 + row_in + ((mat & 1) ? 8 : 0);
          ldmatrix_x4(a[i][0], a[i][1], a[i][2], a[i][3],
                      &As[buf][row][kk + ((mat & 2) ? 16 : 0)]);
        }
        // B fragments of two n8 tiles: matrices (tile j, k 0-15), (j, k 16-31), (j+1, ...).
#pragma unroll
        for (int j = 0; j < T::kNT; j += 2) {
          int col = warp_n * WN + (j + (mat >> 1)) * 8 + row_in;
          ldmatrix_x4(b[j][0], b[j][1], b[j + 1][0], b[j + 1][1],
                      &Bs[buf][col][kk + ((mat & 1) ? 16 : 0)]);
        }
      }
#pragma unroll
      for (int i = 0; i < T::kMT; ++i)
#pragma unroll
        for (int j = 0; j < T::kNT; ++j) mma_u8s8(acc[i][j], a[i], b[j]);
#else
      // dp4a: each thread computes its own mma C elements: rows group, group + 8 of each m16
      // tile, columns quad*2, quad*2 + 1 of each n8 tile, over these 32 k.
#pragma unroll
      for (int w = 0; w < 8; ++w) {
        unsigned a_w[T::kMT][2];
        unsigned b_w[T::kNT][2];
#pragma unroll
        for (int i = 0; i < T::kMT; ++i) {
          int row = warp_m * WM + i * 16 + group;
          a_w[i][0] = *reinterpret_cast<const unsigned*>(&As[buf][row][kk + w * 4]);
          a_w[i][1] = *reinterpret_cast<const unsigned*>(&As[buf][row + 8][kk + w * 4]);
        }
#pragma unroll
        for (int j = 0; j < T::kNT; ++j) {
          int col = warp_n * WN + j * 8 + quad * 2;
          b_w[j][0] = *reinterpret_cast<const unsigned*>(&Bs[buf][col][kk + w * 4]);
          b_w[j][1] = *reinterpret_cast<const unsigned*>(&Bs[buf][col + 1][kk + w * 4]);
        }
#pragma unroll
        for (int i = 0; i < T::kMT; ++i)
#pragma unroll
          for (int j = 0; j < T::kNT; ++j) {
            acc[i][j][0] = dp4a_u8s8(a_w[i][0], b_w[j][0], acc[i][j][0]);
            acc[i][j][1] = dp4a_u8s8(a_w[i][0], b_w[j][1], acc[i][j][1]);
            acc[i][j][2] = dp4a_u8s8(a_w[i][1], b_w[j][0], acc[i][j][2]);
            acc[i][j][3] = dp4a_u8s8(a_w[i][1], b_w[j][1], acc[i][j][3]);
          }
      }
#endif
    }

    if (s + 1 < num_stages) store_stage(buf ^ 1);  // the other buffer: nobody reads it now
    __syncthreads();
  }

  // Epilogue. acc[i][j][r] is row group (+8 for r >= 2), column quad*2 + (r & 1).
#pragma unroll
  for (int j = 0; j < T::kNT; ++j) {
#pragma unroll
    for (int cc = 0; cc < 2; ++cc) {
      const int col = n0 + warp_n * WN + j * 8 + quad * 2 + cc;
      if (col >= g.n) continue;
      const int32_t correction = static_cast<int32_t>(
          static_cast<uint32_t>(e.zp_x) * static_cast<uint32_t>(col_sums[col]));
      ChannelConsts kc = {0.0f, 0.0f};
      if (e.out_type != QG_OUT_INT32) kc = channel_consts(e, col);
#pragma unroll
      for (int i = 0; i < T::kMT; ++i) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = m0 + warp_m * WM + i * 16 + group + h * 8;
          if (row >= g.m) continue;
          // Wrapping subtraction (unsigned) is the exact result when it fits in int32.
          int32_t a = static_cast<int32_t>(static_cast<uint32_t>(acc[i][j][h * 2 + cc]) -
                                           static_cast<uint32_t>(correction));
          store_output(e, kc, a, static_cast<int64_t>(row) * g.n + col, out);
        }
      }
    }
  }
}

template <int BM, int BN, int WM, int WN>
cudaError_t launch_tiles(const uint8_t* x, const int8_t* packed, const int32_t* sums,
                         const ConvGeom& g, const EpilogueArgs& e, void* out, bool vec,
                         cudaStream_t stream) {
  using T = Tile<BM, BN, WM, WN>;
  dim3 grid((g.m + BM - 1) / BM, (g.n + BN - 1) / BN);
  if (grid.y > 65535) return cudaErrorInvalidValue;
  if (vec)
    igemm_kernel<BM, BN, WM, WN, true><<<grid, T::kThreads, 0, stream>>>(x, packed, sums, g, e, out);
  else
    igemm_kernel<BM, BN, WM, WN, false><<<grid, T::kThreads, 0, stream>>>(x, packed, sums, g, e, out);
  return cudaGetLastError();
}

cudaError_t run_igemm(const uint8_t* x, const void* packed_filter, const ConvGeom& g,
                      const qg_epilogue& ep, void* out, cudaStream_t stream) {
  if (g.m == 0 || g.n == 0) return cudaSuccess;  // empty output
  const int8_t* packed = static_cast<const int8_t*>(packed_filter);
  const int32_t* sums = reinterpret_cast<const int32_t*>(
      packed + static_cast<int64_t>(round_up(g.n, kPackN)) * g.k_pad);
  EpilogueArgs e = make_epilogue(ep);
  const bool vec = g.in_c % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;

  // Large problems: 128x128 tiles (8 warps of 64x32). When that leaves SMs idle, 64x64 tiles
  // (4 warps of 32x32) quadruple the number of blocks.
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    sms = 80;
  int64_t big_blocks = static_cast<int64_t>((g.m + 127) / 128) * ((g.n + 127) / 128);
  if (big_blocks >= sms) return launch_tiles<128, 128, 64, 32>(x, packed, sums, g, e, out, vec, stream);
  return launch_tiles<64, 64, 32, 32>(x, packed, sums, g, e, out, vec, stream);
}

bool k_fits(int64_t k) { return k >= 0 && k <= (1 << 30); }

}  // namespace
}  // namespace qg_cuda

extern "C" {

int qg_cuda_conv_output_size(int in, int filter, int stride, int dilation, int same_padding,
                             int* out, int* pad_before) {
  int64_t o, pad;  // the rule the TF kernels and the shape functions use (qg_shape.h)
  if (!qg::WindowOutputSize(in, filter, stride, dilation, same_padding != 0, &o, &pad))
    return -1;
  *out = static_cast<int>(o);
  *pad_before = static_cast<int>(pad);
  return 0;
}

size_t qg_cuda_packed_filter_bytes(int k, int n) {
  size_t n_pad = static_cast<size_t>(qg_cuda::round_up(n, qg_cuda::kPackN));
  size_t k_pad = static_cast<size_t>(qg_cuda::packed_k(k));
  return n_pad * k_pad + n_pad * sizeof(int32_t);
}

cudaError_t qg_cuda_pack_filter(const int8_t* filter, int k, int n, void* packed,
                                cudaStream_t stream) {
  if (n < 0 || !qg_cuda::k_fits(k)) return cudaErrorInvalidValue;
  int n_pad = qg_cuda::round_up(n, qg_cuda::kPackN);
  int k_pad = qg_cuda::packed_k(k);
  if (n_pad == 0) return cudaSuccess;
  int8_t* p = static_cast<int8_t*>(packed);
  int64_t total = static_cast<int64_t>(n_pad) * k_pad;
  if (total > 0)
    qg_cuda::pack_filter_kernel<<<qg_cuda::blocks_for(total), qg_cuda::kThreads1D, 0, stream>>>(filter, k, n, k_pad,
                                                                              n_pad, p);
  qg_cuda::column_sums_kernel<<<qg_cuda::blocks_for(n_pad), qg_cuda::kThreads1D, 0, stream>>>(
      filter, k, n, n_pad, reinterpret_cast<int32_t*>(p + total));
  return cudaGetLastError();
}

cudaError_t qg_cuda_conv2d(const uint8_t* x, const void* packed_filter, const qg_conv_shape* s,
                           const qg_epilogue* ep, void* out, cudaStream_t stream) {
  if (s->batch < 0 || s->out_h < 0 || s->out_w < 0 || s->out_c < 0 || s->in_c < 0 ||
      s->filter_h < 1 || s->filter_w < 1 || s->stride_h < 1 || s->stride_w < 1 ||
      s->dilation_h < 1 || s->dilation_w < 1)
    return cudaErrorInvalidValue;
  qg_cuda::ConvGeom g;
  g.batch = s->batch; g.in_h = s->in_h; g.in_w = s->in_w; g.in_c = s->in_c;
  g.filter_h = s->filter_h; g.filter_w = s->filter_w;
  g.stride_h = s->stride_h; g.stride_w = s->stride_w;
  g.dilation_h = s->dilation_h; g.dilation_w = s->dilation_w;
  g.pad_top = s->pad_top; g.pad_left = s->pad_left;
  g.out_h = s->out_h; g.out_w = s->out_w;
  int64_t m = static_cast<int64_t>(s->batch) * s->out_h * s->out_w;
  int64_t k = static_cast<int64_t>(s->filter_h) * s->filter_w * s->in_c;
  if (m > INT32_MAX - 256 || !qg_cuda::k_fits(k)) return cudaErrorInvalidValue;
  g.m = static_cast<int>(m);
  g.n = s->out_c;
  g.k = static_cast<int>(k);
  g.k_pad = qg_cuda::packed_k(g.k);
  return qg_cuda::run_igemm(x, packed_filter, g, *ep, out, stream);
}

cudaError_t qg_cuda_matmul(const uint8_t* a, const void* packed_b, int m, int k, int n,
                           const qg_epilogue* ep, void* out, cudaStream_t stream) {
  // A 1x1 convolution over m "pixels" of k channels.
  qg_conv_shape s = {m, 1, 1, k, 1, 1, n, 1, 1, 1, 1, 0, 0, 1, 1};
  return qg_cuda_conv2d(a, packed_b, &s, ep, out, stream);
}

}  // extern "C"
