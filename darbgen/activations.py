"""The activations in exact float64 mathematics: what a trained model computes.

Shared by the layer graph (:mod:`darbgen.graph`, the float64 forward pass),
quantization (calibration and the sigmoid / tanh tables) and the float64
references. The float32 twins of the C's own exp / sigmoid / tanh are in
:mod:`darbgen.math_f32`. Imports nothing from darbgen.
"""
import numpy as np


@np.errstate(under="ignore")
def activate_f64(activation, v):
    """The exact activation in float64."""
    if activation == "relu":
        return np.maximum(v, 0.0)
    if activation == "relu6":
        return np.clip(v, 0.0, 6.0)
    if activation == "sigmoid":
        e = np.exp(-np.abs(v))               # never overflows
        return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if activation == "tanh":
        return np.tanh(v)
    return v


@np.errstate(under="ignore")
def softmax_f64(v):
    """softmax over the last axis in float64."""
    v = np.asarray(v, np.float64)
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
