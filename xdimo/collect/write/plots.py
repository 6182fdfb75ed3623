"""PNG plots of a study (matplotlib, Agg backend, imported only here and only when plotting).

speedup.png (speedup vs ideal per hardware), efficiency.png (parallel efficiency), models.png (MFU and
samples/s by model), loss.png (all runs) and loss/<run_id>.png (one per run). A study of many lines is drawn
MAX_LINES_PER_PLOT lines a page, in table 1's hardware order: speedup.png, speedup-2.png, ... (and efficiency's
alike), each with its legend under the plot, so that hundreds of runs never squash one plot into a strip of
legend. Long work says how far it is on stderr (``note``). Labels follow ``--lang`` in the
tables' own terms, but Chinese only with an installed font that has the glyphs (fonts.py finds it, or
XDIMO_PLOT_FONT names it): matplotlib's default fonts have none, and a plot of empty boxes helps nobody, so
without one the plots are English and say so once.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xdimo.atomic import replacing
from xdimo.collect.derive import baselines, throughput
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.tables.cells import is_cpu, lacks_peak
from xdimo.collect.tables.labels import (
    batch_text,
    hw,
    hw_sort_key,
    model_display,
    model_sort_key,
    run_model,
    workload_text,
)
from xdimo.collect.tables.lang import TEXT, t
from xdimo.collect.tables.model_table import table2_settings
from xdimo.collect.tables.pick import pick_run
from xdimo.collect.write import fonts
from xdimo.collect.write.atomic import require_regular
from xdimo.errors import XdimoError

MAX_COMBINED_LOSS = 12  # more curves than this on one axis is a plate of spaghetti
MAX_LINES_PER_PLOT = 8  # speedup/efficiency lines per page: a ninth starts speedup-2.png (a legend stays readable)
LEGEND_INSIDE = 4  # a legend of more entries goes under the plot, in columns, not over the lines
PROGRESS_FROM = 20  # loss plots from this many on say how far they are, every PROGRESS_EVERY of them
PROGRESS_EVERY = 50
LABEL_MARGIN_X, LABEL_MARGIN_Y = 0.15, 0.1  # speedup.png's data margins: a "10.67" label fits right of its point
ZH_GLYPHS = fonts.needed_glyphs(v for k, v in TEXT["zh"].items() if k.startswith("plot_"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Atomic: a reader never sees half a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)  # `collect --plots` checked its folder's parent exists
    require_regular(path, "--plots")  # os.replace would swap a FIFO or a device for the PNG
    with replacing(path, keep_suffix=True) as tmp:  # no half-written PNG left behind (a full disk, Ctrl-C)
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    return path


Point = tuple[int, float, float, str]  # (gpus, speedup, efficiency, run_id)
Scaled = tuple[RunRecord, float, float, RunRecord]  # a run with a speedup and efficiency, and its baseline
LineKey = tuple[baselines.GroupKey, str]  # one study, and the parallelism of its line ("" where it has one)


def scaling_series(runs: Sequence[RunRecord], baseline_gpus: int | None = None) -> dict[str, tuple[int, list[Point]]]:
    """hardware/model[/workload][/batch][/parallelism] -> (n0, [(gpus, speedup, efficiency, run_id)]): the runs that
    have table 1's baseline (baselines.scaling_baseline: the 1-card run of the same workload and local batch, else
    the study's fewest-card run, or the ``baseline_gpus``-card one), and that baseline's card count n0.

    A line is one study (hardware, model, workload, local batch: what a speedup holds fixed), split by parallelism
    where its runs use several (DDP and FSDP rows of table 1, each line through the study's baseline point). A line
    has one point per card count: of several runs there (a rerun, one that failed), the one a table cell shows
    (``pick_run``: DONE first), never a vertical stroke, nor a bar that hides another. Where one hardware and model
    have several lines, the label says what tells them apart (workload, batch, parallelism)."""
    lines = study_lines(scaled_runs(baselines.RunSet.of(runs), baseline_gpus))
    labels = line_labels({key: members[0][0] for key, members in lines.items()})
    out = {labels[key]: (members[0][3].gpus, one_per_count(members)) for key, members in lines.items()}
    return dict(sorted(out.items(), key=lambda kv: hw_sort_key(kv[0].split(" ")[0])))


def scaled_runs(runs: baselines.RunSet, baseline_gpus: int | None) -> list[Scaled]:
    """The runs with a speedup and an efficiency against table 1's baseline, with that baseline."""
    out = []
    for r in runs:
        base = baselines.scaling_baseline(r, runs, baseline_gpus) if r.has_metrics else None
        s = baselines.speedup(r, base) if base else None
        e = baselines.efficiency(r, base) if base else None
        if base is not None and s is not None and e is not None:
            out.append((r, s, e, base))
    return out


def study_lines(scaled: Sequence[Scaled]) -> dict[LineKey, list[Scaled]]:
    """The points by line: a study's multi-card runs by parallelism where they use several; its baseline's point
    and its single-card points (no parallelism) on each of its lines."""
    parallels: dict[baselines.GroupKey, set[str]] = {}
    for r, _, _, base in scaled:
        if r is not base and line_parallel(r):
            parallels.setdefault(baselines.group_key(r), set()).add(line_parallel(r))
    lines: dict[LineKey, list[Scaled]] = {}
    shared = []
    for point in scaled:
        r, _, _, base = point
        study = baselines.group_key(r)
        if r is base or not line_parallel(r):
            shared.append(point)
        else:
            lines.setdefault((study, line_parallel(r) if len(parallels[study]) > 1 else ""), []).append(point)
    for point in shared:
        study = baselines.group_key(point[0])
        for key in [k for k in lines if k[0] == study] or [(study, "")]:
            lines.setdefault(key, []).append(point)
    return lines


def line_parallel(rec: RunRecord) -> str:
    """The parallelism a run's line is drawn for: "" for one card (none to tell apart)."""
    return "" if rec.gpus == 1 or rec.parallel == "single" else (rec.parallel or "ddp")


def line_labels(lines: dict[LineKey, RunRecord]) -> dict[LineKey, str]:
    """Each line's label (``lines``: a run of each): its hardware, the model where there are several, and what
    tells the lines of one hardware and model apart (workload, batch, parallelism) where they differ."""
    several_models = len({(r.model, r.moe) for r in lines.values()}) > 1
    by_model: dict[tuple, list[baselines.GroupKey]] = {}
    for study, _ in lines:
        by_model.setdefault(study[:3], []).append(study)
    labels = {}
    for (study, parallel), rec in lines.items():
        same = by_model[study[:3]]
        which = [workload_text(rec)] if len({o[3] for o in same}) > 1 else []
        which += [batch_text(rec)] if len({o[4] for o in same}) > 1 else []
        which += [parallel.upper()] if parallel else []
        label = f"{hw(rec)} {run_model(rec)}" if several_models else hw(rec)
        labels[(study, parallel)] = label + (f" [{', '.join(which)}]" if which else "")
    return labels


def one_per_count(members: Sequence[Scaled]) -> list[Point]:
    """One point per card count: the baseline at its own count, elsewhere the run ``pick_run`` shows (of the
    baselines too, where runs of two matrices each have their own)."""
    by_count: dict[int, list[RunRecord]] = {}
    figures = {id(r): (s, e) for r, s, e, _ in members}
    for r, *_ in members:
        by_count.setdefault(r.gpus, []).append(r)
    own = {id(r) for r, _, _, base in members if r is base}
    points = []
    for gpus, group in by_count.items():
        shown = pick_run([r for r in group if id(r) in own] or group)
        if shown is not None:
            s, e = figures[id(shown)]
            points.append((gpus, s, e, shown.run_id))
    return sorted(points)


Series = dict[str, tuple[int, list[Point]]]  # a line's label -> (its baseline's cards n0, its points)


def pages(series: Series) -> list[Series]:
    """The lines in pages of at most MAX_LINES_PER_PLOT, in their order (table 1's hardware order)."""
    items = list(series.items())
    return [dict(items[i:i + MAX_LINES_PER_PLOT]) for i in range(0, len(items), MAX_LINES_PER_PLOT)]


def page_path(path: Path, n: int) -> Path:
    """Page ``n`` (from 1) of a plot: ``speedup.png``, then ``speedup-2.png``, ``speedup-3.png``, ..."""
    return path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def page_title(title: str, n: int, count: int) -> str:
    return f"{title} ({n}/{count})" if count > 1 else title


def legend(ax: Any, entries: int) -> None:
    """A few entries in the plot; more under it, in two columns (bbox_inches="tight" grows the PNG to hold them)."""
    if entries <= LEGEND_INSIDE:
        ax.legend()
    else:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8)


