"""Where records come from: the ledger's runs (logs/<run_id>/) and the user's legacy log files.

The expensive part (reading metrics, parsing text logs) goes through the per-run cache; what the ledger says
(state, times) is applied on top every time, because it changes without the files changing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from xdimo.collect.derive.contention import shared_cores_with
from xdimo.collect.derive.facts import enrich
from xdimo.collect.derive.hardware_label import cpu_fallback, pool_label
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.derive.steady import has_steady, one_interval
from xdimo.collect.derive.wall_time import job_wall
from xdimo.collect.read import legacy, legacy_record
from xdimo.collect.read.cache import Cache, signature
from xdimo.collect.read.parse import EVAL_JSON, RunFiles, digest_run_dir, record_from_files
from xdimo.collect.tables.lang import Note, note
from xdimo.ledger import WALL_JOB_SCRIPT, WALL_SCHEDULER, AttemptJob, attempts_in
from xdimo.rundir import RunDir, wall_words
from xdimo.schedulers.lsf_parse import parse_summary
from xdimo.spec import RunSpec
from xdimo.states import JobState


class LedgerRunLike(Protocol):
    """What collect reads of a ledger row (xdimo.ledger.LedgerRun)."""

    run_id: str
    matrix: str
    cluster: str
    pool: str
    log_dir: str
    job_id: str | None
    exit_code: int | None
    started_at: float | None
    ended_at: float | None

    @property
    def spec(self) -> RunSpec: ...

    @property
    def state(self): ...  # JobState


def base_record(run: LedgerRunLike, gpu_model: str = "") -> RunRecord:
    """What the ledger knows of a run before reading its files: the spec as planned. A `command:` run is the
    user's own program, to which the workload's batch and precision are never passed (plan shows `-`): they stay
    unknown unless its run.json says them, never the spec's defaults."""
    spec = run.spec
    state = getattr(run.state, "value", run.state)
    own = None if spec.command else spec  # the settings the reference workload is given
    return RunRecord(
        run_id=run.run_id, source="ledger", matrix=run.matrix, cluster=run.cluster, pool=run.pool,
        gpu_name=gpu_model, pool_gpu=gpu_model, job_id=run.job_id or "", state=str(state or ""),
        exit_code=run.exit_code, model=spec.known_model, moe=spec.moe, frames=spec.frames, image_size=spec.image_size,
        precision=own.precision if own else "", gpus=spec.gpus, nodes=spec.nodes,
        local_batch=own.local_batch if own else None, grad_accum=own.grad_accum if own else 1,
        global_batch=own.global_batch if own else None, parallel=planned_parallel(spec.parallel, spec.gpus),
        wall_s=None, label=spec.label,
    )


def planned_parallel(parallel: str, gpus: int) -> str:
    """The parallelism a run records for itself: one process is "single" whatever the matrix said (the loop
    writes run.json so), so a 1-GPU run with figures and one without stay one row of a table."""
    return "single" if gpus == 1 else parallel


SUMMARY_TAIL_BYTES = 16_384  # the scheduler appends its summary at the end of the -o file


def summary_wall_s(run_dir: Path, job_id: str | None) -> float | None:
    """The job's wall time as the scheduler reported it (JH/LSF summary in <job>.output), if there is one.
    Poll times are not used first: a job that ended hours before the next poll would look hours long."""
    if not job_id:
        return None
    path = RunDir(run_dir).output(job_id)
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - SUMMARY_TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    summary = parse_summary(tail)
    return summary.wall_s if summary else None


def run_files(run_dir: Path, cache: Cache) -> RunFiles:
    written = RunDir(run_dir)
    sig = signature([written.run_json, written.metrics, run_dir / EVAL_JSON])
    key = f"run:{run_dir.resolve()}"
    hit = cache.get(key, sig)
    if hit is not None:
        return RunFiles.from_dict(hit)
    files = digest_run_dir(run_dir)
    cache.put(key, sig, files.to_dict())
    return files


History = Callable[[str], list[dict[str, Any]]]  # Ledger.history: a run's events (at, state, job_id, note)


def record_for(base: RunRecord, files: RunFiles, folder: Path, run_dir: Path,
               polled: tuple[float | None, float | None], script_wall_s: float | None = None,
               scheduler_wall_s: float | None = None) -> RunRecord:
    """``base`` (what the ledger knows, the attempt's job id included) completed by ``files``, read from ``folder``
    (the run's folder, or an earlier attempt's archive in it), with its wall time and derived figures. The job's
    scheduler summary is in ``run_dir`` (its <job>.output stays there); ``polled``: when polls saw it start, end;
    ``scheduler_wall_s``: the span the scheduler's accounting gave the ledger (Slurm's Start/End), which has no
    summary file: the same figure `status` shows."""
    summary = summary_wall_s(run_dir, base.job_id)
    rec = record_from_files(base, files, folder)
    rec.wall_s, rec.wall_source = job_wall(summary if summary is not None else scheduler_wall_s, *polled,
                                           files.elapsed_s, script_wall_s)
    rec.ran_from, rec.ran_to = ran_span(folder, polled)
    enrich(rec)
    rec.notes += steady_notes(rec) + peak_notes(rec, files.run_json) + cpu_notes(rec)
    return rec


