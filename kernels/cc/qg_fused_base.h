// Shared by the CPU conv, MatMul and depthwise kernels: the fused-op base class (inputs 2..7,
// the summand and the epilogue, kernels/OPS.md), conv attributes and geometry, and the cache of
// prepared weights.
#ifndef QG_KERNELS_CC_QG_FUSED_BASE_H_
#define QG_KERNELS_CC_QG_FUSED_BASE_H_

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "qg_common.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/types.h"

namespace qg {
namespace fused_base_internal {
using ::tensorflow::DT_FLOAT;
using ::tensorflow::DT_QUINT8;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

// Weights prepared for a kernel (packed for the GEMM, rearranged for the depthwise loop),
// reused while the weights are unchanged: for small M preparing them would cost as much as
// the product itself. With constant_weights (the quantizer sets it: the filter is a graph
// Const, which hands out the same immutable buffer every run) "unchanged" means the same
// buffer, which the cache holds a reference to so that it cannot be freed and reused; else the
// bytes are compared (24 MB a run for Inception-v3, about 2% of its time). `key` is what else
// the prepared form depends on (shape, layout choice); prepare(bytes, out) builds it.
template <typename Prepared>
class WeightCache {
 public:
  // Weights in host memory (CPU kernels): prepare(const int8_t* bytes, Prepared* out).
  template <typename Prepare>
  std::shared_ptr<const Prepared> Get(const Tensor& weights, const std::vector<int64_t>& key,
                                      bool constant, const Prepare& prepare) {
    const auto data = weights.tensor_data();
    const int8_t* w = reinterpret_cast<const int8_t*>(data.data());
    const size_t bytes = data.size();
    std::lock_guard<std::mutex> lock(mu_);
    if (Hit(weights, key, constant, w, bytes)) return prepared_;
    auto fresh = std::make_shared<Prepared>();
    prepare(w, fresh.get());
    Keep(weights, key, constant, w, bytes, fresh);
    return fresh;
  }

  // Weights in device memory (GPU kernels): their bytes cannot be compared from the host, so
  // only constant weights (the same buffer) are kept; others are prepared on every call.
  // prepare(Prepared* out) returns a Status; a failed preparation is not kept.
  template <typename Prepare>
  ::tensorflow::Status GetDevice(const Tensor& weights, const std::vector<int64_t>& key,
                                 bool constant, const Prepare& prepare,
                                 std::shared_ptr<const Prepared>* result) {
    std::lock_guard<std::mutex> lock(mu_);
    if (constant && Hit(weights, key, true, nullptr, 0)) {
      *result = prepared_;
      return ::tensorflow::OkStatus();
    }
    auto fresh = std::make_shared<Prepared>();
    TF_RETURN_IF_ERROR(prepare(fresh.get()));
    if (constant) Keep(weights, key, true, nullptr, 0, fresh);
    *result = fresh;
    return ::tensorflow::OkStatus();
  }

 private:
  bool Hit(const Tensor& weights, const std::vector<int64_t>& key, bool constant,
           const int8_t* w, size_t bytes) const {
    if (!prepared_ || key_ != key) return false;
    if (constant) return held_.IsInitialized() && held_.SharesBufferWith(weights);
    return copy_.size() == bytes && std::memcmp(copy_.data(), w, bytes) == 0;
  }

  void Keep(const Tensor& weights, const std::vector<int64_t>& key, bool constant,
            const int8_t* w, size_t bytes, std::shared_ptr<const Prepared> fresh) {
    key_ = key;
    if (constant) {
      held_ = weights;
      copy_.clear();
    } else {
      held_ = Tensor();
      copy_.assign(w, w + bytes);
    }
    prepared_ = std::move(fresh);
  }

  std::mutex mu_;
  Tensor held_;
  std::vector<int64_t> key_;
  std::vector<int8_t> copy_;
  std::shared_ptr<const Prepared> prepared_;
};

// Inputs shared by the conv, depthwise and matmul kernels: ranges, per-channel vectors,
// summand, and the output tensor with its epilogue.
struct FusedArgs {
  Range in, out;
  Epilogue epi;
  Tensor* output = nullptr;
};

// Attributes of the fused ops (conv, depthwise, MatMul) on either device: activation,
// out_type, num_summand (0 or 1), constant_weights.
struct FusedAttrs {
  explicit FusedAttrs(OpKernelConstruction* ctx) {
    OP_REQUIRES_OK(ctx, ActivationAttr(ctx, &act));
    ::tensorflow::DataType out_type;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("out_type", &out_type));
    OP_REQUIRES(ctx, out_type == DT_QUINT8 || out_type == DT_FLOAT,
                errors::InvalidArgument(ctx->def().op(), ": out_type must be quint8 or float"));
    float_out = out_type == DT_FLOAT;
    if (ctx->HasAttr("constant_weights")) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("constant_weights", &constant_weights));
    }
    if (ctx->HasAttr("num_summand")) {
      OP_REQUIRES_OK(ctx, ctx->GetAttr("num_summand", &num_summand));
      OP_REQUIRES(ctx, num_summand == 0 || num_summand == 1,
                  errors::InvalidArgument(ctx->def().op(), ": num_summand must be 0 or 1"));
    }
  }

  Activation act = Activation::kNone;
  bool float_out = false;
  int num_summand = 0;
  bool constant_weights = false;
};

