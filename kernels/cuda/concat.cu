// QgQuantizedConcat: inputs viewed as [outer][axis_i][inner] are copied into the output
// [outer][sum axis_i][inner], each re-mapped to the output range:
//   v = (float)(q - zp_i) * (scale_i / scale_out) + zp_out,  q = clamp(rint(v), 0, 255).
// One launch per input (a graph's concat has a handful of inputs).
#include <cuda_runtime.h>

#include "qg_common.cuh"

namespace qg_cuda {
namespace {

__global__ void concat_one_kernel(const uint8_t* __restrict__ in, int64_t outer, int64_t slice,
                                  int64_t out_slice, int64_t offset, int zp_in, float ratio,
                                  float zp_out, bool same_range, uint8_t* __restrict__ out) {
  int64_t total = outer * slice;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t o = i / slice, j = i % slice;
    uint8_t q = in[i];
    if (!same_range) {
      float v = rintf(__fadd_rn(__fmul_rn(static_cast<float>(static_cast<int>(q) - zp_in), ratio),
                                zp_out));
      q = v < 0.0f ? uint8_t(0) : (v > 255.0f ? uint8_t(255) : static_cast<uint8_t>(v));
    }
    out[o * out_slice + offset + j] = q;
  }
}

}  // namespace
}  // namespace qg_cuda

extern "C" cudaError_t qg_cuda_concat(const uint8_t* const* inputs, const int64_t* axis_sizes,
                                      const float* mins, const float* maxes, int n_inputs,
                                      int64_t outer, int64_t inner, float min_output,
                                      float max_output, uint8_t* out, cudaStream_t stream) {
  if (n_inputs < 1 || outer < 0 || inner < 0) return cudaErrorInvalidValue;
  int64_t axis_total = 0;
  for (int i = 0; i < n_inputs; ++i) {
    if (axis_sizes[i] < 0) return cudaErrorInvalidValue;
    axis_total += axis_sizes[i];
  }
  qg_cuda::Range ro = qg_cuda::range_params(min_output, max_output);
  int64_t offset = 0;
  for (int i = 0; i < n_inputs; ++i) {
    int64_t slice = axis_sizes[i] * inner;
    if (outer * slice > 0) {
      qg_cuda::Range ri = qg_cuda::range_params(mins[i], maxes[i]);
      // Same scale and zero point: the formula gives q back exactly, so copy.
      bool same = ri.scale == ro.scale && ri.zero_point == ro.zero_point;
      qg_cuda::concat_one_kernel<<<qg_cuda::blocks_for(outer * slice), qg_cuda::kThreads1D, 0, stream>>>(
          inputs[i], outer, slice, axis_total * inner, offset, ri.zero_point,
          ri.scale / ro.scale, static_cast<float>(ro.zero_point), same, out);
      cudaError_t err = cudaGetLastError();
      if (err != cudaSuccess) return err;
    }
    offset += slice;
  }
  return cudaSuccess;
}
