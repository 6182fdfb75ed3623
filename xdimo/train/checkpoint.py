"""Checkpoints: what a resumable run saves (rank 0, atomically, keeping an earlier run's file aside), what it
refuses to resume from (another run's settings, a foreign or truncated file), and the vote that ends every rank
when rank 0's save fails.

Separate from the loop because it is file handling with its own failure modes (full disks, folders in the way,
old formats), each said in one line; the loop only decides when to save and whether to resume.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from xdimo.errors import XdimoError
from xdimo.rundir import METRICS, RUN_JSON, no_room
from xdimo.train.distributed import Dist
from xdimo.train.metrics_writer import folder_now, os_words, removed
from xdimo.train.optim import Ema
from xdimo.train.run_config import TrainConfig

CKPT_NAME = "last.pt"


def checkpoint_meta(cfg: TrainConfig, d: Dist) -> dict[str, Any]:
    """What a checkpoint must agree on with the run that resumes it: the model's shape, what fixes the data
    stream's position (a resumed run repeats an uninterrupted one only with the same batch, ranks and seed), and
    what changes what is computed (precision, data, the optimisation recipe). A checkpoint written before a key
    was recorded is not checked on it (read_checkpoint compares the keys both have)."""
    mcfg = cfg.model_config()
    data = cfg.data if cfg.data == "synthetic" else os.path.abspath(cfg.data)
    return {"model": cfg.model, "moe": cfg.moe, "depth": mcfg.depth, "hidden": mcfg.hidden, "heads": mcfg.heads,
            "frames": cfg.frames, "image_size": cfg.image_size, "local_batch": cfg.local_batch,
            "grad_accum": cfg.grad_accum, "world_size": d.world, "seed": cfg.seed,
            "precision": cfg.precision, "data": data, "lr": cfg.lr, "lr_base_batch": cfg.lr_base_batch,
            "warmup_steps": cfg.warmup_steps, "weight_decay": cfg.weight_decay, "ema_decay": cfg.ema_decay,
            "clip_grad": cfg.clip_grad, "clip_after": cfg.clip_after, "moe_aux_weight": cfg.moe_aux_weight,
            "capacity_factor": cfg.capacity_factor}


@dataclass
class CheckpointFile:
    """Where rank 0 saves the run's checkpoint: ``path`` as the run started (where --resume reads it), and its folder
    held open from the run's start (``open``): every save goes through that descriptor, so a workspace moved (`mv`,
    same file system) while the run trains gets its checkpoints in the new place, and the old path is not made again
    (README's `ln -s NEW OLD` stays possible). A folder removed meanwhile is made again where the run started."""

    path: Path
    _fd: int | None = field(default=None, init=False, repr=False)

    def open(self) -> int:
        """The checkpoint folder's descriptor: the folder made and opened at the first call (the run's start)."""
        if self._fd is not None and not removed(self._fd):
            return self._fd
        if self._fd is not None:
            print(f"warning: the checkpoint folder {self.path.parent} was removed while the run trained; making it "
                  "again", file=sys.stderr, flush=True)
            self.close()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise XdimoError(f"cannot open the checkpoint folder {self.path.parent}: {os_words(e)}") from None
        return self._fd

    def now(self) -> Path:
        """Where the checkpoint is now (its folder may have moved since it was opened), for messages."""
        return folder_now(self._fd, self.path.parent) / self.path.name

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with suppress(OSError):
                os.close(fd)


def in_folder(fd: int) -> Callable[[str, int], int]:
    """An ``opener`` for open(): names relative to the folder open as ``fd``."""
    return lambda name, flags: os.open(name, flags, 0o666, dir_fd=fd)


def save_checkpoint(ckpt: CheckpointFile, step: int, elapsed: float, model: nn.Module, opt: torch.optim.Optimizer,
                    ema: Ema, d: Dist, meta: dict[str, Any] | None = None, keep_earlier: bool = False) -> None:
    """Full (unsharded) states, written by rank 0 atomically; collective: every rank calls it. With
    ``keep_earlier``, a checkpoint already at ``ckpt`` (an earlier run's) is kept as ``last.prev-N.pt``.

    Alone, a write that fails raises its error (XdimoError, one line, for a full disk); with several ranks, rank 0
    says it in one ``error:`` line and every rank exits 2 (end_every_rank_if_failed)."""
    from torch.distributed.checkpoint import state_dict as dcp_sd

    opts = dcp_sd.StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = {"step": step, "elapsed_s": elapsed, "meta": meta or {},
             "model": dcp_sd.get_model_state_dict(model, options=opts),
             "optimizer": dcp_sd.get_optimizer_state_dict(model, opt, options=opts),
             "ema": ema.state()}
    failure: Exception | None = None
    if d.main:
        try:
            write_checkpoint(ckpt, state, keep_earlier)
        except Exception as e:  # whatever it is, the other ranks must hear of it before rank 0 leaves
            failure = e
    if d.world > 1:
        end_every_rank_if_failed(d, failure)
    elif failure is not None:
        raise failure


# The handles of the votes on a failed save, kept until the interpreter exits (see end_every_rank_if_failed).
_FAILED_SAVE_VOTES: list[dist.Work] = []


def end_every_rank_if_failed(d: Dist, failure: Exception | None) -> None:
    """Every rank learns whether rank 0's write failed (``failure``: its error) and if so exits 2, the cause said
    once, by rank 0. The vote, on the flag group as StopRequests.agreed's, is also the save's closing barrier: a plain
    barrier that rank 0 left for its error held the others (gloo's failed as rank 0 exited, a traceback per rank;
    NCCL's, on another node than rank 0's, may wait out the group's timeout)."""
    if isinstance(failure, XdimoError):
        # said before the vote: once the others hear of it they exit, and torchrun then ends rank 0 (SIGTERM)
        print(f"error: {failure}", file=sys.stderr, flush=True)
    vote = torch.tensor([int(failure is not None)], dtype=torch.int64)
    work = dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=d.flag_group, async_op=True)
    work.wait()
    if not vote.item():
        return
    # exiting now: gloo's thread must not be the one to free the vote while the interpreter ends (last_barrier)
    _FAILED_SAVE_VOTES.append(work)
    if failure is not None and not isinstance(failure, XdimoError):
        raise failure  # not one we know: its traceback (the other ranks end quietly)
    raise SystemExit(2)  # quietly: the error line is out


