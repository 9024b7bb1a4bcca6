// Shared helpers of the Qg kernels: range validation (kernels/OPS.md "Number formats"),
// attribute and shape checks. The CPU kernels, the GPU kernels (*_gpu.cc) and the shape
// functions (ops/qg_ops.cc) all validate here, so the devices accept the same inputs. Every
// check fails with InvalidArgument naming the input or attribute.
#ifndef QG_KERNELS_CC_QG_COMMON_H_
#define QG_KERNELS_CC_QG_COMMON_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gemm/qg_epilogue.h"
#include "gemm/qg_gemm.h"
#include "qg_shape.h"
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

// A per-channel float vector (filter_scale, bias): rank 1, length `channels`, and finite when
// its values are in host memory (a GPU kernel's are not; they are never read here then).
inline ::tensorflow::Status ChannelVector(::tensorflow::OpKernelContext* ctx, int index,
                                          const char* name, int64_t channels,
                                          bool values_on_host, const float** data) {
  const ::tensorflow::Tensor& t = ctx->input(index);
  if (t.dims() != 1 || t.dim_size(0) != channels) {
    return ::tensorflow::errors::InvalidArgument(
        ctx->op_kernel().type_string(), ": ", name, " must have shape [", channels,
        "] (one per output channel), got ", t.shape().DebugString());
  }
  const float* p = t.flat<float>().data();
  for (int64_t i = 0; values_on_host && i < channels; ++i) {
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

// strides / dilations / ksize: four ints, N and C equal to 1, H and W >= 1. A template so that
// the kernels (OpKernelConstruction) and the shape functions (InferenceContext) share it; `op`
// prefixes the message when not empty.
template <typename Ctx, typename Int>
::tensorflow::Status Nhwc4(Ctx* ctx, const std::string& op, const char* name, Int* h, Int* w) {
  std::vector<int32_t> v;
  TF_RETURN_IF_ERROR(ctx->GetAttr(name, &v));
  if (!IsNhwcWindowAttr(v.data(), static_cast<int64_t>(v.size()))) {
    return ::tensorflow::errors::InvalidArgument(
        op, op.empty() ? "" : ": ", "attribute ", name,
        " must be 4 ints [1, h, w, 1] with h, w >= 1 (N and C must be 1)");
  }
  *h = v[1];
  *w = v[2];
  return ::tensorflow::OkStatus();
}

// padding: SAME or VALID (the op definitions allow nothing else; checked all the same).
template <typename Ctx>
::tensorflow::Status PaddingAttr(Ctx* ctx, const std::string& op, bool* same) {
  std::string padding;
  TF_RETURN_IF_ERROR(ctx->GetAttr("padding", &padding));
  if (padding != "SAME" && padding != "VALID") {
    return ::tensorflow::errors::InvalidArgument(op, op.empty() ? "" : ": ",
                                                 "padding must be SAME or VALID");
  }
  *same = padding == "SAME";
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

// QgRequantize's input_scale (input 1): [] or [1] (one scale) or [C], C the last dimension of
// the input (input 0). channels: that C (1 for a scalar input); per_channel: a scale per channel.
inline ::tensorflow::Status RequantizeScaleShape(::tensorflow::OpKernelContext* ctx,
                                                 int64_t* channels, bool* per_channel) {
  const ::tensorflow::Tensor& in = ctx->input(0);
  const ::tensorflow::Tensor& sc = ctx->input(1);
  *channels = in.dims() == 0 ? 1 : in.dim_size(in.dims() - 1);
  *per_channel = sc.dims() == 1 && !(sc.dim_size(0) == 1 && *channels != 1);
  if (!(sc.dims() == 0 ||
        (sc.dims() == 1 && (sc.dim_size(0) == *channels || sc.dim_size(0) == 1)))) {
    return ::tensorflow::errors::InvalidArgument(
        ctx->op_kernel().type_string(), ": input_scale must be a scalar or [", *channels,
        "] (the input's last dimension), got ", sc.shape().DebugString());
  }
  return ::tensorflow::OkStatus();
}

// An average pool sums a window's bytes in int32: 255 * 8,421,504 < 2^31.
constexpr int64_t kMaxPoolTaps = 8421504;

// QgQuantizedMaxPool / QgQuantizedAvgPool attributes and geometry, for the CPU and the GPU
// kernels alike.
class PoolAttrs {
 public:
  ::tensorflow::Status Read(::tensorflow::OpKernelConstruction* ctx) {
    TF_RETURN_IF_ERROR(Nhwc4(ctx, ctx->def().op(), "ksize", &kh_, &kw_));
    TF_RETURN_IF_ERROR(Nhwc4(ctx, ctx->def().op(), "strides", &sh_, &sw_));
    return PaddingAttr(ctx, ctx->def().op(), &same_);
  }

  // Input 0 ([N,H,W,C]) and its range (inputs 1, 2). An average pool's window, clipped to the
  // input (ksize may be 2^31 - 1), must keep its int32 sum exact when there is an output.
  ::tensorflow::Status Geometry(::tensorflow::OpKernelContext* ctx, bool max, PoolShape* s,
                                Range* r) const {
    const ::tensorflow::Tensor& in = ctx->input(0);
    const std::string& op = ctx->op_kernel().type_string();
    if (in.dims() != 4) {
      return ::tensorflow::errors::InvalidArgument(op, ": input must be rank 4 (NHWC), got ",
                                                   in.shape().DebugString());
    }
    TF_RETURN_IF_ERROR(RangeInput(ctx, 1, 2, "min_input", "max_input", r));
    s->n = in.dim_size(0), s->h = in.dim_size(1), s->w = in.dim_size(2), s->c = in.dim_size(3);
    s->kh = kh_, s->kw = kw_, s->sh = sh_, s->sw = sw_;
    WindowOutputSize(s->h, kh_, sh_, 1, same_, &s->oh, &s->ph);  // cannot fail (Read)
    WindowOutputSize(s->w, kw_, sw_, 1, same_, &s->ow, &s->pw);
    const int64_t eh = std::min<int64_t>(kh_, s->h), ew = std::min<int64_t>(kw_, s->w);
    if (!max && s->n * s->oh * s->ow != 0 && s->c != 0 && eh * ew > kMaxPoolTaps) {
      return ::tensorflow::errors::InvalidArgument(op, ": a window reads up to ", eh * ew,
                                                   " pixels; at most ", kMaxPoolTaps,
                                                   " keep the int32 sums exact");
    }
    return ::tensorflow::OkStatus();
  }

 private:
  int kh_ = 1, kw_ = 1, sh_ = 1, sw_ = 1;
  bool same_ = true;
};

// QgQuantizedConcat's inputs (values, mins, maxes, min_output, max_output), validated for the
// CPU and the GPU kernels alike: each input's range, the output's shape, and the output
// viewed as [outer][axis][inner].
struct ConcatInputs {
  int axis = 0;
  ::tensorflow::TensorShape out_shape;
  Range out;
  std::vector<Range> ranges;
  int64_t outer = 1, inner = 1;
};

inline ::tensorflow::Status ValidateConcat(::tensorflow::OpKernelContext* ctx, int axis_attr,
                                           ConcatInputs* c) {
  namespace errors = ::tensorflow::errors;
  const std::string& op = ctx->op_kernel().type_string();
  ::tensorflow::OpInputList values, mins, maxes;
  TF_RETURN_IF_ERROR(ctx->input_list("values", &values));
  TF_RETURN_IF_ERROR(ctx->input_list("mins", &mins));
  TF_RETURN_IF_ERROR(ctx->input_list("maxes", &maxes));
  const int n = values.size();
  TF_RETURN_IF_ERROR(RangeInput(ctx, 3 * n, 3 * n + 1, "min_output", "max_output", &c->out));
  const ::tensorflow::Tensor& first = values[0];
  const int rank = first.dims();
  if (rank < 1) return errors::InvalidArgument(op, ": values[0] must have rank >= 1");
  if (axis_attr < -rank || axis_attr >= rank) {
    return errors::InvalidArgument(op, ": axis ", axis_attr, " is out of range for rank ", rank);
  }
  c->axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
  c->out_shape = first.shape();
  c->ranges.resize(n);
  int64_t total = 0;
  for (int i = 0; i < n; ++i) {
    const ::tensorflow::Tensor& v = values[i];
    if (v.dims() != rank) {
      return errors::InvalidArgument(op, ": values[", i, "] has rank ", v.dims(),
                                     ", values[0] has ", rank);
    }
    for (int d = 0; d < rank; ++d) {
      if (d != c->axis && v.dim_size(d) != first.dim_size(d)) {
        return errors::InvalidArgument(op, ": values[", i, "] has shape ",
                                       v.shape().DebugString(), ", values[0] has ",
                                       first.shape().DebugString());
      }
    }
    total += v.dim_size(c->axis);
    const std::string min_name = "mins[" + std::to_string(i) + "]";
    const std::string max_name = "maxes[" + std::to_string(i) + "]";
    if (mins[i].NumElements() != 1 || maxes[i].NumElements() != 1) {
      return errors::InvalidArgument(op, ": ", min_name, " and ", max_name,
                                     " must be float scalars");
    }
    TF_RETURN_IF_ERROR(MakeRange(op, min_name.c_str(), max_name.c_str(),
                                 mins[i].flat<float>()(0), maxes[i].flat<float>()(0),
                                 &c->ranges[i]));
  }
  c->out_shape.set_dim(c->axis, total);
  c->outer = 1;
  c->inner = 1;
  if (c->out_shape.num_elements() == 0) return ::tensorflow::OkStatus();  // no products then
  for (int d = 0; d < c->axis; ++d) c->outer *= c->out_shape.dim_size(d);
  for (int d = c->axis + 1; d < rank; ++d) c->inner *= c->out_shape.dim_size(d);
  return ::tensorflow::OkStatus();
}

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_COMMON_H_
