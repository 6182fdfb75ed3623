"""A legacy run's facts (legacy.py: what its logs and the scheduler's summary say) -> a RunRecord, inferring what
the logs leave out (GPU count from CPU slots, batch from the samples/steps ratio, model from the parameter
count, precision from the mixed-precision flag) and saying each inference in the record's notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from xdimo.collect.derive import steady, wall_time
from xdimo.collect.derive.facts import enrich, identify_by_params, tokens_per_sample
from xdimo.collect.derive.records import RunRecord
from xdimo.collect.read.legacy import SPEED_SPELLINGS, Interval, LogFacts
from xdimo.collect.read.parse import downsample
from xdimo.collect.tables.lang import note


@dataclass(frozen=True)
class LegacyContext:
    """Site facts legacy logs do not carry: queue -> GPU model (cluster files), the CPU rule, precision."""

    queue_gpu: dict[str, str] = field(default_factory=dict)
    cpu_per_gpu: int = 8
    precision: str | None = None  # override; default: bf16 when the log says mixed precision, else tf32


def _batches(facts: LogFacts, gpus: int, notes: list[str]) -> tuple[int | None, int | None]:
    """(local, global) batch: printed config first, else the logged samples/steps ratio."""
    local, glob = facts.local_batch, facts.global_batch
    if local and gpus and not glob:
        glob = local * gpus
    if glob and gpus and not local and glob % gpus == 0:
        local = glob // gpus
    if local and glob:
        return local, glob
    ratios = [iv.samples_per_s / iv.steps_per_s for iv in facts.intervals
              if iv.samples_per_s and iv.steps_per_s]
    if not ratios or not gpus:
        if gpus:
            notes.append(note("rec_batch_assumed"))
            return 1, gpus
        return None, None
    r = round(sorted(ratios)[len(ratios) // 2])
    if r >= gpus and r % gpus == 0:
        return r // gpus, r  # the log's samples/s is global
    notes.append(note("rec_samples_per_rank"))
    return max(r, 1), max(r, 1) * gpus


def _gpus(facts: LogFacts, ctx: LegacyContext, notes: list[str]) -> int:
    if facts.world_size:
        return facts.world_size
    if facts.ranks:
        notes.append(note("rec_gpus_ranks", n=facts.ranks))
        return facts.ranks
    if facts.summary and facts.summary.slots and ctx.cpu_per_gpu:
        gpus = max(1, facts.summary.slots // ctx.cpu_per_gpu)
        notes.append(note("rec_gpus_slots", slots=facts.summary.slots, per=ctx.cpu_per_gpu))
        return gpus
    notes.append(note("rec_gpus_unknown"))
    return 0


def _model(facts: LogFacts, notes: list[str]) -> tuple[str, str | None]:
    model, moe = facts.model, facts.moe
    if facts.params_logged and (model is None or (facts.moe_hint and moe is None)):
        hit = identify_by_params(facts.params_logged)
        if hit and (model is None or hit[0] == model):
            model, moe = hit
            if moe:
                notes.append(note("rec_moe_identified", moe=moe, params=f"{facts.params_logged:,}"))
    if model and facts.moe_hint and moe is None and not facts.params_logged:
        notes.append(note("rec_moe_unknown"))
    return model or "", moe


def to_record(facts: LogFacts, ctx: LegacyContext | None = None) -> RunRecord:
    ctx = ctx or LegacyContext()
    notes: list[str] = []
    summary = facts.summary
    queue = summary.queue if summary else ""
    gpus = _gpus(facts, ctx, notes)
    local, glob = _batches(facts, gpus, notes)
    model, moe = _model(facts, notes)
    if ctx.precision:
        precision = ctx.precision
    elif facts.mixed_precision:
        precision = "bf16"
    else:
        precision = "tf32"  # Latte's train.py runs fp32 weights with TF32 matmuls switched on
        notes.append(note("rec_precision_tf32"))
    job = facts.job_id or (summary.job_id if summary else "")
    name = job or (Path(facts.paths[0]).stem if facts.paths else "log")
    rec = RunRecord(
        run_id=f"legacy-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}",
        source="legacy", matrix="legacy", pool=queue, gpu_name=ctx.queue_gpu.get(queue, queue),
        job_id=job, state=summary.state.value if summary and summary.state else "",
        exit_code=summary.exit_code if summary else None,
        model=model, moe=moe, precision=precision, gpus=gpus,
        nodes=max(1, len(summary.hosts)) if summary and summary.hosts else 1,
        local_batch=local, global_batch=glob, parallel="single" if gpus == 1 else ("ddp" if gpus else ""),
        log_paths=list(facts.paths), notes=notes,
    )
    iv = facts.intervals
    rec.steady = steady.steady_state([i.steps_per_s for i in iv], _warmup(iv),
                                      samples_per_s=[i.samples_per_s for i in iv],
                                      tokens_per_s=[i.tokens_per_s for i in iv],
                                      logged_mfu=[i.mfu for i in iv])
    # A logged tokens/s may be per rank and count tokens its own way: for a model collect knows, tokens/s is
    # counted (samples/s x tokens per sample) as samples/s is (steps/s x global batch); the log's figure only
    # fills in where collect cannot count.
    if rec.steady and model and tokens_per_sample(model, rec.frames, rec.image_size):
        rec.steady.tokens_per_s = None
    _explain(facts, rec)
    rec.last_step = iv[-1].step if iv else None
    rec.loss_curve = downsample([i.step for i in iv], [i.loss for i in iv])
    log_span = facts.last_ts - facts.first_ts if facts.first_ts is not None and facts.last_ts is not None else None
    rec.wall_s, rec.wall_source = wall_time.job_wall(summary.wall_s if summary else None, None, None, log_span)
    enrich(rec)
    return rec


def _warmup(intervals: list[Interval]) -> list[bool] | None:
    """Warm-up flags where a resume restarted the run: the log's first intervals (as steady_state drops them
    by default) and the first one after each restart. None (the default rule) for a log never resumed."""
    if not any(i.after_restart for i in intervals):
        return None
    valid = [k for k, i in enumerate(intervals) if i.steps_per_s is not None and i.steps_per_s > 0]
    warm = set(valid[:steady.default_warmup(len(valid))])
    return [k in warm or i.after_restart for k, i in enumerate(intervals)]


def _explain(facts: LogFacts, rec: RunRecord) -> None:
    """Notes that say why a run shows no metrics, or which of its steps a resume replaced."""
    if facts.relogged:
        rec.notes.append(note("rec_relogged", n=facts.relogged))
    if rec.steady is not None:
        return
    if facts.intervals:
        n = len(facts.intervals)
        rec.notes.append(note("rec_no_speed_fields", n=n, spellings=SPEED_SPELLINGS,
                              fields=", ".join(facts.unread_fields)) if facts.unread_fields
                         else note("rec_no_speed", n=n, spellings=SPEED_SPELLINGS))
    elif facts.stray_lines:
        rec.notes.append(note("rec_stray_one" if facts.stray_lines == 1 else "rec_stray", n=facts.stray_lines,
                              example=facts.stray_example))
