"""`xdimo-jobs collect`: the runs' metrics (and the user's legacy logs) -> the seeds' tables, plots, sheets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from xdimo.cli.common import App, verb
from xdimo.collect import formats, metrics, report
from xdimo.collect.atomic import require_folder, write_atomic, write_target
from xdimo.collect.cache import Cache
from xdimo.collect.gather import ledger_records, legacy_context, legacy_records
from xdimo.collect.labels import hw, model_display, workload_text
from xdimo.collect.lang import LANGS
from xdimo.collect.records import RunRecord
from xdimo.collect.table import planned_record
from xdimo.config import Cluster, load_cluster
from xdimo.errors import XdimoError
from xdimo.ledger import LedgerRun
from xdimo.matrix import Matrix
from xdimo.rules import check_run

MAX_BASELINE_GPUS = 4096  # --baseline-gpus above this is a typo, not a study


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
              help="Write the tables to FILE (atomically) instead of stdout; its folder must exist.")
@click.option("--plots", "plots", metavar="DIR", callback=lambda c, p, v: non_empty(p, v),
              help="Write PNG plots into DIR.")
@click.option("--fill", "fill", metavar="SHEET.md", callback=lambda c, p, v: non_empty(p, v),
              help="Fill the 待填 cells of your own markdown sheet in place (backup SHEET.md.bak).")
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
@click.option("--no-refresh", is_flag=True, help="Do not poll the schedulers first.")
@click.option("--no-cache", is_flag=True, help="Parse every run again (ignore the per-run cache).")
@verb
def collect(app: App, matrix: str | None, every_version: bool, logs: tuple[str, ...], which: str, lang: str,
            fmt: str, out: str | None, plots: str | None, fill: str | None, cost_steps: int,
            baseline_gpus: int | None, legacy_precision: str | None, no_refresh: bool, no_cache: bool) -> None:
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
        require_folder(write_target(Path(out), "--out"), "--out")
    ws = app.ws
    fmt = "json" if app.json else fmt
    cache = Cache(None if no_cache else ws.logs_dir / ".collect-cache")
    runs: list[RunRecord] = []
    planned: list[RunRecord] = []  # rows the matrix plans that have no run in the ledger yet
    plan = load_plan(app, matrix) if matrix else None
    if not logs or matrix or app.cluster_name:
        ledger = from_ledger(app, matrix, cache, refresh_first=not no_refresh, every_version=every_version, plan=plan)
        runs += ledger
        if plan is not None:
            planned = planned_records(app, plan, ledger)
            warn_refused(app, plan, ledger)
    if logs:
        runs += from_logs(ws.clusters_dir, logs, cache, legacy_precision)
    rows = runs + planned
    try:
        tables = report.build_tables(rows, which, lang, cost_steps, baseline_gpus=baseline_gpus,
                                     grid=plan.name if plan else "") if rows else []
    except ValueError as exc:
        raise XdimoError(f"--table: {exc}") from None
    if baseline_gpus is not None and runs:
        warn_missing_baselines(runs, baseline_gpus)
    if fill and runs:
        note_fill_baseline(runs, baseline_gpus)
    extra: dict[str, Any] = {}
    if plots:
        from xdimo.collect.plots import write_plots

        try:
            extra["plots"] = [str(p) for p in write_plots(runs, Path(plots), lang, note=note,
                                                          baseline_gpus=baseline_gpus)]
        except OSError as exc:
            raise XdimoError(f"--plots {plots}: cannot write there ({exc.strerror})") from None
        note(f"plots: {len(extra['plots'])} PNG file(s) in {plots}")
    if fill:
        extra["fill"] = fill_sheet(Path(fill), runs, lang if lang_given() else None)
    if plan is not None:
        extra["planned"] = [formats.run_identity(r) for r in planned]
    emit(out, fmt, tables, runs, extra, baseline_gpus)


def note_fill_baseline(runs: list[RunRecord], baseline_gpus: int | None) -> None:
    """--fill writes seed 000's speedup column, against 1-card runs only: one line where the tables (and plots)
    compare some workload with more cards (--baseline-gpus N, or a workload never run on 1 card)."""
    if baseline_gpus is not None:
        if baseline_gpus != 1:
            note(f"note: --baseline-gpus {baseline_gpus} applies to the tables and plots; --fill still writes "
                 "speedups against 1-card runs")
        return
    runs = metrics.RunSet(runs)
    multi = {metrics.group_key(r) for r in runs if r.has_metrics and metrics.baseline_gpus(r, runs) > 1}
    if multi:
        note(f"note: the tables and plots compare {len(multi)} workload(s) that have no 1-card run with their "
             "fewest-card run; --fill writes speedups against 1-card runs only, so their speedup cells stay 待填")


def warn_refused(app: App, plan: Matrix, ledger: list[RunRecord]) -> None:
    """One line naming the rows of ``plan`` not submitted yet that `plan` would refuse on the cluster they are laid
    out on (a pool no cluster file has, more GPUs than the pool, a broken site rule): they stay 待填 for ever. The
    rows are still shown: a matrix with such rows is no reason to print nothing."""
    have = {r.run_id for r in ledger}
    specs = [s for s in plan.runs if s.run_id not in have]
    if not specs:
        return
    clusters = candidate_clusters(app, ledger)
    refused = []
    for spec in specs:
        row = f"{spec.run_id} ({spec.gpus}×{spec.pool}"
        home = next((c for c in clusters if spec.pool in c.pools), None)
        if home is None:
            if app.cluster_name and not clusters:
                where = f"cluster {app.cluster_name} (its file is missing or unreadable)"
            else:
                where = f"cluster {clusters[0].name}" if app.cluster_name else "any cluster file"
            refused.append(f"{row}: pool {spec.pool!r} is not on {where})")
            continue
        try:
            check_run(home, spec)
        except XdimoError as exc:  # rules.check_run's one line: "run ID (MODEL, N GPUs on POOL): why"
            why = str(exc).removeprefix(f"run {spec.run_id} ({spec.model_name}, {spec.gpus} GPUs on {spec.pool}): ")
            refused.append(f"{row} on cluster {home.name}: {why})")
    if refused:
        note(f"warning: --matrix {plan.name}: `plan` would refuse {len(refused)} of its row(s), which stay 待填: "
             + "; ".join(refused))


def warn_missing_baselines(runs: list[RunRecord], gpus: int) -> None:
    """One line naming the workloads that have no run of the --baseline-gpus count (their cells say so)."""
    missing = metrics.missing_baselines(runs, gpus)
    if missing:
        what = "; ".join(f"{hw(r)} {model_display(r.model, r.moe)} [{workload_text(r)}]" for r in missing)
        note(f"warning: --baseline-gpus {gpus}: no {gpus}-card run of {what}; their speedups are "
             f"待填(缺{gpus}卡基准)")


def from_ledger(app: App, matrix: str | None, cache: Cache, refresh_first: bool,
                every_version: bool = False, plan: Matrix | None = None) -> list[RunRecord]:
    """``plan``: the matrix file ``matrix`` names, loaded (``load_plan``); None: no readable file of that name."""
    ws = app.ws
    ledger = ws.ledger
    current = None if every_version or plan is None else {s.run_id for s in plan.runs}
    wanted = plan.name if plan is not None else matrix  # `--matrix jobs/x.yaml`: the runs of the name x.yaml gives

    def select() -> list[LedgerRun]:
        runs = ledger.runs(cluster=app.cluster_name, matrix=wanted)
        return runs if current is None else [r for r in runs if r.run_id in current]

    runs = select()
    if refresh_first and any(r.state.active for r in runs):
        from xdimo.status import refresh

        for failure in refresh(ws, ledger, runs).failures:  # the table is still worth printing
            note(f"warning: could not poll {failure}; states are the ledger's last known")
        runs = select()
    pool_gpu: dict[tuple[str, str], str] = {}
    for name in sorted({r.cluster for r in runs}):
        try:
            cluster = ws.load_cluster(name)
        except XdimoError:
            continue
        pool_gpu.update({(name, p.name): p.gpu_model for p in cluster.pools.values()})
    if matrix and not runs and plan is None:  # with the file, its plan is the table: every row 待填
        raise XdimoError(f"no runs of matrix {matrix!r} in the ledger {ledger.path}")
    return ledger_records(runs, ws.logs_dir, cache, pool_gpu)


def load_plan(app: App, matrix: str) -> Matrix | None:
    """The matrix file ``--matrix`` names, as `plan` and `submit` resolve it; None when there is no such file, or
    it does not load (said in a warning: then only the ledger's runs of that name are shown, as without a file)."""
    from xdimo.matrix import load_matrix

    path = app.ws.matrix_path(matrix)
    if not path.exists():
        return None
    try:
        return load_matrix(path)
    except XdimoError as exc:
        note(f"warning: --matrix {matrix}: {exc}; its planned rows are left out, only the ledger's runs are shown")
        return None


def planned_records(app: App, plan: Matrix, ledger: list[RunRecord]) -> list[RunRecord]:
    """A placeholder row (table.planned_record) for each run ``plan`` defines that ``ledger`` has no run of.

    Its hardware is its pool's, on the cluster the matrix's runs went to (--cluster, else the ledger's runs of it,
    else the first cluster file with that pool, `local` first: the verbs' default)."""
    have = {r.run_id for r in ledger}
    specs = [s for s in plan.runs if s.run_id not in have]
    if not specs:
        return []
    names = cluster_names(app, ledger)
    clusters = candidate_clusters(app, ledger)
    fallback = names[0] if names else "local"
    out = []
    for spec in specs:
        home = next((c for c in clusters if spec.pool in c.pools), None)
        gpu = home.pools[spec.pool].gpu_model if home else ""
        out.append(planned_record(spec, home.name if home else fallback, gpu))
    return out


def cluster_names(app: App, ledger: list[RunRecord]) -> list[str]:
    """The clusters a matrix's rows may be laid out on, in order: --cluster, else those the ledger's runs of it went
    to (most first), then every cluster file (`local` first: the verbs' default)."""
    if app.cluster_name:
        return [app.cluster_name]
    used = [c for c, _ in Counter(r.cluster for r in ledger if r.cluster).most_common()]
    files = sorted((p.stem for p in app.ws.clusters_dir.glob("*.yaml")), key=lambda n: (n != "local", n))
    return used + [n for n in files if n not in used]


def candidate_clusters(app: App, ledger: list[RunRecord]) -> list[Cluster]:
    """``cluster_names``'s clusters that load (a broken file is `plan`'s to report, not collect's)."""
    clusters: list[Cluster] = []
    for name in cluster_names(app, ledger):
        try:
            clusters.append(app.ws.load_cluster(name))
        except XdimoError:
            continue
    return clusters


def workspace_clusters(folder: Path) -> list[Cluster]:
    """Every readable cluster file: legacy logs name a queue, the cluster files say its GPU model."""
    found = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            found.append(load_cluster(path))
        except XdimoError:
            continue
    return found


def from_logs(clusters_dir: Path, logs: tuple[str, ...], cache: Cache, precision: str | None) -> list[RunRecord]:
    paths = [Path(p) for p in logs]
    for p in paths:
        if not p.exists():
            raise XdimoError(f"--logs {p}: no such file or folder")
    ctx = legacy_context(workspace_clusters(clusters_dir), precision)
    records = legacy_records(paths, ctx, cache)
    if not records:
        raise XdimoError(f"--logs {', '.join(logs)}: no training log lines or scheduler summaries found")
    return records


def lang_given() -> bool:
    """Whether the user gave --lang, rather than leaving it at its default (zh)."""
    source = click.get_current_context().get_parameter_source("lang")
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def fill_sheet(path: Path, runs: list[RunRecord], lang: str | None) -> dict[str, Any]:
    """``lang``: the language of the MFU notes it writes; None: each table's own (a Chinese header, Chinese)."""
    from xdimo.collect.fill import fill_sheet as fill_into

    result = fill_into(path, runs, lang=lang)
    where = f" (backup {result.backup})" if result.backup else ""
    note(f"filled {len(result.filled)} cell(s) in {path}{where}")
    for line in result.skipped:
        note(f"  not filled: {line}")
    return {"sheet": str(path), "backup": str(result.backup) if result.backup else None,
            "filled": [vars(f) for f in result.filled], "skipped": result.skipped}


def emit(out: str | None, fmt: str, tables: list[report.Table], runs: list[RunRecord],
         extra: dict[str, Any], baseline_gpus: int | None = None) -> None:
    if fmt == "json":
        text = json.dumps({**formats.json_data(tables, runs, baseline_gpus), **extra}, ensure_ascii=False, indent=2)
    elif not runs and not tables:  # a matrix's plan alone (collect --matrix before any submit) is a table
        text = "no runs to collect (submit a matrix first, or point --logs at existing logs)"
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
