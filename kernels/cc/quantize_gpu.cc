// DEVICE_GPU kernels of QgQuantize, QgDequantize and QgRequantize (kernels/OPS.md).
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

class QuantizeGpuOp : public tensorflow::OpKernel {
 public:
  explicit QuantizeGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor* input;
    OP_REQUIRES_OK(ctx, ctx->input("input", &input));
    float min_v, max_v;
    OP_REQUIRES_OK(ctx, Range(ctx, "min_range", "max_range", &min_v, &max_v));
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("output", input->shape(), &output));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, min_v, max_v));
    if (output->NumElements() == 0) return;
    cudaError_t err = qg_cuda_quantize(
        input->flat<float>().data(), input->NumElements(), min_v, max_v,
        reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data()), Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }
};

class DequantizeGpuOp : public tensorflow::OpKernel {
 public:
  explicit DequantizeGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor* input;
    OP_REQUIRES_OK(ctx, ctx->input("input", &input));
    float min_v, max_v;
    OP_REQUIRES_OK(ctx, Range(ctx, "min_range", "max_range", &min_v, &max_v));
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("output", input->shape(), &output));
    if (output->NumElements() == 0) return;
    cudaError_t err = qg_cuda_dequantize(
        reinterpret_cast<const uint8_t*>(input->flat<tensorflow::quint8>().data()),
        input->NumElements(), min_v, max_v, output->flat<float>().data(), Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }
};

class RequantizeGpuOp : public tensorflow::OpKernel {
 public:
  explicit RequantizeGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor* input;
    const Tensor* input_scale;
    OP_REQUIRES_OK(ctx, ctx->input("input", &input));
    OP_REQUIRES_OK(ctx, ctx->input("input_scale", &input_scale));
    float min_v, max_v;
    OP_REQUIRES_OK(ctx, Range(ctx, "min_output", "max_output", &min_v, &max_v));
    // input_scale: [] (one scale) or [C] with C the input's last dimension.
    int64_t channels = 1;
    if (input_scale->dims() == 1) {
      OP_REQUIRES(ctx, input->dims() >= 1 && input->dim_size(input->dims() - 1) ==
                                                 input_scale->dim_size(0),
                  tensorflow::errors::InvalidArgument(
                      "input_scale has ", input_scale->dim_size(0),
                      " entries but the input's last dimension is ",
                      input->dims() ? input->dim_size(input->dims() - 1) : 0));
      channels = input_scale->dim_size(0);
    } else {
      OP_REQUIRES(ctx, input_scale->dims() == 0,
                  tensorflow::errors::InvalidArgument("input_scale must be a scalar or a vector"));
    }
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("output", input->shape(), &output));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, min_v, max_v));
    if (output->NumElements() == 0) return;
    OP_REQUIRES(ctx, channels <= std::numeric_limits<int>::max(),
                tensorflow::errors::InvalidArgument("input_scale too long"));
    cudaError_t err = qg_cuda_requantize(
        reinterpret_cast<const int32_t*>(input->flat<tensorflow::qint32>().data()),
        input->NumElements(), static_cast<int>(channels), input_scale->flat<float>().data(),
        min_v, max_v, reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data()),
        Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }
};

REGISTER_KERNEL_BUILDER(Name("QgQuantize")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_range")
                            .HostMemory("max_range")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        QuantizeGpuOp);
REGISTER_KERNEL_BUILDER(Name("QgDequantize")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_range")
                            .HostMemory("max_range"),
                        DequantizeGpuOp);
REGISTER_KERNEL_BUILDER(Name("QgRequantize")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_output")
                            .HostMemory("max_output")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        RequantizeGpuOp);

}  // namespace
}  // namespace qg_gpu

#endif  // GOOGLE_CUDA
