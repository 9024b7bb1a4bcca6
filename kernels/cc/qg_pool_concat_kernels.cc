// CPU kernels of QgQuantizedMaxPool, QgQuantizedAvgPool and QgQuantizedConcat (kernels/OPS.md).
// The portable loops are here; on the avx2 path the AVX2 loops of qg_pool_concat_avx2.cc run
// instead, on the vnni and amx paths the AVX-512 ones of qg_pool_concat_avx512.cc, with
// bit-identical results.
#include <array>
#include <cstring>

#include "qg_common.h"
#include "qg_parallel.h"
#include "qg_pool_concat_simd.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace qg {
namespace {

using ::tensorflow::OpInputList;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

template <bool kMax>
class QgPoolOp : public OpKernel {
 public:
  explicit QgPoolOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
    OP_REQUIRES_OK(ctx, attrs_.Read(ctx));
  }

  void Compute(OpKernelContext* ctx) override {
    PoolShape g;
    Range r;
    OP_REQUIRES_OK(ctx, attrs_.Geometry(ctx, kMax, &g, &r));
    const Tensor& in = ctx->input(0);
    const int64_t n = g.n, h = g.h, w = g.w, c = g.c, oh = g.oh, ow = g.ow, ph = g.ph, pw = g.pw;
    const int kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n, oh, ow, c}), &out));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, r));
    const int64_t rows = n * oh * ow;
    if (rows == 0 || c == 0) return;
    // What a window really reads: clipped to the input (ksize may be 2^31 - 1).
    const int64_t eh = std::min<int64_t>(kh, h), ew = std::min<int64_t>(kw, w);
    const uint8_t* x = reinterpret_cast<const uint8_t*>(in.tensor_data().data());
    uint8_t* y = reinterpret_cast<uint8_t*>(const_cast<char*>(out->tensor_data().data()));
    const bool simd = SelectedPath() != CpuPath::kPortable &&
                      (kMax || static_cast<int64_t>(kh) * kw <= kAvgPoolMaxTaps);
    const bool avx512 = Avx512Path(SelectedPath());
    if (simd) {
      // One unit is one output row: the vertical pass reads kh input rows, the horizontal
      // one kw columns per pixel.
      ParallelRange(ctx, n * oh, (eh * std::min<int64_t>(sw, w) + ew) * ow * c,
                    [&](int64_t s0, int64_t s1) {
                      if (kMax) {
                        (avx512 ? MaxPoolRowsAvx512 : MaxPoolRowsAvx2)(g, x, y, s0, s1);
                      } else {
                        (avx512 ? AvgPoolRowsAvx512 : AvgPoolRowsAvx2)(g, x, y, s0, s1);
                      }
                    });
      return;
    }
    ParallelRange(ctx, rows, eh * ew * c, [&](int64_t s, int64_t e) {
      std::vector<int32_t> acc(c);
      for (int64_t row = s; row < e; ++row) {
        const int64_t ox = row % ow, t = row / ow, oy = t % oh, b = t / oh;
        std::fill(acc.begin(), acc.end(), 0);
        int count = 0;
        // Only the taps inside the input: padding never counts.
        int64_t i0, i1, j0, j1;
        ClipWindow(oy * sh - ph, kh, h, &i0, &i1);
        ClipWindow(ox * sw - pw, kw, w, &j0, &j1);
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t yy = oy * sh - ph + i;
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t xx = ox * sw - pw + j;
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
  PoolAttrs attrs_;
};

class QgQuantizedConcatOp : public OpKernel {
 public:
  explicit QgQuantizedConcatOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, CheckCpuPath());
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    ConcatInputs in;
    OP_REQUIRES_OK(ctx, ValidateConcat(ctx, axis_, &in));
    OpInputList values;
    OP_REQUIRES_OK(ctx, ctx->input_list("values", &values));
    const int n = values.size();
    const int axis = in.axis;
    const Range& out_range = in.out;
    const TensorShape& out_shape = in.out_shape;
    const int64_t total = out_shape.dim_size(axis), outer = in.outer, inner = in.inner;
    std::vector<std::array<uint8_t, 256>> tables(n);
    std::vector<float> ratios(n);
    std::vector<int> zero_points(n);
    std::vector<char> identity(n);
    for (int i = 0; i < n; ++i) {
      const Range& r = in.ranges[i];
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
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &out));
    OP_REQUIRES_OK(ctx, EchoRange(ctx, out_range));
    if (out_shape.num_elements() == 0) return;
    uint8_t* y = reinterpret_cast<uint8_t*>(const_cast<char*>(out->tensor_data().data()));
    const int64_t out_row = total * inner;
    const bool simd = SelectedPath() != CpuPath::kPortable;
    const auto requant = Avx512Path(SelectedPath()) ? RequantRowsAvx512 : RequantRowsAvx2;
    const float zp_out = static_cast<float>(out_range.zero_point);
    // Each input's bytes and the length of one of its rows, read once (not per row).
    std::vector<const uint8_t*> srcs(n);
    std::vector<int64_t> lens(n);
    for (int i = 0; i < n; ++i) {
      srcs[i] = reinterpret_cast<const uint8_t*>(values[i].tensor_data().data());
      lens[i] = values[i].dim_size(axis) * inner;
    }
    ParallelRange(ctx, outer, out_row, [&](int64_t s, int64_t e) {
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
          requant(src, len, e - s, dst, out_row, zero_points[i], ratios[i], zp_out);
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
