// Shared helpers of the Qg CPU kernels: range validation (kernels/OPS.md "Number formats"),
// attribute checks and the fused epilogue. Every check fails with InvalidArgument naming the
// input or attribute.
#ifndef QG_KERNELS_CC_QG_COMMON_H_
#define QG_KERNELS_CC_QG_COMMON_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gemm/qg_epilogue.h"
#include "gemm/qg_gemm.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/lib/core/errors.h"

// OP_REQUIRES / OP_REQUIRES_OK for helpers that return VALUE instead of void.
#define QG_REQUIRES_OK(CTX, VALUE, STATUS)      \
  do {                                          \
    ::tensorflow::Status _qg_s(STATUS);         \
    if (!_qg_s.ok()) {                          \
      (CTX)->CtxFailure(__FILE__, __LINE__, _qg_s); \
      return VALUE;                             \
    }                                           \
  } while (0)
#define QG_REQUIRES(CTX, VALUE, EXP, STATUS)             \
  do {                                                   \
    if (!(EXP)) {                                        \
      (CTX)->CtxFailure(__FILE__, __LINE__, (STATUS));   \
      return VALUE;                                      \
    }                                                    \
  } while (0)

namespace qg {

// A quint8 range: scale = (max - min) / 255, zero_point = clamp(rint(-min / scale), 0, 255).
struct Range {
  float min = 0, max = 0, scale = 0;
  int zero_point = 0;
};

inline ::tensorflow::Status ScalarInput(::tensorflow::OpKernelContext* ctx, int index,
                                        const char* name, float* value) {
  const ::tensorflow::Tensor& t = ctx->input(index);
  if (t.NumElements() != 1 || t.dims() > 1) {
    return ::tensorflow::errors::InvalidArgument(ctx->op_kernel().type_string(), ": ", name,
                                                 " must be a float scalar, got shape ",
                                                 t.shape().DebugString());
  }
  *value = t.flat<float>()(0);
  return ::tensorflow::OkStatus();
}

inline ::tensorflow::Status MakeRange(const std::string& op, const char* min_name,
                                      const char* max_name, float mn, float mx, Range* r) {
  if (!std::isfinite(mn) || !std::isfinite(mx)) {
    return ::tensorflow::errors::InvalidArgument(op, ": ", min_name, "/", max_name, " = [", mn,
                                                 ", ", mx, "] is not finite");
  }
  if (mn > mx) {
    return ::tensorflow::errors::InvalidArgument(op, ": ", min_name, " ", mn, " > ", max_name,
                                                 " ", mx);
  }
  if (mn == mx) {
    return ::tensorflow::errors::InvalidArgument(op, ": ", min_name, "/", max_name,
                                                 " is an empty range [", mn, ", ", mx, "]");
  }
  r->min = mn;
  r->max = mx;
  r->scale = (mx - mn) / 255.0f;
  if (!(r->scale > 0.0f) || !std::isfinite(r->scale)) {
    return ::tensorflow::errors::InvalidArgument(op, ": ", min_name, "/", max_name, " = [", mn,
                                                 ", ", mx, "] has no usable scale");
  }
  const float zp = std::nearbyint(-mn / r->scale);
  r->zero_point = static_cast<int>(std::min(std::max(zp, 0.0f), 255.0f));
  return ::tensorflow::OkStatus();
}

inline ::tensorflow::Status RangeInput(::tensorflow::OpKernelContext* ctx, int min_index,
                                       int max_index, const char* min_name,
                                       const char* max_name, Range* r) {
  float mn, mx;
  TF_RETURN_IF_ERROR(ScalarInput(ctx, min_index, min_name, &mn));
  TF_RETURN_IF_ERROR(ScalarInput(ctx, max_index, max_name, &mx));
  return MakeRange(ctx->op_kernel().type_string(), min_name, max_name, mn, mx, r);
}

// Outputs 1 and 2 (output_min, output_max): the range the op's 8-bit output really uses.
inline ::tensorflow::Status EchoRange(::tensorflow::OpKernelContext* ctx, const Range& r) {
  ::tensorflow::Tensor* t = nullptr;
  TF_RETURN_IF_ERROR(ctx->allocate_output(1, ::tensorflow::TensorShape({}), &t));
  t->scalar<float>()() = r.min;
  TF_RETURN_IF_ERROR(ctx->allocate_output(2, ::tensorflow::TensorShape({}), &t));
  t->scalar<float>()() = r.max;
  return ::tensorflow::OkStatus();
}

// A per-channel float vector (filter_scale, bias): rank 1, length `channels`, finite.
inline ::tensorflow::Status ChannelVector(::tensorflow::OpKernelContext* ctx, int index,
                                          const char* name, int64_t channels,
                                          const float** data) {
  const ::tensorflow::Tensor& t = ctx->input(index);
  if (t.dims() != 1 || t.dim_size(0) != channels) {
    return ::tensorflow::errors::InvalidArgument(
        ctx->op_kernel().type_string(), ": ", name, " must have shape [", channels,
        "] (one per output channel), got ", t.shape().DebugString());
  }
  const float* p = t.flat<float>().data();
  for (int64_t i = 0; i < channels; ++i) {
    if (!std::isfinite(p[i])) {
      return ::tensorflow::errors::InvalidArgument(ctx->op_kernel().type_string(), ": ", name,
                                                   "[", i, "] = ", p[i], " is not finite");
    }
  }
  *data = p;
  return ::tensorflow::OkStatus();
}

// Fails kernel construction when QG_CPU_PATH is bad (see gemm/qg_gemm.h).
inline ::tensorflow::Status CheckCpuPath() {
  if (!PathError().empty()) return ::tensorflow::errors::FailedPrecondition(PathError());
  return ::tensorflow::OkStatus();
}

// strides / dilations / ksize: four ints, N and C equal to 1, H and W >= 1.
inline ::tensorflow::Status Nhwc4(::tensorflow::OpKernelConstruction* ctx, const char* name,
                                  int* h, int* w) {
  std::vector<int32_t> v;
  TF_RETURN_IF_ERROR(ctx->GetAttr(name, &v));
  if (v.size() != 4 || v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1) {
    return ::tensorflow::errors::InvalidArgument(
        ctx->def().op(), ": attribute ", name,
        " must be 4 ints [1, h, w, 1] with h, w >= 1 (N and C must be 1)");
  }
  *h = v[1];
  *w = v[2];
  return ::tensorflow::OkStatus();
}

inline ::tensorflow::Status ActivationAttr(::tensorflow::OpKernelConstruction* ctx,
                                           Activation* act) {
  std::string s;
  TF_RETURN_IF_ERROR(ctx->GetAttr("activation", &s));
  if (s == "none") {
    *act = Activation::kNone;
  } else if (s == "relu") {
    *act = Activation::kRelu;
  } else if (s == "relu6") {
    *act = Activation::kRelu6;
  } else {
    return ::tensorflow::errors::InvalidArgument(ctx->def().op(), ": activation '", s,
                                                 "' is not none, relu or relu6");
  }
  return ::tensorflow::OkStatus();
}

// The int32 accumulator is exact while every sum fits: |q - zero_point| <= 255 and |w| <= 128
// (qint8), so K <= (2^31 - 1) / (255 * 128) = 65,793 taps x channels (kernels/OPS.md). A deeper
// reduction is refused rather than wrapped into a wrong result.
constexpr int64_t kMaxReduction = 65793;

inline ::tensorflow::Status CheckReduction(const std::string& op, const char* what, int64_t k) {
  if (k > kMaxReduction) {
    return ::tensorflow::errors::InvalidArgument(
        op, ": ", what, " = ", k, " exceeds ", kMaxReduction,
        ", the most the int32 accumulator sums exactly");
  }
  return ::tensorflow::OkStatus();
}

// Taps [*lo, *hi) of a window of k taps (stride 1 between taps) starting at input position
// `start` that fall inside [0, size): a pool then visits only those, however large k is.
inline void ClipWindow(int64_t start, int64_t k, int64_t size, int64_t* lo, int64_t* hi) {
  *lo = std::min(std::max<int64_t>(-start, 0), k);
  *hi = std::max(*lo, std::min(k, size - start));
}

// Output size and leading padding of one spatial dimension (TF's SAME / VALID). k is at most
// kMaxReduction (checked before) and dilation below 2^31, so nothing here overflows int64.
inline void OutSize(int64_t in, int64_t k, int stride, int dilation, bool same, int64_t* out,
                    int64_t* pad_before) {
  const int64_t eff = static_cast<int64_t>(k - 1) * dilation + 1;
  if (same) {
    *out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>((*out - 1) * stride + eff - in, 0);
    *pad_before = total / 2;
  } else {
    *out = in >= eff ? (in - eff) / stride + 1 : 0;
    *pad_before = 0;
  }
}

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_COMMON_H_