def write_checkpoint(ckpt: CheckpointFile, state: dict[str, Any], keep_earlier: bool) -> None:
    """Rank 0's part of save_checkpoint: ``state`` written to ``ckpt`` (in its open folder) through a temporary
    file beside it, so a failed write leaves the previous checkpoint whole; a failure is one XdimoError line
    naming the cause."""
    folder = ckpt.open()
    name, tmp = ckpt.path.name, ckpt.path.with_suffix(".tmp").name
    if keep_earlier and exists(name, folder):
        kept = keep_aside(name, folder)
        print(f"{ckpt.now()} held an earlier run's checkpoint and this run started at step 0 (no --resume): "
              f"kept as {kept}", flush=True)
    try:
        # Our own file object, closed by the with even when the write fails: torch.save given a path keeps
        # a failed writer's file open, so the unlink below would free no room on a full disk.
        with open(tmp, "wb", opener=in_folder(folder)) as f:
            torch.save(state, f)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except (OSError, RuntimeError) as e:  # a full disk (torch says it as RuntimeError): no half file left
        with suppress(OSError):  # a folder in the way is not ours to remove, and must not hide the cause
            os.unlink(tmp, dir_fd=folder)
        where = ckpt.now()
        # torch's words for a full disk ("unexpected pos 2274432 vs 2274384") name no cause: the folder does
        why = no_room(where.parent) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise XdimoError(f"cannot save checkpoint {where}: {why} (the previous one, if any, is kept)") from None


def exists(name: str, folder: int) -> bool:
    """Whether ``name`` is in the folder open as ``folder`` (a link to nothing is not, as Path.exists says)."""
    try:
        os.stat(name, dir_fd=folder)
        return True
    except OSError:
        return False


