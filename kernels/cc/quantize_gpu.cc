// DEVICE_GPU kernels of QgQuantize, QgDequantize and QgRequantize (kernels/OPS.md).
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

// Each kernel runs the CPU kernel's checks (qg_common.h); the ranges are in host memory.
class QuantizeGpuOp : public tensorflow::OpKernel {
 public:
  explicit QuantizeGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    qg::Range r;
    OP_REQUIRES_OK(ctx, qg::RangeInput(ctx, 1, 2, "min_range", "max_range", &r));
    const Tensor& input = ctx->input(0);
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, input.shape(), &output));
    OP_REQUIRES_OK(ctx, qg::EchoRange(ctx, r));
    if (output->NumElements() == 0) return;
    cudaError_t err = qg_cuda_quantize(
        input.flat<float>().data(), input.NumElements(), r.min, r.max,
        reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data()), Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }
};

class DequantizeGpuOp : public tensorflow::OpKernel {
 public:
  explicit DequantizeGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    qg::Range r;
    OP_REQUIRES_OK(ctx, qg::RangeInput(ctx, 1, 2, "min_range", "max_range", &r));
    const Tensor& input = ctx->input(0);
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, input.shape(), &output));
    if (output->NumElements() == 0) return;
    cudaError_t err = qg_cuda_dequantize(
        reinterpret_cast<const uint8_t*>(input.flat<tensorflow::quint8>().data()),
        input.NumElements(), r.min, r.max, output->flat<float>().data(), Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }
};

// input_scale's values are in device memory: its shape is checked here, not that each scale
// is finite and > 0 (the CPU kernel's last check).
class RequantizeGpuOp : public tensorflow::OpKernel {
 public:
  explicit RequantizeGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    qg::Range r;
    OP_REQUIRES_OK(ctx, qg::RangeInput(ctx, 2, 3, "min_output", "max_output", &r));
    int64_t channels;
    bool per_channel;
    OP_REQUIRES_OK(ctx, qg::RequantizeScaleShape(ctx, &channels, &per_channel));
    const Tensor& input = ctx->input(0);
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, input.shape(), &output));
    OP_REQUIRES_OK(ctx, qg::EchoRange(ctx, r));
    if (output->NumElements() == 0) return;
    if (!per_channel) channels = 1;  // one scale for every element
    OP_REQUIRES_OK(ctx, FitsInt(type_string(), {channels}));
    cudaError_t err = qg_cuda_requantize(
        reinterpret_cast<const int32_t*>(input.flat<tensorflow::qint32>().data()),
        input.NumElements(), static_cast<int>(channels),
        ctx->input(1).flat<float>().data(), r.min, r.max,
        reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data()), Stream(ctx));
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
