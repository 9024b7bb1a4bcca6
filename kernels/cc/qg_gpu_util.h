// Helpers shared by the DEVICE_GPU kernels (kernels/cc/*_gpu.cc): reading and validating the
// host-memory range scalars and attributes as kernels/OPS.md specifies, the op's CUDA stream,
// and turning a launcher's cudaError_t into a TF status. Only compiled with GOOGLE_CUDA.
#ifndef QG_KERNELS_CC_QG_GPU_UTIL_H_
#define QG_KERNELS_CC_QG_GPU_UTIL_H_

#if GOOGLE_CUDA
#define EIGEN_USE_GPU

#include <cmath>
#include <string>
#include <vector>

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

// A float32 scalar input of shape [], read from host memory.
inline absl::Status Scalar(OpKernelContext* ctx, const char* name, float* value) {
  const Tensor* t;
  TF_RETURN_IF_ERROR(ctx->input(name, &t));
  if (!tensorflow::TensorShapeUtils::IsScalar(t->shape()))
    return tensorflow::errors::InvalidArgument(name, " must be a scalar, got shape ",
                                               t->shape().DebugString());
  *value = t->scalar<float>()();
  return absl::OkStatus();
}

// min <= max, both finite, max > min (OPS.md: a range with max == min is invalid).
inline absl::Status CheckRange(const std::string& what, float min_v, float max_v) {
  if (!std::isfinite(min_v) || !std::isfinite(max_v))
    return tensorflow::errors::InvalidArgument(what, " range must be finite, got [", min_v, ", ",
                                               max_v, "]");
  if (!(max_v > min_v))
    return tensorflow::errors::InvalidArgument(what, " range must have max > min, got [", min_v,
                                               ", ", max_v, "]");
  return absl::OkStatus();
}

// Reads min_<name> / max_<name>-style scalar pairs and checks them.
inline absl::Status Range(OpKernelContext* ctx, const char* min_name, const char* max_name,
                          float* min_v, float* max_v) {
  TF_RETURN_IF_ERROR(Scalar(ctx, min_name, min_v));
  TF_RETURN_IF_ERROR(Scalar(ctx, max_name, max_v));
  return CheckRange(std::string(min_name) + "/" + max_name, *min_v, *max_v);
}

// Echoes a range into the op's output_min / output_max (host memory).
inline absl::Status EchoRange(OpKernelContext* ctx, float min_v, float max_v) {
  Tensor* t;
  TF_RETURN_IF_ERROR(ctx->allocate_output("output_min", tensorflow::TensorShape({}), &t));
  t->scalar<float>()() = min_v;
  TF_RETURN_IF_ERROR(ctx->allocate_output("output_max", tensorflow::TensorShape({}), &t));
  t->scalar<float>()() = max_v;
  return absl::OkStatus();
}

// An NHWC 4-vector attribute (strides, dilations, ksize): N and C must be 1, H and W >= 1.
inline absl::Status Nhwc4(OpKernelConstruction* ctx, const char* name, int* h, int* w) {
  std::vector<tensorflow::int32> v;
  TF_RETURN_IF_ERROR(ctx->GetAttr(name, &v));
  if (v.size() != 4)
    return tensorflow::errors::InvalidArgument(name, " must have 4 entries, got ", v.size());
  if (v[0] != 1 || v[3] != 1)
    return tensorflow::errors::InvalidArgument(name, " must be 1 in the batch and channel "
                                                     "dimensions");
  if (v[1] < 1 || v[2] < 1)
    return tensorflow::errors::InvalidArgument(name, " must be >= 1");
  *h = v[1];
  *w = v[2];
  return absl::OkStatus();
}

inline absl::Status Padding(OpKernelConstruction* ctx, bool* same) {
  std::string padding;
  TF_RETURN_IF_ERROR(ctx->GetAttr("padding", &padding));
  if (padding != "SAME" && padding != "VALID")
    return tensorflow::errors::InvalidArgument("padding must be SAME or VALID, got ", padding);
  *same = padding == "SAME";
  return absl::OkStatus();
}

