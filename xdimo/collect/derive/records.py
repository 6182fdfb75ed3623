"""What collect knows about one run, whatever it came from (the ledger's logs/<run_id>/ or a legacy log).

A RunRecord is plain data (JSON round-trip for the per-run cache); everything the tables show is derived
from it by pure functions beside it (steady.py, throughput.py, baselines.py, ...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Steady:
    """Steady-state throughput of one run: warm-up intervals excluded, the median over the rest."""

    intervals: int  # log intervals the median is taken over; 0: every interval was warm-up (``warmup_only``)
    warmup: int  # intervals excluded as warm-up
    steps_per_s: float
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    # (P90 - P10) / median of steps/s over the steady intervals; None where unknown (fewer than two of them)
    spread: float | None = None
    mem_peak_gib: float | None = None  # torch.cuda.max_memory_allocated on rank 0
    mem_reserved_gib: float | None = None  # torch.cuda.max_memory_reserved on rank 0 (allocator cache included)
    logged_mfu: float | None = None  # what the run's own log claimed (legacy logs), a fraction

    @property
    def warmup_only(self) -> bool:
        """Every logged interval was warm-up: the figures are the last interval's, a provisional reading, no
        steady state (no baseline, no speedup, no MFU; the tables say "warm-up only")."""
        return self.intervals == 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Steady:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class RunRecord:
    run_id: str
    source: str = "ledger"  # "ledger" | "legacy"
    matrix: str = ""
    cluster: str = ""
    pool: str = ""  # the scheduler queue / pool name, e.g. gpu_h200
    gpu_name: str = ""  # device or pool GPU model, e.g. "NVIDIA H200" or "RTX 6000 Ada"; "cpu": trained on the CPU
    pool_gpu: str = ""  # the pool's GPU model as its cluster file gives it ("cpu" for CPU slots); "" where unknown
    job_id: str = ""
    state: str = ""  # JobState value; "" when unknown (legacy logs without a summary)
    exit_code: int | None = None
    model: str = ""  # registry name, e.g. Latte-L/2
    moe: str | None = None  # NEkA or None (dense)
    frames: int = 16
    image_size: int = 256
    depth: int | None = None  # the model shape run.json records (overrides included); None = the registry's
    hidden: int | None = None
    heads: int | None = None
    params_total: int | None = None
    params_active: int | None = None
    flops_per_sample: float | None = None  # train (fwd+bwd) FLOPs per sample
    precision: str = ""
    peak_tflops: float | None = None  # dense peak per GPU at ``precision``; None on CPU / unknown GPU
    gpus: int = 0  # world size; 0 = unknown
    nodes: int = 1
    local_batch: int | None = None
    grad_accum: int = 1
    global_batch: int | None = None
    parallel: str = ""  # single | ddp | fsdp
    steady: Steady | None = None
    wall_s: float | None = None  # wall time of the job (scheduler start to end, else the log's span)
    wall_source: str = ""  # where wall_s came from: "summary" (scheduler) | "script" (job.wall) | "ledger" (polls)
    # | "log" (training)
    last_step: int | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, loss), downsampled
    fvd: float | None = None  # filled when evaluation has run (logs/<run_id>/eval.json)
    convergence_steps: int | None = None
    label: str = ""
    log_paths: list[str] = field(default_factory=list)
    # What was inferred or assumed, in plain words: tables/lang.py's Note (its English text as the string), shown
    # in a table's language by lang.note_text.
    notes: list[str] = field(default_factory=list)
    attempt: int | None = None  # the earlier attempt (logs/<run>/attempt-N/) the figures are from; None: the latest
    # epoch s: when the job ran, on one clock, for overlaps (contention.py): job.wall's start and end where the job
    # script wrote both, else when the ledger's polls saw it start and end (gather.ran_span)
    ran_from: float | None = None
    ran_to: float | None = None

    @property
    def has_metrics(self) -> bool:
        return self.steady is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("steady") is not None:
            kw["steady"] = Steady.from_dict(kw["steady"])
        kw["loss_curve"] = [(int(s), float(v)) for s, v in kw.get("loss_curve") or ()]
        return cls(**kw)
