"""The firmware example (examples/firmware) builds against generated C and
classifies the bundled test digits exactly as the reference does."""
import shutil
import subprocess
from pathlib import Path

import numpy as np

import darbgen
from darbgen.importers.npz import dense_layers
from darbgen.npzio import load_npz
from darbgen.quantize import float_forward
from darbgen.reference import dense_int
from darbgen.toolchain import host

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "examples" / "firmware"


def test_firmware_example_classifies_like_the_reference(tmp_path, gcc, arm_gcc):
    arrays = load_npz(ROOT / "examples" / "digits_mlp.npz")
    _, layers, _ = dense_layers(arrays)
    # one-shot (no retraining) this small MLP keeps its accuracy up to about 2x
    pruned = darbgen.prune_model({layer.name: layer.weight for layer in layers}, 2)
    layers = [darbgen.Dense(layer.name, layer.weight, layer.bias, pruned[layer.name].mask,
                            pruned[layer.name].block_sizes, layer.activation) for layer in layers]
    x = arrays["test.x"].astype(np.float32)
    module = darbgen.generate(layers, dtype="int8", kernel="packed", prefix="digits_mlp", calib=x)
    module.write_files(tmp_path)
    for name in ("classify.c", "classify.h", "host_main.c"):
        shutil.copyfile(FIRMWARE / name, tmp_path / name)
    sources = module.sources + ["classify.c", "host_main.c"]
    subprocess.run([gcc, *host.STRICT_FLAGS, "-I.", *sources, "-o", "classify"], cwd=tmp_path, check=True)
    subprocess.run([arm_gcc, *host.STRICT_FLAGS, *host.CORTEX_M4_FLAGS, "-I.", "-c", *module.sources, "classify.c"],
                   cwd=tmp_path, check=True)
    (tmp_path / "images.f32").write_bytes(x.tobytes())
    out = subprocess.run(["./classify", "images.f32"], cwd=tmp_path, check=True, capture_output=True, text=True)
    predicted = np.array([int(v) for v in out.stdout.split()])
    # the reference: the same float32 input rounding, then the integer layers
    qs = [g.quantized for g in module.layers]
    scaled = x / np.float32(qs[0].input.scale)
    q = np.where(scaled >= 0, np.trunc(scaled + np.float32(0.5)), np.trunc(scaled - np.float32(0.5)))
    h = np.clip(q.astype(np.int64) + qs[0].input.zero_point, -128, 127)
    for layer_q in qs:
        h = dense_int(layer_q, h)
    np.testing.assert_array_equal(predicted, h.argmax(axis=1))
    accuracy = (predicted == arrays["test.y"]).mean()
    h = x.astype(np.float64)
    for layer in layers:
        h = float_forward(layer, h)[1]
    float_accuracy = (h.argmax(axis=1) == arrays["test.y"]).mean()
    assert accuracy > 0.93 and abs(accuracy - float_accuracy) <= 0.02, (accuracy, float_accuracy)
