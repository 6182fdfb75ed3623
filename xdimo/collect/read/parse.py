"""Read what a run of the reference workload writes: logs/<run_id>/run.json and metrics.jsonl.

The contract is ARCHITECTURE.md's. A run that is still writing may end in a half line; a run killed early
may have no run.json: both are read as far as they go, never an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from xdimo.collect.derive.records import RunRecord, Steady
from xdimo.collect.derive.steady import steady_state
from xdimo.collect.tables.lang import note
from xdimo.rundir import METRICS, RUN_JSON

T = TypeVar("T")
EVAL_JSON = "eval.json"  # written by evaluation: {"fvd": float, "convergence_steps": int}
LOSS_POINTS = 400  # loss curve points kept per run (plots need no more; the cache stays small)


@dataclass
class Series:
    """metrics.jsonl as columns (one entry per log interval)."""

    step: list[int] = field(default_factory=list)
    elapsed_s: list[float | None] = field(default_factory=list)
    loss: list[float | None] = field(default_factory=list)
    steps_per_s: list[float | None] = field(default_factory=list)
    samples_per_s: list[float | None] = field(default_factory=list)
    tokens_per_s: list[float | None] = field(default_factory=list)
    mfu: list[float | None] = field(default_factory=list)
    mem_peak_gib: list[float | None] = field(default_factory=list)
    mem_reserved_gib: list[float | None] = field(default_factory=list)
    warmup: list[bool | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.step)


def _objects(text: str) -> list[dict[str, Any]]:
    """JSON lines -> objects. Fast path: the whole file as one array; slow path skips bad lines."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    try:
        objs = json.loads("[" + ",".join(lines) + "]")
        return [o for o in objs if isinstance(o, dict)]
    except ValueError:
        pass
    out = []
    for ln in lines:
        try:
            obj = json.loads(ln)
        except ValueError:
            continue  # the half line of a run still writing, or garbage: skip it
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


@dataclass
class Attempt(Generic[T]):
    """What ``latest_attempt`` keeps of a log, and what it saw of restarts."""

    items: list[T]  # the entries that count, steps strictly increasing
    dropped: int = 0  # entries of abandoned attempts a restart went back over
    resumed: list[bool] = field(default_factory=list)  # per kept entry: the first of a resumed attempt


def latest_attempt(items: Iterable[T], step: Callable[[T], Any]) -> Attempt[T]:
    """The entries that count in a log a resumed run appended to (metrics.jsonl rows, text-log step lines).

    Read in the order written, with ``last`` the step of the latest entry kept so far:

    * step > last: the run goes on; kept.
    * step < last: a restart. The run was resumed from an earlier checkpoint and logs steps again: every kept
      entry from this step on belongs to the abandoned attempt, so it is dropped (counted in ``dropped``) and
      the later attempt wins from here. The entry is the first of a resumed attempt (``resumed``: its
      interval holds the start-up again).
    * step == last: the same step printed again (every rank printing the line, a buffer flushed twice). The
      later print replaces the earlier one and takes over its ``resumed`` flag; it is no restart and drops
      nothing. A resume whose first step is exactly the last one logged before the crash reads the same way:
      its entry still wins, only its start-up is not flagged.
    * a step that is not an int (a bool, a float, missing) makes no entry: skipped.

    Put another way: an entry counts unless an entry written after it has a step <= its own. So the kept steps
    are strictly increasing, a log without restarts or repeats is kept whole, and reading what was kept again
    changes nothing.
    """
    out: list[T] = []
    steps: list[int] = []
    resumed: list[bool] = []
    dropped = 0
    for item in items:
        s = step(item)
        if type(s) is not int:
            continue
        if steps and steps[-1] == s:
            out[-1] = item
            continue
        restart = bool(steps) and steps[-1] > s
        while steps and steps[-1] >= s:
            out.pop()
            steps.pop()
            resumed.pop()
            dropped += 1
        out.append(item)
        steps.append(s)
        resumed.append(restart)
    return Attempt(out, dropped, resumed)


