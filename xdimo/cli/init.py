"""`xdimo-jobs init [DIR]`: a new workspace with the default clusters, matrices and templates."""

from __future__ import annotations

import shlex
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
    own = _own_files(root, kept)
    demo_problem = _demo_problem(root) if own & DEMO_FILES else None
    app.emit({"workspace": str(root), "copied": copied, "kept": kept, "backups": backups,
              "kept_own": sorted(own), "demo_problem": demo_problem},
             lambda: _text(root, directory, copied, kept, own, demo_problem, saved))


DEMO_FILES = {"jobs/demo.yaml", "clusters/local.yaml"}  # what `xdimo-jobs demo` reads from the workspace


def _text(root: Path, directory: str, copied: list[str], kept: list[str], own: set[str], demo_problem: str | None,
          saved: str) -> str:
    lines = [f"workspace {root}: {len(copied)} file(s) written, {len(kept)} kept (use --force to overwrite){saved}"]
    if own:  # the user's own files, not a default copied earlier: name them, they are what the verbs will read
        lines.append(f"kept your own (differ from the defaults): {', '.join(sorted(own))}")
    cd = "" if Path(directory).resolve() == Path.cwd().resolve() else f"cd {shlex.quote(directory)} && "
    if demo_problem:
        again = " ".join(["xdimo-jobs init", shlex.quote(directory), "--force"])
        lines.append(f"`xdimo-jobs demo` would run your own {' and '.join(sorted(own & DEMO_FILES))}, and it "
                     f"fails: {demo_problem}")
        lines.append(f"next: {cd}xdimo-jobs hosts; `{again}` restores the packaged demo (your files saved as "
                     "FILE.bak)")
    elif own & DEMO_FILES:
        lines.append(f"next: {cd}xdimo-jobs hosts && xdimo-jobs demo   (runs your own "
                     f"{' and '.join(sorted(own & DEMO_FILES))})")
    else:
        lines.append(f"next: {cd}xdimo-jobs hosts && xdimo-jobs demo")
    return "\n".join(lines)


def _own_files(root: Path, kept: list[str]) -> set[str]:
    """The kept files (paths under root, as 'jobs/demo.yaml') whose content is not the packaged default's."""
    own = set()
    for path in kept:
        rel = Path(path).relative_to(root)
        try:
            same = (root / rel).read_bytes() == (PACKAGE_DATA / rel).read_bytes()
        except OSError:
            same = False
        if not same:
            own.add(rel.as_posix())
    return own


def _demo_problem(root: Path) -> str | None:
    """Why `xdimo-jobs demo` cannot start in this workspace (its own clusters/local.yaml or jobs/demo.yaml), as
    demo checks it before it submits; None when it can."""
    from xdimo.matrix import load_matrix
    from xdimo.plan import check_matrix
    from xdimo.schedulers import poll_interval
    from xdimo.workspace import Workspace

    ws = Workspace(root=root, ledger_path=queue_dir_in(root) / "ledger.sqlite")
    try:
        cluster = ws.load_cluster("local")
        if poll_interval(cluster) is None:
            return f"{cluster.path} must say `scheduler: local` for the demo, not {cluster.scheduler}"
        check_matrix(load_matrix(ws.matrix_path("demo")), cluster)
    except XdimoError as exc:
        return str(exc)
    return None


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
