// The window geometry of the Qg ops, written once for every caller: the CPU kernels, the op
// shape functions (kernels/cc/ops/qg_ops.cc), the TF GPU kernels and the CUDA launchers'
// qg_cuda_conv_output_size (kernels/cuda/igemm.cu, which tools/gpu_test.py calls). TF-free
// and plain C++ so that nvcc and g++ both compile it.
//
// Not TF's GetWindowedOutputSize (kernel_shape_util.h): the launchers must build without TF,
// and TF refuses a VALID window larger than the input where kernels/OPS.md gives an empty
// output.
#ifndef QG_KERNELS_CC_QG_SHAPE_H_
#define QG_KERNELS_CC_QG_SHAPE_H_

#include <cstdint>

namespace qg {

// Output size and leading padding of one spatial dimension under TF's SAME / VALID rules, for
// a window of k taps `dilation` apart. Returns false for arguments no op accepts (in < 0,
// k, stride or dilation < 1). Callers bound k * dilation (k <= 65,793 taps, dilation < 2^31),
// so nothing here overflows int64. An empty input has no padding.
inline bool WindowOutputSize(int64_t in, int64_t k, int64_t stride, int64_t dilation,
                             bool same, int64_t* out, int64_t* pad_before) {
  if (in < 0 || k < 1 || stride < 1 || dilation < 1) return false;
  const int64_t eff = (k - 1) * dilation + 1;
  *pad_before = 0;
  if (same) {
    *out = (in + stride - 1) / stride;
    const int64_t total = *out > 0 ? (*out - 1) * stride + eff - in : 0;
    if (total > 0) *pad_before = total / 2;
  } else {
    *out = in >= eff ? (in - eff) / stride + 1 : 0;
  }
  return true;
}

// A strides / dilations / ksize attribute: 4 values [1, h, w, 1] (NHWC: batch and channel 1),
// h and w >= 1.
template <typename Int>
inline bool IsNhwcWindowAttr(const Int* v, int64_t size) {
  return size == 4 && v[0] == 1 && v[3] == 1 && v[1] >= 1 && v[2] >= 1;
}

// An NHWC pool: input [n, h, w, c], window kh x kw, strides sh, sw, output [n, oh, ow, c],
// ph / pw leading padding (the window of output (oy, ox) starts at (oy*sh - ph, ox*sw - pw)).
struct PoolShape {
  int64_t n = 0, h = 0, w = 0, c = 0, oh = 0, ow = 0, ph = 0, pw = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1;
};

}  // namespace qg

#endif  // QG_KERNELS_CC_QG_SHAPE_H_