def plot_speedup(runs: Sequence[RunRecord], path: Path, lang: str = "en",
                 baseline_gpus: int | None = None) -> list[Path]:
    """Speedup per study against ideal, MAX_LINES_PER_PLOT studies a page (``page_path``); [] where no run has a
    speedup."""
    split = pages(scaling_series(runs, baseline_gpus))
    return [draw_speedup(page, page_path(path, n), page_title(t(lang, "plot_speedup_title"), n, len(split)), lang)
            for n, page in enumerate(split, 1)]


def draw_speedup(series: Series, path: Path, title: str, lang: str) -> Path:
    """One page: one grey ideal line (= GPUs) where every study is against 1 card, else an ideal line per study
    (= GPUs / n0, from its baseline) in the study's colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    one_card = all(n0 == 1 for n0, _ in series.values())
    if one_card:
        top = max(g for _, pts in series.values() for g, *_ in pts)
        ax.plot([1, top], [1, top], "--", color="grey", label=t(lang, "plot_ideal"))
    for label, (n0, pts) in series.items():
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        (line,) = ax.plot(xs, ys, "o-", label=label)
        if not one_card:
            ends = [min(xs), max(xs)]
            ax.plot(ends, [x / n0 for x in ends], "--", color=line.get_color(), alpha=0.7,
                    label=f"{label}: {t(lang, 'plot_ideal_n', n=n0)}")
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set_xlabel(t(lang, "plot_gpus"))
    ax.set_ylabel(t(lang, "plot_speedup_y" if one_card else "plot_speedup_y_n"))
    ax.set_title(title)
    ax.set_xticks(sorted({g for _, pts in series.values() for g, *_ in pts} | {n0 for n0, _ in series.values()}))
    # Room for the value labels (right of and below each point) inside the axes: at the default 5% the rightmost
    # and the lowest label run over the frame and read as clipped.
    ax.margins(x=LABEL_MARGIN_X, y=LABEL_MARGIN_Y)
    ax.grid(alpha=0.3)
    legend(ax, len(ax.get_legend_handles_labels()[1]))
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_efficiency(runs: Sequence[RunRecord], path: Path, lang: str = "en",
                    baseline_gpus: int | None = None) -> list[Path]:
    """Parallel efficiency per study and card count: speedup over ideal (GPUs / n0, n0 the study's baseline),
    MAX_LINES_PER_PLOT studies a page, as ``plot_speedup``."""
    split = pages(scaling_series(runs, baseline_gpus))
    out = []
    for n, page in enumerate(split, 1):
        key = "plot_eff_title" if all(n0 == 1 for n0, _ in page.values()) else "plot_eff_title_n"
        out.append(draw_efficiency(page, page_path(path, n), page_title(t(lang, key), n, len(split)), lang))
    return out


def draw_efficiency(with_n0: Series, path: Path, title: str, lang: str) -> Path:
    """One page: a bar per study at each card count, the 100% ideal dashed."""
    series = {key: pts for key, (_, pts) in with_n0.items()}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    gpus = sorted({g for pts in series.values() for g, *_ in pts})
    width = 0.8 / len(series)
    for i, (label, pts) in enumerate(series.items()):
        by_g = {g: e * 100 for g, _, e, _ in pts}
        xs = [gpus.index(g) + (i - (len(series) - 1) / 2) * width for g in by_g]
        bars = ax.bar(xs, list(by_g.values()), width=width, label=label)
        # side by side, more than a few bars' labels run into each other: upright, they fit their bar
        ax.bar_label(bars, fmt="%.1f%%", fontsize=8 if len(series) <= LEGEND_INSIDE else 7,
                     rotation=0 if len(series) <= LEGEND_INSIDE else 90, padding=2)
    ax.axhline(100, ls="--", color="grey", label=t(lang, "plot_ideal_eff"))
    ax.set_xticks(range(len(gpus)), [str(g) for g in gpus])
    ax.set_xlabel(t(lang, "plot_gpus"))
    ax.set_ylabel(t(lang, "plot_eff_y"))
    ax.set_title(title)
    top = max(e * 100 for pts in series.values() for _, _, e, _ in pts)
    room = 1.1 if len(series) <= LEGEND_INSIDE else 1.25  # an upright label is taller
    ax.set_ylim(0, max(100 * (room + 0.05), top * room))  # a forced baseline of more cards: fewer pass 100%
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def model_bars(runs: Sequence[RunRecord]) -> list[tuple[str, RunRecord]]:
    """(bar label, run) per model of each setting that compares models: the run table 2's row shows (``pick_run``
    over the measured runs, so ties break as in the table), in the models' order."""
    bars: list[tuple[str, RunRecord]] = []
    for (label, gpus), group in table2_settings(baselines.RunSet.of(runs)).items():
        by_model: dict[tuple[str, str | None], list[RunRecord]] = {}
        for r in group:
            if r.has_metrics:
                by_model.setdefault((r.model, r.moe), []).append(r)
        if len(by_model) < 2:
            continue  # one model is no comparison (a scaling study's runs, the demo)
        for key in sorted(by_model, key=lambda k: model_sort_key(*k)):
            bars.append((f"{model_display(*key)}\n{gpus}x{label}", pick_run(by_model[key])))
    return bars


