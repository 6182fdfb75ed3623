"""The user's existing runs: XDiMo / official Latte text logs and the scheduler's job summaries.

What their code prints (the logger writes to stderr, so these sit in the job's -e file ``<jobid>.error``)::

    [2025-06-30 20:33:10] (step=0000100/epoch=0003) Loss: 0.1234 | GradNorm: 0.5678 | Steps/Sec: 1.46 |
        Samples/s: 1.46 | Achieved: 79.71 TFLOPs/s | MFU: 87.50%                        (XDiMo, one line)
    [2025-06-30 20:33:10] (step=0000100/epoch=0003) Train Loss: 0.1234, Gradient Norm: 0.5678,
        Train Steps/Sec: 2.15                                                           (official Latte)

The user's notes (seeds 000-004) spell the same figures other ways, and a field in any of them is read:
``iter/s`` (= steps/s) and ``data/s`` (= samples/s), ``Achieved TFLOPs/s: 235``, ``token/s`` / ``Tokens/s``,
W&B-style ``train/loss``, ``train/grad_norm``, ``train/samples_per_second``, and a step's time (``每步耗时``,
``sec/step``: seconds per step, inverted). A count may carry a k/M/G suffix (``240K``).

Latte's logger colours the timestamp (``[\\x1b[34m2025-...\\x1b[0m]``): escapes are stripped. Stdout prints
(``Starting rank=0, local rank=0, seed=3407, world_size=4.``) and the scheduler's summary sit in the -o file
``<jobid>.output``; the two are paired by job id. The logged MFU is kept beside the corrected one because the
user's used the FP32 peak, counted multiply-adds and clamped at 100%.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from xdimo.collect.read.parse import latest_attempt
from xdimo.schedulers.lsf_parse import JobSummary, parse_summary

LOG_SUFFIXES = (".error", ".err", ".output", ".out", ".log", ".txt")
PAIR_SUFFIXES = (".error", ".err", ".output", ".out")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIX = re.compile(r"^\[(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:[,.]\d+)?\]\s?")
# Every integer read from log text has at most 12 digits: a longer one is garbage (and int() refuses past 4300
# digits), so it is not a number at all rather than its first digits or a crash.
_INT = r"(\d{1,12})(?!\d)"
_STEP = re.compile(rf"\(step={_INT}(?:/epoch={_INT})?\)")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf"
# key (an ASCII name, or a CJK one such as 每步耗时), value, an optional k/M/G multiplier glued to the value,
# and the unit that matters (% for MFU, ms for a step's time)
_KV = re.compile(rf"([\u4e00-\u9fff]+|[A-Za-z][A-Za-z /_-]*?)\s*[:=\uff1a]\s*({_NUMBER})((?-i:[kKMG])(?![A-Za-z]))?"
                 r"\s*(%|TFLOPs/s|TFLOPS|ms(?![A-Za-z]))?", re.I)
_MULTIPLIER = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
# Keys after _norm_key (lower case, "train/", "train_" or "train " dropped), every spelling the seeds use.
_KEYS = {
    "loss": "loss",
    "gradnorm": "grad_norm", "gradient norm": "grad_norm", "grad norm": "grad_norm", "grad_norm": "grad_norm",
    "gradient_norm": "grad_norm",
    "steps/sec": "steps_per_s", "steps/s": "steps_per_s", "step/s": "steps_per_s", "steps_per_s": "steps_per_s",
    "steps_per_sec": "steps_per_s", "steps_per_second": "steps_per_s",
    "iter/s": "steps_per_s", "iters/s": "steps_per_s", "iter/sec": "steps_per_s", "it/s": "steps_per_s",
    "samples/s": "samples_per_s", "samples/sec": "samples_per_s", "sample/s": "samples_per_s",
    "samples_per_s": "samples_per_s", "samples_per_sec": "samples_per_s", "samples_per_second": "samples_per_s",
    "data/s": "samples_per_s",
    "tokens/s": "tokens_per_s", "token/s": "tokens_per_s", "tokens/sec": "tokens_per_s",
    "tokens_per_s": "tokens_per_s", "tokens_per_sec": "tokens_per_s", "tokens_per_second": "tokens_per_s",
    "achieved": "achieved_tflops", "achieved tflops/s": "achieved_tflops", "achieved tflops": "achieved_tflops",
    "tflops/s": "achieved_tflops", "tflops": "achieved_tflops",
    "mfu": "mfu",
    # seconds per step: read as steps/s = 1 / value (a Steps/Sec on the same line wins)
    "每步耗时": "sec_per_step", "sec/step": "sec_per_step", "s/step": "sec_per_step", "seconds/step": "sec_per_step",
    "s/it": "sec_per_step", "s/iter": "sec_per_step", "step time": "sec_per_step", "time/step": "sec_per_step",
    "time per step": "sec_per_step",
}
# Fields a step line may carry that no table uses: known, so never reported as unread.
_IGNORED = {"lr", "learning rate", "learning_rate", "epoch", "epoch_loss", "epoch loss", "step", "学习率"}
# What a line must mention to be worth a look for metric fields without a (step=N) prefix.
_METRIC_HINT = re.compile(r"loss|/s|/sec|per_s|mfu|tflops|norm|step|iter|耗时", re.I)
SPEED_SPELLINGS = "Steps/Sec, Steps/s, iter/s or a time per step"
_WORLD = re.compile(rf"world_size\s*[=:]\s*{_INT}")
_RANK = re.compile(rf"Starting rank\s*=\s*{_INT}")
_MODEL = re.compile(r"Latte-(T|S|B|L|XL)[-/](\d)\b")
_MOE_NAME = re.compile(rf"(?<![A-Za-z0-9]){_INT}E{_INT}A(?![A-Za-z0-9])")
_EXPERTS = re.compile(rf"num_experts\s*[=:]\s*{_INT}")
_TOPK = re.compile(rf"(?:top_k|topk|moe_top_k)\s*[=:]\s*{_INT}")
_MOE_HINT = re.compile(r"\bMoE\b|moe", re.I)
_PARAMS = re.compile(r"Model Parameters\s*:\s*(\d[\d,]{0,19})(?![\d,])")
_LOCAL_BATCH = re.compile(rf"local_batch_size\s*[=:]\s*{_INT}")
_GLOBAL_BATCH = re.compile(rf"global_batch_size\s*[=:]\s*{_INT}")
_CONFIG_BS = re.compile(rf"_bs{_INT}\.ya?ml\b")
_MIXED = re.compile(r"(?:mixed_precision|use_amp|amp)\s*[=:]\s*(True|False|true|false|1|0|bf16|fp16|no)")
_JOB_IN_NAME = re.compile(r"^(\d+)(?=\.(?:error|err|output|out)$)")  # the scheduler's %J.error / %J.output


@dataclass
class Interval:
    step: int
    ts: float | None = None
    loss: float | None = None
    grad_norm: float | None = None
    steps_per_s: float | None = None
    samples_per_s: float | None = None
    achieved_tflops: float | None = None
    mfu: float | None = None  # a fraction (the log's percent / 100)
    tokens_per_s: float | None = None
    after_restart: bool = False  # the first interval a resumed attempt logged: start-up again, so warm-up


@dataclass
class LogFacts:
    """What one job's log files say, before any inference."""

    key: str  # job id, or the file's path when it has none
    job_id: str = ""
    paths: list[str] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    world_size: int | None = None
    ranks: int = 0  # distinct "Starting rank=N" prints
    model: str | None = None
    moe: str | None = None
    moe_hint: bool = False
    params_logged: int | None = None
    local_batch: int | None = None
    global_batch: int | None = None
    mixed_precision: bool | None = None
    first_ts: float | None = None
    last_ts: float | None = None
    summary: JobSummary | None = None
    relogged: int = 0  # step lines of abandoned attempts dropped (a log resumed from a checkpoint)
    unread_fields: list[str] = field(default_factory=list)  # step-line fields no key matched, first spellings
    stray_lines: int = 0  # lines with metric fields but no (step=N) prefix, so not read
    stray_example: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogFacts:
        d = dict(d)
        d["intervals"] = [Interval(**i) for i in d.get("intervals") or ()]
        if d.get("summary"):
            d["summary"] = JobSummary.from_dict(d["summary"])
        return cls(**d)


