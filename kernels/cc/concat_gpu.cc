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
    tensorflow::OpInputList values, mins, maxes;
    OP_REQUIRES_OK(ctx, ctx->input_list("values", &values));
    OP_REQUIRES_OK(ctx, ctx->input_list("mins", &mins));
    OP_REQUIRES_OK(ctx, ctx->input_list("maxes", &maxes));
    const int n = values.size();
    OP_REQUIRES(ctx, n >= 1 && mins.size() == n && maxes.size() == n,
                tensorflow::errors::InvalidArgument("values, mins and maxes must have N >= 1 "
                                                    "entries each"));
    float min_out, max_out;
    OP_REQUIRES_OK(ctx, Range(ctx, "min_output", "max_output", &min_out, &max_out));

    const Tensor& first = values[0];
    const int rank = first.dims();
    OP_REQUIRES(ctx, rank >= 1,
                tensorflow::errors::InvalidArgument("values must have rank >= 1"));
    const int axis = axis_ < 0 ? axis_ + rank : axis_;
    OP_REQUIRES(ctx, axis >= 0 && axis < rank,
                tensorflow::errors::InvalidArgument("axis ", axis_, " is out of range for rank ",
                                                    rank));
    std::vector<const uint8_t*> ptrs(n);
    std::vector<int64_t> axis_sizes(n);
    std::vector<float> lo(n), hi(n);
    tensorflow::TensorShape out_shape = first.shape();
    int64_t axis_total = 0;
    for (int i = 0; i < n; ++i) {
      const Tensor& v = values[i];
      OP_REQUIRES(ctx, v.dims() == rank,
                  tensorflow::errors::InvalidArgument("values[", i, "] has rank ", v.dims(),
                                                      ", values[0] has rank ", rank));
      for (int d = 0; d < rank; ++d)
        OP_REQUIRES(ctx, d == axis || v.dim_size(d) == first.dim_size(d),
                    tensorflow::errors::InvalidArgument(
                        "values[", i, "] has shape ", v.shape().DebugString(),
                        ", which does not match values[0] ", first.shape().DebugString(),
                        " outside axis ", axis));
      OP_REQUIRES(ctx,
                  tensorflow::TensorShapeUtils::IsScalar(mins[i].shape()) &&
                      tensorflow::TensorShapeUtils::IsScalar(maxes[i].shape()),
                  tensorflow::errors::InvalidArgument("mins[", i, "] and maxes[", i,
                                                      "] must be scalars"));
      lo[i] = mins[i].scalar<float>()();
      hi[i] = maxes[i].scalar<float>()();
      OP_REQUIRES_OK(ctx, CheckRange("values[" + std::to_string(i) + "]", lo[i], hi[i]));
      ptrs[i] = reinterpret_cast<const uint8_t*>(v.flat<tensorflow::quint8>().data());
      axis_sizes[i] = v.dim_size(axis);
      axis_total += axis_sizes[i];
    }
    out_shape.set_dim(axis, axis_total);
    Tensor* output;
    OP_REQUIRES_OK(ctx, ctx->allocate_output("output", out_shape, &output));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, min_out, max_out));
    if (output->NumElements() == 0) return;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= first.dim_size(d);
    for (int d = axis + 1; d < rank; ++d) inner *= first.dim_size(d);
    cudaError_t err = qg_cuda_concat(
        ptrs.data(), axis_sizes.data(), lo.data(), hi.data(), n, outer, inner, min_out, max_out,
        reinterpret_cast<uint8_t*>(output->flat<tensorflow::quint8>().data()), Stream(ctx));
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