def plot_models(runs: Sequence[RunRecord], path: Path, lang: str = "en") -> Path | None:
    """MFU and samples/s by model in the setting(s) that compare models (table 2)."""
    picked = model_bars(runs)
    if not picked:
        return None
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8.0, 1.3 * len(picked) * 2), 4.8))
    names = [n for n, _ in picked]
    mfus = [throughput.mfu(r) for _, r in picked]
    bars = ax1.bar(names, [m * 100 if m is not None else 0 for m in mfus], color="tab:blue")
    ax1.bar_label(bars, labels=[f"{m * 100:.1f}%" if m is not None else no_mfu_label(r, lang)
                                for m, (_, r) in zip(mfus, picked, strict=True)], fontsize=8)
    ax1.yaxis.set_major_formatter(_percent_formatter())  # the bars are in % of the peak: so are the ticks
    if all(m is None for m in mfus):
        ax1.set_ylim(0, 100)  # in % as the label says, not matplotlib's 0-1 of an empty axis
        ax1.text(0.5, 0.5, "\n".join(no_mfu_captions([r for _, r in picked], lang)), ha="center",
                 transform=ax1.transAxes)
    ax1.set_ylabel(t(lang, "plot_mfu_y"))
    ax1.set_title(t(lang, "plot_mfu_title"))
    sps = [throughput.samples_per_s(r) or 0 for _, r in picked]
    bars = ax2.bar(names, sps, color="tab:orange")
    ax2.bar_label(bars, fmt="%.2f", fontsize=8)
    ax2.set_ylabel(t(lang, "plot_sps_y"))
    ax2.set_title(t(lang, "plot_sps_title"))
    for ax in (ax1, ax2):
        ax.set_xlabel(t(lang, "plot_model"))
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=100, decimals=None)


