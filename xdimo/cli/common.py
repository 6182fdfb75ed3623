"""What every verb shares: the app context, the options accepted before or after the verb, output."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import click

from xdimo import rundir
from xdimo.config import Cluster
from xdimo.errors import NotFoundError, XdimoError
from xdimo.rundir import Rehomed, logs_dir_in
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    workdir: str | None = None
    ledger_path: str | None = None
    cluster_name: str | None = None
    json: bool = False
    emitted: bool = False  # --json data is on stdout already: a failure after it prints no second object

    def __post_init__(self) -> None:
        for option, value in (("--cluster", self.cluster_name), ("--workdir", self.workdir),
                              ("--ledger", self.ledger_path)):
            refuse_empty(option, value)

    @cached_property
    def ws(self) -> Workspace:
        ws = Workspace.open(self.workdir, self.ledger_path)
        ws.on_moved = lambda rehomed: click.echo(f"warning: {moved_line(rehomed)}", err=True)
        return ws

    @property
    def cluster(self) -> Cluster:
        return self.ws.load_cluster(self.cluster_name or "local")

    def emit(self, data: Any, text: Callable[[], str] | str) -> None:
        """JSON for scripts (--json), or the human text. Either may be a callable, built only when asked."""
        if self.json:
            data = data() if callable(data) else data
            click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
            self.emitted = True
            STDOUT.had_json = True
        else:
            out = text() if callable(text) else text
            if out:  # nothing to say (e.g. every kill failed: the error line follows) is no blank line
                click.echo(out)


def _merge(ctx: click.Context, cluster: str | None, as_json: bool, workdir: str | None = None,
           ledger: str | None = None) -> App:
    """The group's options (before the verb) with the verb's own (after it): the later one wins."""
    app = ctx.ensure_object(App)
    for option, value in (("--cluster", cluster), ("--workdir", workdir), ("--ledger", ledger)):
        refuse_empty(option, value)
    if cluster:
        app.cluster_name = cluster
    if as_json:
        app.json = True
    if workdir:
        app.workdir = workdir
    if ledger:
        app.ledger_path = ledger
    if workdir or ledger:
        app.__dict__.pop("ws", None)  # a workspace opened before (none is, yet) must not outlive its options
    return app


def refuse_empty(option: str, value: str | None) -> None:
    """`--cluster ""` (a variable that was not set) must not silently mean the default (local, this folder, the
    default ledger): the user named something and got another."""
    if value is not None and not value.strip():
        raise XdimoError(f"{option}: an empty value (leave the option out for the default)")


ID_PARAMS = ("ident", "ids")  # logs ID, kill ID...: run ids, prefixes and job ids, looked up in the ledger


def text_ident(ident: str) -> str:
    """``ident`` when it can be a run id or job id. Bytes that are not UTF-8 (the shell passes them as they are,
    Python holds them as surrogates) are in no id, and SQLite cannot even be asked for them: "no run or job",
    with those bytes escaped so the line prints on any terminal."""
    try:
        ident.encode("utf-8")
    except UnicodeEncodeError:
        shown = ident.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise NotFoundError(f"no run or job '{shown}' (not UTF-8 text: no run id or job id has those bytes)") \
            from None
    return ident


def verb(func: F) -> F:
    """Accept --cluster, --json, --workdir and --ledger after the verb too, and pass the App as the first
    argument."""

    @click.option("--ledger", "ledger", metavar="PATH", help="Ledger file (default: queue/ledger.sqlite; env "
                  "XDIMO_LEDGER).")
    @click.option("--workdir", "workdir", metavar="DIR", help="The workspace (default: nearest folder upwards "
                  "with clusters/).")
    @click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
    @click.option("--cluster", "cluster", metavar="NAME", help="clusters/NAME.yaml (default: local).")
    @click.pass_context
    def wrapper(ctx: click.Context, cluster: str | None, as_json: bool, workdir: str | None, ledger: str | None,
                **kwargs: Any) -> Any:
        app = ctx.ensure_object(App)
        try:
            for name in ID_PARAMS:
                value = kwargs.get(name)
                for ident in (value,) if isinstance(value, str) else value or ():
                    text_ident(ident)
            return func(_merge(ctx, cluster, as_json, workdir, ledger), **kwargs)
        except (XdimoError, click.ClickException) as exc:
            if as_json or app.json:
                echo_json_error(app, exc)
            raise

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


XDIMO_ERROR_EXIT = 2  # the entry point's exit code for an XdimoError (xdimo.cli.main)


def error_line(exc: XdimoError | click.ClickException) -> tuple[str, int]:
    """The line the entry point prints after ``error:`` for ``exc`` (the message's first line), and its exit
    code, as xdimo.cli.main and fail give them."""
    if isinstance(exc, click.ClickException):
        message, code = exc.format_message(), exc.exit_code
    else:
        message, code = str(exc), XDIMO_ERROR_EXIT
    return (message.strip().splitlines()[0] if message.strip() else "failed"), code


def echo_json_error(app: App, exc: XdimoError | click.ClickException) -> None:
    """A verb that fails under --json: `{"error": LINE, "exit_code": N}` on one stdout line, so a script reading
    stdout gets JSON, not an empty string (the `error:` line still goes to stderr). A verb that printed its own
    JSON before failing (status after a failed poll, kill or submit with some failures) keeps that alone: stdout
    stays one JSON document."""
    if app.emitted:
        return
    line, code = error_line(exc)
    echo_error_object(line, code)
    app.emitted = True


class STDOUT:  # noqa: N801 (a process-wide fact, read by the entry point)
    """Whether this process printed a JSON document on stdout: a usage error under --json, which click raises
    before any verb (and its App) runs, gets its error object from the entry point only if none was printed."""

    had_json = False


def echo_error_object(line: str, code: int) -> None:
    click.echo(json.dumps({"error": line, "exit_code": code}, ensure_ascii=False))
    STDOUT.had_json = True


def read_only_line(path: str, why: str) -> str:
    """What status, logs -f and collect say of a ledger opened read-only (Ledger.read_only: ``why``)."""
    return (f"ledger {path} cannot be written here ({why}): read as it was last written; no scheduler was "
            "polled, nothing updated")


def moved_line(rehomed: Rehomed) -> str:
    """The one line saying a workspace's ledger recorded its run folders under another root (it was moved or
    copied): where they are read now, and what becomes of the runs still active (their jobs write where their
    scripts say, the old root)."""
    moved = ", ".join(r.root for r in rehomed.roots if not r.still_there and not r.silent)
    copied = ", ".join(r.root for r in rehomed.roots if r.still_there)
    silent = ", ".join(r.root for r in rehomed.roots if r.silent)
    how = " and ".join(f"{what} from {roots}" for what, roots in (("moved", moved), ("copied", copied)) if roots)
    line = f"the workspace was {how}; " if how else ""
    if silent:
        line += (f"{silent} did not answer within {rundir.ROOT_ANSWER_S:g} s (a dead mount?) and is read as gone "
                 "(the runs recorded there are read from here where they have a folder); ")
    line += f"run folders read from here ({logs_dir_in(rehomed.home)})"
    there = [r for r in rehomed.roots if r.active_there]
    if there:
        n = sum(r.active_there for r in there)
        line += (f"; {n_runs(n)} read in {', '.join(str(logs_dir_in(Path(r.root))) for r in there)} (their jobs "
                 "write there: still active, or ended after the copy was taken)")
    gone = [r for r in rehomed.roots if r.active_gone]
    if gone:
        n = sum(r.active_gone for r in gone)
        links = "; ".join(f"ln -s {rehomed.home} {r.root}" for r in gone)
        line += (f"; {n_runs(n)} still active under the old folder, which is gone: a job script of this version "
                 "writes its end records here (through the folder it opened as it started), but an older one's, and "
                 f"JH's or LSF's output file with the job's summary, go to the old path (`{links}` lets them land "
                 "here)")
    elsewhere = sum(r.elsewhere for r in rehomed.roots)
    if elsewhere:
        line += f"; {n_runs(elsewhere)} with no folder here read where recorded"
    return line


def n_runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


class StoppedFollowing(Exception):  # noqa: N818 (not an error: the normal way to stop following)
    """Ctrl-C while following (`logs -f`, `status --watch`): what the verb had to say is said; the entry point
    exits 130 (the shell's convention for SIGINT) with a short "stopped following", not an error line."""


COMMAND_WIDTH = 32  # a custom command in a table cell or a one-line summary, at most this many characters


def job_folder(cluster: Cluster, root: Path) -> Path | None:
    """Where the cluster's jobs start (its `workdir`, else the workspace), where a matrix's relative `command`
    program is looked for; None where that folder is not on this machine (nothing can be said from here)."""
    if not cluster.workdir:
        return root
    folder = Path(cluster.workdir).expanduser()
    return folder if folder.is_dir() else None


def workload(spec: RunSpec) -> str:
    """What a run trains, for tables and one-line summaries: the reference model (``Latte-S/2``), or for a run
    with its own ``command`` that command, shortened (its spec's model is a default it does not run)."""
    if not spec.command:
        return spec.model_name
    line = " ".join(spec.command.split())
    if len(line) > COMMAND_WIDTH:
        line = line[:COMMAND_WIDTH - 1] + "…"
    return f"command: {line}" if line else "custom command"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (CJK-width aware enough for the users' headers)."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def display_width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def progress(message: str) -> None:
    """A progress line on stderr (stdout stays clean for --json and pipes)."""
    if sys.stderr.isatty():
        click.echo(f"\r\033[K{message}", nl=False, err=True)
    else:
        click.echo(message, err=True)


def progress_done() -> None:
    if sys.stderr.isatty():
        click.echo("", err=True)


def progress_clear() -> None:
    """Erase the progress line on a terminal (what follows says it all); elsewhere its lines stay, as written."""
    if sys.stderr.isatty():
        click.echo("\r\033[K", nl=False, err=True)


MAX_INTERVAL_S = 86_400.0  # a day: beyond it a poll interval is a typo (and time.sleep overflows near 1e10)


class Seconds(click.FloatRange):
    """A number of seconds in [minimum, maximum], finite. A plain range check lets nan through (nan < 0.1 is
    false), and the verb then fails (or waits forever) long after the typo."""

    name = "number of seconds"

    def __init__(self, minimum: float, maximum: float) -> None:
        super().__init__(min=minimum, max=maximum)

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a number of seconds ({self.min:g} to {self.max:g})", param, ctx)
        return seconds


class PollSeconds(Seconds):
    """Seconds between polls (status --interval, submit --poll): finite, 0.1 to a day."""

    def __init__(self) -> None:
        super().__init__(0.1, MAX_INTERVAL_S)
