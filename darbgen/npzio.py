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
import re
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


#: arrays an .npz may hold in total unless DARBGEN_MAX_NPZ_BYTES says otherwise (docs/npz.md)
DEFAULT_MAX_NPZ_BYTES = 1 << 30
#: arrays an .npz may hold: a model has one or two per layer; each member's header is read before any data
MAX_NPZ_MEMBERS = 10_000
MAX_NPZ_ENV = "DARBGEN_MAX_NPZ_BYTES"
_NPY_MAGIC = b"\x93NUMPY"
_UNITS = {"": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
          "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}


def human_size(n):
    """A byte count for messages: 1.5 GiB, 12 MiB, 300 B."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


def max_npz_bytes():
    """The cap on the arrays of one .npz (bytes): ``DARBGEN_MAX_NPZ_BYTES`` or 1 GiB."""
    raw = os.environ.get(MAX_NPZ_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_NPZ_BYTES
    m = re.fullmatch(r"([0-9][0-9_]*)\s*([a-zA-Z]*)", raw)
    if not m or m.group(2).upper() not in _UNITS:
        raise DarbgenError(f"{MAX_NPZ_ENV}={raw!r}: expected a number of bytes, optionally with K, M, G or T "
                           f"(e.g. 4G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def _npy_header(fp):
    """(shape, dtype, bytes) an .npy stream's header declares, read from ``fp`` without the data (a ValueError
    when it is not an .npy header)."""
    version = np.lib.format.read_magic(fp)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = read(fp)          # 2.0 and 3.0 differ only in the header's text encoding
    count = 1
    for d in shape:
        count *= int(d)                         # Python ints: a forged shape cannot overflow
    return tuple(shape), dtype, count * dtype.itemsize


def _member_arrays(path, zf):
    """[(array name, shape, dtype, bytes)] of every member of an .npz, from the
    .npy headers alone (nothing is decompressed beyond them)."""
    members = zf.infolist()
    if len(members) > MAX_NPZ_MEMBERS:
        raise DarbgenError(f"{path}: holds {len(members):,} members, more than the {MAX_NPZ_MEMBERS:,} arrays an .npz "
                           f"darbgen reads may hold (a model has one or two per layer); is it the right file?")
    found = []
    for info in members:
        if info.is_dir():
            continue
        if not info.filename.endswith(".npy"):
            raise DarbgenError(f"{path}: member {info.filename!r} is not a .npy array; an .npz holds only arrays "
                               f"(save with numpy.savez(path, name=array, ...))")
        name = info.filename[:-len(".npy")]
        with zf.open(info) as fp:
            try:
                shape, dtype, size = _npy_header(fp)
            except ValueError as exc:
                raise DarbgenError(f"{path}: array {name!r} has no valid .npy header ({exc})") from None
        if dtype.hasobject:
            raise DarbgenError(f"{path}: array {name!r} holds Python objects (pickled); darbgen never unpickles. "
                               f"Save plain numeric arrays with numpy.savez")
        found.append((name, shape, dtype, size))
    return found


def _check_sizes(path, zf):
    """Refuse an archive whose arrays (as their headers declare them) exceed the cap."""
    cap = max_npz_bytes()
    arrays = _member_arrays(path, zf)
    total = sum(a[3] for a in arrays)
    if total > cap:
        name, shape, dtype, size = max(arrays, key=lambda a: a[3])
        raise DarbgenError(f"{path}: array {name!r} declares shape {shape} {dtype} ({human_size(size)}; "
                           f"{human_size(total)} in all), over the {human_size(cap)} limit for an .npz; if the file "
                           f"is trusted, raise the limit with {MAX_NPZ_ENV}=<bytes> (e.g. 8G)")
    seen = set()
    for name, *_ in arrays:
        if name in seen:
            raise DarbgenError(f"{path}: holds the array {name!r} twice (a tampered or broken archive); "
                               f"save it again with numpy.savez")
        seen.add(name)


def load_npz(path):
    """All arrays of an .npz file as a dict, or a DarbgenError saying why not.

    Before reading any data, every member's .npy header is read and the
    arrays' declared sizes are added up: an archive over ``max_npz_bytes()``
    (1 GiB, or ``DARBGEN_MAX_NPZ_BYTES``) is refused, so a forged header or a
    zip bomb cannot exhaust memory. numpy then reads no more than each header
    declares."""
    path = check_readable(path, "an .npz file")
    ext = os.path.splitext(path)[1].lower()
    if ext in MODEL_FILES:
        raise DarbgenError(f"{path}: a {MODEL_FILES[ext]} model, not an .npz of weight arrays; prune, quantize and "
                           f"generate it in one go with `darbgen build {os.path.basename(path)} --ratio R --out DIR`")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
        if head == _NPY_MAGIC:
            raise DarbgenError(f"{path}: is a single .npy array, not an .npz archive of named arrays "
                               f"(save with numpy.savez(path, name=array, ...))")
        if not zipfile.is_zipfile(path):
            raise DarbgenError(f"{path}: not a readable .npz file (not a zip archive; save with numpy.savez)")
        with zipfile.ZipFile(path) as zf:
            _check_sizes(path, zf)
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise DarbgenError(f"{path}: holds a single array, not an .npz archive of named arrays "
                                   f"(save with numpy.savez(path, name=array, ...))")
            arrays = {name: data[name] for name in data.files}
        model_description(arrays, path)      # a broken __model__ is reported now, naming the file
        return arrays
    except DarbgenError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DarbgenError(f"{path}: contains Python objects (pickled arrays); darbgen never unpickles. "
                               f"Save plain numeric arrays with numpy.savez") from None
        raise DarbgenError(f"{path}: not a readable .npz file ({_first_line(exc)})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, NotImplementedError,
            RuntimeError) as exc:
        raise DarbgenError(f"{path}: not a readable .npz file ({exc.__class__.__name__}: {_first_line(exc)})") \
            from None


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


#: fields of a ``__model__`` layer that hold sizes: a positive int or a list of them (stride may be null)
_SIZE_FIELDS = ("stride", "size", "dilation")


def _is_int(v):
    """A JSON integer (not a boolean) that fits the C code's int."""
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2 ** 31


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_layer(i, spec, where):
    """Raise a DarbgenError naming the layer and field when ``spec`` breaks the schema (docs/npz.md)."""
    if not isinstance(spec, dict):
        raise DarbgenError(f"{where}: layers[{i}] is {_json_type(spec)}; each layer must be an object like "
                           f'{{"name": "fc1", "kind": "dense"}} (docs/npz.md)')
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise DarbgenError(f"{where}: layers[{i}] needs a \"name\" that is a non-empty string, got {name!r}")
    where = f"{where}: layer {name!r}"
    kind = spec.get("kind")
    if not isinstance(kind, str):
        raise DarbgenError(f"{where}: needs a \"kind\" that is a string (e.g. \"dense\"), got {kind!r}")
    act = spec.get("activation")
    if act is not None and not isinstance(act, str):
        raise DarbgenError(f"{where}: activation must be a string such as \"relu\" (or absent), got {act!r}")
    for field in _SIZE_FIELDS:
        if field not in spec or (field == "stride" and spec[field] is None):
            continue
        v = spec[field]
        items = v if isinstance(v, list) else [v]
        if not items or len(items) > 2 or not all(_is_int(x) and x >= 1 for x in items):
            raise DarbgenError(f"{where}: {field} must be a positive integer or a list of 1 or 2 of them, got {v!r}")
    if "padding" in spec:
        v = spec["padding"]
        items = v if isinstance(v, list) else [v]
        if not (isinstance(v, str) or (items and len(items) <= 4 and all(_is_int(x) and x >= 0 for x in items))):
            raise DarbgenError(f"{where}: padding must be \"valid\", \"same\", a non-negative integer or a list of "
                               f"2 or 4 of them, got {v!r}")
    if "eps" in spec and not (_is_number(spec["eps"]) and 0 < spec["eps"] < float("inf")):
        raise DarbgenError(f"{where}: eps must be a positive number, got {spec['eps']!r}")
    if "return_sequences" in spec and not isinstance(spec["return_sequences"], bool):
        raise DarbgenError(f"{where}: return_sequences must be true or false, got {spec['return_sequences']!r}")


