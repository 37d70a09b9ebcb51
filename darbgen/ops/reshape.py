"""reshape: a new shape over the same values (no code: the output aliases the input's buffer)."""
import numpy as np

from ..errors import DarbgenError
from . import register
from .base import OpKind


@register
class Reshape(OpKind):
    kind = "reshape"
    title = "reshape"
    keeps_quant = True
    #: the output shares the input's memory: the emitter writes no code for it
    aliases_input = True

    def output_shapes(self, node, in_shapes):
        shape = tuple(int(d) for d in node.attrs.get("shape", ()))
        size = int(np.prod(in_shapes[0]))
        if -1 in shape:
            known = int(np.prod([d for d in shape if d != -1]))
            if shape.count(-1) > 1 or known == 0 or size % known:
                raise DarbgenError(f"{node.name}: cannot reshape {tuple(in_shapes[0])} to {shape}")
            shape = tuple(size // known if d == -1 else d for d in shape)
        if int(np.prod(shape)) != size or any(d < 1 for d in shape):
            raise DarbgenError(f"{node.name}: cannot reshape {tuple(in_shapes[0])} ({size} values) to {shape}")
        return [shape]

    def _run(self, node, xs):
        x = np.asarray(xs[0])
        return [x.reshape((len(x),) + tuple(self.output_shapes(node, [x.shape[1:]])[0]))]

    def forward_f64(self, node, xs):
        return self._run(node, xs)

    def forward_f32(self, node, p, xs, kernel="packed"):
        return self._run(node, xs)

    def forward_int8(self, node, p, xs):
        return self._run(node, xs)

    def prepare(self, node, ctx):
        if ctx.dtype == "int8" and not ctx.quant(node.inputs[0]).__eq__(ctx.quant(node.outputs[0])):
            raise DarbgenError(f"{node.name}: a reshape whose output quantization differs from its input's is not "
                               f"supported (TFLite keeps it)")
        return None

    def describe(self, node, ctx):
        return f"reshape to {' x '.join(map(str, ctx.shape(node.outputs[0])))}"

    def emit(self, node, p, e):
        e.alias(node)
