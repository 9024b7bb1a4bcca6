// DEVICE_GPU kernels of QgQuantizedConv2D and QgQuantizedDepthwiseConv2D (kernels/OPS.md): they
// validate, then call the CUDA launchers of kernels/cuda/ on the op's stream. Range scalars live
// in host memory; weights, filter_scale and bias on the device.
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

using tensorflow::TensorShape;

class ConvGpuOp : public tensorflow::OpKernel {
 public:
  ConvGpuOp(OpKernelConstruction* ctx, bool depthwise) : OpKernel(ctx), depthwise_(depthwise) {
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, "strides", &stride_h_, &stride_w_));
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, "dilations", &dilation_h_, &dilation_w_));
    OP_REQUIRES_OK(ctx, Padding(ctx, &same_));
    OP_REQUIRES_OK(ctx, Activation(ctx, &activation_));
    OP_REQUIRES_OK(ctx, OutType(ctx, &out_type_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor* input;
    const Tensor* filter;
    const Tensor* filter_scale;
    const Tensor* bias;
    OP_REQUIRES_OK(ctx, ctx->input("input", &input));
    OP_REQUIRES_OK(ctx, ctx->input("filter", &filter));
    OP_REQUIRES_OK(ctx, ctx->input("filter_scale", &filter_scale));
    OP_REQUIRES_OK(ctx, ctx->input("bias", &bias));
    OP_REQUIRES_OK(ctx, CheckRank(*input, 4, "input"));
    OP_REQUIRES_OK(ctx, CheckRank(*filter, 4, "filter"));
    const int64_t in_c = input->dim_size(3);
    OP_REQUIRES(ctx, filter->dim_size(2) == in_c,
                tensorflow::errors::InvalidArgument(
                    "filter input channels (", filter->dim_size(2),
                    ") must match the input's channels (", in_c, ")"));
    const int64_t out_c = depthwise_ ? in_c * filter->dim_size(3) : filter->dim_size(3);
    OP_REQUIRES_OK(ctx, CheckVector(*filter_scale, out_c, "filter_scale"));
    OP_REQUIRES_OK(ctx, CheckVector(*bias, out_c, "bias"));

    qg_epilogue ep = {};
    OP_REQUIRES_OK(ctx, Range(ctx, "min_input", "max_input", &ep.min_input, &ep.max_input));
    OP_REQUIRES_OK(ctx, Range(ctx, "min_output", "max_output", &ep.min_output, &ep.max_output));
    ep.activation = activation_;
    ep.out_type = out_type_;

    for (int64_t d : {input->dim_size(0), input->dim_size(1), input->dim_size(2), in_c, out_c,
                      filter->dim_size(0), filter->dim_size(1)})
      OP_REQUIRES(ctx, d <= std::numeric_limits<int>::max(),
                  tensorflow::errors::InvalidArgument("dimension too large: ", d));
    qg_conv_shape s = {};
    s.batch = static_cast<int>(input->dim_size(0));
    s.in_h = static_cast<int>(input->dim_size(1));
    s.in_w = static_cast<int>(input->dim_size(2));
    s.in_c = static_cast<int>(in_c);
    s.filter_h = static_cast<int>(filter->dim_size(0));
    s.filter_w = static_cast<int>(filter->dim_size(1));
    s.out_c = static_cast<int>(out_c);
    s.stride_h = stride_h_;
    s.stride_w = stride_w_;
    s.dilation_h = dilation_h_;
    s.dilation_w = dilation_w_;
    OP_REQUIRES(ctx, s.filter_h >= 1 && s.filter_w >= 1,
                tensorflow::errors::InvalidArgument("filter must not be empty in H or W"));
    OP_REQUIRES(ctx,
                qg_cuda_conv_output_size(s.in_h, s.filter_h, s.stride_h, s.dilation_h, same_,
                                         &s.out_h, &s.pad_top) == 0 &&
                    qg_cuda_conv_output_size(s.in_w, s.filter_w, s.stride_w, s.dilation_w, same_,
                                             &s.out_w, &s.pad_left) == 0,
                tensorflow::errors::InvalidArgument("bad convolution geometry"));

    TensorShape out_shape({s.batch, s.out_h, s.out_w, s.out_c});
    if (!depthwise_) OP_REQUIRES_OK(ctx, Summand(ctx, out_shape, &ep));
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("output", out_shape, &output));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, ep.min_output, ep.max_output));
    if (output->NumElements() == 0) return;

    ep.filter_scale = filter_scale->flat<float>().data();
    ep.bias = bias->flat<float>().data();
    const uint8_t* x = reinterpret_cast<const uint8_t*>(input->flat<tensorflow::quint8>().data());
    void* out = output->data();
    cudaError_t err;
    if (depthwise_) {
      err = qg_cuda_depthwise_conv2d(
          x, reinterpret_cast<const int8_t*>(filter->flat<tensorflow::qint8>().data()), &s, &ep,
          out, Stream(ctx));
    } else {
      Tensor packed;
      OP_REQUIRES_OK(ctx, PackFilter(ctx, *filter, s.filter_h * s.filter_w * s.in_c, s.out_c,
                                     &packed));
      err = qg_cuda_conv2d(x, packed.flat<tensorflow::int8>().data(), &s, &ep, out, Stream(ctx));
    }
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }

 private:
  bool depthwise_;
  int stride_h_, stride_w_, dilation_h_, dilation_w_;
  bool same_;
  qg_activation activation_;
  qg_out_type out_type_;
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