def ran_span(folder: Path, polled: tuple[float | None, float | None]) -> tuple[float | None, float | None]:
    """When the job ran, on one clock (contention compares spans): job.wall's start and end, both written by the
    job script in ``folder``; without both, when the ledger saw it start and end. Never the two mixed: a start by
    the scheduler's clock beside an end a poll saw seconds late makes back-to-back runs overlap."""
    try:
        start, end = (float(w) for w in wall_words(folder)[:2])
    except ValueError:  # no job.wall, one still running (its start alone), or an unreadable one
        return polled
    return (start, end) if math.isfinite(start) and math.isfinite(end) and 0 < start <= end else polled


def steady_notes(rec: RunRecord) -> list[Note]:
    """A steady figure taken from one interval: no spread to judge it by (the Steps/s cells mark it ⚠)."""
    return [note("rec_one_interval", w=rec.steady.warmup)] if one_interval(rec) and rec.steady else []


def cpu_notes(rec: RunRecord) -> list[Note]:
    """A job given a pool of GPUs that trained on the CPU (torch saw no CUDA there): said, since its figures are
    labelled CPU, not the pool's GPU (hardware_label.cpu_in_gpu_pool)."""
    return [note("rec_cpu_in_gpu_pool", pool=rec.pool, hw=pool_label(rec.pool))] if cpu_fallback(rec) else []


def peak_notes(rec: RunRecord, run_json: dict[str, Any]) -> list[Note]:
    """Where the peak an MFU rests on came from, when not from the run's run.json (null there, as the test doubles,
    a `command:` script or an older workload write it, or not said): xdimo/hardware.py's for the run's GPU and
    precision, which enrich took."""
    if not rec.has_metrics or rec.peak_tflops is None or run_json.get("peak_tflops") == rec.peak_tflops:
        return []  # no MFU to explain, or run.json's own peak
    key = "rec_peak_table" if rec.precision else "rec_peak_table_bf16"  # no precision said: bf16 was assumed
    return [note(key, gpu=rec.gpu_name, prec=(rec.precision or "bf16").upper(), peak=f"{rec.peak_tflops:g}")]


def recorded_wall(run: LedgerRunLike, run_dir: Path) -> tuple[float | None, float | None]:
    """(the scheduler's span, the job script's span) of the run's latest attempt: the one the ledger recorded as it
    settled the run (ledger.settled_wall), the figure `status` shows, whichever source it names; where it recorded
    none (a run still active, settled before the ledger kept it, or with neither known then), job.wall as the
    run's folder has it now."""
    wall, source = getattr(run, "wall_s", None), getattr(run, "wall_source", None)
    if wall is not None and source == WALL_SCHEDULER:
        return wall, None
    if wall is not None and source == WALL_JOB_SCRIPT:
        return None, wall
    return None, RunDir(run_dir).script_wall_s()


def ledger_records(runs: Iterable[LedgerRunLike], logs_dir: Path, cache: Cache,
                   pool_gpu: dict[tuple[str, str], str] | None = None,
                   history: History | None = None) -> list[RunRecord]:
    """One record per ledger run, completed by logs/<run_id>/ where the run has written it. A resubmitted run whose
    latest attempt ended without metrics shows an earlier attempt's figures (logs/<run_id>/attempt-N/), a DONE one
    first, marked as that attempt's in its notes; one still waiting for its latest attempt names them in a note.
    ``history`` (the ledger's events) tells each attempt's job and end."""
    out = []
    for run in runs:
        run_dir = Path(run.log_dir) if run.log_dir else RunDir.in_logs(logs_dir, run.run_id).path
        if not run_dir.is_absolute():
            run_dir = logs_dir.parent / run_dir
        base = base_record(run, (pool_gpu or {}).get((run.cluster, run.pool), ""))
        scheduler_wall, script_wall = recorded_wall(run, run_dir)
        rec = record_for(base, run_files(run_dir, cache), run_dir, run_dir, (run.started_at, run.ended_at),
                         script_wall, scheduler_wall)
        if not has_steady(rec):  # no metrics, or warm-up only (a kill before its figures settled)
            rec = with_earlier_attempt(rec, run, run_dir, logs_dir, cache, history)
        out.append(rec)
    for rec in out:
        if rec.has_metrics and (beside := shared_cores_with(rec, out)):
            names = ", ".join(f"`{r.run_id}`" for r in beside[:3]) + (" ..." if len(beside) > 3 else "")
            rec.notes.append(note("rec_shared_cores", others=names))
    return out


