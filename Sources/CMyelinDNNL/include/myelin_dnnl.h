// oneDNN (Debian's libdnnl, 2.x), loaded at run time (dlopen) the first time the CPU device convolves, for the
// CPU device's 2-D convolutions: forward, backward data and backward weights over plain NCHW / OIHW buffers, with
// oneDNN's blocked layouts (nChw8c / nChw16c) inside each call, reached by reorders. Nothing links libdnnl, so the
// package builds and the `myelin` command starts without it; the CPU device then keeps its im2col path.
#ifndef MYELIN_DNNL_H
#define MYELIN_DNNL_H

/// A convolution of x [n, c, h, w] with weight [o, c, kh, kw] (stride, zero padding on each side) into
/// y [n, o, outH, outW], outH = (h + 2·padH − kh) / strideH + 1 and outW alike.
typedef struct {
    int n, c, h, w, o, kh, kw, strideH, strideW, padH, padW;
} myelin_dnnl_conv;

/// Loads libdnnl (once; later calls return the first answer) and sets oneDNN's OpenMP threads to `threads`.
/// Sets OMP_WAIT_POLICY=passive for the OpenMP runtime it starts, unless the user set it, so that idle OpenMP
/// workers sleep instead of spinning on cores the CPU device's own threads need. Returns 1 when oneDNN is usable.
int myelin_dnnl_load(int threads);

/// The reason the last load failed ("" when it did not), for error messages and `details`.
const char *myelin_dnnl_error(void);

/// The forward: y = conv(x, weight) (+ bias[o] when bias is not NULL). Returns 0 on success, nonzero when oneDNN
/// refused the shape or failed (nothing written then, except possibly y). Primitives are made once per shape
/// and kept; calls are serialized by a lock.
int myelin_dnnl_conv_forward(const myelin_dnnl_conv *shape, const float *x, const float *weight, const float *bias,
                             float *y);
/// The gradient of the input: gx = conv's adjoint applied to gy (overwritten). Returns 0 on success.
int myelin_dnnl_conv_backward_data(const myelin_dnnl_conv *shape, const float *weight, const float *gy, float *gx);
/// The gradient of the weight: gw [o, c, kh, kw] = Σ over the batch (overwritten). Returns 0 on success.
int myelin_dnnl_conv_backward_weights(const myelin_dnnl_conv *shape, const float *x, const float *gy, float *gw);

/// Both gradients, gx as `myelin_dnnl_conv_backward_data` and gw as `myelin_dnnl_conv_backward_weights`, with gy
/// reordered into the primitives' layout once for the two. Returns 0 on success, else bit 0 set when gx failed and
/// bit 1 when gw failed (each is then left to the caller's fallback).
int myelin_dnnl_conv_backward(const myelin_dnnl_conv *shape, const float *x, const float *weight, const float *gy,
                              float *gx, float *gw);

/// Whether oneDNN has a forward primitive for this shape (made and kept on the first ask). 1 yes, 0 no.
int myelin_dnnl_conv_supported(const myelin_dnnl_conv *shape);

/// The implementations oneDNN chose for this shape's forward, backward-data and backward-weights primitives
/// (e.g. "jit:avx2 / jit:avx2 / jit:avx2"), written into `out` (at most `size` bytes); "" before they exist.
void myelin_dnnl_conv_describe(const myelin_dnnl_conv *shape, char *out, int size);
#endif