def no_mfu_label(rec: RunRecord, lang: str) -> str:
    """A bar without an MFU: not applicable on a CPU; on a GPU without tensor cores for the precision run, or whose
    peak nobody knows, says so."""
    if is_cpu(rec) or rec.peak_tflops is not None:
        return t(lang, "plot_na")
    if lacks_peak(rec):
        return t(lang, "plot_no_prec_peak", prec=(rec.precision or "bf16").upper())
    return t(lang, "plot_peak_unknown")


def no_mfu_captions(runs: Sequence[RunRecord], lang: str) -> list[str]:
    """Why no bar has an MFU: CPU runs have no GPU peak; a GPU without tensor cores for the precision run, and one
    whose peak nobody knows, are named as such."""
    lines = [t(lang, "plot_no_peak")] if any(is_cpu(r) for r in runs) else []
    lacking = sorted({(hw(r), (r.precision or "bf16").upper()) for r in runs if lacks_peak(r)})
    lines += [t(lang, "plot_no_peak_prec", hw=h, prec=p) for h, p in lacking]
    unknown = sorted({hw(r) for r in runs if not is_cpu(r) and r.peak_tflops is None and not lacks_peak(r)})
    if unknown:
        lines.append(t(lang, "plot_no_peak_hw", hw=", ".join(unknown)))
    if any(not is_cpu(r) and r.peak_tflops is not None for r in runs):  # a peak, but no FLOPs to put over it
        lines.append(t(lang, "plot_no_flops"))
    return lines


