// Op definitions of the Qg library (kernels/OPS.md), with shape functions. Registrations live
// here, apart from the CPU and GPU kernels, so the CPU and the CUDA builds share them.
#include <string>
#include <vector>

#include "../qg_common.h"  // Nhwc4, PaddingAttr, WindowOutputSize: shared with the kernels
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace qg {
namespace {

using ::tensorflow::Status;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;
namespace errors = ::tensorflow::errors;

Status ScalarOutputs(InferenceContext* c, int first) {
  c->set_output(first, c->Scalar());
  c->set_output(first + 1, c->Scalar());
  return ::tensorflow::OkStatus();
}

Status ScalarInputs(InferenceContext* c, int first, int count) {
  ShapeHandle unused;
  for (int i = first; i < first + count; ++i) {
    TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 0, &unused));
  }
  return ::tensorflow::OkStatus();
}

// Output spatial dim of SAME / VALID with dilation (qg_shape.h). Unknown stays unknown, and so
// does an empty window, which the kernel refuses at run time with a message naming it.
DimensionHandle SpatialOut(InferenceContext* c, DimensionHandle in, int64_t k, int64_t stride,
                           int64_t dilation, bool same) {
  int64_t out, pad_before;
  if (!c->ValueKnown(in) ||
      !WindowOutputSize(c->Value(in), k, stride, dilation, same, &out, &pad_before)) {
    return c->UnknownDim();
  }
  return c->MakeDim(out);
}

// conv and depthwise: input [N,H,W,C] quint8, filter [kh,kw,C,X]; out channels C_out.
Status ConvShapeFn(InferenceContext* c, bool depthwise) {
  ShapeHandle input, filter, vec;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &input));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &filter));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &vec));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 1, &vec));
  TF_RETURN_IF_ERROR(ScalarInputs(c, 4, 4));
  DimensionHandle unused_dim;
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(input, 3), c->Dim(filter, 2), &unused_dim));
  int64_t sh, sw, dh, dw;
  TF_RETURN_IF_ERROR(Nhwc4(c, "", "strides", &sh, &sw));
  TF_RETURN_IF_ERROR(Nhwc4(c, "", "dilations", &dh, &dw));
  bool same;
  TF_RETURN_IF_ERROR(PaddingAttr(c, "", &same));
  DimensionHandle kh = c->Dim(filter, 0), kw = c->Dim(filter, 1), oh, ow, cout;
  if (c->ValueKnown(kh) && c->ValueKnown(kw)) {
    oh = SpatialOut(c, c->Dim(input, 1), c->Value(kh), sh, dh, same);
    ow = SpatialOut(c, c->Dim(input, 2), c->Value(kw), sw, dw, same);
  } else {
    oh = c->UnknownDim();
    ow = c->UnknownDim();
  }
  if (depthwise) {
    TF_RETURN_IF_ERROR(c->Multiply(c->Dim(filter, 2), c->Dim(filter, 3), &cout));
  } else {
    cout = c->Dim(filter, 3);
  }
  c->set_output(0, c->MakeShape({c->Dim(input, 0), oh, ow, cout}));
  return ScalarOutputs(c, 1);
}

Status PoolShapeFn(InferenceContext* c) {
  ShapeHandle input;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &input));
  TF_RETURN_IF_ERROR(ScalarInputs(c, 1, 2));
  int64_t kh, kw, sh, sw;
  TF_RETURN_IF_ERROR(Nhwc4(c, "", "ksize", &kh, &kw));
  TF_RETURN_IF_ERROR(Nhwc4(c, "", "strides", &sh, &sw));
  bool same;
  TF_RETURN_IF_ERROR(PaddingAttr(c, "", &same));
  DimensionHandle oh = SpatialOut(c, c->Dim(input, 1), kh, sh, 1, same);
  DimensionHandle ow = SpatialOut(c, c->Dim(input, 2), kw, sw, 1, same);
  c->set_output(0, c->MakeShape({c->Dim(input, 0), oh, ow, c->Dim(input, 3)}));
  return ScalarOutputs(c, 1);
}

}  // namespace