def _float(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _ts(text: str) -> float | None:
    """The prefix's time, or None for an impossible one (month 13, 99:99:99): that line just has no time."""
    try:
        when = datetime.strptime(text.replace("T", " "), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc).timestamp()  # site-local time; only differences matter


def _norm_key(key: str) -> str:
    key = " ".join(key.lower().split())
    for prefix in ("train/", "train_", "train "):
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix):]
    return key


def _fields(message: str) -> tuple[dict[str, float | None], list[str]]:
    """The figures ``message`` carries, by Interval attribute, and the field names no key matched."""
    out: dict[str, float | None] = {}
    unread: list[str] = []
    for key, value, mult, unit in _KV.findall(message):
        norm = _norm_key(key)
        attr = _KEYS.get(norm)
        if attr is None:
            if norm not in _IGNORED:
                unread.append(key.strip())
            continue
        v = _float(value)
        if v is not None:
            v *= _MULTIPLIER[mult.lower()]
        unit = unit.lower()
        if attr == "mfu" and v is not None and (unit == "%" or v > 1):
            # A logged MFU with a % sign is a percentage. Without one it is a percentage when > 1 (mfu=32.0 is
            # 32%, not 3200%) and a fraction when <= 1 (mfu=0.32 is 32%): no run reaches 100x its peak.
            v /= 100
        if attr == "sec_per_step":
            if v is not None and unit == "ms":
                v /= 1000
            attr, v = "steps_from_time", (1 / v if v else None)
        out[attr] = v
    if "steps_from_time" in out:
        t = out.pop("steps_from_time")
        if out.get("steps_per_s") is None:
            out["steps_per_s"] = t
    return out, unread


