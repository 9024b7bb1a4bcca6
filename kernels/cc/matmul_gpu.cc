// DEVICE_GPU kernel of QgQuantizedMatMul (kernels/OPS.md): a [M, K] quint8 times b [K, N] qint8
// with per-column b_scale, through the implicit-GEMM launcher (a 1x1 convolution).
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

class MatMulGpuOp : public tensorflow::OpKernel {
 public:
  explicit MatMulGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx), fused_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    // The CPU kernel's checks, in its order (qg_fused_base.h).
    int64_t m, k, n;
    if (!qg::MatMulGeometry(ctx, &m, &k, &n)) return;
    const tensorflow::TensorShape out_shape({m, n});
    qg::FusedInputs in;
    if (!qg::ValidateFused(ctx, fused_, n, out_shape, "min_a", "max_a", "b_scale",
                           /*values_on_host=*/false, &in)) {
      return;
    }
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &output));
    OP_REQUIRES_OK(ctx, qg::EchoRange(ctx, in.out));
    if (output->NumElements() == 0) return;
    OP_REQUIRES_OK(ctx, qg::CheckReduction(type_string(), "K (columns of a)", k));
    OP_REQUIRES_OK(ctx, FitsInt(type_string(), {m, k, n}));

    const qg_epilogue ep = LauncherEpilogue(fused_, in);
    std::shared_ptr<const PackedFilter> packed;
    OP_REQUIRES_OK(ctx, filters_.Get(ctx, ctx->input(1), static_cast<int>(k),
                                     static_cast<int>(n), fused_.constant_weights, &packed));
    cudaError_t err = qg_cuda_matmul(
        reinterpret_cast<const uint8_t*>(ctx->input(0).flat<tensorflow::quint8>().data()),
        packed->packed.flat<tensorflow::int8>().data(), static_cast<int>(m),
        static_cast<int>(k), static_cast<int>(n), &ep, output->data(), Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }

 private:
  const qg::FusedAttrs fused_;
  FilterCache filters_;
};

REGISTER_KERNEL_BUILDER(Name("QgQuantizedMatMul")
                            .Device(tensorflow::DEVICE_GPU)
                            .HostMemory("min_a")
                            .HostMemory("max_a")
                            .HostMemory("min_output")
                            .HostMemory("max_output")
                            .HostMemory("min_summand")
                            .HostMemory("max_summand")
                            .HostMemory("output_min")
                            .HostMemory("output_max"),
                        MatMulGpuOp);

}  // namespace
}  // namespace qg_gpu

#endif  // GOOGLE_CUDA
