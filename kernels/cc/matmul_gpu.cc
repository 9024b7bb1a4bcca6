// DEVICE_GPU kernel of QgQuantizedMatMul (kernels/OPS.md): a [M, K] quint8 times b [K, N] qint8
// with per-column b_scale, through the implicit-GEMM launcher (a 1x1 convolution).
#if GOOGLE_CUDA
#include "kernels/cc/qg_gpu_util.h"

namespace qg_gpu {
namespace {

class MatMulGpuOp : public tensorflow::OpKernel {
 public:
  explicit MatMulGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, Activation(ctx, &activation_));
    OP_REQUIRES_OK(ctx, OutType(ctx, &out_type_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor* a;
    const Tensor* b;
    const Tensor* b_scale;
    const Tensor* bias;
    OP_REQUIRES_OK(ctx, ctx->input("a", &a));
    OP_REQUIRES_OK(ctx, ctx->input("b", &b));
    OP_REQUIRES_OK(ctx, ctx->input("b_scale", &b_scale));
    OP_REQUIRES_OK(ctx, ctx->input("bias", &bias));
    OP_REQUIRES_OK(ctx, CheckRank(*a, 2, "a"));
    OP_REQUIRES_OK(ctx, CheckRank(*b, 2, "b"));
    OP_REQUIRES(ctx, a->dim_size(1) == b->dim_size(0),
                tensorflow::errors::InvalidArgument("a's columns (", a->dim_size(1),
                                                    ") must match b's rows (", b->dim_size(0),
                                                    ")"));
    const int64_t m = a->dim_size(0), k = a->dim_size(1), n = b->dim_size(1);
    OP_REQUIRES_OK(ctx, CheckVector(*b_scale, n, "b_scale"));
    OP_REQUIRES_OK(ctx, CheckVector(*bias, n, "bias"));
    for (int64_t d : {m, k, n})
      OP_REQUIRES(ctx, d <= std::numeric_limits<int>::max(),
                  tensorflow::errors::InvalidArgument("dimension too large: ", d));

    qg_epilogue ep = {};
    OP_REQUIRES_OK(ctx, Range(ctx, "min_a", "max_a", &ep.min_input, &ep.max_input));
    OP_REQUIRES_OK(ctx, Range(ctx, "min_output", "max_output", &ep.min_output, &ep.max_output));
    ep.activation = activation_;
    ep.out_type = out_type_;
    tensorflow::TensorShape out_shape({m, n});
    OP_REQUIRES_OK(ctx, Summand(ctx, out_shape, &ep));
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("output", out_shape, &output));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, ep.min_output, ep.max_output));
    if (output->NumElements() == 0) return;

    ep.filter_scale = b_scale->flat<float>().data();
    ep.bias = bias->flat<float>().data();
    Tensor packed;
    OP_REQUIRES_OK(ctx, PackFilter(ctx, *b, static_cast<int>(k), static_cast<int>(n), &packed));
    cudaError_t err = qg_cuda_matmul(
        reinterpret_cast<const uint8_t*>(a->flat<tensorflow::quint8>().data()),
        packed.flat<tensorflow::int8>().data(), static_cast<int>(m), static_cast<int>(k),
        static_cast<int>(n), &ep, output->data(), Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }

 private:
  qg_activation activation_;
  qg_out_type out_type_;
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
