"""`xdimo-jobs collect`: the runs' metrics (and the user's legacy logs) -> the seeds' tables, plots, sheets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from xdimo.cli.common import App, read_only_line, verb
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read.cache import Cache
from xdimo.collect.read.sources import Where, fill_baseline_notes, gather_rows, missing_baseline_warnings
from xdimo.collect.tables import report
from xdimo.collect.tables.labels import hw
from xdimo.collect.tables.lang import LANGS
from xdimo.collect.tables.table import DEFAULT_HW_BASELINE
from xdimo.collect.write import formats
from xdimo.collect.write.atomic import check_target, write_atomic, write_target
from xdimo.config import not_regular_file
from xdimo.errors import XdimoError

MAX_BASELINE_GPUS = 4096  # --baseline-gpus above this is a typo, not a study
NOTHING = "no runs to collect (submit a matrix first, or point --logs at existing logs)"


@click.command()
@click.option("--matrix", metavar="NAME", help="Only the runs of this matrix: those its file defines now (a run "
              "whose spec was edited since is another run), or every run of that name without the file. With the "
              "file, every run it plans has its row: 待填 until the run has metrics.")
@click.option("--every-version", is_flag=True, help="With --matrix: also runs of earlier versions of the file.")
@click.option("--logs", "logs", multiple=True, metavar="PATH", callback=lambda c, p, v: existing_paths(p, v),
              help="Legacy logs (files or folders; repeatable): XDiMo/Latte -e files paired with the -o files "
                   "holding the scheduler's summary by job id. Alone, it collects only these logs.")
@click.option("--table", "which", default="auto", show_default=True, metavar="|".join(report.kind_choices()),
              help="Which tables (comma-separated). auto: table 1, plus the others the runs can fill (with "
                   "--matrix: the others its plan fills); all: 1, 2, hw and cost; runs: one row per run (seed 001's "
                   "历史实验（参考）), only by name.")
@click.option("--lang", type=click.Choice(LANGS), default="zh", show_default=True,
              help="Language of the tables and plots.")
@click.option("--format", "fmt", type=click.Choice(formats.FORMATS), default="md", show_default=True)
@click.option("--out", "out", metavar="FILE", callback=lambda c, p, v: non_empty(p, v),
              help="Write the tables to FILE (atomically) instead of stdout; its folder must exist. With nothing "
                   "to collect, JSON is still data ({\"tables\": [], \"runs\": []}); markdown and CSV have no "
                   "empty form, so no file is written and collect exits 2.")
@click.option("--plots", "plots", metavar="DIR", callback=lambda c, p, v: non_empty(p, v),
              help="Write PNG plots into DIR (made if missing; the folder it is in must exist).")
@click.option("--no-loss-plots", is_flag=True,
              help="With --plots: leave out the loss curves (loss/<run_id>.png, one per run, and loss.png), most "
                   "of the time --plots takes for hundreds of runs.")
@click.option("--fill", "fill", metavar="SHEET.md", callback=lambda c, p, v: non_empty(p, v),
              help="Fill the 待填 cells of your own markdown sheet in place (backup SHEET.md.bak); the report "
                   "(stderr, or --json's fill) names the run that filled each row.")
@click.option("--cost-steps", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Steps the cost table prices.")
@click.option("--baseline-gpus", type=click.IntRange(min=1, max=MAX_BASELINE_GPUS), metavar="N",
              help="Compare every run with the N-card run of its workload (table 1's speedup and efficiency, the "
                   "cost table, the plots; --fill stays on 1 card). Default: the 1-card run, or where a workload has "
                   "none, its fewest-card run. "
                   "E.g. --baseline-gpus 8 for speedups over one 8-card node.")
@click.option("--legacy-precision", type=click.Choice(["bf16", "fp16", "tf32", "fp32"]),
              help="Precision legacy runs trained in, for their MFU (default: bf16 where the log says mixed "
                   "precision, else tf32: Latte's fp32 weights with TF32 matmuls).")
@click.option("--hw-baseline", "hw_baseline", metavar="HW", default=DEFAULT_HW_BASELINE, show_default=True,
              callback=lambda c, p, v: non_empty(p, v),
              help="The hardware seed 001's summary (--table hw) is 1.0 against, as the tables name it: 6000ada, "
                   "H200, pro6000, 4090, ... (seed 002 compares with a 4090).")
@click.option("--no-refresh", is_flag=True, help="Do not poll the schedulers first.")
@click.option("--no-cache", is_flag=True, help="Parse every run again (ignore the per-run cache).")
@verb
def collect(app: App, matrix: str | None, every_version: bool, logs: tuple[str, ...], which: str, lang: str,
            fmt: str, out: str | None, plots: str | None, no_loss_plots: bool, fill: str | None, cost_steps: int,
            baseline_gpus: int | None, legacy_precision: str | None, hw_baseline: str, no_refresh: bool,
            no_cache: bool) -> None:
    """Print the user's own tables from the runs' metrics (seed 000's table 1 at least).

    Polls each cluster once first (so finished runs count), then reads logs/<run>/run.json and
    metrics.jsonl of the ledger's runs (all, or --matrix / --cluster). With --matrix, the tables list every run
    the matrix file plans, as the user's sheets do: a run not submitted yet, or without metrics, has its row with
    待填 cells (hardware, cards, model and parameters from the spec and the cluster file), a note under the table
    counts them, and they never become a baseline, a plot point or a --fill value. Steady state = median after
    warm-up;
    speedup by samples/s against the 1-card run on the same hardware with the same precision, clip and model
    shape (a resumed run's repeated steps count once); MFU from exact FLOPs and the dense peak
    of the precision run; a missing baseline is written 待填(缺1卡基准), never guessed.

    A workload run at two card counts or more but never on 1 card is compared with its fewest-card run
    instead (8 and 32 cards: 32 cards' speedup over 8, ideal 4, efficiency = speedup / 4); that row shows
    1.0(基准), a note under the table names it, and the cost table adds seed 004's 相比N卡（基准） comparison.
    --baseline-gpus N picks the count for every workload (one without an N-card run: 待填(缺N卡基准)).

    \b
    Examples:
      xdimo-jobs collect
      xdimo-jobs collect --matrix table1-scaling --plots plots/
      xdimo-jobs collect --table all --lang en --format csv --out results.csv
      xdimo-jobs collect --logs ./output/logs --table 1       # the user's existing XDiMo/Latte logs
      xdimo-jobs collect --logs ./output/logs --baseline-gpus 8   # speedup and efficiency over 8 cards
      xdimo-jobs collect --matrix table1-scaling --fill 实验结果.md
      xdimo-jobs collect --logs ./output/logs --table runs      # seed 001's 历史实验（参考）, one row per run
    """
    if every_version and not matrix:
        raise XdimoError("--every-version only widens --matrix NAME (without --matrix every run is collected)")
    try:  # before anything is polled or read, and whether or not there are runs
        report.check_kinds(which)
    except ValueError as exc:
        raise XdimoError(f"--table: {exc}") from None
    if out:
        check_target(Path(out), "--out")
    if plots:
        check_plots_folder(plots)
    if fill:
        check_sheet(fill)
    # outside a workspace (`--logs` from any folder) no cache: a read must leave no logs/ behind in the folder
    cache = Cache(None if no_cache or not app.ws.located else app.ws.logs_dir / ".collect-cache")
    app.ws.read_only_ok = True  # a ledger that cannot be written here is read as it is, and not polled first
    found = gather_rows(Where(app.ws, app.cluster_name), matrix, logs, cache,
                        refresh_first=not no_refresh and not app.ws.ledger_unwritable(),
                        every_version=every_version, legacy_precision=legacy_precision)
    runs = found.runs
    hw_baseline = hardware_named(hw_baseline, found.all)
    if "ledger" in app.ws.__dict__ and app.ws.ledger.read_only:  # the ledger was read (not --logs alone)
        note(f"warning: {read_only_line(str(app.ws.ledger_path), app.ws.ledger.read_only)}")
    for line in found.warnings + missing_baseline_warnings(runs, baseline_gpus) + \
            (fill_baseline_notes(runs, baseline_gpus) if fill else []):
        note(line)
    try:
        tables = report.build_tables(found.all, which, lang, cost_steps, hw_baseline, baseline_gpus=baseline_gpus,
                                     grid=found.plan.name if found.plan else "") if found.all else []
    except ValueError as exc:
        raise XdimoError(f"--table: {exc}") from None
    extra: dict[str, Any] = {}
    if plots:
        extra["plots"] = draw_plots(runs, plots, lang, baseline_gpus, loss=not no_loss_plots)
    if fill:
        extra["fill"] = fill_sheet(Path(fill), runs, lang if lang_given() else None)
    if found.plan is not None:
        extra["planned"] = [formats.run_identity(r) for r in found.planned]
    emit(out, "json" if app.json else fmt, tables, runs, extra, baseline_gpus)


def hardware_named(name: str, runs: list[RunRecord]) -> str:
    """``--hw-baseline`` as the tables name that hardware (``h200`` -> ``H200``); a name no run has is an error
    naming those the runs have (a typo would leave every speedup 待填 and say nothing else)."""
    labels = sorted({hw(r) for r in runs})
    match = next((label for label in labels if label.lower() == name.lower()), None)
    if match is None and labels and name != DEFAULT_HW_BASELINE:
        raise XdimoError(f"--hw-baseline {name}: no run on that hardware (the runs have: {', '.join(labels)})")
    return match or name


def check_plots_folder(folder: str) -> None:
    """``--plots DIR``: an existing folder, or one to make in an existing folder (as --out, a typo in the path
    must not create a tree of folders somewhere unexpected). Checked before anything is polled or written."""
    path = Path(folder)
    if path.exists():
        if not path.is_dir():
            raise XdimoError(f"--plots {folder}: not a folder")
    elif path.is_symlink():
        raise XdimoError(f"--plots {folder}: a symlink to nothing ({path.readlink()})")
    elif not path.parent.is_dir():
        raise XdimoError(f"--plots {folder}: no folder {path.parent} (create it first)")


def check_sheet(sheet: str) -> None:
    """``--fill SHEET``: a FIFO would hang the read, a device be replaced by the write: refused before any work."""
    kind = not_regular_file(write_target(Path(sheet), "--fill"))
    if kind:
        raise XdimoError(f"--fill {sheet}: not a regular file ({kind}); nothing written")


def draw_plots(runs: list[RunRecord], folder: str, lang: str, baseline_gpus: int | None,
               loss: bool = True) -> list[str]:
    """The PNG files written into ``folder``; none, and no folder made, where there is nothing to plot."""
    from xdimo.collect.write.plots import write_plots

    try:
        written = [str(p) for p in write_plots(runs, Path(folder), lang, note=note, baseline_gpus=baseline_gpus,
                                                  loss=loss)]
    except OSError as exc:
        raise XdimoError(f"--plots {folder}: cannot write there ({exc.strerror})") from None
    if written:
        note(f"plots: {len(written)} PNG file(s) in {folder}")
    else:
        note(f"plots: nothing to plot (no run has metrics yet); nothing written to {folder}")
    return written


def lang_given() -> bool:
    """Whether the user gave --lang, rather than leaving it at its default (zh)."""
    source = click.get_current_context().get_parameter_source("lang")
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def fill_sheet(path: Path, runs: list[RunRecord], lang: str | None) -> dict[str, Any]:
    """``lang``: the language of the MFU notes it writes; None: each table's own (a Chinese header, Chinese)."""
    from xdimo.collect.fill.sheet_fill import fill_sheet as fill_into

    result = fill_into(path, runs, lang=lang)
    where = f" (backup {result.backup})" if result.backup else ""
    note(f"filled {len(result.filled)} cell(s) in {path}{where}")
    for line in result.sources:  # which run filled each row, and the runs of that row it did not use
        note(f"  from: {line}")
    for line in result.warnings + result.checks:
        note(f"  warning: {line}")
    for line in result.skipped:
        note(f"  not filled: {line}")
    return {"sheet": str(path), "backup": str(result.backup) if result.backup else None,
            "filled": [vars(f) for f in result.filled], "skipped": result.skipped, "warnings": result.warnings,
            "sources": result.sources, "checks": result.checks}


def emit(out: str | None, fmt: str, tables: list[report.Table], runs: list[RunRecord],
         extra: dict[str, Any], baseline_gpus: int | None = None) -> None:
    if fmt == "json":  # data even when empty: {"tables": [], "runs": []}
        text = json.dumps({**formats.json_data(tables, runs, baseline_gpus), **extra}, ensure_ascii=False, indent=2)
    elif not runs and not tables:  # a matrix's plan alone (collect --matrix before any submit) is a table
        if out:  # a file that holds a message as its data is worse than none: a script after us would read it
            raise XdimoError(f"--out {out}: {NOTHING}; no file written")
        note(NOTHING)  # stdout stays the tables: `collect > results.md` gets no message as data either
        return
    else:
        text = formats.render(tables, runs, fmt, baseline_gpus)
    if out:
        write_atomic(Path(out), (text if text.endswith("\n") else text + "\n").encode("utf-8"), "--out")
        note(f"wrote {out}")
    else:
        click.echo(text.rstrip("\n"))


def non_empty(param: click.Parameter, value: str | None) -> str | None:
    """An empty path (`--out ""`, a variable that was not set) must not silently mean "none"."""
    if value is not None and not value.strip():
        raise XdimoError(f"{option(param)}: an empty path (leave the option out instead)")
    return value


def existing_paths(param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Each --logs path must exist: checked before any polling, and a typo is named as such."""
    for value in values:
        non_empty(param, value)
        if not Path(value).exists():
            raise XdimoError(f"{option(param)} {value}: no such file or folder")
    return values


def option(param: click.Parameter) -> str:
    return param.opts[0] if param.opts else str(param.name)


def note(message: str) -> None:
    """Side information on stderr, so stdout stays the table (or the JSON)."""
    click.echo(message, err=True)