def row_step(obj: dict[str, Any]) -> Any:
    return obj.get("step")


def series_from_objects(objs: list[dict[str, Any]]) -> Series:
    """Columns as written; values are checked where they are used (steady_state), not one by one here."""
    objs = latest_attempt(objs, step=row_step).items
    return Series(
        step=[o["step"] for o in objs],
        elapsed_s=[o.get("elapsed_s") for o in objs],
        loss=[o.get("loss") for o in objs],
        steps_per_s=[o.get("steps_per_s") for o in objs],
        samples_per_s=[o.get("samples_per_s") for o in objs],
        tokens_per_s=[o.get("tokens_per_s") for o in objs],
        mfu=[o.get("mfu") for o in objs],
        mem_peak_gib=[o.get("mem_peak_gib") for o in objs],
        mem_reserved_gib=[o.get("mem_reserved_gib") for o in objs],
        warmup=[o.get("warmup") for o in objs],
    )


def read_metrics(path: Path) -> Series:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Series()
    return series_from_objects(_objects(text))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} when missing, unreadable or not an object (a run still starting)."""
    return read_json_said(path)[0]


JSON_PROBLEM_ZH = {"empty": "空文件", "not JSON": "不是 JSON", "not a JSON object": "不是 JSON 对象"}


def read_json_said(path: Path) -> tuple[dict[str, Any], str]:
    """(``read_json``, why a file that is there gave nothing: "not JSON", "not a JSON object", "empty"; "" when
    it read, or is missing: a run killed before it wrote one is no fault of the file)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}, ""
    if not text.strip():
        return {}, "empty"
    try:
        data = json.loads(text)
    except ValueError:
        return {}, "not JSON"
    return (data, "") if isinstance(data, dict) else ({}, "not a JSON object")


def malformed_lines(text: str) -> tuple[int, int, int]:
    """(lines that are not a JSON object, the first one's line number, lines that are) in metrics.jsonl; a last
    line without its newline is a run still writing it, not counted either way."""
    lines = text.split("\n")
    if lines and lines[-1].strip():
        lines.pop()  # a half line: written while we read
    bad = good = first = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ok = isinstance(json.loads(line), dict)
        except ValueError:
            ok = False
        good += ok
        if not ok:
            bad += 1
            first = first or number
    return bad, first, good


def downsample(steps: list[int], values: list[Any], limit: int = LOSS_POINTS) -> list[tuple[int, float]]:
    """At most ``limit`` (step, value) points, evenly spaced, the last one kept (and the first, for a limit of 2
    or more); non-numbers dropped. Steps come out in the order they went in."""
    pts = [(s, v) for s, v in zip(steps, values, strict=False) if _num(v) is not None]
    if limit < 1:
        return []
    if len(pts) <= limit:
        return pts
    stride = len(pts) / limit
    return [pts[int(i * stride)] for i in range(limit - 1)] + [pts[-1]]


# run.json key -> RunRecord field; values from run.json are what actually ran, so they win over the spec.
_RUN_JSON_FIELDS = {
    "run_id": "run_id", "matrix": "matrix", "cluster": "cluster", "pool": "pool", "job_id": "job_id",
    "model": "model", "moe": "moe", "params_total": "params_total", "params_active": "params_active",
    "flops_per_sample": "flops_per_sample", "precision": "precision", "gpu_name": "gpu_name",
    "peak_tflops": "peak_tflops", "world_size": "gpus", "nodes": "nodes", "local_batch": "local_batch",
    "grad_accum": "grad_accum", "global_batch": "global_batch", "parallel": "parallel", "frames": "frames",
    "image_size": "image_size", "depth": "depth", "hidden": "hidden", "heads": "heads",
}
# Keys whose explicit null in run.json clears the value rather than keeping what was there. A null peak is not
# final: facts.enrich then takes xdimo/hardware.py's peak for a GPU it knows (the run's notes say so), so it stays
# None only where there is none (a CPU run, a GPU without tensor cores for the precision, a GPU nobody knows).
NULL_MEANS_NONE = ("peak_tflops",)


