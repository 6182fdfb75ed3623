"""The job summary JH UniScheduler and LSF append to a job's -o file, parsed.

Real JH form (the user's job logs)::

    Sender: Unischeduler System <user@login01>
    Subject: Job 10061: </public/home/.../.jhjobs/1751286766.10061.1.shell> Done
    Job was executed on host(s) <64*gpu13>, in queue <gpu_6000ada>, as user <...>.
    Started at 2025-06-30 20:32:46
    Results reported at 2025-06-30 20:40:49
    Successfully completed.

LSF writes the same shape with ``Mon Jun 30 20:32:46 2025`` dates, more hosts on continuation lines
(``                <8*hostB>``) and ``Exited with exit code N.`` / ``TERM_OWNER`` lines for failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

_SUBJECT = re.compile(r"^Subject:\s*Job\s*<?(\d+)(?:\[\d+\])?>?\s*:", re.M)
_EXECUTED = re.compile(r"^Job was executed on host\(s\)\s*(.*)$", re.M)
_QUEUE = re.compile(r"in queue <([^>]+)>")
_HOST = re.compile(r"<(?:(\d+)\*)?([^<>\s,]+)>")
_CONTINUATION = re.compile(r"^\s+(<[^<>]+>\s*)+$")
_STARTED = re.compile(r"^Started at (.+?)\s*$", re.M)
_ENDED = re.compile(r"^(?:Results reported at|Terminated at) (.+?)\s*$", re.M)
_EXIT = re.compile(r"^Exited with exit code (\d+)\.?", re.M)
_SIGNAL = re.compile(r"^Exited with signal termination:\s*(\w+)", re.M)
_KILLED = re.compile(r"^TERM_(OWNER|ADMIN|FORCE_OWNER|FORCE_ADMIN|REQUEUE_OWNER)\b", re.M)
_MAX_MEM = re.compile(r"Max Memory\s*:\s*([\d.]+)\s*(KB|MB|GB|TB)", re.I)
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S %Z %Y", "%Y/%m/%d %H:%M:%S")
_MEM_GIB = {"KB": 1 / 1024**2, "MB": 1 / 1024, "GB": 1.0, "TB": 1024.0}


@dataclass
class JobSummary:
    job_id: str
    queue: str = ""
    hosts: list[tuple[str, int]] = field(default_factory=list)  # (host, slots) in the order given
    started: float | None = None  # seconds; naive site-local times read as UTC (only differences matter)
    ended: float | None = None
    exit_code: int | None = None
    state: str = ""  # DONE | FAILED | KILLED | "" (no verdict line found)
    max_mem_gib: float | None = None

    @property
    def slots(self) -> int:
        return sum(n for _, n in self.hosts)

    @property
    def wall_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, self.ended - self.started)


def parse_time(text: str) -> float | None:
    text = " ".join(text.split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


def _hosts(text: str, start: int) -> list[tuple[str, int]]:
    """Host tokens on the 'executed on' line (before ', in queue') and its continuation lines."""
    lines = text[start:].splitlines()
    first = lines[0].split("in queue")[0] if lines else ""
    found = [(h, int(n) if n else 1) for n, h in _HOST.findall(first)]
    for line in lines[1:]:
        if not _CONTINUATION.match(line):
            break
        found.extend((h, int(n) if n else 1) for n, h in _HOST.findall(line))
    return found


def parse_summaries(text: str) -> list[JobSummary]:
    """Every summary in ``text`` (a requeued job has several), oldest first."""
    starts = [m.start() for m in _SUBJECT.finditer(text)]
    out = []
    for i, begin in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        out.append(_parse_one(text[begin:end]))
    return out


def parse_summary(text: str) -> JobSummary | None:
    """The last summary in ``text``; None when there is none."""
    found = parse_summaries(text)
    return found[-1] if found else None


def _parse_one(block: str) -> JobSummary:
    subject = _SUBJECT.search(block)
    summary = JobSummary(job_id=subject.group(1) if subject else "")
    executed = _EXECUTED.search(block)
    if executed:
        queue = _QUEUE.search(executed.group(1))
        summary.queue = queue.group(1) if queue else ""
        summary.hosts = _hosts(block, executed.start(1))
    if m := _STARTED.search(block):
        summary.started = parse_time(m.group(1))
    ended = [parse_time(m.group(1)) for m in _ENDED.finditer(block)]
    ended = [t for t in ended if t is not None]
    summary.ended = max(ended) if ended else None
    if re.search(r"^Successfully completed\.", block, re.M):
        summary.state, summary.exit_code = "DONE", 0
    elif m := _EXIT.search(block):
        summary.exit_code = int(m.group(1))
        summary.state = "KILLED" if _KILLED.search(block) else "FAILED"
    elif _SIGNAL.search(block) or _KILLED.search(block):
        summary.state = "KILLED" if _KILLED.search(block) else "FAILED"
    if m := _MAX_MEM.search(block):
        summary.max_mem_gib = float(m.group(1)) * _MEM_GIB[m.group(2).upper()]
    return summary