def _interval(message: str, ts: float | None) -> tuple[Interval | None, list[str]]:
    m = _STEP.search(message)
    if not m:
        return None, []
    figures, unread = _fields(message[m.end():])
    return Interval(step=int(m.group(1)), ts=ts, **figures), unread


def _step(iv: Interval) -> int:
    return iv.step


def _first_int(pattern: re.Pattern[str], text: str) -> int | None:
    m = pattern.search(text)
    return int(m.group(1).replace(",", "")) if m else None


def parse_log_text(text: str, facts: LogFacts) -> None:
    """Add what ``text`` (one file) says to ``facts``."""
    text = _ANSI.sub("", text)
    ranks: set[int] = set()
    intervals: list[Interval] = []
    for raw in text.splitlines():
        ts = None
        line = raw
        if m := _PREFIX.match(raw):
            ts = _ts(m.group(1))
            line = raw[m.end():]
        if ts is not None:
            facts.first_ts = ts if facts.first_ts is None else min(facts.first_ts, ts)
            facts.last_ts = ts if facts.last_ts is None else max(facts.last_ts, ts)
        if "step=" in line:
            iv, unread = _interval(line, ts)
            if iv is not None:
                intervals.append(iv)
                for k in unread:
                    if k not in facts.unread_fields and len(facts.unread_fields) < 8:
                        facts.unread_fields.append(k)
                continue
        if _METRIC_HINT.search(line) and any(_norm_key(k) in _KEYS for k, *_ in _KV.findall(line)):
            facts.stray_lines += 1
            facts.stray_example = facts.stray_example or line.strip()[:120]
        if "world_size" in line and (w := _first_int(_WORLD, line)):
            facts.world_size = max(facts.world_size or 0, w)
        if (r := _first_int(_RANK, line)) is not None:
            ranks.add(r)
    facts.ranks = max(facts.ranks, len(ranks))
    # per file: a job's -o and -e files are no two attempts. The rule is metrics.jsonl's (parse.latest_attempt).
    attempt = latest_attempt(intervals, step=_step)
    for iv, resumed in zip(attempt.items, attempt.resumed, strict=True):
        iv.after_restart = resumed
    facts.intervals += attempt.items
    facts.relogged += attempt.dropped
    _parse_setup(text, facts)
    try:
        summary = parse_summary(text)
    except (ValueError, OverflowError):  # a garbled summary (a 5000-digit exit code) is no summary, not a crash
        summary = None
    if summary is not None:
        facts.summary = summary
        facts.job_id = facts.job_id or summary.job_id