_WHOLE = ("gpus", "nodes", "local_batch", "grad_accum", "global_batch", "frames", "image_size", "params_total",
          "params_active", "depth", "hidden", "heads")
_POSITIVE = ("flops_per_sample", "peak_tflops")
# A field whose run.json value is unusable is unknown where the record can say so (0 cards, None); the rest
# keep the spec's planned value. Either way the record's notes say what was ignored.
_UNKNOWN: dict[str, Any] = {"gpus": 0, "local_batch": None, "global_batch": None, "params_total": None,
                            "params_active": None, "flops_per_sample": None, "peak_tflops": None}


def run_json_value(attr: str, value: Any) -> tuple[bool, Any]:
    """(usable, value as the record keeps it) for one run.json value (a hand-edited file may hold anything)."""
    if attr in _WHOLE:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return type(value) is int and value >= 1, value
    if attr in _POSITIVE:
        return _num(value) is not None and value > 0, value
    if attr == "job_id":
        return type(value) in (str, int), str(value)
    return isinstance(value, str), value


def apply_run_json(rec: RunRecord, info: dict[str, Any]) -> None:
    for key, attr in _RUN_JSON_FIELDS.items():
        if key not in info:
            continue
        value = info[key]
        if key == "run_id" and rec.source == "ledger" and rec.run_id and value != rec.run_id:
            # the ledger names its own run (a run.json copied in, or edited): its row stays under its id
            rec.notes.append(note("rec_run_json", field=key, value=repr(str(value)[:40])))
            continue
        if value is None:
            if key in NULL_MEANS_NONE:
                setattr(rec, attr, None)
            continue
        usable, value = run_json_value(attr, value)
        if usable:
            setattr(rec, attr, value)
            continue
        if attr in _UNKNOWN:
            setattr(rec, attr, _UNKNOWN[attr])
        rec.notes.append(note("rec_run_json", field=key, value=repr(str(info[key])[:40])))


@dataclass
class RunFiles:
    """What a run folder holds, boiled down: the expensive part of collecting, and what the cache keeps."""

    run_json: dict[str, Any] = field(default_factory=dict)
    steady: Steady | None = None
    last_step: int | None = None
    elapsed_s: float | None = None  # the last interval's elapsed time: the training wall time
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    eval: dict[str, Any] = field(default_factory=dict)
    # metrics.jsonl lines that gave no throughput (not JSON, or no positive finite steps_per_s), and the first
    # such line: a file of them must not read as "no metrics yet"
    unusable_lines: int = 0
    first_unusable: str = ""
    # metrics.jsonl lines that are not a JSON object (skipped; the good ones still count), the first one's line
    # number and the good lines; run.json's fault where it is there but gave nothing ("not JSON", ...)
    malformed_lines: int = 0
    first_malformed: int = 0
    good_lines: int = 0
    run_json_problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"run_json": self.run_json, "steady": vars(self.steady) if self.steady else None,
                "last_step": self.last_step, "elapsed_s": self.elapsed_s, "loss_curve": self.loss_curve,
                "eval": self.eval, "unusable_lines": self.unusable_lines, "first_unusable": self.first_unusable,
                "malformed_lines": self.malformed_lines, "first_malformed": self.first_malformed,
                "good_lines": self.good_lines, "run_json_problem": self.run_json_problem}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunFiles:
        steady = Steady.from_dict(d["steady"]) if d.get("steady") else None
        curve = [(int(s), float(v)) for s, v in d.get("loss_curve") or ()]
        return cls(run_json=d.get("run_json") or {}, steady=steady, last_step=d.get("last_step"),
                   elapsed_s=d.get("elapsed_s"), loss_curve=curve, eval=d.get("eval") or {},
                   unusable_lines=d.get("unusable_lines") or 0, first_unusable=d.get("first_unusable") or "",
                   malformed_lines=d.get("malformed_lines") or 0, first_malformed=d.get("first_malformed") or 0,
                   good_lines=d.get("good_lines") or 0, run_json_problem=d.get("run_json_problem") or "")