REGISTER_OP("QgQuantize")
    .Input("input: float")
    .Input("min_range: float")
    .Input("max_range: float")
    .Output("output: quint8")
    .Output("output_min: float")
    .Output("output_max: float")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(ScalarInputs(c, 1, 2));
      c->set_output(0, c->input(0));
      return ScalarOutputs(c, 1);
    })
    .Doc("float -> quint8 over [min_range, max_range] (kernels/OPS.md).");

REGISTER_OP("QgDequantize")
    .Input("input: quint8")
    .Input("min_range: float")
    .Input("max_range: float")
    .Output("output: float")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(ScalarInputs(c, 1, 2));
      c->set_output(0, c->input(0));
      return ::tensorflow::OkStatus();
    })
    .Doc("quint8 -> float: scale * (q - zero_point).");

REGISTER_OP("QgRequantize")
    .Input("input: qint32")
    .Input("input_scale: float")
    .Input("min_output: float")
    .Input("max_output: float")
    .Output("output: quint8")
    .Output("output_min: float")
    .Output("output_max: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle scale;
      TF_RETURN_IF_ERROR(c->WithRankAtMost(c->input(1), 1, &scale));
      TF_RETURN_IF_ERROR(ScalarInputs(c, 2, 2));
      c->set_output(0, c->input(0));
      return ScalarOutputs(c, 1);
    })
    .Doc("int32 accumulators (real = acc * input_scale[c], c = last dim) -> quint8.");

REGISTER_OP("QgQuantizedConv2D")
    .Input("input: quint8")
    .Input("filter: qint8")
    .Input("filter_scale: float")
    .Input("bias: float")
    .Input("min_input: float")
    .Input("max_input: float")
    .Input("min_output: float")
    .Input("max_output: float")
    .Input("summand: num_summand * quint8")
    .Input("min_summand: num_summand * float")
    .Input("max_summand: num_summand * float")
    .Output("output: out_type")
    .Output("output_min: float")
    .Output("output_max: float")
    .Attr("out_type: {quint8, float} = DT_QUINT8")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .Attr("dilations: list(int) = [1, 1, 1, 1]")
    .Attr("activation: {'none', 'relu', 'relu6'} = 'none'")
    .Attr("num_summand: int >= 0 = 0")
    .Attr("constant_weights: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      int64_t num_summand;
      TF_RETURN_IF_ERROR(c->GetAttr("num_summand", &num_summand));
      if (num_summand > 1) return errors::InvalidArgument("num_summand must be 0 or 1");
      return ConvShapeFn(c, false);
    })
    .Doc("Fused int8 conv: bias, relu/relu6, residual add, requantize (kernels/OPS.md).");

REGISTER_OP("QgQuantizedDepthwiseConv2D")
    .Input("input: quint8")
    .Input("filter: qint8")
    .Input("filter_scale: float")
    .Input("bias: float")
    .Input("min_input: float")
    .Input("max_input: float")
    .Input("min_output: float")
    .Input("max_output: float")
    .Output("output: out_type")
    .Output("output_min: float")
    .Output("output_max: float")
    .Attr("out_type: {quint8, float} = DT_QUINT8")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .Attr("dilations: list(int) = [1, 1, 1, 1]")
    .Attr("activation: {'none', 'relu', 'relu6'} = 'none'")
    .Attr("constant_weights: bool = false")
    .SetShapeFn([](InferenceContext* c) { return ConvShapeFn(c, true); })
    .Doc("Fused int8 depthwise conv, filter [kh, kw, C, multiplier].");