def _loss_axes(ax: Any, title: str, lang: str) -> None:
    ax.set_xlabel(t(lang, "plot_step"))
    ax.set_ylabel(t(lang, "plot_loss_y"))
    ax.set_title(title)
    ax.grid(alpha=0.3)


def plot_loss(runs: Sequence[RunRecord], out_dir: Path, lang: str = "en",
              note: Callable[[str], None] | None = None) -> list[Path]:
    """loss/<run_id>.png per run, and loss.png of them all where they are few; from PROGRESS_FROM runs on, ``note``
    says how far it is (hundreds of them take a minute)."""
    curves = [r for r in runs if len(r.loss_curve) >= 1]
    if not curves:
        return []
    plt = _pyplot()
    written = []
    progress = Progress(len(curves), note) if len(curves) >= PROGRESS_FROM else None
    for r in curves:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        ax.plot([s for s, _ in r.loss_curve], [v for _, v in r.loss_curve], ".-" if len(r.loss_curve) < 30 else "-")
        _loss_axes(ax, f"{r.run_id}: {run_model(r)}, {r.gpus}x{hw(r)}", lang)
        try:
            written.append(_save(fig, out_dir / "loss" / f"{r.run_id}.png"))
        finally:
            plt.close(fig)
        if progress:
            progress.step()
    if len(curves) <= MAX_COMBINED_LOSS:
        fig, ax = plt.subplots(figsize=(7.2, 4.8))
        for r in curves:
            ax.plot([s for s, _ in r.loss_curve], [v for _, v in r.loss_curve],
                    label=f"{r.gpus}x{hw(r)} {run_model(r)}")
        _loss_axes(ax, t(lang, "plot_loss_title"), lang)
        ax.legend(fontsize=8)
        try:
            written.append(_save(fig, out_dir / "loss.png"))
        finally:
            plt.close(fig)
    return written


class Progress:
    """``plots: loss curves 50/600 (loss/<run_id>.png)`` on stderr, at the start and every PROGRESS_EVERY plots."""

    def __init__(self, total: int, note: Callable[[str], None] | None) -> None:
        self.total, self.done, self.say = total, 0, note or _stderr
        self.say(f"plots: drawing {total} loss curves (loss/<run_id>.png, one per run) ...")

    def step(self) -> None:
        self.done += 1
        if self.done % PROGRESS_EVERY == 0 and self.done < self.total:
            self.say(f"plots: loss curves {self.done}/{self.total}")