def _json_type(v):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number")


def check_description(model, source=None):
    """``model`` (the parsed ``__model__``) when its structure matches docs/npz.md, else a
    DarbgenError naming the file (``source``), the field (or layer) and what is expected."""
    where = _where(source)
    if not isinstance(model, dict):
        raise DarbgenError(f"{where}: the description is {_json_type(model)}; it must be a JSON object like "
                           f'{{"input_shape": [64], "layers": [...]}} (docs/npz.md)')
    name = model.get("name")
    if name is not None and not isinstance(name, str):
        raise DarbgenError(f"{where}: name must be a string, got {name!r}")
    if "input_shape" in model:
        shape = model["input_shape"]
        if not isinstance(shape, list) or not shape or not all(_is_int(d) and d >= 1 for d in shape):
            raise DarbgenError(f"{where}: input_shape must be a list of positive integers (one sample's shape "
                               f"without the batch, e.g. [64] or [1, 28, 28]), got {shape!r}")
    if "layers" in model:
        layers = model["layers"]
        if not isinstance(layers, list):
            raise DarbgenError(f"{where}: layers must be a list of layer objects, got {_json_type(layers)} "
                               f"({layers!r:.60})")
        for i, spec in enumerate(layers):
            _check_layer(i, spec, where)
    return model


