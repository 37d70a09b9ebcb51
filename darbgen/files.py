"""Writing output whole: a folder is built under a temporary name next to its
destination and moved into place only when complete."""
import os
import shutil
import tempfile
from pathlib import Path


def move_into_place(tmp, out):
    """Replace ``out`` by the finished folder ``tmp`` (an existing ``out`` is
    removed only once the new one is in place)."""
    tmp, out = Path(tmp), Path(out)
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
