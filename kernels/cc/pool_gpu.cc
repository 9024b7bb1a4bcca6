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
    OP_REQUIRES_OK(ctx, attrs_.Read(ctx));
  }

  void Compute(OpKernelContext* ctx) override {
    qg::PoolShape g;
    qg::Range r;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(ctx, MAX, &g, &r));  // the CPU kernel's checks
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, tensorflow::TensorShape({g.n, g.oh, g.ow, g.c}), &output));
    OP_REQUIRES_OK(ctx, qg::EchoRange(ctx, r));
    if (output->NumElements() == 0) return;
    OP_REQUIRES_OK(ctx, FitsInt(type_string(), {g.n, g.h, g.w, g.c, g.oh, g.ow, g.ph, g.pw}));
    qg_pool_shape s = {};
    s.batch = static_cast<int>(g.n);
    s.in_h = static_cast<int>(g.h);
    s.in_w = static_cast<int>(g.w);
    s.channels = static_cast<int>(g.c);
    s.window_h = g.kh;
    s.window_w = g.kw;
    s.stride_h = g.sh;
    s.stride_w = g.sw;
    s.pad_top = static_cast<int>(g.ph);
    s.pad_left = static_cast<int>(g.pw);
    s.out_h = static_cast<int>(g.oh);
    s.out_w = static_cast<int>(g.ow);
    const uint8_t* x =
        reinterpret_cast<const uint8_t*>(ctx->input(0).flat<tensorflow::quint8>().data());
    uint8_t* out = reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data());
    cudaError_t err = MAX ? qg_cuda_max_pool(x, &s, out, Stream(ctx))
                          : qg_cuda_avg_pool(x, &s, out, Stream(ctx));
    OP_REQUIRES_OK(ctx, CudaStatus(err, name().c_str()));
  }

 private:
  qg::PoolAttrs attrs_;
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