// Inputs 2..7 and the summand (8..10) of a fused op, validated. On the GPU the vectors and the
// summand are device pointers (never read here); the ranges live in host memory on both.
struct FusedInputs {
  Range in, out, summand;
  const float* filter_scale = nullptr;
  const float* bias = nullptr;
  const uint8_t* summand_data = nullptr;  // null without a summand
};

// Validates inputs 2..7 (+ summand) for `channels` output channels and an output of `shape`,
// in the order the CPU kernels always have. values_on_host: filter_scale and bias can be read
// (checked finite); on the GPU they are device memory and only their shapes are checked.
inline bool ValidateFused(OpKernelContext* ctx, const FusedAttrs& attrs, int64_t channels,
                          const TensorShape& shape, const char* in_name_min,
                          const char* in_name_max, const char* scale_name, bool values_on_host,
                          FusedInputs* in) {
  QG_REQUIRES_OK(ctx, false, ChannelVector(ctx, 2, scale_name, channels, values_on_host,
                                           &in->filter_scale));
  QG_REQUIRES_OK(ctx, false, ChannelVector(ctx, 3, "bias", channels, values_on_host, &in->bias));
  QG_REQUIRES_OK(ctx, false, RangeInput(ctx, 4, 5, in_name_min, in_name_max, &in->in));
  QG_REQUIRES_OK(ctx, false, RangeInput(ctx, 6, 7, "min_output", "max_output", &in->out));
  if (attrs.num_summand == 1) {
    const Tensor& s = ctx->input(8);
    QG_REQUIRES(ctx, false, s.shape() == shape,
                errors::InvalidArgument(ctx->op_kernel().type_string(), ": summand has shape ",
                                        s.shape().DebugString(), ", the output has ",
                                        shape.DebugString()));
    QG_REQUIRES_OK(ctx, false, RangeInput(ctx, 9, 10, "min_summand", "max_summand",
                                          &in->summand));
    in->summand_data = reinterpret_cast<const uint8_t*>(s.tensor_data().data());
  }
  return true;
}

class FusedBase : public OpKernel {
 public:
  explicit FusedBase(OpKernelConstruction* ctx) : OpKernel(ctx), fused_(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
  }

 protected:
  // Validates inputs 2..7 (+ summand) for `channels` output channels and allocates `shape`.
  bool Prepare(OpKernelContext* ctx, int64_t channels, const TensorShape& shape,
               const char* in_name_min, const char* in_name_max, const char* scale_name,
               FusedArgs* args) {
    FusedInputs in;
    if (!ValidateFused(ctx, fused_, channels, shape, in_name_min, in_name_max, scale_name,
                       /*values_on_host=*/true, &in)) {
      return false;
    }
    args->in = in.in;
    args->out = in.out;
    args->epi.Init(args->in.scale, in.filter_scale, in.bias, channels, fused_.float_out,
                   args->out.scale, args->out.zero_point, fused_.act);
    if (in.summand_data != nullptr) {
      args->epi.SetSummand(in.summand_data, in.summand.scale, in.summand.zero_point,
                           args->out.scale);
    }
    QG_REQUIRES_OK(ctx, false, ctx->allocate_output(0, shape, &args->output));
    QG_REQUIRES_OK(ctx, false, EchoRange(ctx, args->out));
    return true;
  }

  void* OutData(const FusedArgs& args) const {
    return const_cast<char*>(args.output->tensor_data().data());
  }

  FusedAttrs fused_;
};

// Conv attributes and geometry shared by the conv and depthwise kernels.
struct ConvGeometry {
  int64_t n, h, w, c, kh, kw, oh, ow, ph, pw;
  int sh, sw, dh, dw;
};

// The kh x kw taps of output pixel (b, oy, ox), tap = i * kw + j: inside(tap, pixel) for a
// tap on input pixel `pixel` (n-h-w index), outside(tap) for one in the padding. The window
// loop of the conv's border windows (byte kernel: copy, zero_point outside; int16 kernel:
// widen to x - zero_point, 0 outside). Not the portable depthwise loop: measured 1.4x slower
// through it (multiplier 2, 28x28x64), it keeps its own loop that skips rows outside.
template <typename Inside, typename Outside>
inline void ForEachTap(const ConvGeometry& g, int64_t b, int64_t oy, int64_t ox,
                       const Inside& inside, const Outside& outside) {
  const int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t y = y0 + i * g.dh;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t xx = x0 + j * g.dw;
      if (y < 0 || y >= g.h || xx < 0 || xx >= g.w) {
        outside(i * g.kw + j);
      } else {
        inside(i * g.kw + j, (b * g.h + y) * g.w + xx);
      }
    }
  }
}

