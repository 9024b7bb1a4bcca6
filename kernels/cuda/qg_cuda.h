/* CUDA launchers of the Qg int8 op library (kernels/OPS.md is the contract).
 *
 * TF-free: device pointers in, device pointers out, range scalars by value from the host,
 * work queued on the caller's stream. Every launcher returns the launch's cudaError_t
 * (cudaErrorInvalidValue for shapes it rejects); none synchronizes. Callers (the TF kernels in
 * kernels/cc/ *_gpu.cc, tools/gpu_test.py) validate ranges before calling: these functions assume
 * finite ranges with min <= 0 <= max and max > min.
 *
 * Includable from plain C and C++ (g++/gcc with the CUDA include directory), no nvcc needed.
 */
#ifndef QG_CUDA_H_
#define QG_CUDA_H_

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { QG_ACT_NONE = 0, QG_ACT_RELU = 1, QG_ACT_RELU6 = 2 } qg_activation;

/* QG_OUT_INT32 writes the exact accumulators (after the zero-point correction) and skips the
 * epilogue: no op exposes it; the GPU test uses it to compare accumulators with the reference. */
typedef enum { QG_OUT_QUINT8 = 0, QG_OUT_FLOAT = 1, QG_OUT_INT32 = 2 } qg_out_type;

/* NHWC convolution geometry. Depthwise: out_c = in_c * multiplier. */
typedef struct {
  int batch, in_h, in_w, in_c;
  int filter_h, filter_w, out_c;
  int stride_h, stride_w, dilation_h, dilation_w;
  int pad_top, pad_left; /* padding before the first row / column (qg_cuda_conv_output_size) */
  int out_h, out_w;
} qg_conv_shape;

/* Fused epilogue of conv / depthwise / matmul (OPS.md "Epilogue"). */
typedef struct {
  const float* filter_scale; /* device, [out_c] */
  const float* bias;         /* device, [out_c]; NULL means zeros */
  float min_input, max_input;
  float min_output, max_output; /* ignored for QG_OUT_FLOAT / QG_OUT_INT32 */
  qg_activation activation;
  qg_out_type out_type;
  const uint8_t* summand; /* device, same shape as the output, quint8; NULL: no summand */
  float min_summand, max_summand;
} qg_epilogue;

/* Output size and leading padding of one spatial dimension (TF's SAME / VALID rules).
 * Returns 0 on success, -1 for bad arguments (size < 0, stride or dilation < 1). */
int qg_cuda_conv_output_size(int in, int filter, int stride, int dilation, int same_padding,
                             int* out, int* pad_before);

/* Weights in the layout the implicit GEMM reads: [n_pad][k_pad] int8 (k contiguous, zero
 * padded) followed by n_pad int32 column sums. filter is [k][n] int8 row-major (HWIO flattened
 * to [kh*kw*c_in][c_out], or MatMul's b [K][N]). The packed buffer must be
 * qg_cuda_packed_filter_bytes(k, n) bytes, 16-byte aligned. Weights are constants at
 * inference: pack once, reuse. */
size_t qg_cuda_packed_filter_bytes(int k, int n);
cudaError_t qg_cuda_pack_filter(const int8_t* filter, int k, int n, void* packed,
                                cudaStream_t stream);

/* out = epilogue(conv2d_acc(x, zp_x, filter)), NHWC [batch, out_h, out_w, out_c] of
 * uint8 / float / int32 per ep->out_type. x is quint8 NHWC. */
cudaError_t qg_cuda_conv2d(const uint8_t* x, const void* packed_filter, const qg_conv_shape* shape,
                           const qg_epilogue* ep, void* out, cudaStream_t stream);

/* a [m][k] quint8 times b [k][n] qint8 (packed), out [m][n]. */
cudaError_t qg_cuda_matmul(const uint8_t* a, const void* packed_b, int m, int k, int n,
                           const qg_epilogue* ep, void* out, cudaStream_t stream);

/* Depthwise: filter [filter_h][filter_w][in_c][multiplier] int8 as given (not packed);
 * out_c = in_c * multiplier; ep->summand must be NULL. */
cudaError_t qg_cuda_depthwise_conv2d(const uint8_t* x, const int8_t* filter,
                                     const qg_conv_shape* shape, const qg_epilogue* ep, void* out,
                                     cudaStream_t stream);

/* q = clamp(rint(x / scale) + zero_point, 0, 255) */
cudaError_t qg_cuda_quantize(const float* x, int64_t n, float min_range, float max_range,
                             uint8_t* out, cudaStream_t stream);
/* x = scale * (q - zero_point) */
cudaError_t qg_cuda_dequantize(const uint8_t* q, int64_t n, float min_range, float max_range,
                               float* out, cudaStream_t stream);
/* q = clamp(rint((float)acc * (input_scale[c] / scale_out) + zp_out), 0, 255), c = i % channels;
 * input_scale is a device vector of `channels` floats (channels = 1: one scale for all). */
cudaError_t qg_cuda_requantize(const int32_t* acc, int64_t n, int channels,
                               const float* input_scale, float min_output, float max_output,
                               uint8_t* out, cudaStream_t stream);

/* NHWC pooling; padding never counts (TF's MaxPool / AvgPool). */
typedef struct {
  int batch, in_h, in_w, channels;
  int window_h, window_w, stride_h, stride_w;
  int pad_top, pad_left;
  int out_h, out_w;
} qg_pool_shape;

cudaError_t qg_cuda_max_pool(const uint8_t* x, const qg_pool_shape* shape, uint8_t* out,
                             cudaStream_t stream);
/* q = rint(sum / count) in float32, count = window elements inside the input */
cudaError_t qg_cuda_avg_pool(const uint8_t* x, const qg_pool_shape* shape, uint8_t* out,
                             cudaStream_t stream);

/* Concatenation along one axis of n_inputs quint8 tensors viewed as [outer][axis_i][inner]:
 * inputs is a host array of device pointers, axis_sizes / mins / maxes host arrays. Each input
 * is re-mapped to the output range (OPS.md QgQuantizedConcat). */
cudaError_t qg_cuda_concat(const uint8_t* const* inputs, const int64_t* axis_sizes,
                           const float* mins, const float* maxes, int n_inputs, int64_t outer,
                           int64_t inner, float min_output, float max_output, uint8_t* out,
                           cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* QG_CUDA_H_ */
