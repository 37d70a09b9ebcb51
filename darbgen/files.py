"""Writing output folders whole and safely.

A folder is built under a temporary name next to its destination and moved
into place only when complete. Every folder darbgen writes holds a marker
file, :data:`MARKER`; ``force`` replaces an existing non-empty folder only if
it holds the marker, so a user's own folder (``--out .``) is never deleted.

The swap of an existing folder is two renames (old aside, new in) with
Ctrl-C held back in between; if the second rename fails the old folder is
renamed back, and if even that fails the error says where the old copy is.
Temporary folders are removed on every exit path.
"""
import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .errors import DarbgenError

#: The marker file in every folder darbgen writes (byte-identical in every run).
MARKER = ".darbgen-output"
MARKER_TEXT = ("This folder was written by darbgen. darbgen --force replaces it whole: "
               "keep no other files in it.\n")


def is_darbgen_folder(path):
    """True if ``path`` is a folder darbgen wrote (it holds :data:`MARKER`)."""
    return (Path(path) / MARKER).is_file()


def check_out_dir(out_dir, force=False, force_name="force=True", inputs=()):
    """Check that ``out_dir`` can be written, before any work is done.

    Refuses an empty name, the current folder or one that holds it, a folder
    that holds one of the ``inputs`` (the model and data files being read:
    the output folder is replaced whole), a path that is a file or a symbolic
    link, a parent folder that does not exist or cannot be written, an
    existing non-empty folder without ``force``, and, with ``force``, any
    non-empty folder darbgen did not write. ``force_name`` is how the error
    names the option (``--force`` from the CLI). Returns the absolute path
    (None for None).
    """
    if out_dir is None:
        return None
    if not str(out_dir).strip():
        raise DarbgenError("the output folder's name is empty; give a folder name (a new or empty folder)")
    out = Path(os.path.abspath(out_dir))          # normalised: `..` names the folder above
    here = Path(os.path.abspath(os.getcwd()))
    if out == here or out in here.parents:
        what = "is the current folder" if out == here else "holds the current folder"
        raise DarbgenError(f"{out_dir}: {what}, and darbgen replaces its output folder whole; give a new folder's "
                           f"name")
    for path in inputs:
        if path is None or not isinstance(path, (str, os.PathLike)):
            continue
        p = Path(os.path.abspath(path))
        if p == out or out in p.parents:
            raise DarbgenError(f"{out_dir}: holds {path}, which this run reads, and darbgen replaces its output "
                               f"folder whole; choose another folder")
    if out.is_symlink():
        raise DarbgenError(f"{out_dir}: is a symbolic link; give the folder itself (or a new folder)")
    if out.exists() and not out.is_dir():
        raise DarbgenError(f"{out_dir}: exists and is not a folder; choose a new or empty folder")
    if not out.parent.is_dir():
        raise DarbgenError(f"{out_dir}: the folder {out.parent} does not exist; create it or choose another folder")
    _probe_writable(out_dir, out.parent)
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise DarbgenError(f"{out_dir}: already exists and is not empty; pass {force_name} to replace it")
        if not is_darbgen_folder(out):
            raise DarbgenError(f"{out_dir}: not a folder darbgen wrote (no {MARKER} file), so {force_name} will not "
                               f"replace it; choose a new or empty folder")
    return out


def _probe_writable(out_dir, parent):
    try:
        probe = tempfile.mkdtemp(prefix=".darbgen-probe-", dir=parent)
    except OSError as exc:
        raise DarbgenError(f"{out_dir}: cannot create folders in {parent} ({exc.strerror}); "
                           f"choose a writable folder") from None
    os.rmdir(probe)


def write_folder(out_dir, fill, force=False, force_name="force=True"):
    """Write the folder ``out_dir`` whole: ``fill(tmp)`` writes the files into a
    temporary folder next to it, then the marker is added and the folder moved
    into place (replacing an existing darbgen folder only with ``force``).

    On any error or Ctrl-C, nothing is left behind and an existing folder is
    kept as it was. Returns the absolute path of ``out_dir``.
    """
    out = check_out_dir(out_dir, force, force_name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.darbgen-", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())                 # as a plain mkdir would (mkdtemp makes it private)
        fill(tmp)
        (tmp / MARKER).write_text(MARKER_TEXT, encoding="ascii")
        check_out_dir(out_dir, force, force_name)        # again: the folder may have changed during the work
        move_into_place(tmp, out)
    finally:
        with _sigint_held():
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return out


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def move_into_place(tmp, out):
    """Replace ``out`` by the finished folder ``tmp``.

    An existing ``out`` is renamed aside, ``tmp`` renamed in, and the old copy
    deleted; Ctrl-C is held back until this is done. If renaming ``tmp`` in
    fails, the old copy is renamed back; if that fails too, the error names
    the folder that holds it.
    """
    tmp, out = Path(tmp), Path(out)
    with _sigint_held():
        if not out.exists():
            os.replace(tmp, out)
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old = aside / out.name
        try:
            os.replace(out, old)
        except BaseException:
            os.rmdir(aside)
            raise
        try:
            os.replace(tmp, out)
        except BaseException as exc:
            try:
                os.replace(old, out)
            except OSError as back:
                raise DarbgenError(f"{out}: could not be replaced ({exc}), and the previous copy could not be put "
                                   f"back ({back}); it is in {old}") from exc
            os.rmdir(aside)
            raise
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def _sigint_held():
    """Hold a Ctrl-C (SIGINT) back until the block ends, then raise it.

    Only the main thread can set signal handlers; elsewhere the block runs
    unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and previous is not signal.SIG_IGN:
        if callable(previous):
            previous(signal.SIGINT, None)       # Python's default handler raises KeyboardInterrupt
        else:
            raise KeyboardInterrupt


__all__ = ["MARKER", "MARKER_TEXT", "is_darbgen_folder", "check_out_dir", "write_folder", "move_into_place"]
