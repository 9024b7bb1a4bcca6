// DEVICE_GPU kernel of QgQuantizedConcat (kernels/OPS.md): inputs with different ranges are
// re-mapped into the output range while they are copied.
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

class ConcatGpuOp : public tensorflow::OpKernel {
 public:
  explicit ConcatGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    qg::ConcatInputs in;
    OP_REQUIRES_OK(ctx, qg::ValidateConcat(ctx, axis_, &in));  // the CPU kernel's checks
    tensorflow::OpInputList values;
    OP_REQUIRES_OK(ctx, ctx->input_list("values", &values));
    const int n = values.size();
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, in.out_shape, &output));
    OP_REQUIRES_OK(ctx, qg::EchoRange(ctx, in.out));
    if (output->NumElements() == 0) return;
    std::vector<const uint8_t*> ptrs(n);
    std::vector<int64_t> axis_sizes(n);
    std::vector<float> lo(n), hi(n);
    for (int i = 0; i < n; ++i) {
      ptrs[i] = reinterpret_cast<const uint8_t*>(values[i].flat<tensorflow::quint8>().data());
      axis_sizes[i] = values[i].dim_size(in.axis);
      lo[i] = in.ranges[i].min;
      hi[i] = in.ranges[i].max;
    }
    cudaError_t err = qg_cuda_concat(
        ptrs.data(), axis_sizes.data(), lo.data(), hi.data(), n, in.outer, in.inner, in.out.min,
        in.out.max, reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data()),
        Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }

 private:
  int axis_;
};

REGISTER_KERNEL_BUILDER(Name("QgQuantizedConcat")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("mins")
                            .HostMemory("maxes")
                            .HostMemory("min_output")
                            .HostMemory("max_output")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        ConcatGpuOp);

}  // namespace
}  // namespace qg_gpu

#endif  // GOOGLE_CUDA
