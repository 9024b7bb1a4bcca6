// CPU kernels of QgQuantizedMaxPool, QgQuantizedAvgPool and QgQuantizedConcat (kernels/OPS.md).
// The portable loops are here; on the avx2 (or vnni) path the AVX2 loops of
// qg_pool_concat_avx2.cc run instead, with bit-identical results.
#include <array>
#include <cstring>

#include "qg_common.h"
#include "qg_pool_concat_simd.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/util/work_sharder.h"

namespace qg {
namespace {

using ::tensorflow::OpInputList;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

// An average pool sums a window's bytes in int32: 255 * 8,421,504 < 2^31.
constexpr int64_t kMaxPoolTaps = 8421504;

template <bool kMax>
class QgPoolOp : public OpKernel {
 public:
  explicit QgPoolOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, "ksize", &kh_, &kw_));
    OP_REQUIRES_OK(ctx, Nhwc4(ctx, "strides", &sh_, &sw_));
    std::string padding;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &padding));
    OP_REQUIRES(ctx, padding == "SAME" || padding == "VALID",
                errors::InvalidArgument(ctx->def().op(), ": padding must be SAME or VALID"));
    same_ = padding == "SAME";
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& in = ctx->input(0);
    OP_REQUIRES(ctx, in.dims() == 4,
                errors::InvalidArgument(type_string(), ": input must be rank 4 (NHWC), got ",
                                        in.shape().DebugString()));
    Range r;
    OP_REQUIRES_OK(ctx, RangeInput(ctx, 1, 2, "min_input", "max_input", &r));
    const int64_t n = in.dim_size(0), h = in.dim_size(1), w = in.dim_size(2),
                  c = in.dim_size(3);
    int64_t oh, ow, ph, pw;
    OutSize(h, kh_, sh_, 1, same_, &oh, &ph);
    OutSize(w, kw_, sw_, 1, same_, &ow, &pw);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n, oh, ow, c}), &out));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, r));
    const int64_t rows = n * oh * ow;
    if (rows == 0 || c == 0) return;
    // What a window really reads: clipped to the input (ksize may be 2^31 - 1).
    const int64_t eh = std::min<int64_t>(kh_, h), ew = std::min<int64_t>(kw_, w);
    OP_REQUIRES(ctx, kMax || eh * ew <= kMaxPoolTaps,
                errors::InvalidArgument(type_string(), ": a window reads up to ", eh * ew,
                                        " pixels; at most ", kMaxPoolTaps,
                                        " keep the int32 sums exact"));
    const uint8_t* x = reinterpret_cast<const uint8_t*>(in.tensor_data().data());
    uint8_t* y = reinterpret_cast<uint8_t*>(const_cast<char*>(out->tensor_data().data()));
    auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const bool simd = SelectedPath() != CpuPath::kPortable &&
                      (kMax || static_cast<int64_t>(kh_) * kw_ <= kAvgPoolMaxTaps);
    if (simd) {
      PoolShape s;
      s.n = n, s.h = h, s.w = w, s.c = c, s.oh = oh, s.ow = ow, s.ph = ph, s.pw = pw;
      s.kh = kh_, s.kw = kw_, s.sh = sh_, s.sw = sw_;
      // One unit is one output row: the vertical pass reads kh input rows, the horizontal
      // one kw columns per pixel.
      ::tensorflow::Shard(workers->NumThreads(), workers, n * oh,
                          (eh * std::min<int64_t>(sw_, w) + ew) * ow * c,
                          [&](int64_t s0, int64_t s1) {
                            if (kMax) {
                              MaxPoolRowsAvx2(s, x, y, s0, s1);
                            } else {
                              AvgPoolRowsAvx2(s, x, y, s0, s1);
                            }
                          });
      return;
    }
    ::tensorflow::Shard(
        workers->NumThreads(), workers, rows, eh * ew * c, [&](int64_t s, int64_t e) {
          std::vector<int32_t> acc(c);
          for (int64_t row = s; row < e; ++row) {
            const int64_t ox = row % ow, t = row / ow, oy = t % oh, b = t / oh;
            std::fill(acc.begin(), acc.end(), 0);
            int count = 0;
            // Only the taps inside the input: padding never counts.
            int64_t i0, i1, j0, j1;
            ClipWindow(oy * sh_ - ph, kh_, h, &i0, &i1);
            ClipWindow(ox * sw_ - pw, kw_, w, &j0, &j1);
            for (int64_t i = i0; i < i1; ++i) {
              const int64_t yy = oy * sh_ - ph + i;
              for (int64_t j = j0; j < j1; ++j) {
                const int64_t xx = ox * sw_ - pw + j;
                const uint8_t* p = x + ((b * h + yy) * w + xx) * c;
                ++count;
                if (kMax) {
                  for (int64_t k = 0; k < c; ++k) acc[k] = std::max<int32_t>(acc[k], p[k]);
                } else {
                  for (int64_t k = 0; k < c; ++k) acc[k] += p[k];
                }
              }
            }
            uint8_t* o = y + row * c;
            if (kMax) {
              for (int64_t k = 0; k < c; ++k) o[k] = static_cast<uint8_t>(acc[k]);
            } else {
              for (int64_t k = 0; k < c; ++k) o[k] = AvgRound(acc[k], count);
            }
          }
        });
  }

 private:
  int kh_ = 1, kw_ = 1, sh_ = 1, sw_ = 1;
  bool same_ = true;
};