_ATTEMPT_DIR = re.compile(r"attempt-(\d+)")
attempt_jobs = attempts_in  # attempt number -> its job, from a run's events: the ledger's own reading of them


def with_earlier_attempt(rec: RunRecord, run: LedgerRunLike, run_dir: Path, logs_dir: Path, cache: Cache,
                         history: History | None) -> RunRecord:
    """``rec`` (the latest attempt, without steady metrics), or the steady figures of an earlier attempt of the
    same run (the same spec: the run id is its hash) that has them, a DONE one before the others, the latest
    first; while the latest attempt may still run, ``rec`` with a note naming them. Without ``history`` an
    earlier attempt's job and state are not known: its record has neither (never the latest attempt's)."""
    latest = getattr(run, "attempt", None) or 1
    found = []
    for folder in run_dir.glob("attempt-*"):
        m = _ATTEMPT_DIR.fullmatch(folder.name)
        if m and int(m.group(1)) < latest and folder.is_dir():
            files = run_files(folder, cache)
            if files.steady is not None and not files.steady.warmup_only:
                found.append((int(m.group(1)), folder, files))
    if not found:
        return rec
    jobs = attempt_jobs(history(run.run_id)) if history else {}
    n, folder, files = max(found, key=lambda f: (jobs.get(f[0], AttemptJob()).state is JobState.DONE, f[0]))
    job = jobs.get(n, AttemptJob())
    where = str(folder.relative_to(logs_dir.parent)) if folder.is_relative_to(logs_dir.parent) else str(folder)
    said = {"n": n, "job": job.job_id or "?", "state": job.state.value if job.state else "?", "dir": where + "/",
            "now": latest, "now_job": run.job_id or "?", "now_state": rec.state or "?"}
    state = getattr(run, "state", None)
    if getattr(state, "active", False):
        rec.notes.append(note("rec_earlier_waiting", **said))
        return rec
    base = base_record(run, rec.pool_gpu)  # the pool's GPU, not the one the latest attempt reported
    base.job_id = job.job_id or ""  # not known (no history): the attempt's run.json may name it, never the latest's
    base.state = job.state.value if job.state else ""
    base.exit_code = 0 if job.state is JobState.DONE else None
    earlier = record_for(base, files, folder, run_dir, (job.started, job.ended), RunDir(folder).script_wall_s())
    earlier.job_id, earlier.attempt = job.job_id or earlier.job_id, n  # the ledger's job over its run.json's
    earlier.notes.append(note("rec_earlier_used", **said))
    return earlier


def legacy_records(paths: Sequence[Path], ctx: legacy_record.LegacyContext, cache: Cache) -> list[RunRecord]:
    """One record per job found under ``paths`` (-e and -o files paired by job id)."""
    groups = legacy.group_by_job(legacy.find_log_files(paths))
    out = []
    seen: dict[tuple[object, ...], RunRecord] = {}
    for key, files in groups.items():
        sig = signature(sorted(files))
        hit = cache.get(f"legacy:{key}", sig)
        if hit is not None:
            facts = legacy.LogFacts.from_dict(hit)
        else:
            facts = legacy.read_facts(key, files)
            cache.put(f"legacy:{key}", sig, facts.to_dict())
        if not legacy.is_run(facts):
            continue
        rec = legacy_record.to_record(facts, ctx)
        rec.notes += steady_notes(rec)
        # The same run logged twice (the -e file and Latte's own log.txt): keep the one with a job id.
        ident = tuple((iv.ts, iv.step, iv.steps_per_s) for iv in facts.intervals) or (key,)
        kept = seen.get(ident)
        if kept is not None and not (kept.job_id and rec.job_id and kept.job_id != rec.job_id):
            if not kept.job_id and rec.job_id:
                out[out.index(kept)] = rec
                seen[ident] = rec
            continue
        seen[ident] = rec
        out.append(rec)
    return out


def legacy_context(clusters: Iterable[object], precision: str | None = None) -> legacy_record.LegacyContext:
    """Queue -> GPU model from the workspace's cluster files (Cluster objects), for legacy logs."""
    queue_gpu: dict[str, str] = {}
    cpu_per_gpu = 8
    for cluster in clusters:
        for pool in getattr(cluster, "pools", {}).values():
            queue_gpu.setdefault(pool.queue_name, pool.gpu_model)
            queue_gpu.setdefault(pool.name, pool.gpu_model)
        cpu_per_gpu = getattr(cluster, "cpu_per_gpu", cpu_per_gpu)
    return legacy_record.LegacyContext(queue_gpu=queue_gpu, cpu_per_gpu=cpu_per_gpu, precision=precision)
