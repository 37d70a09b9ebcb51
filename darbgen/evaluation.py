"""What both build pipelines share after code generation: measuring, verifying on the host and on a
core, counting instructions, scoring against test data, and the result they return.

:func:`darbgen.build.build` (chain models) and :func:`darbgen.graph_build.build_graph` (op graphs)
call these; neither imports the other for them.
"""
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np


def predict(outputs, classes=None):
    """Class labels from model outputs: argmax, or > 0.5 for one sigmoid output."""
    outputs = np.asarray(outputs, np.float64)
    index = outputs.argmax(axis=1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0.5).astype(int)
    return index if classes is None else np.asarray(classes)[index]


def is_classification(y, classes):
    """True when labels ``y`` name classes (integers, strings, booleans, or a model with class labels)."""
    y = np.asarray(y)
    return np.issubdtype(y.dtype, np.integer) or y.dtype.kind in "OUSb" or classes is not None


def score(outputs, y, classes):
    """Accuracy for class labels, mean squared error otherwise."""
    y = np.asarray(y)
    if is_classification(y, classes):
        return float(np.mean(predict(outputs, classes) == y.reshape(-1)))
    return float(np.mean((np.asarray(outputs, np.float64).reshape(y.shape) - y) ** 2))


def accuracy(original, pruned, c, y, classes):
    """The report's accuracy block: the original model's, the pruned model's and the C's score on
    (``y``), and for classifiers how often the C picks the pruned model's class."""
    classify = is_classification(y, classes)
    out = {"metric": "accuracy" if classify else "mse", "vectors": int(len(y)),
           "original": score(original, y, classes), "pruned": score(pruned, y, classes), "c": score(c, y, classes)}
    if classify:
        out["c_agrees_with_pruned"] = float(np.mean(predict(c) == predict(pruned)))
    return out


def size_target(target):
    """Where flash is measured: the target core, else Cortex-M4 when its compiler is there, else the host."""
    if target != "host":
        return target
    return "cortex-m4" if shutil.which("arm-none-eabi-gcc") else "host"


def check(module, target, extra, advance=None, bar=None, timeout=None):
    """Verify ``module`` on the host (every vector, and the evaluation inputs ``extra``) and, for a Cortex-M
    ``target``, on the core in QEMU: a sample of each unit's vectors (verify's ``sample``), then the
    instructions counted and the image measured (only when it matches: a mismatch is reported as such, not
    counted). QEMU's time-outs scale with the host's run time of the same work, unless ``timeout`` (seconds,
    every run) is given.

    Returns (checked, host_check, count, image): ``checked`` is the target's VerifyResult (the host's
    for "host"), ``host_check`` the host's when a core was checked too."""
    from .verify import count_instructions, verify

    advance = advance or (lambda bar, label: None)
    checked = verify(module, raise_on_mismatch=False, extra_inputs=extra, timeout=timeout)
    advance(bar, "verified on the host")
    host_check, count, image = None, None, None
    if target != "host":
        from .toolchain import cortex_m

        host_check = checked
        checked = verify(module, raise_on_mismatch=False, extra_inputs=extra, target=target, sample=host_check,
                         timeout=timeout)
        advance(bar, f"verified on {target}")
        if checked.ok:
            runs = sum(c.vectors for c in host_check.layers)
            per_run = host_check.run_seconds / max(runs, 1)
            count_timeout = timeout or cortex_m.run_timeout(per_run * len(module.units), trace=True)
            with tempfile.TemporaryDirectory(prefix="darbgen-count-") as tmp:
                count = count_instructions(module, target, keep_dir=tmp, timeout=count_timeout)
                image = cortex_m.image_sizes(os.path.join(tmp, "darb_harness.elf"))
        advance(bar, "instructions counted")
    return checked, host_check, count, image


def eval_outputs(checked, host_check, n):
    """The generated C's outputs on the last ``n`` (evaluation) inputs of the whole model: the host's run,
    which ran every input (a core runs a sample; both compute the same integers, checked on the sample)."""
    return (host_check or checked).outputs["(model)"][-n:]


@dataclass
class BuildResult:
    """What a build made: the models, the generated module, the
    verification and the report (plain data, see docs/build.md)."""

    model: object
    pruned: object
    module: object
    verification: object
    report: dict
    #: the generated C's outputs on the evaluation inputs, as real numbers
    eval_outputs: np.ndarray = None
    #: with a Cortex-M target: the host check (``verification`` is the target's)
    host_verification: object = None

    @property
    def ok(self):
        return self.verification.ok and (self.host_verification is None or self.host_verification.ok)
