"""`xdimo-jobs init [DIR]`: a new workspace with the default clusters, matrices and templates."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from xdimo.cli.common import App, verb
from xdimo.errors import XdimoError
from xdimo.rundir import logs_dir_in
from xdimo.workspace import PACKAGE_DATA, queue_dir_in


@click.command()
@click.argument("directory", metavar="[DIR]", default=".")
@click.option("--force", is_flag=True, help="Overwrite files that already exist (an edited one is kept as FILE.bak).")
@verb
def init(app: App, directory: str, force: bool) -> None:
    """Create a workspace in DIR: clusters/, jobs/ (with templates/), queue/ and logs/.

    Edit clusters/*.yaml for your site (pools, cards taken, setup lines) and jobs/templates/*.j2 if your site
    needs other directives. logs/ must be on a filesystem the compute nodes share.

    \b
    Examples:
      xdimo-jobs init my-study && cd my-study && xdimo-jobs hosts
      xdimo-jobs init . --force                # refresh the defaults in place
    """
    root = Path(directory).resolve()
    if root.exists() and not root.is_dir():
        raise XdimoError(f"cannot make a workspace in {root}: it is a file, not a directory")
    try:
        copied, kept, backups = _copy_defaults(root, force)
    except OSError as exc:  # no such parent (/proc/x), no permission, read-only or full filesystem
        where = f"{exc.filename}: " if exc.filename and str(exc.filename) != str(root) else ""
        raise XdimoError(f"cannot make a workspace in {root}: {where}{exc.strerror or exc}") from None
    saved = f"; your edited versions saved as FILE.bak: {', '.join(backups)}" if backups else ""
    app.emit({"workspace": str(root), "copied": copied, "kept": kept, "backups": backups},
             f"workspace {root}: {len(copied)} file(s) written, {len(kept)} kept (use --force to overwrite){saved}\n"
             f"next: cd {directory} && xdimo-jobs hosts && xdimo-jobs demo")


def _copy_defaults(root: Path, force: bool) -> tuple[list[str], list[str], list[str]]:
    """Copy the packaged clusters/ and jobs/ into root (keeping existing files unless force, and with force a
    FILE.bak of each edited file it replaces); make queue/, logs/. Returns (copied, kept, backups)."""
    copied: list[str] = []
    kept: list[str] = []
    backups: list[str] = []
    for folder in ("clusters", "jobs"):
        source = PACKAGE_DATA / folder
        if not source.is_dir():
            raise XdimoError(f"the installed package has no default {folder}/ ({source})")
        for src in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            dst = root / folder / src.relative_to(source)
            if dst.exists() and not force:
                kept.append(str(dst))
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists() and dst.read_bytes() != src.read_bytes():  # --force over the user's edits: keep them
                shutil.copyfile(dst, dst.with_name(dst.name + ".bak"))
                backups.append(str(dst.with_name(dst.name + ".bak")))
            shutil.copyfile(src, dst)
            copied.append(str(dst))
    for folder in (queue_dir_in(root), logs_dir_in(root)):
        folder.mkdir(parents=True, exist_ok=True)
    return copied, kept, backups