class ConvAttrs {
 public:
  explicit ConvAttrs(OpKernelConstruction* ctx) {
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, ctx->def().op(), "strides", &sh_, &sw_));
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, ctx->def().op(), "dilations", &dh_, &dw_));
    OP_REQUIRES_OK(ctx, PaddingAttr(ctx, ctx->def().op(), &same_));
  }

  // input [N,H,W,C] and filter [kh,kw,C,X] ranks and channel counts, the window's size, and
  // the output size (CPU and GPU kernels alike).
  bool Geometry(OpKernelContext* ctx, ConvGeometry* g) const {
    const Tensor& x = ctx->input(0);
    const Tensor& f = ctx->input(1);
    const std::string& op = ctx->op_kernel().type_string();
    QG_REQUIRES(ctx, false, x.dims() == 4,
                          errors::InvalidArgument(op, ": input must be rank 4 (NHWC), got ",
                                                  x.shape().DebugString()));
    QG_REQUIRES(ctx, false, f.dims() == 4,
                          errors::InvalidArgument(op, ": filter must be rank 4, got ",
                                                  f.shape().DebugString()));
    QG_REQUIRES(ctx, false, f.dim_size(2) == x.dim_size(3),
                          errors::InvalidArgument(op, ": filter has ", f.dim_size(2),
                                                  " input channels, the input has ",
                                                  x.dim_size(3)));
    QG_REQUIRES(ctx, false, f.dim_size(0) >= 1 && f.dim_size(1) >= 1,
                          errors::InvalidArgument(op, ": filter window is empty: ",
                                                  f.shape().DebugString()));
    // The window's taps bound every size computed below (and the accumulator's depth).
    QG_REQUIRES_OK(ctx, false, CheckReduction(op, "filter height x width",
                                              std::min(f.dim_size(0), kMaxReduction + 1) *
                                                  std::min(f.dim_size(1), kMaxReduction + 1)));
    g->n = x.dim_size(0);
    g->h = x.dim_size(1);
    g->w = x.dim_size(2);
    g->c = x.dim_size(3);
    g->kh = f.dim_size(0);
    g->kw = f.dim_size(1);
    g->sh = sh_;
    g->sw = sw_;
    g->dh = dh_;
    g->dw = dw_;
    // Cannot fail: sizes are >= 0, the window non-empty, strides and dilations >= 1.
    WindowOutputSize(g->h, g->kh, sh_, dh_, same_, &g->oh, &g->ph);
    WindowOutputSize(g->w, g->kw, sw_, dw_, same_, &g->ow, &g->pw);
    return true;
  }

 private:
  int sh_ = 1, sw_ = 1, dh_ = 1, dw_ = 1;
  bool same_ = true;
};

// MatMul's a [M, K] and b [K, N] (CPU and GPU kernels alike).
inline bool MatMulGeometry(OpKernelContext* ctx, int64_t* m, int64_t* k, int64_t* n) {
  const Tensor& a = ctx->input(0);
  const Tensor& b = ctx->input(1);
  const std::string& op = ctx->op_kernel().type_string();
  QG_REQUIRES(ctx, false, a.dims() == 2,
              errors::InvalidArgument(op, ": a must be rank 2 [M, K], got ",
                                      a.shape().DebugString()));
  QG_REQUIRES(ctx, false, b.dims() == 2,
              errors::InvalidArgument(op, ": b must be rank 2 [K, N], got ",
                                      b.shape().DebugString()));
  QG_REQUIRES(ctx, false, a.dim_size(1) == b.dim_size(0),
              errors::InvalidArgument(op, ": a has ", a.dim_size(1), " columns, b has ",
                                      b.dim_size(0), " rows"));
  *m = a.dim_size(0);
  *k = a.dim_size(1);
  *n = b.dim_size(1);
  return true;
}

}  // namespace fused_base_internal

using fused_base_internal::ConvAttrs;
using fused_base_internal::ConvGeometry;
using fused_base_internal::FusedArgs;
using fused_base_internal::FusedAttrs;
using fused_base_internal::FusedBase;
using fused_base_internal::ForEachTap;
using fused_base_internal::FusedInputs;
using fused_base_internal::MatMulGeometry;
using fused_base_internal::ValidateFused;
using fused_base_internal::WeightCache;

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_FUSED_BASE_H_
