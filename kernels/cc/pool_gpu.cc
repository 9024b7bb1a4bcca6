// DEVICE_GPU kernels of QgQuantizedMaxPool and QgQuantizedAvgPool (kernels/OPS.md): the range
// passes through unchanged.
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

template <bool MAX>
class PoolGpuOp : public tensorflow::OpKernel {
 public:
  explicit PoolGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, "ksize", &window_h_, &window_w_));
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, "strides", &stride_h_, &stride_w_));
    OP_REQUIRES_OK(ctx, Padding(ctx, &same_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor* input;
    OP_REQUIRES_OK(ctx, ctx->input("input", &input));
    OP_REQUIRES_OK(ctx, CheckRank(*input, 4, "input"));
    float min_v, max_v;
    OP_REQUIRES_OK(ctx, Range(ctx, "min_input", "max_input", &min_v, &max_v));
    for (int d = 0; d < 4; ++d)
      OP_REQUIRES(ctx, input->dim_size(d) <= std::numeric_limits<int>::max(),
                  tensorflow::errors::InvalidArgument("input dimension too large"));
    qg_pool_shape s = {};
    s.batch = static_cast<int>(input->dim_size(0));
    s.in_h = static_cast<int>(input->dim_size(1));
    s.in_w = static_cast<int>(input->dim_size(2));
    s.channels = static_cast<int>(input->dim_size(3));
    s.window_h = window_h_;
    s.window_w = window_w_;
    s.stride_h = stride_h_;
    s.stride_w = stride_w_;
    qg_cuda_conv_output_size(s.in_h, s.window_h, s.stride_h, 1, same_, &s.out_h, &s.pad_top);
    qg_cuda_conv_output_size(s.in_w, s.window_w, s.stride_w, 1, same_, &s.out_w, &s.pad_left);
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            "output", tensorflow::TensorShape({s.batch, s.out_h, s.out_w,
                                                               s.channels}),
                            &output));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, min_v, max_v));
    if (output->NumElements() == 0) return;
    const uint8_t* x = reinterpret_cast<const uint8_t*>(input->flat<tensorflow::quint8>().data());
    uint8_t* out = reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data());
    cudaError_t err = MAX ? qg_cuda_max_pool(x, &s, out, Stream(ctx))
                          : qg_cuda_avg_pool(x, &s, out, Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }

 private:
  int window_h_, window_w_, stride_h_, stride_w_;
  bool same_;
};

REGISTER_KERNEL_BUILDER(Name("QgQuantizedMaxPool")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_input")
                            .HostMemory("max_input")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        PoolGpuOp<true>);
REGISTER_KERNEL_BUILDER(Name("QgQuantizedAvgPool")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_input")
                            .HostMemory("max_input")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        PoolGpuOp<false>);

}  // namespace
}  // namespace qg_gpu

#endif  // GOOGLE_CUDA
