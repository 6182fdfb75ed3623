"""Write a file atomically: a temporary file in the same folder, then os.replace (readers never see half a file).
A hard-linked file is the exception: it is rewritten in place, so that all its names see the new text.

Shared by ``collect --out`` and ``collect --fill``. Every failure is one XdimoError line naming the path.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from xdimo.config import not_regular_file
from xdimo.errors import XdimoError


def write_atomic(path: Path, data: bytes, what: str = "") -> None:
    """Write ``data`` to ``path``; ``what`` (e.g. "--out") prefixes the error. The folder must exist: a typo
    in it should not silently create a tree of folders somewhere unexpected."""
    label = f"{what} {path}" if what else str(path)
    path = write_target(path, what)
    require_folder(path, what)
    require_regular(path, what)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        if _hard_linked(path):
            _overwrite_in_place(path, tmp)
            return
        if path.exists():  # keep the replaced file's permissions
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise XdimoError(f"{label}: cannot write ({exc.strerror or exc})") from None


def _hard_linked(path: Path) -> bool:
    try:
        return path.stat().st_nlink > 1
    except FileNotFoundError:
        return False


def _overwrite_in_place(path: Path, complete: Path) -> None:
    """A file with several names (hard links) is one inode: replacing it would give only this name the new
    text. So its bytes are rewritten in place, from a complete copy made first (kept if the rewrite fails)."""
    data = complete.read_bytes()
    with open(path, "r+b") as out:
        out.truncate(0)
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    complete.unlink()


def write_target(path: Path, what: str = "") -> Path:
    """The file a write to ``path`` must change: a symlink's target (replacing the link itself would leave the
    real file, the one the user keeps, unchanged), else ``path``."""
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if target.is_symlink():  # realpath leaves a link loop unresolved
        label = f"{what} {path}" if what else str(path)
        raise XdimoError(f"{label}: symlink loop")
    return target


def require_folder(path: Path, what: str = "") -> None:
    """Refuse a file whose folder does not exist (checked before any work, and again at the write)."""
    if not path.parent.is_dir():
        label = f"{what} {path}" if what else str(path)
        raise XdimoError(f"{label}: no folder {path.parent} (create it first)")


def check_target(path: Path, what: str = "") -> Path:
    """What write_atomic will refuse, checked before any work (``collect --out`` before polling): a missing
    folder, a target that is not a regular file. Returns the file the write will change (a symlink's target)."""
    target = write_target(path, what)
    require_folder(target, what)
    require_regular(target, what)
    return target


def require_regular(path: Path, what: str = "") -> None:
    """Refuse an existing target that is not a regular file: os.replace would swap a device or a FIFO for a
    regular file (run as root, `--out /dev/null` would replace the system's /dev/null)."""
    kind = not_regular_file(path)
    if kind:
        label = f"{what} {path}" if what else str(path)
        raise XdimoError(f"{label}: not a regular file ({kind}); nothing written (give a file path)")


def _discard(tmp: Path) -> None:
    """Remove a half-written temporary file; on a read-only folder that fails too, and there is none anyway."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