def write_plots(runs: Sequence[RunRecord], out_dir: Path, lang: str = "en",
                note: Callable[[str], None] | None = None, baseline_gpus: int | None = None,
                loss: bool = True) -> list[Path]:
    """Every plot the runs can fill, in ``lang`` if a font can draw it (else English, and ``note`` says why);
    speedups against table 1's baseline (``baseline_gpus``: ``collect --baseline-gpus``); ``loss`` False: no loss
    plots (one PNG per run is most of the time of a study of hundreds). ``out_dir`` is made only when a plot is
    written into it: where there is nothing to plot, nothing is created."""
    check_targets(runs, out_dir, loss)
    if not any(r.has_metrics or (loss and r.loss_curve) for r in runs):  # nothing to draw: matplotlib not loaded
        return []
    font = fonts.plot_font(lang, ZH_GLYPHS)
    with _pyplot().rc_context(font.rc()), fonts.quiet_weight_substitution():  # for these plots only
        speedup = plot_speedup(runs, out_dir / "speedup.png", font.lang, baseline_gpus)
        efficiency = plot_efficiency(runs, out_dir / "efficiency.png", font.lang, baseline_gpus)
        drop_stale_pages(out_dir, "speedup.png", len(speedup))
        drop_stale_pages(out_dir, "efficiency.png", len(efficiency))
        if len(speedup) > 1:
            (note or _stderr)(f"plots: {len(speedup)} speedup and efficiency pages of at most {MAX_LINES_PER_PLOT} "
                              f"lines each (speedup.png, speedup-2.png, ...)")
        models = plot_models(runs, out_dir / "models.png", font.lang)
        written = speedup + efficiency + ([models] if models else [])
        written += plot_loss(runs, out_dir, font.lang, note) if loss else []
    if font.note and written:  # why the plots are English: said of plots that exist
        (note or _stderr)(font.note)
    return written


PLOT_FILES = ("speedup.png", "efficiency.png", "models.png", "loss.png")
PAGED = ("speedup.png", "efficiency.png")


def extra_pages(out_dir: Path, name: str) -> dict[int, Path]:
    """The pages after the first of a paged plot already in ``out_dir`` (``speedup-2.png`` ...), by number."""
    stem, suffix = name.rsplit(".", 1)
    found = {}
    for path in out_dir.glob(f"{stem}-*.{suffix}") if out_dir.is_dir() else ():
        m = re.fullmatch(rf"{re.escape(stem)}-(\d+)\.{suffix}", path.name)
        if m and int(m.group(1)) >= 2:
            found[int(m.group(1))] = path
    return found


def drop_stale_pages(out_dir: Path, name: str, kept: int) -> None:
    """Pages of an earlier, longer study past the ``kept`` just written (speedup-5.png of 5 beside 2 new ones)
    would read as part of this one: removed, where there is a page 1 to go with."""
    if not kept:
        return
    for n, path in extra_pages(out_dir, name).items():
        if n > kept:
            path.unlink(missing_ok=True)


def check_targets(runs: Sequence[RunRecord], out_dir: Path, loss: bool = True) -> None:
    """Before any plot is drawn, nothing a plot would replace may be a FIFO, a device or a folder: os.replace
    would swap it for the PNG, and a refusal at that plot would leave the plots before it new."""
    if out_dir.exists() and not out_dir.is_dir():
        raise XdimoError(f"--plots {out_dir}: not a folder")
    loss_dir = out_dir / "loss"
    if loss and loss_dir.exists() and not loss_dir.is_dir():
        raise XdimoError(f"--plots {out_dir}: {loss_dir} is not a folder; nothing written")
    targets = [out_dir / name for name in PLOT_FILES]
    targets += [page for name in PAGED for page in extra_pages(out_dir, name).values()]
    targets += [loss_dir / f"{r.run_id}.png" for r in runs if r.loss_curve] if loss else []
    for path in targets:
        require_regular(path, "--plots")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
