"""Reading weight files and writing results without ever leaving half a file.

Weight files are NumPy ``.npz`` archives. They are read with
``allow_pickle=False``: darbgen never unpickles, so an archive holding Python
objects is refused with a clear error instead of running its code.

Output goes to a temporary file next to the destination and is moved into
place with :func:`os.replace` once complete, so a crash or a full disk never
leaves a truncated result, and an existing file is replaced only when the
caller says so.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import DarbgenError

MODEL_KEY = "__model__"      # JSON description of the network (docs/npz.md)
RESULT_KEY = "__darbgen__"   # JSON written by `darbgen prune`
MASK_SUFFIX = "__mask"
BLOCKS_SUFFIX = "__block_sizes"


#: model files that `darbgen build` reads, not .npz weight archives
MODEL_FILES = {".tflite": "TensorFlow Lite", ".h5": "Keras 2", ".hdf5": "Keras 2", ".keras": "Keras 3",
               ".onnx": "ONNX"}


def load_npz(path):
    """All arrays of an .npz file as a dict, or a DarbgenError saying why not."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DarbgenError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DarbgenError(f"{path}: is a directory, expected an .npz file")
    ext = os.path.splitext(path)[1].lower()
    if ext in MODEL_FILES:
        raise DarbgenError(f"{path}: a {MODEL_FILES[ext]} model, not an .npz of weight arrays; prune, quantize and "
                           f"generate it in one go with `darbgen build {os.path.basename(path)} --ratio R --out DIR`")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise DarbgenError(f"{path}: holds a single array, not an .npz archive of named arrays "
                                   f"(save with numpy.savez(path, name=array, ...))")
            return {name: data[name] for name in data.files}
    except DarbgenError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DarbgenError(f"{path}: contains Python objects (pickled arrays); darbgen never unpickles. "
                               f"Save plain numeric arrays with numpy.savez") from None
        raise DarbgenError(f"{path}: not a readable .npz file ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise DarbgenError(f"{path}: not a readable .npz file ({exc.__class__.__name__}: {exc})") from None


def model_description(arrays):
    """The parsed ``__model__`` JSON of an archive, or None when it has none."""
    if MODEL_KEY not in arrays:
        return None
    try:
        return json.loads(str(arrays[MODEL_KEY]))
    except json.JSONDecodeError as exc:
        raise DarbgenError(f"{MODEL_KEY}: not valid JSON ({exc})") from None


def weight_names(arrays, layers=None):
    """Names of the arrays to prune.

    ``layers`` (names) picks them explicitly. Otherwise, when the archive
    describes its network (``__model__``), the ``<layer>.weight`` array of
    every layer; else every numeric array with 2 to 4 dimensions.
    """
    if RESULT_KEY in arrays:
        raise DarbgenError("this file is already the output of `darbgen prune`; prune the original weights instead")
    if layers:
        missing = [n for n in layers if n not in arrays]
        if missing:
            raise DarbgenError(f"{missing[0]}: no such array in the file; it has: {', '.join(sorted(arrays))}")
        return list(layers)
    model = model_description(arrays)
    if model is not None:
        names = [f"{layer['name']}.weight" for layer in model.get("layers", [])
                 if f"{layer.get('name')}.weight" in arrays]
    else:
        names = [n for n, a in arrays.items() if np.issubdtype(a.dtype, np.number) and a.ndim >= 2]
    if not names:
        raise DarbgenError("the file holds no weight matrix (no numeric array with 2 or more dimensions)")
    return names


def as_matrix(name, array):
    """A weight array as a 2-D matrix: conv kernels (out, ...) flattened to (out, rest)."""
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DarbgenError(f"{name}: expected real numbers, got dtype {array.dtype}")
    if array.ndim < 2:
        raise DarbgenError(f"{name}: is {array.ndim}-D (shape {array.shape}); only matrices (2-D) and convolution "
                           f"kernels (3-D/4-D, output channels first) can be pruned. Leave it out of --layers.")
    if array.ndim > 4:
        raise DarbgenError(f"{name}: {array.ndim}-D arrays are not supported (shape {array.shape}); give a 2-D "
                           f"matrix or a 3-D/4-D convolution kernel with output channels first")
    if array.size == 0:
        raise DarbgenError(f"{name}: is empty (shape {array.shape}); nothing to prune")
    return array.reshape(array.shape[0], -1)


def check_writable(path, force):
    """Refuse to clobber an existing file unless ``force``; check the folder exists."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DarbgenError(f"{path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise DarbgenError(f"{path}: is a directory; give a file name for the output")
    if os.path.exists(path) and not force:
        raise DarbgenError(f"{path}: already exists; pass --force to replace it")


def _write_zip(fh, arrays):
    """An .npz archive, written entry by entry (any array name works, and a fixed
    timestamp makes the same arrays give the same bytes)."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(arr), allow_pickle=False)


def save_npz(path, arrays, force=False):
    """Write ``arrays`` to ``path`` atomically (temporary file, then rename)."""
    check_writable(path, force)
    path = os.path.abspath(os.fspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".darbgen-", suffix=".npz.tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_zip(fh, arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
