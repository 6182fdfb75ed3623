"""`xdimo-jobs init [DIR]`: a new workspace with the default clusters, matrices and templates."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from xdimo.cli.common import App, verb
from xdimo.config import not_regular_file
from xdimo.errors import XdimoError
from xdimo.rundir import logs_dir_in
from xdimo.workspace import PACKAGE_DATA, Workspace, queue_dir_in


@click.command()
@click.argument("directory", metavar="[DIR]", required=False)
@click.option("--force", is_flag=True, help="Overwrite files that already exist (an edited one is kept as FILE.bak, "
              "or FILE.bak.N where an earlier --force left one).")
@verb
def init(app: App, directory: str | None, force: bool) -> None:
    """Create a workspace in DIR (default: --workdir, else the current folder): clusters/, jobs/ (with
    templates/), queue/ and logs/.

    Edit clusters/*.yaml for your site (pools, cards taken, setup lines) and jobs/templates/*.j2 if your site
    needs other directives. logs/ must be on a filesystem the compute nodes share.

    \b
    Examples:
      xdimo-jobs init my-study && cd my-study && xdimo-jobs hosts
      xdimo-jobs init . --force                # refresh the defaults in place
    """
    directory = target(app, directory)
    root = Path(directory).resolve()
    if root.exists() and not root.is_dir():
        raise XdimoError(f"cannot make a workspace in {root}: it is a file, not a directory")
    try:
        done = _copy_defaults(root, force)
    except OSError as exc:  # no such parent (/proc/x), no permission, read-only or full filesystem
        where = f"{exc.filename}: " if exc.filename and str(exc.filename) != str(root) else ""
        raise XdimoError(f"cannot make a workspace in {root}: {where}{exc.strerror or exc}") from None
    demo_problem = _demo_problem(root) if done.own & DEMO_FILES else None
    app.emit({"workspace": str(root), "copied": done.copied, "kept": done.kept, "backups": done.backups,
              "kept_own": sorted(done.own), "demo_problem": demo_problem},
             lambda: _text(root, directory, done, demo_problem))


def target(app: App, directory: str | None) -> str:
    """The folder to set up: DIR, else --workdir, else the current folder. --ledger (before or after the verb)
    has no meaning here: init makes queue/, the ledger's default place, and `submit` starts the ledger; it is
    refused rather than ignored. A --workdir after the verb naming another folder than DIR is refused too; one
    before it, the option every verb shares, yields to DIR, as it always has (scripts pass it so)."""
    if app.ledger_path:
        raise XdimoError("init takes no --ledger: it makes the workspace's queue/ folder, and `submit` starts the "
                         "ledger (give --ledger to submit and the verbs after it)")
    if directory is not None and not directory.strip():  # `init "$DIR"` with DIR unset: not the current folder
        raise XdimoError("init: an empty DIR (leave it out, or give `.`, for the current folder)")
    if directory is None:
        return app.workdir or "."
    after = click.get_current_context().params.get("workdir")  # the verb's own option, not the group's
    if after and Path(after).resolve() != Path(directory).resolve():
        raise XdimoError(f"init {directory} --workdir {after}: two different folders; give one of them")
    return directory


DEMO_FILES = {"jobs/demo.yaml", "clusters/local.yaml"}  # what `xdimo-jobs demo` reads from the workspace


def _text(root: Path, directory: str, done: Copied, demo_problem: str | None) -> str:
    own = done.own
    saved = f"; your edited versions saved as FILE.bak: {', '.join(done.backups)}" if done.backups else ""
    hint = " (use --force to overwrite)" if done.kept else ""  # none kept: --force was given, or nothing was there
    lines = [f"workspace {root}: {len(done.copied)} file(s) written, {len(done.kept)} kept{hint}{saved}"]
    if own:  # the user's own files, not a default copied earlier: name them, they are what the verbs will read
        lines.append(f"kept your own (differ from the defaults): {', '.join(sorted(own))}")
    cd = "" if root == Path.cwd().resolve() else f"cd {shlex.quote(directory)} && "
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


def _demo_problem(root: Path) -> str | None:
    """Why `xdimo-jobs demo` cannot start in this workspace (its own clusters/local.yaml or jobs/demo.yaml), by
    demo's own pre-flight check; None when it can."""
    from xdimo.cli.demo import demo_preflight  # demo's imports (submit, follow) only when the check is needed

    try:
        demo_preflight(Workspace.open(str(root)))
    except XdimoError as exc:
        return str(exc)
    return None


@dataclass
class Copied:
    """What _copy_defaults did, as paths under root. ``own``: the kept files that differ from the packaged
    ones (as 'jobs/demo.yaml'), the user's own, found while copying."""

    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    own: set[str] = field(default_factory=set)


def _defaults() -> list[tuple[Path, Path]]:
    """(packaged file, its path in a workspace) for each default file."""
    files = []
    for folder in ("clusters", "jobs"):
        source = PACKAGE_DATA / folder
        if not source.is_dir():
            raise XdimoError(f"the installed package has no default {folder}/ ({source})")
        for src in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            files.append((src, Path(folder) / src.relative_to(source)))
    return files


def _preflight(root: Path, files: list[Path], folders: list[Path]) -> None:
    """What would stop the copy half-way, found before anything is written (a half-made workspace is worse than
    none): a folder on the way that is a file or a dangling symlink; a file to write (or, ``files`` holding
    them, its FILE.bak) that is a folder, a FIFO or a device (reading a FIFO to compare it would hang). Paths
    are relative to root."""
    seen: set[Path] = set()
    for rel in [*files, *(folder / "-" for folder in folders)]:  # a folder's parents and itself
        for folder in reversed(rel.parents[:-1]):  # clusters, jobs, jobs/templates, ... (not root itself)
            if folder not in seen:
                seen.add(folder)
                _refuse(root, root / folder, "not a folder", lambda p: p.is_dir())
    for rel in files:
        _refuse(root, root / rel, "", lambda p: not_regular_file(p) is None)


def _refuse(root: Path, path: Path, what: str, fine: Callable[[Path], bool]) -> None:
    """An error naming ``path`` when it is a dangling symlink, or exists and is not ``fine``."""
    if path.is_symlink() and not path.exists():
        problem = f"a symlink to nothing ({path.readlink()})"
    elif path.exists() and not fine(path):
        problem = what or f"not a regular file ({not_regular_file(path)})"
    else:
        return
    raise XdimoError(f"cannot make a workspace in {root}: {path} is {problem}; nothing written")


def _copy_defaults(root: Path, force: bool) -> Copied:
    """Copy the packaged clusters/ and jobs/ into root (keeping existing files unless force, and with force a
    FILE.bak of each edited file it replaces); make queue/, logs/. All is checked (_preflight) before the first
    write."""
    done = Copied()
    files = _defaults()
    folders = [queue_dir_in(root), logs_dir_in(root)]
    rels = [rel for _, rel in files]
    backups = [rel.with_name(rel.name + ".bak") for rel in rels] if force else []
    _preflight(root, rels + backups, [f.relative_to(root) for f in folders])
    for src, rel in files:
        dst = root / rel
        if dst.exists() and not force:
            done.kept.append(str(dst))
            if not _same(dst, src):
                done.own.add(rel.as_posix())
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() and dst.read_bytes() != src.read_bytes():  # --force over the user's edits: keep them
            backup = backup_name(dst)
            if not backup.exists():  # else it already holds these very edits
                shutil.copyfile(dst, backup)
            done.backups.append(str(backup))
        shutil.copyfile(src, dst)
        done.copied.append(str(dst))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return done


def backup_name(edited: Path) -> Path:
    """Where --force keeps ``edited``: FILE.bak, or the first free FILE.bak.N when an earlier --force's backup holds
    other edits (a second --force must not overwrite the first's); an existing backup with these very edits is
    reused."""
    candidate, n = edited.with_name(edited.name + ".bak"), 0
    while candidate.exists() and not _same(candidate, edited):
        n += 1
        candidate = edited.with_name(f"{edited.name}.bak.{n}")
    return candidate


def _same(kept: Path, packaged: Path) -> bool:
    """Whether a kept file is the packaged one; one that cannot be read counts as the user's own."""
    try:
        return kept.read_bytes() == packaged.read_bytes()
    except OSError:
        return False
