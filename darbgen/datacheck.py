"""Checking the data a user hands darbgen: calibration inputs, evaluation and
validation inputs and their labels or targets.

Every check raises a one-line :class:`~darbgen.errors.DarbgenError` naming
the data (``what``, e.g. "evaluation inputs (eval_data)": the API argument
in brackets, which the CLI rewrites to its flag) and the fix, instead of a NumPy traceback deep in the
pipeline or, worse, a meaningless accuracy:

- inputs must be real numbers (no complex values, strings or objects), all
  finite, with one model input per row: shape (n, *input shape) or (n, input
  size);
- labels are one whole number per input, 0 .. outputs - 1 (floats that are
  whole numbers are accepted as labels, as NumPy and pandas often store
  them); regression targets have the output's shape; NaN, fractional labels,
  one-hot or other 2-D labels are refused with the fix;
- calibration inputs must vary (a constant array says nothing about the
  ranges) and must lie on the same scale as the model's real inputs when
  those are known (the evaluation inputs, or the data the model file
  bundles): calibrating on 0..255 pixels a model trained on 0..1 gives a
  verified C model that is wrong on every real input.
"""
import numpy as np

from .errors import DarbgenError

#: calibration inputs whose largest magnitude is this many times larger (or
#: smaller) than the model's real inputs' are refused
CALIB_SCALE_LIMIT = 100.0


def real_inputs(x, shape, what):
    """``x`` as float64 of shape (n, *shape): real, finite, one input per row.

    ``shape`` is one input's shape (without the batch); rows of its size
    flattened are reshaped.
    """
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape)) if shape else 1
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind in "USV" or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DarbgenError(f"{what} must be numbers, got dtype {x.dtype}; save a numeric array")
    if np.iscomplexobj(x):
        raise DarbgenError(f"{what} are complex ({x.dtype}); the model takes real numbers: pass the real "
                           f"part or the magnitude, whichever the model was trained on")
    if x.ndim == 0 or len(x) == 0:
        raise DarbgenError(f"{what} are empty (shape {x.shape}); give at least one input of shape "
                           f"{shape_text(shape)}")
    if x.ndim == 1 and x.size == size:
        x = x[None]
    if int(np.prod(x.shape[1:])) != size:
        raise DarbgenError(f"{what} of shape {x.shape} do not match the model's input {shape_text(shape)} "
                           f"({size} values each): give an array of shape (n, {', '.join(map(str, shape))})")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DarbgenError(f"{what} hold {int(bad.sum())} NaN or infinite values (the first in input "
                           f"{row}); drop or fill those inputs")
    return x.reshape((len(x),) + shape)


def shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def targets(y, n, outputs, what, classes=None):
    """(kind, y) for ``n`` inputs of a model with ``outputs`` outputs:
    ``("accuracy", int64 labels)`` or ``("mse", float64 (n, outputs))``.

    ``classes``: the model's class labels (a scikit-learn classifier), which
    ``y`` may hold instead of indices.
    """
    y = np.asarray(y)
    if len(y.shape) == 0:
        raise DarbgenError(f"{what} are a single value; give one label (or target) per input")
    if len(y) != n:
        raise DarbgenError(f"{what}: {n} inputs but {len(y)} labels; give one label (or target) per input")
    if classes is not None:                      # labels are the model's class values (scikit-learn's classes_)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        known = set(np.asarray(classes).tolist())
        unknown = [v for v in y.reshape(-1).tolist() if v not in known]
        if y.ndim != 1 or unknown:
            raise DarbgenError(f"{what}: {unknown[0]!r} is not one of the model's classes "
                               f"{sorted(map(str, known))}" if unknown else
                               f"{what} must be one class per input, got shape {y.shape}")
        return "accuracy", y
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise DarbgenError(f"{what} must be real numbers (class numbers or regression targets), got "
                           f"dtype {y.dtype}")
    if not np.all(np.isfinite(y)):
        row = int(np.argwhere(~np.isfinite(y.reshape(n, -1)))[0][0])
        raise DarbgenError(f"{what} hold NaN or infinite values (the first at input {row}); drop or fix "
                           f"those inputs")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim == 1 and (outputs > 1 or np.issubdtype(y.dtype, np.integer)):
        if np.any(y != np.round(y)):
            raise DarbgenError(f"{what} must be whole class numbers 0..{outputs - 1}, and these have "
                               f"fractions; give integer labels, or regression targets of the output's shape "
                               f"(n, {outputs})")
        labels = y.astype(np.int64)
        top = max(outputs, 2) - 1                # one sigmoid output: labels 0 and 1
        if labels.min() < 0 or labels.max() > top:
            raise DarbgenError(f"{what} must be 0..{top} (the model has {outputs} output"
                               f"{'s' if outputs > 1 else ''}), got {labels.min()}..{labels.max()}")
        return "accuracy", labels
    if y.ndim >= 2 and int(np.prod(y.shape[1:])) == outputs and outputs > 1:
        flat = y.reshape(n, -1)
        if np.issubdtype(y.dtype, np.integer) or (np.all((flat == 0) | (flat == 1)) and np.all(flat.sum(1) == 1)):
            raise DarbgenError(f"{what} have shape {y.shape}: one-hot or integer rows, not regression "
                               f"targets; give one class number per input (y.argmax(axis=1))")
        return "mse", flat.astype(np.float64)
    if y.ndim == 1 and outputs == 1:
        return "mse", y.reshape(n, 1).astype(np.float64)
    raise DarbgenError(f"{what} have shape {y.shape}, which fits neither class labels (one per input, "
                       f"shape ({n},)) nor regression targets of the model's output (shape ({n}, {outputs}))")


def calibration(x, shape, what="calibration inputs (calib)", reference=None, reference_what=None):
    """Calibration inputs ``x`` as float64 (n, *shape), checked (see the module).

    ``reference``: the model's real inputs when known (evaluation inputs, or a
    test set the model file bundles), named ``reference_what``.
    """
    x = real_inputs(x, shape, what)
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        raise DarbgenError(f"{what} are all {lo:g}: a constant array says nothing about the ranges the "
                           f"model's activations take; give real inputs (a few hundred from the training set)")
    if reference is not None:
        ref = np.asarray(reference, np.float64)
        ref = ref[np.isfinite(ref)]
        top, ref_top = float(np.max(np.abs(x))), float(np.max(np.abs(ref))) if ref.size else 0.0
        if ref_top > 0:
            factor = top / ref_top
            if factor > CALIB_SCALE_LIMIT or factor < 1 / CALIB_SCALE_LIMIT:
                raise DarbgenError(
                    f"{what} span [{lo:.4g}, {hi:.4g}], but {reference_what} span "
                    f"[{float(ref.min()):.4g}, {float(ref.max()):.4g}] ({_times(factor)}): calibrate on inputs "
                    f"scaled and normalised as the model's real inputs are")
    return x


def _times(factor):
    return f"{factor:.3g} times larger" if factor > 1 else f"{1 / factor:.3g} times smaller"