def digest_series(series: Series) -> tuple[Steady | None, int | None, float | None, list[tuple[int, float]]]:
    steady = steady_state(series.steps_per_s, series.warmup, samples_per_s=series.samples_per_s,
                          tokens_per_s=series.tokens_per_s, mem_peak_gib=series.mem_peak_gib,
                          mem_reserved_gib=series.mem_reserved_gib)
    if not len(series):
        return steady, None, None, []
    elapsed = next((e for e in reversed(series.elapsed_s) if _num(e) is not None), None)
    return steady, series.step[-1], elapsed, downsample(series.step, series.loss)


def digest_run_dir(run_dir: Path) -> RunFiles:
    try:
        text = (run_dir / METRICS).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    steady, last, elapsed, curve = digest_series(series_from_objects(_objects(text)))
    unusable = unusable_lines(text)
    bad, first_bad, good = malformed_lines(text)
    info, problem = read_json_said(run_dir / RUN_JSON)
    return RunFiles(run_json=info, steady=steady, last_step=last, elapsed_s=elapsed,
                    loss_curve=curve, eval=read_json(run_dir / EVAL_JSON), unusable_lines=len(unusable),
                    first_unusable=unusable[0][:80] if unusable else "", malformed_lines=bad,
                    first_malformed=first_bad, good_lines=good, run_json_problem=problem)


def unusable_lines(text: str) -> list[str]:
    """The metrics.jsonl lines with no throughput to read: not a JSON object, or no positive finite
    steps_per_s (a run's last line cut short while it writes is one of them)."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            out.append(line.strip())
            continue
        rate = _num(obj.get("steps_per_s")) if isinstance(obj, dict) else None
        if rate is None or rate <= 0:
            out.append(line.strip())
    return out


def apply_eval(rec: RunRecord, info: dict[str, Any]) -> None:
    rec.fvd = _num(info.get("fvd"))
    conv = info.get("convergence_steps", info.get("convergence_step"))
    rec.convergence_steps = conv if isinstance(conv, int) and not isinstance(conv, bool) else None


def record_from_files(base: RunRecord, files: RunFiles, run_dir: Path | str = "") -> RunRecord:
    """``base`` (from the ledger's spec) completed by what the run wrote; ``base`` is not changed."""
    rec = RunRecord.from_dict(base.to_dict())
    apply_run_json(rec, files.run_json)
    rec.steady = files.steady
    rec.last_step = files.last_step
    rec.loss_curve = list(files.loss_curve)
    if rec.wall_s is None and files.elapsed_s is not None:
        rec.wall_s, rec.wall_source = files.elapsed_s, "log"
    apply_eval(rec, files.eval)
    if files.unusable_lines and files.steady is None:  # else "no metrics yet", with a file full of them
        rec.notes.append(note("rec_metrics_unusable", n=files.unusable_lines, line=repr(files.first_unusable)))
    elif files.malformed_lines:  # figures from the good lines: say the bad ones were skipped, never silently
        rec.notes.append(note("rec_metrics_malformed", file=str(Path(run_dir) / METRICS) if run_dir else METRICS,
                              n=files.malformed_lines, line=files.first_malformed, good=files.good_lines))
    if files.run_json_problem:  # a run.json that is there but gave nothing: the spec's plan stands in for it
        rec.notes.append(note("rec_run_json_bad", file=str(Path(run_dir) / RUN_JSON) if run_dir else RUN_JSON,
                              why=files.run_json_problem, why_zh=JSON_PROBLEM_ZH.get(files.run_json_problem, "?")))
    if run_dir:
        rec.log_paths = [str(run_dir)]
    return rec
