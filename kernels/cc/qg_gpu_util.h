// Helpers of the DEVICE_GPU kernels (kernels/cc/*_gpu.cc): the op's CUDA stream, a launcher's
// cudaError_t as a TF status, the launchers' epilogue from the validated inputs, and the
// packed-filter cache. Validation is the CPU kernels' (qg_common.h, qg_fused_base.h), so both
// devices accept and refuse the same inputs with the same messages. Only compiled with
// GOOGLE_CUDA.
#ifndef QG_KERNELS_CC_QG_GPU_UTIL_H_
#define QG_KERNELS_CC_QG_GPU_UTIL_H_

#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <initializer_list>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cc/qg_common.h"
#include "kernels/cc/qg_fused_base.h"
#include "kernels/cuda/qg_cuda.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace qg_gpu {

using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;

inline cudaStream_t Stream(OpKernelContext* ctx) {
  return ctx->eigen_device<Eigen::GpuDevice>().stream();
}

inline absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return tensorflow::errors::Internal(what, ": CUDA launch failed: ", cudaGetErrorString(err));
}

// The launchers take int sizes.
inline absl::Status FitsInt(const std::string& op, std::initializer_list<int64_t> dims) {
  for (int64_t d : dims) {
    if (d > std::numeric_limits<int>::max())
      return tensorflow::errors::InvalidArgument(op, ": dimension too large for the GPU: ", d);
  }
  return absl::OkStatus();
}

// The launchers' epilogue from the validated fused-op inputs (qg::ValidateFused).
inline qg_epilogue LauncherEpilogue(const qg::FusedAttrs& attrs, const qg::FusedInputs& in) {
  qg_epilogue ep = {};
  ep.filter_scale = in.filter_scale;
  ep.bias = in.bias;
  ep.min_input = in.in.min;
  ep.max_input = in.in.max;
  ep.min_output = in.out.min;
  ep.max_output = in.out.max;
  ep.activation = attrs.act == qg::Activation::kRelu    ? QG_ACT_RELU
                  : attrs.act == qg::Activation::kRelu6 ? QG_ACT_RELU6
                                                        : QG_ACT_NONE;
  ep.out_type = attrs.float_out ? QG_OUT_FLOAT : QG_OUT_QUINT8;
  ep.summand = in.summand_data;
  ep.min_summand = in.summand.min;
  ep.max_summand = in.summand.max;
  return ep;
}

// The int8 weights [k][n] packed for the implicit GEMM, in device memory.
struct PackedFilter {
  Tensor packed;
};

// Packs the filter as the CPU kernels pack theirs: once per buffer with constant_weights
// (qg::WeightCache), else on every call (one small kernel) since device bytes cannot be
// compared from the host.
class FilterCache {
 public:
  absl::Status Get(OpKernelContext* ctx, const Tensor& filter, int k, int n, bool constant,
                   std::shared_ptr<const PackedFilter>* result) {
    return cache_.GetDevice(filter, {k, n}, constant, [&](PackedFilter* out) -> absl::Status {
      const size_t bytes = qg_cuda_packed_filter_bytes(k, n);
      TF_RETURN_IF_ERROR(ctx->allocate_temp(
          tensorflow::DT_INT8, tensorflow::TensorShape({static_cast<int64_t>(bytes)}),
          &out->packed));
      return CudaStatus(
          qg_cuda_pack_filter(
              reinterpret_cast<const int8_t*>(filter.flat<tensorflow::qint8>().data()), k, n,
              out->packed.flat<tensorflow::int8>().data(), Stream(ctx)),
          "packing the filter");
    }, result);
  }

 private:
  qg::WeightCache<PackedFilter> cache_;
};

}  // namespace qg_gpu

#endif  // GOOGLE_CUDA
#endif  // QG_KERNELS_CC_QG_GPU_UTIL_H_
