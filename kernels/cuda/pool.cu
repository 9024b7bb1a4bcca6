// QgQuantizedMaxPool / QgQuantizedAvgPool: one thread per output element, NHWC, windows clipped
// to the image (padding never counts, as TF's MaxPool / AvgPool). The range is unchanged.
#include <cuda_runtime.h>

#include "qg_common.cuh"

namespace qg_cuda {
namespace {

template <bool MAX>
__global__ void pool_kernel(const uint8_t* __restrict__ x, qg_pool_shape s, int64_t total,
                            uint8_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int c = static_cast<int>(i % s.channels);
    int64_t p = i / s.channels;
    int ow = static_cast<int>(p % s.out_w);
    p /= s.out_w;
    int oh = static_cast<int>(p % s.out_h);
    int n = static_cast<int>(p / s.out_h);
    int h0 = oh * s.stride_h - s.pad_top, w0 = ow * s.stride_w - s.pad_left;
    int h1 = min(h0 + s.window_h, s.in_h), w1 = min(w0 + s.window_w, s.in_w);
    h0 = max(h0, 0);
    w0 = max(w0, 0);
    const uint8_t* image = x + static_cast<int64_t>(n) * s.in_h * s.in_w * s.channels + c;
    int best = 0, sum = 0;
    for (int h = h0; h < h1; ++h)
      for (int w = w0; w < w1; ++w) {
        int v = image[(static_cast<int64_t>(h) * s.in_w + w) * s.channels];
        best = max(best, v);
        sum += v;
      }
    if (MAX) {
      out[i] = static_cast<uint8_t>(best);
    } else {
      int count = (h1 - h0) * (w1 - w0);
      // rint(sum / count) in float32; count >= 1 for any window TF's shape rules produce.
      float v = count > 0 ? rintf(__fdiv_rn(static_cast<float>(sum), static_cast<float>(count)))
                          : 0.0f;
      out[i] = static_cast<uint8_t>(v > 255.0f ? 255.0f : v);
    }
  }
}

template <bool MAX>
cudaError_t launch_pool(const uint8_t* x, const qg_pool_shape* s, uint8_t* out,
                        cudaStream_t stream) {
  if (s->batch < 0 || s->channels < 0 || s->out_h < 0 || s->out_w < 0 || s->window_h < 1 ||
      s->window_w < 1 || s->stride_h < 1 || s->stride_w < 1)
    return cudaErrorInvalidValue;
  int64_t total = static_cast<int64_t>(s->batch) * s->out_h * s->out_w * s->channels;
  if (total == 0) return cudaSuccess;
  pool_kernel<MAX><<<blocks_for(total), kThreads1D, 0, stream>>>(x, *s, total, out);
  return cudaGetLastError();
}

}  // namespace
}  // namespace qg_cuda

extern "C" {

cudaError_t qg_cuda_max_pool(const uint8_t* x, const qg_pool_shape* s, uint8_t* out,
                             cudaStream_t stream) {
  return qg_cuda::launch_pool<true>(x, s, out, stream);
}

cudaError_t qg_cuda_avg_pool(const uint8_t* x, const qg_pool_shape* s, uint8_t* out,
                             cudaStream_t stream) {
  return qg_cuda::launch_pool<false>(x, s, out, stream);
}

}  // extern "C"