class QgQuantizedConcatOp : public OpKernel {
 public:
  explicit QgQuantizedConcatOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    OpInputList values, mins, maxes;
    OP_REQUIRES_OK(ctx, ctx->input_list("values", &values));
    OP_REQUIRES_OK(ctx, ctx->input_list("mins", &mins));
    OP_REQUIRES_OK(ctx, ctx->input_list("maxes", &maxes));
    const int n = values.size();
    Range out_range;
    OP_REQUIRES_OK(ctx, RangeInput(ctx, 3 * n, 3 * n + 1, "min_output", "max_output",
                                   &out_range));
    const Tensor& first = values[0];
    const int rank = first.dims();
    OP_REQUIRES(ctx, rank >= 1,
                errors::InvalidArgument(type_string(), ": values[0] must have rank >= 1"));
    OP_REQUIRES(ctx, axis_ >= -rank && axis_ < rank,
                errors::InvalidArgument(type_string(), ": axis ", axis_,
                                        " is out of range for rank ", rank));
    const int axis = axis_ < 0 ? axis_ + rank : axis_;
    TensorShape out_shape = first.shape();
    int64_t total = 0;
    std::vector<std::array<uint8_t, 256>> tables(n);
    std::vector<float> ratios(n);
    std::vector<int> zero_points(n);
    std::vector<char> identity(n);
    for (int i = 0; i < n; ++i) {
      const Tensor& v = values[i];
      OP_REQUIRES(ctx, v.dims() == rank,
                  errors::InvalidArgument(type_string(), ": values[", i, "] has rank ",
                                          v.dims(), ", values[0] has ", rank));
      for (int d = 0; d < rank; ++d) {
        OP_REQUIRES(ctx, d == axis || v.dim_size(d) == first.dim_size(d),
                    errors::InvalidArgument(type_string(), ": values[", i, "] has shape ",
                                            v.shape().DebugString(), ", values[0] has ",
                                            first.shape().DebugString()));
      }
      total += v.dim_size(axis);
      float mn, mx;
      const std::string min_name = "mins[" + std::to_string(i) + "]";
      const std::string max_name = "maxes[" + std::to_string(i) + "]";
      OP_REQUIRES(ctx, mins[i].NumElements() == 1 && maxes[i].NumElements() == 1,
                  errors::InvalidArgument(type_string(), ": ", min_name, " and ", max_name,
                                          " must be float scalars"));
      mn = mins[i].flat<float>()(0);
      mx = maxes[i].flat<float>()(0);
      Range r;
      OP_REQUIRES_OK(ctx, MakeRange(type_string(), min_name.c_str(), max_name.c_str(), mn, mx,
                                    &r));
      // v = (float)(q - zp_i) * (scale_i / scale_out) + zp_out, one table per input.
      const float ratio = r.scale / out_range.scale;
      ratios[i] = ratio;
      zero_points[i] = r.zero_point;
      const float zp_out = static_cast<float>(out_range.zero_point);
      bool same = true;
      for (int q = 0; q < 256; ++q) {
        tables[i][q] = RequantByte(q, r.zero_point, ratio, zp_out);
        same = same && tables[i][q] == q;
      }
      // The input's range maps every byte to itself (e.g. it equals the output range): copy.
      identity[i] = same;
    }
    out_shape.set_dim(axis, total);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &out));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, out_range));
    if (out_shape.num_elements() == 0) return;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= out_shape.dim_size(d);
    for (int d = axis + 1; d < rank; ++d) inner *= out_shape.dim_size(d);
    uint8_t* y = reinterpret_cast<uint8_t*>(const_cast<char*>(out->tensor_data().data()));
    const int64_t out_row = total * inner;
    const bool simd = SelectedPath() != CpuPath::kPortable;
    const float zp_out = static_cast<float>(out_range.zero_point);
    // Each input's bytes and the length of one of its rows, read once (not per row).
    std::vector<const uint8_t*> srcs(n);
    std::vector<int64_t> lens(n);
    for (int i = 0; i < n; ++i) {
      srcs[i] = reinterpret_cast<const uint8_t*>(values[i].tensor_data().data());
      lens[i] = values[i].dim_size(axis) * inner;
    }
    auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    ::tensorflow::Shard(
        workers->NumThreads(), workers, outer, out_row, [&](int64_t s, int64_t e) {
          // Input by input: each one's rows [s, e) into its slice of the output rows.
          int64_t offset = 0;
          for (int i = 0; i < n; ++i) {
            const int64_t len = lens[i];
            const uint8_t* src = srcs[i] + s * len;
            uint8_t* dst = y + s * out_row + offset;
            offset += len;
            if (len == 0) continue;
            if (identity[i]) {
              for (int64_t o = s; o < e; ++o, src += len, dst += out_row) {
                std::memcpy(dst, src, len);
              }
            } else if (simd) {
              RequantRowsAvx2(src, len, e - s, dst, out_row, zero_points[i], ratios[i], zp_out);
            } else {
              const uint8_t* t = tables[i].data();
              for (int64_t o = s; o < e; ++o, src += len, dst += out_row) {
                for (int64_t k = 0; k < len; ++k) dst[k] = t[src[k]];
              }
            }
          }
        });
  }

 private:
  int axis_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("QgQuantizedMaxPool").Device(::tensorflow::DEVICE_CPU),
                        QgPoolOp<true>);
REGISTER_KERNEL_BUILDER(Name("QgQuantizedAvgPool").Device(::tensorflow::DEVICE_CPU),
                        QgPoolOp<false>);
REGISTER_KERNEL_BUILDER(Name("QgQuantizedConcat").Device(::tensorflow::DEVICE_CPU),
                        QgQuantizedConcatOp);

}  // namespace
}  // namespace qg