REGISTER_OP("QgQuantizedMatMul")
    .Input("a: quint8")
    .Input("b: qint8")
    .Input("b_scale: float")
    .Input("bias: float")
    .Input("min_a: float")
    .Input("max_a: float")
    .Input("min_output: float")
    .Input("max_output: float")
    .Input("summand: num_summand * quint8")
    .Input("min_summand: num_summand * float")
    .Input("max_summand: num_summand * float")
    .Output("output: out_type")
    .Output("output_min: float")
    .Output("output_max: float")
    .Attr("out_type: {quint8, float} = DT_QUINT8")
    .Attr("activation: {'none', 'relu', 'relu6'} = 'none'")
    .Attr("num_summand: int >= 0 = 0")
    .Attr("constant_weights: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      int64_t num_summand;
      TF_RETURN_IF_ERROR(c->GetAttr("num_summand", &num_summand));
      if (num_summand > 1) return errors::InvalidArgument("num_summand must be 0 or 1");
      ShapeHandle a, b, vec;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &a));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &b));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &vec));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 1, &vec));
      TF_RETURN_IF_ERROR(ScalarInputs(c, 4, 4));
      DimensionHandle k;
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(a, 1), c->Dim(b, 0), &k));
      c->set_output(0, c->Matrix(c->Dim(a, 0), c->Dim(b, 1)));
      return ScalarOutputs(c, 1);
    })
    .Doc("Fused int8 matmul [M, K] x [K, N]: bias, relu/relu6, residual add, requantize.");

REGISTER_OP("QgQuantizedMaxPool")
    .Input("input: quint8")
    .Input("min_input: float")
    .Input("max_input: float")
    .Output("output: quint8")
    .Output("output_min: float")
    .Output("output_max: float")
    .Attr("ksize: list(int)")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .SetShapeFn(PoolShapeFn)
    .Doc("int8 max pool; the output keeps the input range.");

REGISTER_OP("QgQuantizedAvgPool")
    .Input("input: quint8")
    .Input("min_input: float")
    .Input("max_input: float")
    .Output("output: quint8")
    .Output("output_min: float")
    .Output("output_max: float")
    .Attr("ksize: list(int)")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .SetShapeFn(PoolShapeFn)
    .Doc("int8 average pool (count excludes padding); the output keeps the input range.");

REGISTER_OP("QgQuantizedConcat")
    .Input("values: N * quint8")
    .Input("mins: N * float")
    .Input("maxes: N * float")
    .Input("min_output: float")
    .Input("max_output: float")
    .Output("output: quint8")
    .Output("output_min: float")
    .Output("output_max: float")
    .Attr("N: int >= 1")
    .Attr("axis: int")
    .SetShapeFn([](InferenceContext* c) {
      int n, axis;
      TF_RETURN_IF_ERROR(c->GetAttr("N", &n));
      TF_RETURN_IF_ERROR(c->GetAttr("axis", &axis));
      TF_RETURN_IF_ERROR(ScalarInputs(c, n, 2 * n + 2));
      ShapeHandle out = c->input(0);
      if (!c->RankKnown(out)) {
        c->set_output(0, c->UnknownShape());
        return ScalarOutputs(c, 1);
      }
      const int rank = c->Rank(out);
      if (axis < -rank || axis >= rank) {
        return errors::InvalidArgument("axis ", axis, " is out of range for rank ", rank);
      }
      const int ax = axis < 0 ? axis + rank : axis;
      DimensionHandle total = c->Dim(out, ax);
      for (int i = 1; i < n; ++i) {
        ShapeHandle s;
        TF_RETURN_IF_ERROR(c->WithRank(c->input(i), rank, &s));
        TF_RETURN_IF_ERROR(c->Add(total, c->Dim(s, ax), &total));
        ShapeHandle merged;
        TF_RETURN_IF_ERROR(c->ReplaceDim(out, ax, c->UnknownDim(), &out));
        TF_RETURN_IF_ERROR(c->ReplaceDim(s, ax, c->UnknownDim(), &s));
        TF_RETURN_IF_ERROR(c->Merge(out, s, &merged));
        out = merged;
      }
      TF_RETURN_IF_ERROR(c->ReplaceDim(out, ax, total, &out));
      c->set_output(0, out);
      return ScalarOutputs(c, 1);
    })
    .Doc("Concatenation of quint8 tensors with different ranges into one output range.");

REGISTER_OP("QgCpuPath")
    .Output("path: string")
    .SetShapeFn(::tensorflow::shape_inference::ScalarShape)
    .SetIsStateful()
    .Doc("The GEMM path the CPU kernels use: vnni, avx2 or portable (or the QG_CPU_PATH error).");

}  // namespace qg
