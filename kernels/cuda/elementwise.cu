// QgQuantize, QgDequantize, QgRequantize: one thread per element, grid-stride loops.
#include <cuda_runtime.h>

#include "qg_common.cuh"

namespace qg_cuda {
namespace {

__global__ void quantize_kernel(const float* __restrict__ x, int64_t n, float scale, int zp,
                                uint8_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = rintf(__fdiv_rn(x[i], scale));
    // clamp(rint(x / scale) + zp, 0, 255), clamped in float so huge inputs cannot overflow the
    // int conversion; a NaN input gives code 0.
    float lo = static_cast<float>(-zp), hi = static_cast<float>(255 - zp);
    v = v < lo ? lo : (v > hi ? hi : v);
    out[i] = v == v ? static_cast<uint8_t>(static_cast<int>(v) + zp) : uint8_t(0);
  }
}

__global__ void dequantize_kernel(const uint8_t* __restrict__ q, int64_t n, float scale, int zp,
                                  float* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __fmul_rn(scale, static_cast<float>(static_cast<int>(q[i]) - zp));
}

__global__ void requantize_kernel(const int32_t* __restrict__ acc, int64_t n, int channels,
                                  const float* __restrict__ input_scale, float scale_out,
                                  float zp_out, uint8_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float m = __fdiv_rn(input_scale[channels == 1 ? 0 : i % channels], scale_out);
    float v = rintf(__fadd_rn(__fmul_rn(static_cast<float>(acc[i]), m), zp_out));
    out[i] = v < 0.0f ? uint8_t(0) : (v > 255.0f ? uint8_t(255) : static_cast<uint8_t>(v));
  }
}

}  // namespace
}  // namespace qg_cuda

extern "C" {

cudaError_t qg_cuda_quantize(const float* x, int64_t n, float min_range, float max_range,
                             uint8_t* out, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  qg_cuda::Range r = qg_cuda::range_params(min_range, max_range);
  qg_cuda::quantize_kernel<<<qg_cuda::blocks_for(n), qg_cuda::kThreads1D, 0, stream>>>(x, n, r.scale,
                                                                        r.zero_point, out);
  return cudaGetLastError();
}

cudaError_t qg_cuda_dequantize(const uint8_t* q, int64_t n, float min_range, float max_range,
                               float* out, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  qg_cuda::Range r = qg_cuda::range_params(min_range, max_range);
  qg_cuda::dequantize_kernel<<<qg_cuda::blocks_for(n), qg_cuda::kThreads1D, 0, stream>>>(q, n, r.scale,
                                                                          r.zero_point, out);
  return cudaGetLastError();
}

cudaError_t qg_cuda_requantize(const int32_t* acc, int64_t n, int channels,
                               const float* input_scale, float min_output, float max_output,
                               uint8_t* out, cudaStream_t stream) {
  if (n < 0 || channels < 1) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  qg_cuda::Range r = qg_cuda::range_params(min_output, max_output);
  qg_cuda::requantize_kernel<<<qg_cuda::blocks_for(n), qg_cuda::kThreads1D, 0, stream>>>(
      acc, n, channels, input_scale, r.scale, static_cast<float>(r.zero_point), out);
  return cudaGetLastError();
}

}  // extern "C"