def _where(source):
    return f"{os.fspath(source)}: {MODEL_KEY}" if source is not None else MODEL_KEY


def model_description(arrays, source=None):
    """The parsed ``__model__`` JSON of an archive, or None when it has none;
    a DarbgenError (naming ``source``, the file) when it is not valid JSON or
    breaks the schema (docs/npz.md)."""
    if MODEL_KEY not in arrays:
        return None
    where = _where(source)
    raw = np.asarray(arrays[MODEL_KEY])
    if raw.ndim != 0 or raw.dtype.kind not in "US":
        raise DarbgenError(f"{where}: must be a 0-d string array holding JSON (np.array(json.dumps(...))), got "
                           f"a {raw.dtype} array of shape {raw.shape}")
    text = raw.item()
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        model = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DarbgenError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise DarbgenError(f"{where}: the JSON is nested too deeply to be a network description "
                           f"(docs/npz.md)") from None
    return check_description(model, source)


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


def check_writable(path, force, inputs=()):
    """Refuse to clobber an existing file unless ``force``; check the folder
    exists. Never replaces anything but a regular file (a device, a pipe or a
    socket is refused even with ``force``), nor one of ``inputs``, the files
    being read."""
    path = os.fspath(path)
    if not path.strip():
        raise DarbgenError("the output file's name is empty; give a file name (e.g. pruned.npz)")
    if path == "-":
        raise DarbgenError("-: darbgen writes an .npz file, not to standard output; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DarbgenError(f"{path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise DarbgenError(f"{path}: is a directory; give a file name for the output")
    if os.path.lexists(path) and not os.path.islink(path) and not os.path.isfile(path):
        raise DarbgenError(f"{path}: exists and is not a regular file (a device, pipe or socket); darbgen never "
                           f"replaces one: give a file name")
    for source in inputs:
        if source is not None and os.path.exists(path) and os.path.exists(source) and \
                os.path.samefile(path, source):
            raise DarbgenError(f"{path}: is the input file {source}; write the result to a new file (the input "
                               f"is the only copy of the unpruned weights)")
    if os.path.exists(path) and not force:
        raise DarbgenError(f"{path}: already exists; pass --force to replace it")


def check_readable(path, kind="a file", what=None):
    """``path`` if it is a regular file that exists, else a DarbgenError naming ``kind`` ("an .npz file") and
    ``what`` (the option it came from, if any). A pipe or a device is refused: reading it would block, or never
    end."""
    path = os.fspath(path)
    tail = f" ({what})" if what else ""
    if not os.path.exists(path):
        raise DarbgenError(f"{path}: no such file{tail}")
    if os.path.isdir(path):
        raise DarbgenError(f"{path}: is a directory, expected {kind}{tail}")
    if not os.path.isfile(path):
        raise DarbgenError(f"{path}: is not a regular file (a pipe, device or socket{'; ' + what if what else ''}); "
                           f"give {kind} itself")
    return path


def _write_zip(fh, arrays):
    """An .npz archive, written entry by entry (any array name works, and a fixed
    timestamp makes the same arrays give the same bytes)."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(arr), allow_pickle=False)


def save_npz(path, arrays, force=False, inputs=()):
    """Write ``arrays`` to ``path`` atomically (temporary file, then rename);
    ``inputs``: files being read, never replaced (see :func:`check_writable`)."""
    check_writable(path, force, inputs)
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


def load_npy(path, what="array"):
    """One .npy array (``what`` names it in errors: "--eval inputs", say), read
    with ``allow_pickle=False`` after its header's declared size is checked
    against :func:`max_npz_bytes`, or a one-line DarbgenError saying why not."""
    path = check_readable(path, "an .npy array", what)
    try:
        with open(path, "rb") as fh:
            if zipfile.is_zipfile(fh):
                raise DarbgenError(f"{path}: is an .npz archive, expected one .npy array ({what}); save it with "
                                   f"numpy.save(path, array)")
            fh.seek(0)
            shape, dtype, size = _npy_header(fh)
        if dtype.hasobject:
            raise DarbgenError(f"{path}: holds Python objects ({what}); darbgen never unpickles: save a numeric "
                               f"array")
        cap = max_npz_bytes()
        if size > cap:
            raise DarbgenError(f"{path}: declares shape {shape} {dtype} ({human_size(size)}), over the "
                               f"{human_size(cap)} limit ({what}); if the file is trusted, raise the limit with "
                               f"{MAX_NPZ_ENV}=<bytes> (e.g. 8G)")
        return np.load(path, allow_pickle=False)
    except DarbgenError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DarbgenError(f"{path}: not a readable .npy array ({what}: {_first_line(exc)})") from None