inline absl::Status Activation(OpKernelConstruction* ctx, qg_activation* act) {
  std::string a;
  TF_RETURN_IF_ERROR(ctx->GetAttr("activation", &a));
  if (a == "none") *act = QG_ACT_NONE;
  else if (a == "relu") *act = QG_ACT_RELU;
  else if (a == "relu6") *act = QG_ACT_RELU6;
  else return tensorflow::errors::InvalidArgument("activation must be none, relu or relu6, got ", a);
  return absl::OkStatus();
}

inline absl::Status OutType(OpKernelConstruction* ctx, qg_out_type* out) {
  tensorflow::DataType t;
  TF_RETURN_IF_ERROR(ctx->GetAttr("out_type", &t));
  if (t == tensorflow::DT_QUINT8) *out = QG_OUT_QUINT8;
  else if (t == tensorflow::DT_FLOAT) *out = QG_OUT_FLOAT;
  else return tensorflow::errors::InvalidArgument("out_type must be quint8 or float");
  return absl::OkStatus();
}

inline absl::Status CheckRank(const Tensor& t, int rank, const char* name) {
  if (t.dims() != rank)
    return tensorflow::errors::InvalidArgument(name, " must have rank ", rank, ", got shape ",
                                               t.shape().DebugString());
  return absl::OkStatus();
}

// A per-output-channel float vector (filter_scale, bias) of length n.
inline absl::Status CheckVector(const Tensor& t, int64_t n, const char* name) {
  if (t.dims() != 1 || t.dim_size(0) != n)
    return tensorflow::errors::InvalidArgument(name, " must have shape [", n, "], got ",
                                               t.shape().DebugString());
  return absl::OkStatus();
}

// The optional summand (num_summand 0 or 1): quint8 of the output's shape, with its range.
inline absl::Status Summand(OpKernelContext* ctx, const tensorflow::TensorShape& out_shape,
                            qg_epilogue* ep) {
  tensorflow::OpInputList values, mins, maxes;
  TF_RETURN_IF_ERROR(ctx->input_list("summand", &values));
  TF_RETURN_IF_ERROR(ctx->input_list("min_summand", &mins));
  TF_RETURN_IF_ERROR(ctx->input_list("max_summand", &maxes));
  ep->summand = nullptr;
  if (values.size() == 0) return absl::OkStatus();
  if (values.size() != 1 || mins.size() != 1 || maxes.size() != 1)
    return tensorflow::errors::InvalidArgument("at most one summand is supported");
  if (values[0].shape() != out_shape)
    return tensorflow::errors::InvalidArgument("summand must have the output's shape ",
                                               out_shape.DebugString(), ", got ",
                                               values[0].shape().DebugString());
  if (!tensorflow::TensorShapeUtils::IsScalar(mins[0].shape()) ||
      !tensorflow::TensorShapeUtils::IsScalar(maxes[0].shape()))
    return tensorflow::errors::InvalidArgument("min_summand/max_summand must be scalars");
  ep->min_summand = mins[0].scalar<float>()();
  ep->max_summand = maxes[0].scalar<float>()();
  TF_RETURN_IF_ERROR(CheckRange("min_summand/max_summand", ep->min_summand, ep->max_summand));
  ep->summand = reinterpret_cast<const uint8_t*>(values[0].flat<tensorflow::quint8>().data());
  return absl::OkStatus();
}

// The int8 weights [k][n] packed into a temporary buffer for the implicit GEMM. Packed on every
// call (a few microseconds for Inception's largest filter); caching needs a constant filter.
inline absl::Status PackFilter(OpKernelContext* ctx, const Tensor& filter, int k, int n,
                               Tensor* packed) {
  size_t bytes = qg_cuda_packed_filter_bytes(k, n);
  TF_RETURN_IF_ERROR(ctx->allocate_temp(tensorflow::DT_INT8,
                                        tensorflow::TensorShape({static_cast<int64_t>(bytes)}),
                                        packed));
  return CudaStatus(
      qg_cuda_pack_filter(reinterpret_cast<const int8_t*>(filter.flat<tensorflow::qint8>().data()),
                          k, n, packed->flat<tensorflow::int8>().data(), Stream(ctx)),
      "packing the filter");
}

}  // namespace qg_gpu

#endif  // GOOGLE_CUDA
#endif  // QG_KERNELS_CC_QG_GPU_UTIL_H_
