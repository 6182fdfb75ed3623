"""run.json and metrics.jsonl (ARCHITECTURE.md's contract), written by rank 0 only.

run.json describes the run once (rewritten atomically at each start, so a resumed run keeps one file);
metrics.jsonl gets one JSON object per log interval, appended and flushed at once so collect and
`xdimo-jobs logs` can read a run while it trains, and a killed run keeps every interval it finished.

metrics.jsonl is the source of truth. TensorBoard and Weights & Biases (offline only) are optional extra sinks,
off by default: each gets the same interval rows, renamed to the ``train/...`` tags users already chart
(TRACKER_TAGS), through the small Sink interface below, so no metric is computed twice.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xdimo.errors import XdimoError
from xdimo.rundir import METRICS, RUN_JSON

RUN_JSON_TMP = f"{RUN_JSON}.tmp"
JOB_ID_VARS = ("XDIMO_JOB_ID", "LSB_JOBID", "JH_JOBID", "SLURM_JOB_ID")


def job_id_from_env(env: dict[str, str] | None = None) -> str | None:
    """The scheduler's job id: ours first, then LSF, JH UniScheduler, Slurm."""
    env = os.environ if env is None else env
    return next((env[k] for k in JOB_ID_VARS if env.get(k)), None)


def git_rev(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: a non-finite float is written as null (and the loop stops on it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# metrics.jsonl key -> tracker tag. The first four are the names the user's W&B charts use (seed 003);
# the rest follow the same pattern. Null or missing values (mfu on CPU, moe_* on dense models) are left out.
TRACKER_TAGS = {
    "loss": "train/loss",
    "lr": "train/learning_rate",
    "grad_norm": "train/grad_norm",
    "samples_per_s": "train/samples_per_second",
    "steps_per_s": "train/steps_per_second",
    "tokens_per_s": "train/tokens_per_second",
    "mfu": "train/mfu",
    "mem_peak_gib": "train/mem_peak_gib",
    "moe_balance": "train/moe_balance",
}
TRACK_INSTALL = 'pip install -e ".[track]"'


def tracker_scalars(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of one metrics.jsonl row under their tracker tags."""
    out = {}
    for key, tag in TRACKER_TAGS.items():
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[tag] = float(value)
    return out


@dataclass(frozen=True)
class Trackers:
    """Which extra sinks to open (the --tensorboard / --wandb / --wandb-project flags)."""

    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "xdimo"

    @property
    def any(self) -> bool:
        return self.tensorboard or self.wandb


class Sink(Protocol):
    def log(self, scalars: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def _wandb_offline_env() -> None:
    # Never online, whatever the job's environment says: clusters' compute nodes often have no network, and
    # a run must not block on it. `wandb sync <dir>` uploads later from a login node.
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"


def check_trackers(trackers: Trackers) -> None:
    """Fail before training (one line, naming the extra) when an asked-for tracker is not installed."""
    wanted = [("--tensorboard", "torch.utils.tensorboard", trackers.tensorboard), ("--wandb", "wandb", trackers.wandb)]
    for flag, module, on in wanted:
        if not on:
            continue
        if module == "wandb":
            _wandb_offline_env()
        try:
            __import__(module)
        except ImportError as e:
            raise XdimoError(f"{flag} needs a package that is not installed ({e}); run: {TRACK_INSTALL}") from e


class TensorBoardSink:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = log_dir
        self._writer = SummaryWriter(str(log_dir))

    def log(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, step)
        self._writer.flush()  # readable while the run trains, like metrics.jsonl

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    def __init__(self, run_dir: Path, project: str, name: str, config: dict[str, Any]):
        _wandb_offline_env()
        import wandb

        # console="off": the job's stdout log already holds every line; wrapping it under torchrun only adds risk.
        self._run = wandb.init(mode="offline", dir=str(run_dir), project=project, name=name, config=config,
                               settings=wandb.Settings(console="off"))
        self.run_dir = Path(self._run.dir).parent  # <run-dir>/wandb/offline-run-<time>-<id>

    def log(self, scalars: dict[str, float], step: int) -> None:
        self._run.log(scalars, step=step)

    def close(self) -> None:
        import wandb

        self._run.finish()
        # finish() only asks wandb's service process to close the run's file; teardown waits until it has, so
        # the offline run is complete on disk when close returns (a kill right after cannot cut its tail).
        wandb.teardown()


def open_sinks(run_dir: Path, trackers: Trackers, info: dict[str, Any]) -> list[Sink]:
    sinks: list[Sink] = []
    if trackers.tensorboard:
        tb = TensorBoardSink(run_dir / "tensorboard")
        print(f"tensorboard: event files in {tb.log_dir}", flush=True)
        sinks.append(tb)
    if trackers.wandb:
        wb = WandbSink(run_dir, trackers.wandb_project, str(info.get("run_id") or run_dir.name), info)
        print(f"wandb (offline): {wb.run_dir}; upload later with `wandb sync {wb.run_dir}`", flush=True)
        sinks.append(wb)
    return sinks


def check_run_dir(run_dir: Path) -> None:
    """Make sure the run can create ``run_dir`` (or write in it), or raise one XdimoError line naming --run-dir
    (an existing file, /proc, a read-only folder): before a model is built, not at the first write, and without
    leaving anything behind (the folder itself is made by the first write)."""
    if (run_dir.exists() or run_dir.is_symlink()) and not run_dir.is_dir():
        raise XdimoError(f"--run-dir {run_dir} exists and is not a folder")
    folder = run_dir.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise XdimoError(f"--run-dir {run_dir}: {folder} is not a folder")
    try:  # os.access says yes to root on a read-only mount or in /proc: only a write tells (a random name: every
        # rank of every node checks, maybe in the same shared folder at once)
        os.rmdir(tempfile.mkdtemp(prefix=".xdimo-write-check-", dir=folder))
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        where = "write in it" if folder == run_dir.absolute() else f"create it in {folder}"
        raise XdimoError(f"--run-dir {run_dir}: cannot {where} ({why})") from None


@dataclass
class MetricsWriter:
    run_dir: Path
    enabled: bool = True  # False on ranks other than 0
    trackers: Trackers = field(default_factory=Trackers)
    sinks: list[Sink] = field(default_factory=list)
    _fd: int | None = field(default=None, init=False, repr=False)  # the run folder, open (see _folder)

    def __post_init__(self) -> None:
        if self.enabled:
            check_run_dir(self.run_dir)

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS

    def _folder(self) -> int:
        """The run folder, made and opened at the first write; every file is written relative to it, so a
        workspace moved (`mv`, same file system) while the run trains gets every later write in its new place, and
        the old path is not made again (README's `ln -s NEW OLD` stays possible). A folder removed meanwhile (or
        moved to another file system: a copy, then a removal) is made again where the run started, as before."""
        if self._fd is not None and not removed(self._fd):
            return self._fd
        if self._fd is not None:
            print(f"warning: the run folder {self.run_dir} was removed while the run trained; making it again",
                  file=sys.stderr, flush=True)
            self._close_folder()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY)
        return self._fd

    def _here(self) -> Path:
        """Where the run folder is now (it may have moved since it was opened), for messages."""
        return folder_now(self._fd, self.run_dir)

    def _close_folder(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def write_run(self, info: dict[str, Any]) -> None:
        """Replace run.json whole; a write that fails (a full disk or quota) leaves no half temp file taking the
        room, and is one XdimoError line in the system's words."""
        if not self.enabled:
            return
        data = (json.dumps({k: _finite(v) for k, v in info.items()}, indent=2) + "\n").encode()
        fd = None
        try:
            fd = self._folder()
            write_new(RUN_JSON_TMP, data, fd)
            os.replace(RUN_JSON_TMP, RUN_JSON, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError as e:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(RUN_JSON_TMP, dir_fd=fd)
            raise XdimoError(f"cannot write {self._here() / RUN_JSON}: {os_words(e)}") from None

    def open_trackers(self, info: dict[str, Any]) -> None:
        """Open the asked-for extra sinks (rank 0); W&B's config is run.json's content."""
        if self.enabled and self.trackers.any and not self.sinks:
            self.sinks = open_sinks(self.run_dir, self.trackers, {k: _finite(v) for k, v in info.items()})

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = json.dumps({k: _finite(v) for k, v in row.items()})
        try:
            append_whole(METRICS, (line + "\n").encode(), self._folder())
        except OSError as e:  # a full disk or quota: training on would only lose its figures and its checkpoint
            raise XdimoError(f"cannot append to {self._here() / METRICS}: {os_words(e)}") from None
        try:
            print(summary_line(row), flush=True)
        except OSError as e:  # the job's output file, on the same full disk as a rule
            raise XdimoError(f"cannot write the job's output: {os_words(e)}") from None
        self._to_sinks(tracker_scalars(row), int(row["step"]))

    def _to_sinks(self, scalars: dict[str, float], step: int) -> None:
        # An extra sink that fails is dropped with a warning: metrics.jsonl already holds the row, and a
        # dashboard hiccup must not cost a training run.
        for sink in list(self.sinks):
            try:
                sink.log(scalars, step)
            except Exception as e:  # any tracker failure, see above
                print(f"warning: {type(sink).__name__} failed ({e}); no longer logging to it", file=sys.stderr,
                      flush=True)
                self.sinks.remove(sink)

    def close(self) -> None:
        """Flush and close the extra sinks and the run folder (at the end, on a signal stop, and on errors); safe
        to repeat."""
        self._close_folder()
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            try:
                sink.close()
            except Exception as e:  # closing the others still matters
                print(f"warning: closing {type(sink).__name__} failed ({e})", file=sys.stderr, flush=True)


def os_words(e: OSError) -> str:
    """An OSError as the system says it ("No space left on device", "Disk quota exceeded")."""
    return e.strerror or str(e) or type(e).__name__


def folder_now(fd: int | None, started: Path) -> Path:
    """Where the folder open as ``fd`` is now (moved since it was opened?), for messages; ``started`` where unknown
    (not open, removed, or not Linux)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            now = os.readlink(f"/proc/self/fd/{fd}")
            if now.startswith("/") and not now.endswith(" (deleted)"):
                return Path(now)
    return started


def removed(fd: int) -> bool:
    """Whether the folder open as ``fd`` was removed (no name links to it any more; a stale NFS handle too)."""
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError:
        return True


def write_all(fd: int, data: bytes) -> None:
    rest = memoryview(data)
    while rest:
        rest = rest[os.write(fd, rest):]


def write_new(path: str | Path, data: bytes, dir_fd: int | None = None) -> None:
    """``path`` (relative to the folder open as ``dir_fd``, if given) made or emptied, then ``data`` written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666, dir_fd=dir_fd)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def append_whole(path: str | Path, data: bytes, dir_fd: int | None = None) -> None:
    """Append ``data`` to ``path`` (relative to the folder open as ``dir_fd``, if given) whole or not at all: a
    write that a full disk or quota cuts short is taken back, so the file never ends in half a line (the OSError
    is raised)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666, dir_fd=dir_fd)
    try:
        start = os.fstat(fd).st_size
        try:
            write_all(fd, data)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


def summary_line(row: dict[str, Any]) -> str:
    """One human line per interval: what the job's stdout shows."""
    norm = "-" if row["grad_norm"] is None else f"{row['grad_norm']:.3f}"  # None: a signal came before any log step
    parts = [f"step {row['step']}", f"loss {row['loss']:.4f}", f"grad_norm {norm}",
             f"lr {row['lr']:.2e}", f"{row['steps_per_s']:.2f} steps/s", f"{row['samples_per_s']:.2f} samples/s",
             f"{row['tflops_per_gpu']:.3g} TFLOP/s/gpu"]
    if row.get("mfu") is not None:
        parts.append(f"MFU {100 * row['mfu']:.1f}%")
    parts.append(f"mem peak {row['mem_peak_gib']:.2f} GiB")  # since the start (device.memory_gib), not per interval
    if row.get("moe_balance") is not None:
        parts.append(f"moe_balance {row['moe_balance']:.3f}")
    if row.get("warmup"):
        parts.append("(warm-up)")
    return " | ".join(parts)
