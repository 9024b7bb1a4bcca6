// CPU kernels of QgQuantize, QgDequantize, QgRequantize and QgCpuPath (kernels/OPS.md).
#include "qg_common.h"
#include "qg_parallel.h"
#include "qg_quantize_simd.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_types.h"
#include "tensorflow/core/platform/tstring.h"

namespace qg {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

// The element loops take plain arguments, not a lambda's captures: through captures the
// stores to q (uint8_t, which may alias anything) reload every capture each element and keep
// the loop scalar.
// q = clamp(rint(x / scale), lo, hi) + zp
void QuantizeSpan(const float* x, uint8_t* q, int64_t n, float scale, float lo, float hi,
                  int zp) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = ClampNanLow(v, lo, hi);  // NaN -> lo (code 0)
    q[i] = static_cast<uint8_t>(static_cast<int>(RoundHalfEven(v)) + zp);
  }
}

// q[i] = clamp(rint(acc[i] * m[channel] + zp), 0, 255), i in [s, e); channels 0: one m.
void RequantizeSpan(const int32_t* acc, uint8_t* q, int64_t s, int64_t e, const float* m,
                    int64_t channels, float zp) {
  for (int64_t i = s; i < e; ++i) {
    float v = static_cast<float>(acc[i]) * m[channels ? i % channels : 0];
    v = v + zp;
    v = ClampNanLow(v, 0.0f, 255.0f);
    q[i] = static_cast<uint8_t>(static_cast<int>(RoundHalfEven(v)));
  }
}

// Element-wise work over the CPU pool.
template <typename F>
void ParallelElements(OpKernelContext* ctx, int64_t n, int64_t cost, F&& fn) {
  ParallelRange(ctx, n, cost, fn);
}

class QgQuantizeOp : public OpKernel {
 public:
  explicit QgQuantizeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
  }
  void Compute(OpKernelContext* ctx) override {
    Range r;
    OP_REQUIRES_OK(ctx, RangeInput(ctx, 1, 2, "min_range", "max_range", &r));
    const Tensor& in = ctx->input(0);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, in.shape(), &out));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, r));
    const float* x = in.flat<float>().data();
    uint8_t* q = reinterpret_cast<uint8_t*>(const_cast<char*>(out->tensor_data().data()));
    const float lo = static_cast<float>(-r.zero_point), hi = static_cast<float>(255 - r.zero_point);
    const float scale = r.scale;
    const int zp = r.zero_point;
    // clamp(rint(x / scale) + zp, 0, 255) == rint(clamp(x / scale, -zp, 255 - zp)) + zp
    const bool avx512 = Avx512Path(SelectedPath());
    const bool avx2 = SelectedPath() == CpuPath::kAvx2;
    ParallelElements(ctx, in.NumElements(), 8, [&](int64_t s, int64_t e) {
      if (avx512) {
        QuantizeSpanAvx512(x + s, q + s, e - s, scale, lo, hi, zp);
        return;
      }
      if (avx2) s += QuantizeSpanAvx2(x + s, q + s, e - s, scale, lo, hi, zp);
      QuantizeSpan(x + s, q + s, e - s, scale, lo, hi, zp);
    });
  }
};

class QgDequantizeOp : public OpKernel {
 public:
  explicit QgDequantizeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
  }
  void Compute(OpKernelContext* ctx) override {
    Range r;
    OP_REQUIRES_OK(ctx, RangeInput(ctx, 1, 2, "min_range", "max_range", &r));
    const Tensor& in = ctx->input(0);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, in.shape(), &out));
    float table[256];
    for (int q = 0; q < 256; ++q) table[q] = r.scale * static_cast<float>(q - r.zero_point);
    const uint8_t* q = reinterpret_cast<const uint8_t*>(in.tensor_data().data());
    float* y = out->flat<float>().data();
    ParallelElements(ctx, in.NumElements(), 2, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) y[i] = table[q[i]];
    });
  }
};

class QgRequantizeOp : public OpKernel {
 public:
  explicit QgRequantizeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor& in = ctx->input(0);
    const Tensor& sc = ctx->input(1);
    Range out_range;
    OP_REQUIRES_OK(ctx, RangeInput(ctx, 2, 3, "min_output", "max_output", &out_range));
    int64_t channels;
    bool per_channel;
    OP_REQUIRES_OK(ctx, RequantizeScaleShape(ctx, &channels, &per_channel));
    const float* s = sc.flat<float>().data();
    const int64_t ns = sc.NumElements();
    for (int64_t i = 0; i < ns; ++i) {
      OP_REQUIRES(ctx, std::isfinite(s[i]) && s[i] > 0.0f,
                  errors::InvalidArgument(type_string(), ": input_scale[", i, "] = ", s[i],
                                          " must be finite and > 0"));
    }
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, in.shape(), &out));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, out_range));
    const int64_t n = in.NumElements();
    if (n == 0) return;
    std::vector<float> m(per_channel ? channels : 1);
    for (size_t c = 0; c < m.size(); ++c) m[c] = s[per_channel ? c : 0] / out_range.scale;
    const float zp = static_cast<float>(out_range.zero_point);
    const int32_t* acc = reinterpret_cast<const int32_t*>(in.tensor_data().data());
    uint8_t* q = reinterpret_cast<uint8_t*>(const_cast<char*>(out->tensor_data().data()));
    ParallelElements(ctx, n, 8, [&](int64_t st, int64_t e) {
      RequantizeSpan(acc, q, st, e, m.data(), per_channel ? channels : 0, zp);
    });
  }
};

class QgCpuPathOp : public OpKernel {
 public:
  explicit QgCpuPathOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}
  void Compute(OpKernelContext* ctx) override {
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({}), &out));
    out->scalar<::tensorflow::tstring>()() =
        PathError().empty() ? PathName(SelectedPath()) : "error: " + PathError();
  }
};

REGISTER_KERNEL_BUILDER(Name("QgQuantize").Device(::tensorflow::DEVICE_CPU), QgQuantizeOp);
REGISTER_KERNEL_BUILDER(Name("QgDequantize").Device(::tensorflow::DEVICE_CPU), QgDequantizeOp);
REGISTER_KERNEL_BUILDER(Name("QgRequantize").Device(::tensorflow::DEVICE_CPU), QgRequantizeOp);
REGISTER_KERNEL_BUILDER(Name("QgCpuPath").Device(::tensorflow::DEVICE_CPU), QgCpuPathOp);

}  // namespace
}  // namespace qg
