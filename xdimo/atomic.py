"""Replace a file whole: write a temporary file beside it, then ``os.replace`` it over the target. Readers never
see half a file, and a failure (a full disk, Ctrl-C) leaves the old file and no temporary one. The temporary name
starts with a dot and carries the writer's pid, so two writers never share one and a folder listing skips it.

``collect --out``/``--fill`` use collect/write/atomic.py on top of this idea: they also keep a hard-linked
file's other names and the replaced file's permissions, and turn failures into one-line errors.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield the temporary path to write; on a clean exit it replaces ``path``, on any exception it is removed
    and the exception goes on. ``keep_suffix``: the temporary name ends in ``path``'s suffix, for writers that
    choose the format by it (matplotlib's savefig)."""
    pid = os.getpid()
    tmp = path.with_name(f".{path.stem}.{pid}.tmp{path.suffix}" if keep_suffix else f".{path.name}.{pid}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
