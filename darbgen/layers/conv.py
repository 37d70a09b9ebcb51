"""The convolution kind: a Conv2D, Conv1D or DepthwiseConv2D at a known input
shape (:class:`darbgen.graph.ConvOp`, channel first).

A convolution is a dense layer over image patches: its pruned (out, in * kh *
kw) matrix is quantized by :func:`~darbgen.layers.dense.quantize_dense` and
checked by the dense references (which take the patches from
:meth:`ConvOp.patches <darbgen.graph.ConvOp.patches>`). What differs, here:
the C (the ``dense_layer`` templates with the darb_conv_geometry of
:func:`darbgen.codegen.layer.conv_geometry`, the darb_conv kernels), its
description and its report row.
"""
from ..codegen.layer import conv_geometry, layer_context
from ..graph import ConvOp
from .dense import DenseKind, QuantizedDense


def describe(layer):
    """One line for the header and the report."""
    kh, kw = layer.kernel_size
    return (f"conv {layer.rows} x {layer.in_shape[0]} x {kh} x {kw} on "
            f"{' x '.join(map(str, layer.in_shape))} -> {' x '.join(map(str, layer.out_shape))}, "
            f"stride {layer.stride[0]}x{layer.stride[1]}, padding {'/'.join(map(str, layer.padding))}, "
            f"dilation {layer.dilation[0]}x{layer.dilation[1]}")


class ConvKind(DenseKind):
    """A convolution: :class:`~darbgen.graph.ConvOp`, quantized as a :class:`QuantizedDense`."""

    kind = "conv"
    op_classes = (ConvOp,)
    quantized_classes = (QuantizedDense,)

    def context(self, q, sym, kernel, prefix):
        return layer_context(q, sym, kernel, prefix, geometry=conv_geometry,
                             description=describe(q.layer))

    def runtime(self, g):
        # unrolled convolutions are straight-line code; the others call darb_conv_<t>
        return set() if g.kernel == "unrolled" else {("conv", g.dtype)}

    def report_shape(self, g):
        return list(g.layer.out_shape)