def read_checkpoint(path: Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state saved at ``path``; one written with other settings (``meta``, see checkpoint_meta) is refused in
    one line. One written before checkpoints carried them is read as before (load_checkpoint checks its fit)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file, or a folder: pickle, zip, EOF and OS errors alike
        raise unreadable(path, str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    problem = checkpoint_problem(state)
    if problem:
        raise unreadable(path, problem)
    saved = state.get("meta") or {}
    differ = [f"{k} {saved[k]} (now {v})" for k, v in (meta or {}).items() if k in saved and saved[k] != v]
    if differ:
        raise XdimoError(f"checkpoint {path} is of another run: {', '.join(differ)}; resume with its settings "
                         "or use a new --run-dir")
    return state


def unreadable(path: Path, why: str) -> XdimoError:
    return XdimoError(f"cannot read checkpoint {path}: {why} (move it away to start over)")


# What save_checkpoint writes, by the type load_checkpoint needs of it.
CHECKPOINT_KEYS = {"step": int, "elapsed_s": (int, float), "model": dict, "optimizer": dict, "ema": list}


def checkpoint_problem(state: Any) -> str | None:
    """Why ``state`` (what torch.load read) is not a checkpoint save_checkpoint wrote (None: it is one)."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a checkpoint of this workload"
    for key, kind in CHECKPOINT_KEYS.items():
        if key not in state:
            return f"it has no {key!r}: not a checkpoint of this workload"
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            return f"its {key!r} is a {type(state[key]).__name__}: not a checkpoint of this workload"
    if state["step"] < 0:
        return f"its step is {state['step']}"
    if not isinstance(state.get("meta") or {}, dict):
        return f"its 'meta' is a {type(state['meta']).__name__}: not a checkpoint of this workload"
    return None


def check_run_files(run_dir: Path, ckpt: Path) -> None:
    """Refuse, before run.json is written, what would fail a write only once the run has trained: a folder
    where the run writes a file, a file where it keeps its checkpoints."""
    if (ckpt.parent.exists() or ckpt.parent.is_symlink()) and not ckpt.parent.is_dir():
        raise XdimoError(f"{ckpt.parent} is not a folder, and the run saves its checkpoints there (move it away)")
    for path in (run_dir / RUN_JSON, run_dir / METRICS, ckpt, ckpt.with_suffix(".tmp")):
        if path.is_dir():
            raise XdimoError(f"{path} is a folder where the run writes a file (move it away)")


def keep_aside(name: str, folder: int) -> str:
    """Keep the checkpoint ``name`` (in the folder open as ``folder``) under the first free
    ``<stem>.prev-<N><suffix>`` beside it; returns that name. A hard link takes the name atomically (two runs in one
    folder cannot pick the same one) and leaves the checkpoint in place until the new save replaces it; a
    filesystem without links gets an exclusive copy."""
    stem, suffix = os.path.splitext(name)
    n = 1
    while True:
        kept = f"{stem}.prev-{n}{suffix}"
        try:
            os.link(name, kept, src_dir_fd=folder, dst_dir_fd=folder)
            return kept
        except FileExistsError:
            n += 1
        except OSError:  # no hard links here (some FUSE and object-store mounts)
            try:
                with open(name, "rb", opener=in_folder(folder)) as src, \
                        open(kept, "xb", opener=in_folder(folder)) as dst:
                    shutil.copyfileobj(src, dst, 16 << 20)
                return kept
            except FileExistsError:
                n += 1


def load_checkpoint(path: Path | dict[str, Any], model: nn.Module, opt: torch.optim.Optimizer, ema: Ema,
                    meta: dict[str, Any] | None = None) -> tuple[int, float]:
    """Load a checkpoint (a path, or the state read_checkpoint returned) into the model, optimiser and EMA;
    returns (step, elapsed seconds). A model that does not fit it is refused in one line."""
    from torch.distributed.checkpoint import state_dict as dcp_sd

    state = path if isinstance(path, dict) else read_checkpoint(path, meta)
    opts = dcp_sd.StateDictOptions(full_state_dict=True)
    try:
        dcp_sd.set_model_state_dict(model, state["model"], options=opts)
    except RuntimeError as e:  # an old checkpoint without meta: torch lists every mismatched tensor
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        first = next((line for line in lines if "size mismatch" in line or "Missing key" in line
                      or "Unexpected key" in line), lines[0] if lines else "")
        raise XdimoError(f"the checkpoint does not fit this model ({first[:200]}); resume with its settings "
                         "or use a new --run-dir") from None
    try:
        dcp_sd.set_optimizer_state_dict(model, opt, state["optimizer"], options=opts)
        ema.load(state["ema"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # the model fitted, its optimiser or EMA do not
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise XdimoError(f"the checkpoint's optimiser or EMA state does not fit this model ({first[:200]}); "
                         "resume with its settings or use a new --run-dir") from None
    return int(state["step"]), float(state["elapsed_s"])