def _parse_setup(text: str, facts: LogFacts) -> None:
    """Model, MoE layout, batch and precision from whatever setup lines the run printed."""
    if facts.model is None and (m := _MODEL.search(text)):
        facts.model = f"Latte-{m.group(1)}/{m.group(2)}"
    if facts.moe is None:
        experts, topk = _first_int(_EXPERTS, text), _first_int(_TOPK, text)
        if m := _MOE_NAME.search(text):
            facts.moe = f"{int(m.group(1))}E{int(m.group(2))}A"
        elif experts and topk:
            facts.moe = f"{experts}E{topk}A"
    facts.moe_hint = facts.moe_hint or bool(_MOE_HINT.search(text))
    facts.params_logged = facts.params_logged or _first_int(_PARAMS, text)
    facts.local_batch = facts.local_batch or _first_int(_LOCAL_BATCH, text) or _first_int(_CONFIG_BS, text)
    facts.global_batch = facts.global_batch or _first_int(_GLOBAL_BATCH, text)
    if facts.mixed_precision is None and (m := _MIXED.search(text)):
        facts.mixed_precision = m.group(1).lower() in ("true", "1", "bf16", "fp16")


# -- files and folders -------------------------------------------------------------------------------


def job_id_from_name(path: Path) -> str:
    m = _JOB_IN_NAME.search(path.name)
    return m.group(1) if m else ""


def find_log_files(paths: Iterable[Path]) -> list[Path]:
    """The log files under each path (a file is taken as given; a folder is walked for log suffixes)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in LOG_SUFFIXES
                              and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        elif p.is_file():
            out.append(p)
            # <jobid>.error given alone: its <jobid>.output (prints + the summary) is read with it
            if job_id_from_name(p):
                out.extend(p.with_suffix(s) for s in PAIR_SUFFIXES if s != p.suffix and p.with_suffix(s).is_file())
    seen: set[Path] = set()
    unique = []
    for f in out:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique


def group_by_job(files: list[Path], peek: dict[Path, str] | None = None) -> dict[str, list[Path]]:
    """``<jobid>.error`` with ``<jobid>.output``: files sharing a job id form one run; others stand alone.

    ``peek`` maps a file to the job id its own summary names, for files whose name carries none.
    """
    groups: dict[str, list[Path]] = {}
    for f in files:
        job = job_id_from_name(f) or (peek or {}).get(f, "")
        key = f"job:{job}" if job else f"file:{f.resolve()}"
        groups.setdefault(key, []).append(f)
    return groups


def read_facts(key: str, files: list[Path]) -> LogFacts:
    job = key[4:] if key.startswith("job:") else ""
    facts = LogFacts(key=key, job_id=job, paths=[str(f) for f in files])
    for f in sorted(files, key=lambda p: (p.suffix not in (".output", ".out"), str(p))):
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        parse_log_text(text, facts)
    # A job's -o and -e files may both log a step (ranks printing to both): a step is one interval.
    by_step: dict[int, Interval] = {}
    for iv in facts.intervals:
        by_step.setdefault(iv.step, iv)
    facts.intervals = sorted(by_step.values(), key=lambda iv: iv.step)
    return facts


def is_run(facts: LogFacts) -> bool:
    """A file set is a run when it logged training steps or the scheduler summarised it."""
    return bool(facts.intervals) or facts.summary is not None
