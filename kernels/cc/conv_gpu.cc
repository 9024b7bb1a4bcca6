// DEVICE_GPU kernels of QgQuantizedConv2D and QgQuantizedDepthwiseConv2D (kernels/OPS.md): they
// validate as the CPU kernels do (same checks, same messages), then call the CUDA launchers of
// kernels/cuda/ on the op's stream. Range scalars live in host memory; weights, filter_scale and
// bias on the device. The conv's packed filter is kept as the CPU kernel keeps its own.
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

using tensorflow::TensorShape;

class ConvGpuOp : public tensorflow::OpKernel {
 public:
  ConvGpuOp(OpKernelConstruction* ctx, bool depthwise)
      : OpKernel(ctx), depthwise_(depthwise), conv_(ctx), fused_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    // The CPU kernels' checks, in their order (qg_fused_base.h).
    qg::ConvGeometry g;
    if (!conv_.Geometry(ctx, &g)) return;
    const Tensor& filter = ctx->input(1);
    const int64_t cout = depthwise_ ? g.c * filter.dim_size(3) : filter.dim_size(3);
    const TensorShape out_shape({g.n, g.oh, g.ow, cout});
    qg::FusedInputs in;
    if (!qg::ValidateFused(ctx, fused_, cout, out_shape, "min_input", "max_input",
                           "filter_scale", /*values_on_host=*/false, &in)) {
      return;
    }
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &output));
    OP_REQUIRES_OK(ctx, qg::EchoRange(ctx, in.out));
    if (output->NumElements() == 0) return;
    if (!depthwise_) {
      OP_REQUIRES_OK(ctx, qg::CheckReduction(type_string(), "filter taps x input channels",
                                             g.kh * g.kw * g.c));
    }
    OP_REQUIRES_OK(ctx, FitsInt(type_string(), {g.n, g.h, g.w, g.c, cout, g.kh, g.kw, g.oh,
                                                g.ow, g.ph, g.pw}));
    qg_conv_shape s = {};
    s.batch = static_cast<int>(g.n);
    s.in_h = static_cast<int>(g.h);
    s.in_w = static_cast<int>(g.w);
    s.in_c = static_cast<int>(g.c);
    s.filter_h = static_cast<int>(g.kh);
    s.filter_w = static_cast<int>(g.kw);
    s.out_c = static_cast<int>(cout);
    s.stride_h = g.sh;
    s.stride_w = g.sw;
    s.dilation_h = g.dh;
    s.dilation_w = g.dw;
    s.pad_top = static_cast<int>(g.ph);
    s.pad_left = static_cast<int>(g.pw);
    s.out_h = static_cast<int>(g.oh);
    s.out_w = static_cast<int>(g.ow);

    const qg_epilogue ep = LauncherEpilogue(fused_, in);
    const uint8_t* x =
        reinterpret_cast<const uint8_t*>(ctx->input(0).flat<tensorflow::quint8>().data());
    void* out = output->data();
    cudaError_t err;
    if (depthwise_) {
      err = qg_cuda_depthwise_conv2d(
          x, reinterpret_cast<const int8_t*>(filter.flat<tensorflow::qint8>().data()), &s, &ep,
          out, Stream(ctx));
    } else {
      std::shared_ptr<const PackedFilter> packed;
      OP_REQUIRES_OK(ctx, filters_.Get(ctx, filter, s.filter_h * s.filter_w * s.in_c, s.out_c,
                                       fused_.constant_weights, &packed));
      err = qg_cuda_conv2d(x, packed->packed.flat<tensorflow::int8>().data(), &s, &ep, out,
                           Stream(ctx));
    }
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }

 private:
  const bool depthwise_;
  const qg::ConvAttrs conv_;
  const qg::FusedAttrs fused_;
  FilterCache filters_;
};

class Conv2DGpuOp : public ConvGpuOp {
 public:
  explicit Conv2DGpuOp(OpKernelConstruction* ctx) : ConvGpuOp(ctx, false) {}
};

class DepthwiseConv2DGpuOp : public ConvGpuOp {
 public:
  explicit DepthwiseConv2DGpuOp(OpKernelConstruction* ctx) : ConvGpuOp(ctx, true) {}
};

REGISTER_KERNEL_BUILDER(Name("QgQuantizedConv2D")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_input")
                            .HostMemory("max_input")
                            .HostMemory("min_output")
                            .HostMemory("max_output")
                            .HostMemory("min_summand")
                            .HostMemory("max_summand")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        Conv2DGpuOp);

REGISTER_KERNEL_BUILDER(Name("QgQuantizedDepthwiseConv2D")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_input")
                            .HostMemory("max_input")
                            .HostMemory("min_output")
                            .HostMemory("max_output")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        DepthwiseConv2DGpuOp);

}  // namespace
}  // namespace qg_gpu

#endif  // GOOGLE_CUDA
