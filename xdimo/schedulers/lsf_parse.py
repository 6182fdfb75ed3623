"""Pure parsers for the LSF family (IBM LSF and JH UniScheduler speak one dialect): text in, dataclasses out.

Formats and where each one was seen: /work/shared/reference/scheduler-formats.md. Where a format was only
inferred, the parser is tolerant (unknown lines are skipped, never fatal) so a site's real output can be added
as a fixture without code changes.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from fnmatch import fnmatchcase
from typing import Any

from xdimo.schedulers.base import HostRow as HostRow  # moved to base; re-exported for the parsers' users
from xdimo.schedulers.marker import KILL_EXIT_CODES as KILL_EXIT_CODES  # the one exit-code rule (marker.py)
from xdimo.schedulers.marker import parse_marker as parse_marker  # re-exported: `P.parse_marker` callers
from xdimo.states import JobState

# -- states -------------------------------------------------------------------------------------------------

STATE_MAP: dict[str, JobState] = {
    "PEND": JobState.PENDING,
    "WAIT": JobState.PENDING,  # LSF chunk job waiting for its chunk
    "PROV": JobState.PENDING,  # LSF: host being provisioned
    "RUN": JobState.RUNNING,
    "PSUSP": JobState.SUSPENDED,  # suspended while pending: not a failure
    "USUSP": JobState.SUSPENDED,
    "SSUSP": JobState.SUSPENDED,
    "DONE": JobState.DONE,
    "EXIT": JobState.FAILED,  # refined to KILLED from the job summary where it says so
    "UNKWN": JobState.UNKNOWN,  # sbatchd unreachable: not terminal, ask again later (nextflow #5666)
    "UNKNOWN": JobState.UNKNOWN,
    "ZOMBI": JobState.KILLED,  # killed while its host was unreachable
}
# States in which a job holds its slots and GPUs (suspended jobs keep their allocation).
HOLDING = frozenset({"RUN", "USUSP", "SSUSP", "UNKWN", "UNKNOWN"})
# Final states: the job left the run queue; only its summary tells the exit code.
FINAL = frozenset({"DONE", "EXIT", "ZOMBI"})


def map_state(stat: str) -> JobState:
    """Scheduler STAT -> JobState; an unheard-of STAT is UNKNOWN (not terminal), never a guess at failure."""
    return STATE_MAP.get(stat.strip().upper(), JobState.UNKNOWN)


# -- jsub / bsub answer -------------------------------------------------------------------------------------

# The success text was never seen verbatim (scheduler-formats.md): the LSF shape `Job <12345> is submitted to
# queue <q>.`, read with any spacing (`Job  <1001>   is`, `Job<1001>is`, `Job < 1001 >`) and a CRLF end.
JOB_ID_RE = re.compile(r"\bJob\s*<\s*(\d+)\s*>")
SUBMITTED_RE = re.compile(r"\bJob\s*<\s*(\d+)\s*>\s*is\s+submitted", re.IGNORECASE)
# A job id quoted in a refusal (`Job <77> is not found. Job not submitted.`, a dependency `done(Job<77>)`) is
# not the new job's: without the "is submitted" shape, a bare `Job <N>` counts only in an answer without these.
NOT_OURS_RE = re.compile(r"not\s+submitted|not\s+found|\w\(\s*Job\s*<", re.IGNORECASE)
REPEATED_RE = re.compile(r"Repeated argument .*? ignored\.?")
PROBLEM_CHARS = 200  # a refusal quoted in a one-line error
# JH's site limit (real, from the user), and LSF's wording for the same limit (MAX_PEND_JOBS).
PENDING_LIMIT_RE = re.compile(r"待提交任务数达上限|Pending job threshold reached", re.IGNORECASE)
QUEUE_RE = re.compile(r"\bqueue\s*<\s*([^<>\s]+)\s*>")


@dataclass(frozen=True)
class SubmitAnswer:
    job_id: str | None
    queue: str | None = None
    warnings: tuple[str, ...] = ()
    pending_limit: bool = False
    text: str = ""

    @property
    def first_problem(self) -> str:
        """The line most likely to explain a refusal, for a one-line error."""
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        lines = [ln for ln in lines if not REPEATED_RE.search(ln)] or lines
        return lines[0][:PROBLEM_CHARS] if lines else "(no output)"


RETRY_PROMISE_RE = re.compile(r"\s*Retrying in \d+ seconds?\.*", re.IGNORECASE)


def pending_limit_words(text: str) -> str:
    """The scheduler's own words for its pending limit, once, without the retry bsub promises (LSB_NTRIES=1
    ends it; nothing retries): `Pending job threshold reached.` / `待提交任务数达上限`."""
    m = PENDING_LIMIT_RE.search(text)
    line = next((ln for ln in text.splitlines() if PENDING_LIMIT_RE.search(ln)), m.group(0) if m else "")
    return RETRY_PROMISE_RE.sub("", line).strip()[:PROBLEM_CHARS] or "pending limit reached"


def parse_submit(text: str) -> SubmitAnswer:
    """``Job <12345> is submitted to queue <q>.`` anywhere in stdout+stderr; never 'the first number'."""
    m = SUBMITTED_RE.search(text) or (None if NOT_OURS_RE.search(text) else JOB_ID_RE.search(text))
    q = QUEUE_RE.search(text)
    warnings = tuple(w.group(0) for w in REPEATED_RE.finditer(text))
    limited = bool(PENDING_LIMIT_RE.search(text))
    return SubmitAnswer(job_id=m.group(1) if m and not limited else None, queue=q.group(1) if q else None,
                        warnings=warnings, pending_limit=limited, text=text)


# -- hosts and slots ----------------------------------------------------------------------------------------

SLOT_RE = re.compile(r"^(\d{1,12})\*(.+)$")


@dataclass(frozen=True)
class HostSlots:
    host: str
    slots: int


def parse_exec_host(text: str) -> tuple[HostSlots, ...]:
    """``64*gpu13:64*gpu14`` / ``4*hostB 4*hostC`` / ``host1 host1 host2`` -> hosts with slot counts.

    Repeated bare names add one slot each (old LSF lists one name per slot); ``-`` (a pending job) is none.
    """
    counts: dict[str, int] = {}
    for token in re.split(r"[\s:,]+", text.strip()):
        if not token or token == "-":
            continue
        m = SLOT_RE.match(token)
        host, n = (m.group(2), int(m.group(1))) if m else (token, 1)
        counts[host] = counts.get(host, 0) + n
    return tuple(HostSlots(h, n) for h, n in counts.items())


def gpus_from_slots(slots: int, cpu_per_gpu: int) -> int:
    """GPUs a job holds, judged from its CPU slots. The site rule is slots = cpu_per_gpu x GPUs; a job
    that asked for fewer CPUs still holds at least one GPU, so round up (over-counting keeps us from
    submitting into cards that are not free)."""
    return math.ceil(slots / cpu_per_gpu) if slots > 0 else 0


# -- jjobs / bjobs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    job_id: str
    stat: str
    queue: str = ""
    user: str = ""
    exec_hosts: tuple[HostSlots, ...] = ()
    name: str = ""
    gpus: int | None = None  # from a gpu field of `-o` where the site has one; None = judge from slots
    name_truncated: bool = False  # default format without -w cuts long names to `*tail`
    started_at: float | None = None  # `-o start_time` (parse_start_time); None: not started, or not asked

    @property
    def state(self) -> JobState:
        return map_state(self.stat)

    @property
    def slots(self) -> int:
        return sum(h.slots for h in self.exec_hosts)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h.host for h in self.exec_hosts)


@dataclass(frozen=True)
class JobsAnswer:
    rows: tuple[JobRow, ...] = ()
    not_found: frozenset[str] = frozenset()  # ids (or a `-J` name) the scheduler said it does not know
    no_jobs: bool = False  # `No unfinished job found` / `No job found`
    # A header and nothing else: UniScheduler's answer for a job (or a name) it no longer lists (dpdispatcher),
    # which a loaded scheduler has also given for live jobs. For one job or one name (-J) it is taken as "none"
    # (a poll holds the run for poll.LOST_AFTER_S first); for `-u all`, where it would free every card, pools()
    # asks `jhosts -w` to confirm it.
    header_only: bool = False
    # Lines that are neither a row, a header nor a notice: an answer we do not fully understand, which can
    # hide jobs (so it never proves one gone, and never counts as "no cards in use").
    unparsed: tuple[str, ...] = ()

    def by_id(self) -> dict[str, JobRow]:
        return {r.job_id: r for r in self.rows}

    @property
    def complete(self) -> bool:
        """The answer is a whole listing of what was asked: a job it does not list is gone.

        Rows, or ``No ... job found``, with no per-id notice. A header alone is not one: it names no job
        (says_nothing), and a loaded UniScheduler answers so for jobs it still runs. LSF answers a list of ids
        with a row for each job it knows and one ``Job <N> is not found`` line for each it does not (stderr,
        exit 255): once an answer names ids as not found, an id it neither lists nor names was not answered at
        all (a cut-off or partial answer); it is not gone."""
        return bool(self.rows or self.no_jobs) and not self.not_found and not self.unparsed

    @property
    def says_nothing(self) -> bool:
        """No row, no notice, no unreadable line: a header alone (or nothing). It names no job, so it proves no
        job gone: a loaded UniScheduler answers so for jobs it still runs (a poll takes it as no answer)."""
        return not (self.rows or self.not_found or self.no_jobs or self.unparsed)

    def gone(self, job_id: str) -> bool:
        """The scheduler no longer knows ``job_id``: it says so, or its whole listing leaves the job out."""
        return job_id in self.not_found or self.complete


# `Job <123> is not found` for an id; LSF says the same of a `-J` name that matches no job.
# Spacing as loose as the submit answer's (`Job<123>is not found`, `Job < 123 > is  not found`); the id or
# name inside the brackets comes back without its blanks.
NOT_FOUND_RE = re.compile(r"\bJob\s*<[ \t]*([^<>\s](?:[^<>\n]*[^<>\s])?)[ \t]*>\s*is\s+not\s+found")
NO_JOBS_RE = re.compile(r"\bNo\s+(?:unfinished\s+|matching\s+)?jobs?\s+found", re.IGNORECASE)
# SUBMIT_TIME in the default format: `Oct 22 09:22`, sometimes with seconds and/or a year.
SUBMIT_TIME_RE = re.compile(r"\s([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,2}:\d{2}(?::\d{2})?)(?:\s+(\d{4}))?")
HEADER_START = "JOBID"
NO_EXEC_HOST = frozenset({"PEND", "PSUSP", "WAIT", "PROV"})
HOST_TOKEN_RE = re.compile(r"^(\d+\*)?\*?[A-Za-z0-9][\w.\-]*(:(\d+\*)?[\w.\-]+)*$")


def _notices(text: str) -> tuple[frozenset[str], bool]:
    return frozenset(NOT_FOUND_RE.findall(text)), bool(NO_JOBS_RE.search(text))


def with_stderr(answer: JobsAnswer, stderr: str) -> tuple[JobsAnswer, tuple[str, ...]]:
    """``answer`` (read from stdout alone) with the notices ``stderr`` adds (`Job <N> is not found`, `No
    unfinished job found`), and the stderr lines that are none of them (a site wrapper's banner, a warning):
    text there is never a row, so it neither adds nor hides a job."""
    not_found, no_jobs = _notices(stderr)
    other = tuple(line.strip() for line in stderr.splitlines()
                  if line.strip() and not (NOT_FOUND_RE.search(line) or NO_JOBS_RE.search(line)))
    merged = replace(answer, not_found=answer.not_found | not_found, no_jobs=answer.no_jobs or no_jobs)
    return merged, other


def parse_jobs_default(text: str) -> JobsAnswer:
    """The default (or ``-w``) table: ``JOBID USER STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME``
    (JH adds a queue-position column).

    Whitespace splitting is only safe for the first five columns. The tail is anchored on the LAST
    submit-time match; JOB_NAME is what lies between EXEC_HOST and it (it may contain spaces). A pending job
    has no EXEC_HOST. A line that starts with blanks continues the previous job's EXEC_HOST (LSF wraps one
    host per line).
    """
    not_found, no_jobs = _notices(text)
    rows: list[dict] = []
    unparsed: list[str] = []
    header = False
    for line in text.splitlines():
        if not line.strip() or NOT_FOUND_RE.search(line) or NO_JOBS_RE.search(line):
            continue
        if line.lstrip().startswith(HEADER_START):
            header = True
            continue
        if line[0].isspace():
            if rows and all(HOST_TOKEN_RE.match(t) for t in line.split()):
                rows[-1]["exec"] += " " + line.strip()
            continue
        row = _default_row(line)
        if row is not None:
            rows.append(row)
        elif header:  # inside the table; text before any header is an error message, judged by the caller
            unparsed.append(line.strip())
    built = tuple(_row_from(r) for r in rows)
    return JobsAnswer(built, not_found, no_jobs, header_only=header and not built and not unparsed,
                      unparsed=tuple(unparsed))


def _default_row(line: str) -> dict | None:
    words = line.split()
    if len(words) < 5 or not re.fullmatch(r"\d+(\[\d+\])?", words[0]):
        return None
    job_id, user, stat, queue = words[:4]
    # columns after FROM_HOST, up to the submit time (if one is there)
    rest = line.split(None, 5)[5] if len(words) > 5 else ""
    times = list(SUBMIT_TIME_RE.finditer(" " + rest))
    middle = (" " + rest)[: times[-1].start()] if times else rest
    tail = middle.split()
    exec_host = ""
    if stat.upper() not in NO_EXEC_HOST and len(tail) >= 2 and HOST_TOKEN_RE.match(tail[0]):
        exec_host, tail = tail[0], tail[1:]
    name = " ".join(tail)
    return {"id": job_id, "user": user, "stat": stat, "queue": queue, "exec": exec_host, "name": name}


def _row_from(r: dict) -> JobRow:
    name = r["name"]
    return JobRow(job_id=r["id"], stat=r["stat"].upper(), queue=r["queue"], user=r["user"],
                  exec_hosts=parse_exec_host(r["exec"]), name=name, gpus=r.get("gpus"),
                  name_truncated=name.startswith("*"), started_at=r.get("start"))


# `-o` field names as the tools print them in the header, mapped to our row keys.
O_FIELDS = {"JOBID": "id", "USER": "user", "STAT": "stat", "QUEUE": "queue", "EXEC_HOST": "exec",
            "JOB_NAME": "name", "GPU_NUM": "gpus", "NGPUS": "gpus", "GPUS": "gpus", "START_TIME": "start"}


def parse_jobs_delimited(text: str, delimiter: str = "|") -> JobsAnswer:
    """``-o "jobid stat queue exec_host job_name delimiter='|'"``: a header line of field names, then values.

    The header decides the order. JOB_NAME is split off last when it is the last field, so a name that
    contains the delimiter survives. ``-`` means empty (a pending job's EXEC_HOST).
    """
    not_found, no_jobs = _notices(text)
    keys: list[str] | None = None
    rows: list[JobRow] = []
    unparsed: list[str] = []
    for line in text.splitlines():
        if not line.strip() or ("found" in line and (NOT_FOUND_RE.search(line) or NO_JOBS_RE.search(line))):
            continue
        if keys is None:
            fields = [f.strip().upper() for f in line.strip().split(delimiter)]
            if HEADER_START in fields:
                keys = [O_FIELDS.get(f, f.lower()) for f in fields]
            continue  # values before a header: not a shape we know (the caller falls back to the default table)
        row = _delimited_row(keys, line.split(delimiter, len(keys) - 1))
        if row is not None:
            rows.append(row)
        else:
            unparsed.append(line.strip())
    return JobsAnswer(tuple(rows), not_found, no_jobs, header_only=keys is not None and not rows and not unparsed,
                      unparsed=tuple(unparsed))


JOB_ID_FULL_RE = re.compile(r"\d+(\[\d+\])?")


def _delimited_row(keys: list[str], values: list[str]) -> JobRow | None:
    got = {k: v.strip() for k, v in zip(keys, values, strict=False)}
    if not JOB_ID_FULL_RE.fullmatch(got.get("id", "")):
        return None
    gpus_text = got.get("gpus", "")
    gpus = _int(gpus_text)
    r = {"id": got["id"], "user": got.get("user", ""), "stat": got.get("stat", ""),
         "queue": got.get("queue", ""), "exec": "" if got.get("exec", "-") == "-" else got.get("exec", ""),
         "name": got.get("name", ""), "gpus": gpus, "start": parse_start_time(got.get("start", ""))}
    return _row_from(r)


# `-o start_time`: LSF 10.1 prints ``Sep 19 14:59:12 2026`` (public scripts parse it so); JH documents no `-o`
# field list, so the forms its other answers use read too: its summary's ``2025-06-30 20:32:46`` and its
# table's ``Mar 30 15:40`` (no year). ``-`` (not started) and anything else: None.
YEARLESS_FORMATS = ("%b %d %H:%M:%S", "%b %d %H:%M")


def parse_start_time(text: str, now: float | None = None) -> float | None:
    """A job's start as `-o start_time` prints it -> epoch seconds (the cluster's local time, as _parse_time).
    A date without a year is the latest such moment not after ``now`` (a day's slack for the zone): next year's
    just after New Year where the cluster's zone is ahead, else this year's, else the last year that has it
    (29 February: up to eight years back)."""
    raw = " ".join(text.split())
    if not raw or raw == "-":
        return None
    full = _parse_time(raw)
    if full is not None:
        return full
    now = time.time() if now is None else now
    year = time.localtime(now).tm_year
    for candidate in range(year + 1, year - 9, -1):  # latest first
        at = _yearless_in(raw, candidate)
        if at is not None and at <= now + 86400:
            return at
    return None


def _yearless_in(raw: str, year: int) -> float | None:
    """``raw`` (a yearless start) in ``year``; None where no format reads it or that year has no such date."""
    for fmt in YEARLESS_FORMATS:
        try:
            return time.mktime(time.strptime(f"{year} {raw}", f"%Y {fmt}"))
        except (ValueError, OverflowError):
            continue
    return None


def jobs_o_format(fields: Iterable[str], delimiter: str = "|") -> str:
    """The ``-o`` argument for the fields we read."""
    return " ".join(fields) + f" delimiter='{delimiter}'"


# -- the job summary appended to the -o file ----------------------------------------------------------------
#
# One parser for both readers: the JH/LSF backends settle a job that left the queue from it (state, exit
# code), and collect's legacy path reads the user's old -o files with it (queue, hosts x slots, wall time,
# memory). Real JH form (the user's job logs)::
#
#     Sender: Unischeduler System <user@login01>
#     Subject: Job 10061: </public/home/.../.jhjobs/1751286766.10061.1.shell> Done
#     Job was executed on host(s) <64*gpu13>, in queue <gpu_6000ada>, as user <...>.
#     Started at 2025-06-30 20:32:46
#     Results reported at 2025-06-30 20:40:49
#     Successfully completed.
#
# LSF writes the same shape with ``Mon Jun 30 20:32:46 2025`` dates, more hosts on continuation lines
# (``                <8*hostB>``), ``TERM_OWNER: ...`` lines for kills, and the job's own output after
# ``The output (if any) follows:``.

# A summary starts at its mail header: Sender + Subject, or either alone (a header cut by a mail filter).
SUMMARY_START_RE = re.compile(r"^(?:Sender: [^\n]*\n)?Subject:\s*Job\b|^Sender: ", re.MULTILINE)
SUBJECT_RE = re.compile(r"^Subject:\s*Job\s*<?(\d+)(?:\[\d+\])?>?\s*:", re.MULTILINE)
EXEC_ON_RE = re.compile(r"^Job was executed on host\(s\)(.*)$", re.MULTILINE)
IN_QUEUE_RE = re.compile(r"in queue <([^>]+)>")
HOSTS_IN_RE = re.compile(r"<([^<>]+)>")
CONT_HOSTS_RE = re.compile(r"^(?:[ \t]+<[^<>]+>)+[ \t]*$")
# Verdict lines sit at the start of a line: the echoed script ("Your job looked like:") may quote them.
DONE_RE = re.compile(r"^[ \t]*Successfully completed\.", re.MULTILINE)
EXIT_CODE_RE = re.compile(r"^[ \t]*Exited with exit code (\d{1,12})\b", re.MULTILINE)
SIGNAL_RE = re.compile(r"^[ \t]*Exited with signal termination: ([\w ]+?)\.?\s*$", re.MULTILINE)
TERM_RE = re.compile(r"^[ \t]*(TERM_[A-Z_]+)\b:?[ \t]*(.*)$", re.MULTILINE)
STARTED_RE = re.compile(r"^Started at (.+?)\s*$", re.MULTILINE)
ENDED_RE = re.compile(r"^(?:Results reported at|Terminated at) (.+?)\s*$", re.MULTILINE)
CPU_TIME_RE = re.compile(r"CPU time\s*:\s*([\d.]+)\s*sec")
MAX_MEM_RE = re.compile(r"Max Memory\s*:\s*([\d.]+)\s*([KMGT]?B)\b", re.IGNORECASE)
OUTPUT_FOLLOWS = "The output (if any) follows:"
SIGNALS = {"hangup": 1, "interrupt": 2, "quit": 3, "killed": 9, "terminated": 15, "kill": 9, "term": 15}
KILLED_TERMS = frozenset({"TERM_OWNER", "TERM_ADMIN", "TERM_FORCE_OWNER", "TERM_FORCE_ADMIN",
                          "TERM_REQUEUE_OWNER", "TERM_REQUEUE_ADMIN"})
MEM_GIB = {"B": 1 / 2**30, "KB": 1 / 2**20, "MB": 1 / 2**10, "GB": 1.0, "TB": 2**10}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%a %b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S %Z %Y", "%b %d %H:%M:%S %Y",
                "%Y/%m/%d %H:%M:%S")


@dataclass(frozen=True)
class JobSummary:
    state: JobState | None = None  # None: no verdict line (yet): the summary settles nothing
    exit_code: int | None = None
    job_id: str = ""
    hosts: tuple[HostSlots, ...] = ()  # in the order given, repeated hosts merged
    queue: str = ""
    # Epoch seconds: the cluster's naive local times read in this machine's zone (_parse_time), as time.time().
    started_at: float | None = None
    ended_at: float | None = None
    cpu_time_s: float | None = None
    max_memory_gib: float | None = None
    term: str = ""  # LSF's TERM_* reason, when given
    reason: str = ""

    @property
    def slots(self) -> int:
        return sum(h.slots for h in self.hosts)

    @property
    def wall_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSummary:
        """Back from ``to_dict`` (collect's cache, where JSON turned the host pairs into lists)."""
        d = {**d, "state": JobState(d["state"]) if d.get("state") else None,
             "hosts": tuple(HostSlots(**h) if isinstance(h, dict) else HostSlots(*h) for h in d.get("hosts") or ())}
        return cls(**{k: v for k, v in d.items() if k in SUMMARY_FIELDS})


SUMMARY_FIELDS = frozenset(f.name for f in fields(JobSummary))


def parse_summaries(text: str) -> list[JobSummary]:
    """Every summary in ``text`` (a requeued job has several), oldest first."""
    starts = [m.start() for m in SUMMARY_START_RE.finditer(text)]
    return [_parse_one(text[begin:end]) for begin, end in zip(starts, [*starts[1:], len(text)], strict=False)]


def parse_summary(text: str) -> JobSummary | None:
    """The LAST summary in a job's -o file (a requeued job has several); None if there is none.

    Its ``state`` is None while it has no verdict line: only a summary with a state settles a job."""
    found = parse_summaries(text)
    return found[-1] if found else None


def _parse_one(block: str) -> JobSummary:
    # LSF puts its report first and the job's own output after this line: never read the output as report.
    block = block.split(OUTPUT_FOLLOWS)[0]
    subject = SUBJECT_RE.search(block)
    exec_m = EXEC_ON_RE.search(block)
    queue = IN_QUEUE_RE.search(block, exec_m.start()) if exec_m else None
    ended = [t for m in ENDED_RE.finditer(block) if (t := _parse_time(m.group(1))) is not None]
    term_m = TERM_RE.search(block)
    term = term_m.group(1) if term_m else ""
    state, code, reason = _judge(block, term, term_m.group(2).strip() if term_m else "")
    return JobSummary(
        state=state, exit_code=code, job_id=subject.group(1) if subject else "",
        hosts=_summary_hosts(block, exec_m), queue=queue.group(1) if queue else "",
        started_at=_time(STARTED_RE, block), ended_at=max(ended) if ended else None,
        cpu_time_s=_float(CPU_TIME_RE, block), max_memory_gib=_memory_gib(block), term=term, reason=reason,
    )


def _summary_hosts(block: str, exec_m: re.Match | None) -> tuple[HostSlots, ...]:
    """Hosts before ``in queue`` on the 'executed on' line, plus LSF's continuation lines that hold only
    ``<4*hostC>`` tokens."""
    if exec_m is None:
        return ()
    first = re.split(r"\bin queue\b|\bas user\b", exec_m.group(1))[0]
    tokens = HOSTS_IN_RE.findall(first)
    for line in block[exec_m.end():].splitlines()[1:]:
        if not CONT_HOSTS_RE.match(line):
            break
        tokens += HOSTS_IN_RE.findall(line)
    return parse_exec_host(" ".join(tokens))


def _judge(block: str, term: str, term_text: str) -> tuple[JobState | None, int | None, str]:
    """(state, exit code, why) from the verdict lines; (None, None, "") when the block has none."""
    if DONE_RE.search(block):
        return JobState.DONE, 0, "Successfully completed."
    code_m, sig_m = EXIT_CODE_RE.search(block), SIGNAL_RE.search(block)
    if code_m:
        code: int | None = int(code_m.group(1))
    elif sig_m:
        sig = sig_m.group(1).strip().lower()
        num = _int(sig) if sig.isdigit() else SIGNALS.get(sig)
        code = 128 + num if num else None
    else:
        return None, None, ""
    why = f"{term}: {term_text}" if term else f"exit code {code}"
    if term in KILLED_TERMS or (code in KILL_EXIT_CODES and not term):
        return JobState.KILLED, code, why
    return JobState.FAILED, code, why


def _float(rx: re.Pattern, text: str) -> float | None:
    m = rx.search(text)
    return float(m.group(1)) if m else None


def _memory_gib(text: str) -> float | None:
    m = MAX_MEM_RE.search(text)
    return float(m.group(1)) * MEM_GIB[m.group(2).upper()] if m else None


def _parse_time(raw: str) -> float | None:
    """JH writes ``2025-06-30 20:32:46``, LSF ``Mon Oct 22 09:22:03 2023``: the cluster's local time, no zone.

    xdimo runs on the cluster's login node, so that is this machine's zone: read as local time with its DST, as
    slurm_parse.slurm_time reads Slurm's, giving true epoch seconds (comparable with time.time(); a span across a
    DST change is its real length). A zone the line names (``%Z``) is kept: UTC/GMT is read as UTC, a local zone's
    DST name (CEST) settles the hour the clocks repeat. An out-of-range date -> None."""
    raw = " ".join(raw.split())
    for fmt in TIME_FORMATS:
        try:
            parsed = time.strptime(raw, fmt)
        except ValueError:
            continue
        try:
            if (parsed.tm_zone or "").upper() in ("UTC", "GMT"):
                return float(calendar.timegm(parsed))
            return time.mktime(parsed)
        except (OverflowError, ValueError):
            return None
    return None


def _time(rx: re.Pattern, text: str) -> float | None:
    m = rx.search(text)
    return _parse_time(m.group(1)) if m else None


# -- jhosts / bhosts ----------------------------------------------------------------------------------------


def _int(text: str) -> int | None:
    """A count from a tool's answer; None for anything else, a 5000-digit "number" included (int() of it
    raises, and no host has that many slots)."""
    return int(text) if text.isdigit() and len(text) <= 12 else None


def parse_hosts(text: str) -> tuple[HostRow, ...]:
    """``jhosts -w`` / ``bhosts -w``: ``HOST_NAME STATUS JL/U MAX NJOBS RUN SSUSP USUSP RSV``.

    Rows come after the header: what precedes it (an error such as ``bhosts: ...`` on stderr, a banner) is
    not a host."""
    rows = []
    header = False
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["HOST_NAME"]:
            header = True
            continue
        if not header or len(words) < 2 or line[0].isspace():
            continue
        nums = words[2:] + [""] * 4
        rows.append(HostRow(words[0], words[1], max_slots=_int(nums[1]), njobs=_int(nums[2]),
                            run=_int(nums[3])))
    return tuple(rows)


# -- a pool's capacity from its hosts' status ------------------------------------------------------------------


def gpus_by_host(row: JobRow, gpus: int) -> dict[str, int]:
    """A job's ``gpus`` shared over its execution hosts by slots, rounded down (the site rule: slots =
    cpu_per_gpu x GPUs on every host, so the shares are exact; rounding down never hides a down card)."""
    slots = row.slots
    if not slots:
        return {}
    return {h.host: gpus * h.slots // slots for h in row.exec_hosts}


# Host STATUS words (LSF's bhosts manual; JH prints LSF's): `ok` admits jobs; closed_Full (every slot in use),
# closed_Excl (an exclusive job runs) and closed_Busy (a load threshold passed) are closed by the work on the
# host, which ends on its own: busy, not down (what runs there is counted from the jobs). unavail / unreach (no
# daemon answers), closed_Adm (closed by an admin), closed_Lock, closed_Wind (outside its dispatch window),
# closed_cu_excl and the rest are down: their cards are out of the pool until an admin or the clock acts.
# A bare `closed` (LSF's short STATUS, and what a JH site may print for `-w`) does not say why: with all its slots
# in use (NJOBS >= MAX) it is closed_Full in the short form; with free slots the reason is unknown, so down.
BUSY_STATUSES = frozenset({"closed_full", "closed_excl", "closed_busy"})


def host_busy(row: HostRow) -> bool:
    """Closed to new jobs by the work it runs (closed_Full/Excl/Busy, or a bare `closed` with every slot used)."""
    status = row.status.lower()
    if status in BUSY_STATUSES:
        return True
    return status == "closed" and bool(row.max_slots) and row.njobs is not None and row.njobs >= (row.max_slots or 0)


def host_down(row: HostRow) -> bool:
    """Admits no job for a reason the jobs on it do not explain (unavail, unreach, closed_Adm, ...): its cards
    leave the pool (pool_health)."""
    return row.status.lower() != "ok" and not host_busy(row)


@dataclass(frozen=True)
class PoolHealth:
    """A pool's listed hosts as ``jhosts -w`` / ``bhosts -w`` reports them."""

    down_cards: int = 0  # cards on listed hosts that admit no job, less what the pool's own jobs hold there
    down: tuple[HostRow, ...] = ()  # matched hosts whose status admits no job
    unmatched: tuple[str, ...] = ()  # listed names/globs that match no host at all (reported, no effect)
    matched: int = 0  # distinct hosts the list matched
    busy: tuple[HostRow, ...] = ()  # matched hosts up but closed by their work (host_busy): no cards lost

    @property
    def down_hosts(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.down)

    def describe(self, show: int = 3) -> str:
        """``1 host down: gpu-h200-02 (unavail)`` / ``2 hosts up`` / ``1 host up, busy: gpu6k01 (closed_Full)``,
        then any pattern that matched nothing."""
        if self.down:
            text = f"{_hosts(len(self.down))} down: {_named(self.down, show)}"
        else:
            text = f"{_hosts(self.matched)} up"
            if self.busy:
                text += f", {'' if self.matched == 1 else f'{len(self.busy)} '}busy: {_named(self.busy, show)}"
        if self.unmatched:
            text += f"; no host matches {', '.join(self.unmatched)}"
        return text


def _hosts(n: int) -> str:
    return f"{n} host" + ("" if n == 1 else "s")


def _named(rows: tuple[HostRow, ...], show: int) -> str:
    # a bare `closed` says no reason: say the one it was judged by
    names = [f"{r.name} ({r.status}{', every slot in use' if r.status.lower() == 'closed' and host_busy(r) else ''})"
             for r in rows[:show]]
    more = f" and {len(rows) - show} more" if len(rows) > show else ""
    return ", ".join(names) + more


def match_host(name: str, pattern: str) -> bool:
    """Host names are case-insensitive (DNS); a pattern is a name or an fnmatch glob."""
    return fnmatchcase(name.lower(), pattern.lower())


def pool_health(patterns: Iterable[str], per_node: int, cards: int, hosts: Iterable[HostRow],
                held_on: Mapping[str, int] | None = None) -> PoolHealth:
    """How many of a pool's ``cards`` sit on listed hosts that admit no job now.

    Each matched host that is down (host_down: not ``ok``, and not merely busy) takes ``per_node`` cards away,
    less the GPUs the pool's own jobs still hold there (``held_on``: host -> GPUs; a job on an unreachable host
    shows UNKWN and is already in the pool's ``used``, so counting its cards again would hide free cards
    elsewhere). Never more than ``cards`` (a glob that also matches another pool's hosts)."""
    rows = tuple(hosts)
    matched: dict[str, HostRow] = {}
    unmatched = []
    for pattern in patterns:
        hits = [r for r in rows if match_host(r.name, pattern)]
        if not hits:
            unmatched.append(pattern)
        for r in hits:
            matched.setdefault(r.name, r)
    down = tuple(r for r in matched.values() if host_down(r))
    busy = tuple(r for r in matched.values() if host_busy(r))
    held = held_on or {}
    lost = sum(per_node - min(per_node, held.get(r.name, 0)) for r in down)
    return PoolHealth(min(lost, cards), down, tuple(unmatched), len(matched), busy)


@dataclass(frozen=True)
class GpuRow:
    host: str
    index: int
    model: str
    memory_mib: int | None = None


def parse_bhosts_gpu(text: str) -> tuple[GpuRow, ...]:
    """``bhosts -w -gpu``: ``HOST_NAME GPU_ID MODEL MUSED ...``; continuation rows have no host name."""
    rows: list[GpuRow] = []
    host = ""
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] == "HOST_NAME":
            continue
        if not line[0].isspace():
            host, words = words[0], words[1:]
        if host and len(words) >= 2 and (index := _int(words[0])) is not None:
            rows.append(GpuRow(host, index, words[1]))
    return tuple(rows)
