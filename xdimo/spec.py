"""RunSpec: one fully resolved run of an experiment matrix, and its identity.

A run's id is a hash of its resolved spec, so the same spec is the same run: submitting it twice
needs ``--again`` (ROADMAP: "the same run is never submitted twice").
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any

PARALLEL_CHOICES = ("single", "ddp", "fsdp")
PRECISION_CHOICES = ("bf16", "tf32", "fp32")
MOE_PATTERN = re.compile(r"([1-9]\d*)E([1-9]\d*)A")  # whole text only (fullmatch: `$` would let "4E2A\n" by)
MAX_EXPERTS = 256  # the largest MoE layers in use have a few hundred experts; past that it is a typo
# The RunSpec fields the reference workload gets as flags (``--local-batch 2``), in argv order; a None is left out.
# A matrix's train_args may not set them again: the last flag would win, and the job would not be its spec.
WORKLOAD_FIELDS = ("model", "moe", "parallel", "local_batch", "grad_accum", "steps", "precision", "data", "frames",
                   "image_size", "log_every")


NOT_IDENTITY = ("label", "model_given")  # fields that say how a run is shown, not what it computes


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides what a run computes and where it runs."""

    matrix: str
    pool: str
    model: str = "Latte-S/2"
    moe: str | None = None  # "NEkA": N experts, top-k active; None = dense MLP
    gpus: int = 1  # total over all nodes (CPU processes on a machine without GPUs)
    cpus: int | None = None  # CPU slots asked for; None = the site rule (cpu_per_gpu x gpus)
    nodes: int = 1
    parallel: str = "ddp"
    local_batch: int = 1
    grad_accum: int = 1
    steps: int = 2000
    precision: str = "bf16"
    data: str = "synthetic"
    frames: int = 16
    image_size: int = 256
    log_every: int = 10
    command: str | None = None  # the user's own launch line instead of the reference workload
    env: tuple[str, ...] = ()  # extra shell lines (exports) for this run
    train_args: tuple[tuple[str, str], ...] = ()  # extra `--key value` flags for the workload
    # Minutes the scheduler may run the job (-W / --time); None = the site's default.
    walltime_min: int | None = None
    label: str = field(default="", compare=False)  # free text shown in tables; not part of identity
    # Whether the matrix named the model. A `command` run that names none trains something of its own: the
    # default model is not what it runs, so collect neither labels it so nor takes its FLOPs. Not identity.
    model_given: bool = field(default=True, compare=False)

    @property
    def global_batch(self) -> int:
        return self.local_batch * self.gpus * self.grad_accum

    @property
    def gpus_per_node(self) -> int:
        return self.gpus // self.nodes

    @cached_property
    def run_id(self) -> str:
        # Cached (the instance's __dict__; frozen dataclasses allow it): planning asks for it O(runs^2) times.
        return f"{self.matrix}-{self.digest()}"

    def digest(self) -> str:
        identity = {k: v for k, v in self.to_dict().items() if k not in NOT_IDENTITY}
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def known_model(self) -> str:
        """The model collect labels the run with and takes FLOPs from: the spec's, except for a user's
        ``command`` whose matrix named none ("": unknown, unless its run.json says)."""
        return self.model if self.model_given or not self.command else ""

    @property
    def model_name(self) -> str:
        """The model as the user's tables write it: ``Latte-L/2-MoE(4E2A)`` or ``Latte-L/2``."""
        return f"{self.model}-{self.moe}" if self.moe else self.model

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["env"] = list(self.env)
        d["train_args"] = [list(kv) for kv in self.train_args]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["env"] = tuple(kw.get("env") or ())
        kw["train_args"] = tuple(tuple(kv) for kv in (kw.get("train_args") or ()))
        return cls(**kw)


def parse_moe(moe: str | None) -> tuple[int, int] | None:
    """``"4E2A"`` -> (4, 2); None -> None. Raises ValueError on anything else."""
    if moe is None:
        return None
    m = MOE_PATTERN.fullmatch(moe)
    if not m:
        raise ValueError(f"moe must look like 4E2A (N experts, k active), got {moe!r}")
    n, k = int(m.group(1)), int(m.group(2))
    if n > MAX_EXPERTS:
        raise ValueError(f"moe {moe!r} has more than {MAX_EXPERTS} experts")
    if k > n:
        raise ValueError(f"moe {moe!r} activates more experts than it has")
    return n, k
