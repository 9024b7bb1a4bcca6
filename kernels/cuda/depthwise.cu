// QgQuantizedDepthwiseConv2D: one thread per output element (channel fastest, so a warp reads
// consecutive input channels), exact int32 sum over the window, then the shared epilogue.
// Output channel c reads input channel c / multiplier and filter [kh][kw][c / mult][c % mult],
// which is filter element (kh * filter_w + kw) * out_c + c.
#include <cuda_runtime.h>

#include "qg_common.cuh"

namespace qg_cuda {
namespace {

__global__ void depthwise_kernel(const uint8_t* __restrict__ x, const int8_t* __restrict__ w,
                                 qg_conv_shape s, int64_t total, EpilogueArgs e, void* out) {
  const int mult = s.out_c / s.in_c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int c = static_cast<int>(i % s.out_c);
    int64_t p = i / s.out_c;
    int ow = static_cast<int>(p % s.out_w);
    p /= s.out_w;
    int oh = static_cast<int>(p % s.out_h);
    int n = static_cast<int>(p / s.out_h);
    int ci = c / mult;
    const uint8_t* image = x + static_cast<int64_t>(n) * s.in_h * s.in_w * s.in_c + ci;
    int32_t acc = 0;
    for (int kh = 0; kh < s.filter_h; ++kh) {
      int ih = oh * s.stride_h - s.pad_top + kh * s.dilation_h;
      if (ih < 0 || ih >= s.in_h) continue;  // padding is real 0: contributes nothing
      for (int kw = 0; kw < s.filter_w; ++kw) {
        int iw = ow * s.stride_w - s.pad_left + kw * s.dilation_w;
        if (iw < 0 || iw >= s.in_w) continue;
        int q = static_cast<int>(image[(static_cast<int64_t>(ih) * s.in_w + iw) * s.in_c]) - e.zp_x;
        acc += q * static_cast<int>(w[static_cast<int64_t>(kh * s.filter_w + kw) * s.out_c + c]);
      }
    }
    ChannelConsts k = {0.0f, 0.0f};
    if (e.out_type != QG_OUT_INT32) k = channel_consts(e, c);
    store_output(e, k, acc, i, out);
  }
}

}  // namespace
}  // namespace qg_cuda

extern "C" cudaError_t qg_cuda_depthwise_conv2d(const uint8_t* x, const int8_t* filter,
                                                const qg_conv_shape* s, const qg_epilogue* ep,
                                                void* out, cudaStream_t stream) {
  if (s->batch < 0 || s->out_h < 0 || s->out_w < 0 || s->in_c < 0 || s->out_c < 0 ||
      s->filter_h < 1 || s->filter_w < 1 || s->stride_h < 1 || s->stride_w < 1 ||
      s->dilation_h < 1 || s->dilation_w < 1 || ep->summand != nullptr ||
      (s->in_c > 0 && s->out_c % s->in_c != 0) || (s->in_c == 0 && s->out_c != 0))
    return cudaErrorInvalidValue;
  int64_t total = static_cast<int64_t>(s->batch) * s->out_h * s->out_w * s->out_c;
  if (total == 0) return cudaSuccess;
  qg_cuda::EpilogueArgs e = qg_cuda::make_epilogue(*ep);
  qg_cuda::depthwise_kernel<<<qg_cuda::blocks_for(total), qg_cuda::kThreads1D, 0, stream>>>(x, filter, *s, total,
                                                                             e, out);
  return cudaGetLastError();
}
