"""Pure parsers for Slurm's tools (sbatch, squeue, sacct, sinfo, scancel): text in, dataclasses out.

The commands are always asked for a fixed delimited format (``--parsable``, ``-o "%i|%T|..."``,
``sacct -n -P``, ``sinfo -O "Field:|"``), so parsing is splitting on ``|``; nothing depends on column widths.
The fixtures under tests/schedulers/fixtures/slurm_* are copied from Slurm 22.05.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from xdimo.errors import PendingLimitError, SchedulerError, SubmitRefused
from xdimo.schedulers.base import HostRow
from xdimo.states import JobState

# The exact formats the backend asks for; the parsers below read these and nothing else. The times come next
# (squeue %S start, %e end; sacct Start, End), then the job's name (%j, JobName: last, as it may hold a `|`), so
# an answer in an earlier form without them still reads (a row without a name: SlurmJob.name "").
SQUEUE_FORMAT = "%i|%T|%r|%N|%S|%e|%j"
SACCT_FIELDS = "JobIDRaw,State,ExitCode,Reason,NodeList,Start,End,JobName"
# How the backend has Slurm print those times, whatever the user's environment says (SLURM_TIME_FORMAT=relative
# prints "14:24:41"): ISO local time, which slurm_time reads back in the same process environment's zone.
TIME_FORMAT_ENV = {"SLURM_TIME_FORMAT": "standard"}
SINFO_FIELDS = "PartitionName:|,NodeList:|,Gres:|,GresUsed:|,StateLong:|"
GPU_GRES = "gpu"
# squeue -t for a run's jobs that may still run its training (Slurm >= 20.02 knows every name; --me needs it too):
# waiting, running, held, suspended or stopped, requeued. Not COMPLETING / STAGE_OUT: the job script has ended.
LIVE_STATES = ("PENDING", "RUNNING", "SUSPENDED", "STOPPED", "CONFIGURING", "RESIZING", "SIGNALING", "REQUEUED",
               "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD")

# Slurm's long state names (squeue %T, sacct State) and compact codes (squeue %t) -> our states.
_STATES: dict[str, JobState] = {}
for _names, _state in (
    (("PENDING", "PD", "REQUEUED", "RQ", "REQUEUE_HOLD", "RH", "REQUEUE_FED", "RF", "RESV_DEL_HOLD", "RD"),
     JobState.PENDING),
    # COMPLETING: the job ended but still holds its nodes (epilog); SIGNALING, STAGE_OUT likewise.
    (("RUNNING", "R", "CONFIGURING", "CF", "COMPLETING", "CG", "RESIZING", "RS", "SIGNALING", "SI",
      "STAGE_OUT", "SO"), JobState.RUNNING),
    (("SUSPENDED", "S", "STOPPED", "ST"), JobState.SUSPENDED),
    (("COMPLETED", "CD"), JobState.DONE),
    (("FAILED", "F", "TIMEOUT", "TO", "NODE_FAIL", "NF", "OUT_OF_MEMORY", "OOM", "BOOT_FAIL", "BF",
      "DEADLINE", "DL", "SPECIAL_EXIT", "SE"), JobState.FAILED),
    (("CANCELLED", "CA", "PREEMPTED", "PR", "REVOKED", "RV"), JobState.KILLED),
):
    for _name in _names:
        _STATES[_name] = _state


def job_state(text: str) -> JobState:
    """``"CANCELLED by 0"``, ``"COMPLETED"``, ``"PD"``, ``"RUNNING+"`` -> JobState; UNKNOWN if unheard of."""
    word = text.strip().split(" ", 1)[0].rstrip("+*").upper()
    return _STATES.get(word, JobState.UNKNOWN)


def exit_code(text: str) -> int | None:
    """sacct's ``ExitCode`` ``"code:signal"`` -> the shell's convention: code, or 128 + signal if killed."""
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", text)
    if not m:
        return None
    code, signal = int(m.group(1)), int(m.group(2))
    return code if code or not signal else 128 + signal


def slurm_time(text: str) -> float | None:
    """A time as squeue/sacct print it under SLURM_TIME_FORMAT=standard (``2026-11-23T14:24:41``, the local
    time of the process that printed it, which is ours) -> epoch seconds. Slurm's words for "not set" (``Unknown``,
    ``None``, ``NONE``, ``N/A``, empty) and anything else -> None."""
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, OverflowError):
        return None


# --- hostlists ------------------------------------------------------------------------------------------

def expand_hostlist(text: str) -> list[str]:
    """``"gpu[01-03,07],cpu5"`` -> ``["gpu01", "gpu02", "gpu03", "gpu07", "cpu5"]`` (zero padding kept).

    Slurm's placeholders for "no node" (``""``, ``"(null)"``, ``"None assigned"``) give ``[]``.
    """
    text = text.strip()
    if text in ("", "(null)", "None assigned", "n/a"):
        return []
    hosts: list[str] = []
    for item in _split_top(text):
        hosts.extend(_expand_one(item))
    return hosts


def _split_outside(text: str, opening: str, closing: str) -> list[str]:
    """``text`` split on the commas outside ``opening``...``closing`` pairs (``gpu[01-02],gpu03``,
    ``gpu:a100:4(S:0-1),mps:0``); the pieces as they are, empty ones included."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == opening:
            depth += 1
        elif ch == closing:
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


def _split_top(text: str) -> list[str]:
    """A host list's items: split on commas that are not inside brackets."""
    return [s for s in _split_outside(text, "[", "]") if s]


def _expand_one(item: str) -> list[str]:
    m = re.match(r"^([^\[]*)\[([^\]]*)\](.*)$", item)
    if not m:
        return [item]
    prefix, ranges, rest = m.groups()
    out = []
    for part in ranges.split(","):
        lo, _, hi = part.partition("-")
        if not hi:
            values = [lo]
        else:
            width = len(lo) if lo.startswith("0") else 0
            values = [str(n).zfill(width) for n in range(int(lo), int(hi) + 1)]
        for value in values:
            out.extend(prefix + value + tail for tail in (_expand_one(rest) if rest else [""]))
    return out


# --- gres -----------------------------------------------------------------------------------------------

def gres_count(text: str, name: str = GPU_GRES) -> int:
    """GPUs in a gres string: ``"gpu:8"``, ``"gpu:a100:4(S:0-1),gpu:v100:2"``, ``"gpu:4(IDX:0-3),mps:0"``.

    Items of other names (mps, shard, license-like gres) do not count; ``"(null)"`` is 0.
    """
    total = 0
    for item in _split_gres(text):
        base = item.split("(", 1)[0]
        parts = base.split(":")
        if parts[0] != name:
            continue
        count = parts[-1] if len(parts) > 1 else ""
        # "gpu" / "gpu:a100" without a count mean one card; "gpu:8" / "gpu:a100:8" carry it last.
        total += _gres_number(count) if re.fullmatch(r"\d+[KMG]?", count) else 1
    return total


def _split_gres(text: str) -> list[str]:
    """A gres string's items: split on commas outside parentheses; ``(null)`` is none."""
    items = (s.strip() for s in _split_outside(text, "(", ")"))
    return [s for s in items if s and s != "(null)"]


def _gres_number(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip())
    if not m:
        return 0
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]


# --- sbatch ---------------------------------------------------------------------------------------------

def parse_sbatch_id(output: str) -> str | None:
    """``sbatch --parsable`` prints ``"<id>"`` or ``"<id>;<cluster>"``; warnings may come first."""
    for line in reversed(output.strip().splitlines()):
        m = re.fullmatch(r"\s*(\d+)(?:;\S+)?\s*", line)
        if m:
            return m.group(1)
    return None


# The reason codes sbatch names when a limit on *submitted* jobs (running + pending) refuses a job.
_SUBMIT_LIMIT = re.compile(r"\b(QOSMaxSubmitJobPerUserLimit|QOSMaxSubmitJobPerAccountLimit"
                           r"|AssocMaxSubmitJobLimit|AssocGrpSubmitJobsLimit|QOSGrpSubmitJobsLimit"
                           r"|MaxSubmitJobs\w*)\b")
# "Unable to contact slurm controller" means the job certainly did not reach slurmctld: safe to retry.
_UNREACHED = re.compile(r"unable to contact slurm controller|connection refused|slurmctld.*not responding",
                        re.IGNORECASE)
# A socket timeout may come after slurmctld took the job: never retried, never called a refusal.
_UNCERTAIN = re.compile(r"socket timed out|timed out on send/recv|timeout", re.IGNORECASE)


def submit_unreached(output: str) -> bool:
    """True when sbatch failed before the controller could have taken the job (retrying cannot duplicate)."""
    return bool(_UNREACHED.search(output)) and not _UNCERTAIN.search(output)


def submit_error(returncode: int, output: str, partition: str) -> SchedulerError:
    """What a failed ``sbatch`` means, as the exception to raise (one clear line).

    PendingLimitError for Slurm's submit limits (they count running + pending jobs); SubmitRefused when sbatch
    said the job was refused; a plain SchedulerError when we cannot know whether the job was taken.
    """
    text = " ".join(line.strip() for line in output.strip().splitlines())
    m = _SUBMIT_LIMIT.search(text)
    if m:
        return PendingLimitError(
            f"Slurm refused the job: submit limit reached on partition {partition} ({m.group(1)}: the QOS or "
            "account caps your running + pending jobs); submit the rest when some finish (--batch next)")
    if _UNCERTAIN.search(text) or not text:
        return SchedulerError(f"sbatch did not answer clearly (exit {returncode}): {text or 'no output'}; "
                              "the job may or may not exist: check `squeue --me` before resubmitting")
    if submit_unreached(text):  # the controller never saw it (retries spent): nothing to resubmit over
        return SubmitRefused(f"sbatch could not reach the Slurm controller (exit {returncode}): {text[:200]}; "
                             "no job was created: try again when Slurm is back")
    reason = _refusal_reason(text)
    hint = _REFUSAL_HINTS.get(_hint_key(text), "")
    return SubmitRefused(f"Slurm refused the job on partition {partition}: {reason}{hint}")


_REFUSAL_HINTS = {
    "partition": " (is the pool's queue a Slurm partition? see `sinfo`)",
    "config": " (no node in the partition has that many GPUs/CPUs: check the pool's cards and cpu_per_gpu)",
    "account": " (your user has no Slurm account for this partition: ask the admins, or set options.account)",
    "gres": " (the partition's nodes declare no such GRES: check `sinfo -o %G`)",
}


def _hint_key(text: str) -> str:
    low = text.lower()
    if "invalid partition" in low:
        return "partition"
    if "requested node configuration is not available" in low:
        return "config"
    if "invalid account" in low:
        return "account"
    if "invalid generic resource" in low:
        return "gres"
    return ""


def _refusal_reason(text: str) -> str:
    m = re.search(r"Batch job submission failed:\s*(.+?)(?:\s*sbatch: error:|$)", text)
    if m:
        return m.group(1).strip()
    errors = re.findall(r"sbatch: error:\s*(.+?)(?=\s*sbatch: error:|$)", text)
    return "; ".join(e.strip() for e in errors) if errors else text


# --- squeue / sacct -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlurmJob:
    """One row of squeue or sacct."""

    job_id: str
    state: JobState
    raw_state: str
    reason: str = ""
    hosts: tuple[str, ...] = ()
    exit_code: int | None = None
    # When the job started and ended by Slurm's clock (epoch seconds), as the LSF family's JobSummary carries its
    # summary's; None where Slurm has none or only a forecast (see job_times).
    started_at: float | None = None
    ended_at: float | None = None
    name: str = ""  # the job's name (squeue %j, sacct JobName); "" where the answer has none

    @property
    def wall_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


def job_times(state: JobState, hosts: tuple[str, ...], start: str, end: str) -> tuple[float | None, float | None]:
    """(started, ended) of a row, kept only where they are facts. A job that never had a node never started, though
    Slurm prints its cancel time as its start (22.05, cancelled while pending: ``Start == End``); a pending job's
    squeue start is a forecast (backfill), and an unfinished job's end is its time limit (squeue %e) or
    ``Unknown``."""
    if not hosts or state in (JobState.PENDING, JobState.UNKNOWN):
        return None, None
    started = slurm_time(start)
    return started, slurm_time(end) if state.terminal and started is not None else None


SQUEUE_MIN_FIELDS = 4  # %i|%T|%r|%N (|%S|%e|%j)
SACCT_MIN_FIELDS = 5  # JobIDRaw|State|ExitCode|Reason|NodeList (|Start|End|JobName)
SINFO_MIN_FIELDS = 5  # PartitionName|NodeList|Gres|GresUsed|StateLong

Rows = TypeVar("Rows")
Row = TypeVar("Row")


@dataclass(frozen=True)
class Answer(Generic[Rows]):
    """What a parser read from a ``|``-separated answer without a header (``-h`` / ``-n``): its rows, and the
    lines it could not read (stripped), in order. An unread line may hide a job or a node, so an answer with
    one is never to be read as "none"; blank lines are neither."""

    rows: Rows
    unread: tuple[str, ...] = ()


def _read(output: str, fields: int, row: Callable[[list[str]], Row | None]) -> tuple[list[Row], tuple[str, ...]]:
    """Each non-blank line through ``row``, by the one rule every parser here shares, so that a line is a row
    or unread, never both: it is unread when it lacks ``fields`` fields or either of the first two (an id and a
    state, a partition and a node), or when ``row`` raises ValueError (a node list that is not one). ``row``
    returns None for a line it reads and leaves out (a sacct step)."""
    rows: list[Row] = []
    unread: list[str] = []
    for line in output.splitlines():
        text = line.strip()
        if not text:
            continue
        parts = text.split("|")
        if len(parts) < fields or not parts[0].strip() or not parts[1].strip():
            unread.append(text)
            continue
        try:
            value = row(parts)
        except ValueError:  # a node list that is not one: gpu[01-x]
            unread.append(text)
            continue
        if value is not None:
            rows.append(value)
    return rows, tuple(unread)


def _squeue_row(parts: list[str]) -> SlurmJob:
    job_id, raw, reason, nodes = parts[:4]
    start, end = (parts[4:6] + ["", ""])[:2]
    reason = "" if reason in ("None", "(null)") else reason
    state, hosts = job_state(raw), tuple(expand_hostlist(nodes))
    return SlurmJob(job_id, state, raw, reason, hosts, None, *job_times(state, hosts, start, end),
                    name="|".join(parts[6:]))


def read_squeue(output: str) -> Answer[dict[str, SlurmJob]]:
    """``squeue -h -t all -o "%i|%T|%r|%N|%S|%e|%j"`` -> job id -> row (an answer without the times or the name
    reads too)."""
    rows, unread = _read(output, SQUEUE_MIN_FIELDS, _squeue_row)
    return Answer({job.job_id: job for job in rows}, unread)


def parse_squeue(output: str) -> dict[str, SlurmJob]:
    """read_squeue's rows, for callers that take a line it could not read as no job."""
    return read_squeue(output).rows


def squeue_no_such_job(output: str) -> bool:
    """squeue asked for one job id Slurm has forgotten exits 1 with this; it means "not in the queue"."""
    return "invalid job id" in output.lower()


def _sacct_row(parts: list[str]) -> SlurmJob | None:
    job_id, raw, code, reason, nodes = parts[:5]
    if "." in job_id:
        return None  # a step row (123.batch) when -X was not honoured: not a job, and not unread
    start, end = (parts[5:7] + ["", ""])[:2]
    reason = "" if reason in ("None", "(null)") else reason
    state, hosts = job_state(raw), tuple(expand_hostlist(nodes))
    return SlurmJob(job_id, state, raw.strip(), reason, hosts, exit_code(code), *job_times(state, hosts, start, end),
                    name="|".join(parts[7:]))


def read_sacct(output: str) -> Answer[dict[str, SlurmJob]]:
    """``sacct -n -P -X -o JobIDRaw,State,ExitCode,Reason,NodeList,Start,End,JobName`` -> job id -> row (the last
    record wins: a requeued job has one per attempt; an answer without Start,End or JobName reads too)."""
    records = read_sacct_records(output)
    return Answer({job.job_id: job for job in records.rows}, records.unread)


def read_sacct_records(output: str) -> Answer[list[SlurmJob]]:
    """read_sacct's rows in the order sacct gave them, every record kept: an id Slurm gave twice (its ids
    restarted, the accounting kept) has one record per job, told apart by name (named_records)."""
    return Answer(*_read(output, SACCT_MIN_FIELDS, _sacct_row))


def named_records(records: Iterable[SlurmJob], names: dict[str, str]) -> dict[str, SlurmJob]:
    """job id -> its last record, preferring one named ``names[id]`` (or with no name) over another job's of the
    same id. sacct gives the latest job of an id unless asked for duplicates (-D), but accounting that outlived a
    controller reset holds the run's job and a later one under one id: an answer with both gives the run's."""
    out: dict[str, SlurmJob] = {}
    for job in records:
        wanted = names.get(job.job_id, "")
        held = out.get(job.job_id)
        if held is None or not wanted or job.name in ("", wanted) or held.name not in ("", wanted):
            out[job.job_id] = job
    return out


def parse_sacct(output: str) -> dict[str, SlurmJob]:
    """read_sacct's rows, for callers that take a line it could not read as no job."""
    return read_sacct(output).rows


_ACCOUNTING_DISABLED = re.compile(r"accounting storage is disabled", re.IGNORECASE)


def sacct_disabled(output: str) -> bool:
    """sacct's answer on a cluster without accounting (AccountingStorageType none: "Slurm accounting storage is
    disabled", exit 1): no outage that a later try could outlast, but no accounting at all."""
    return bool(_ACCOUNTING_DISABLED.search(output))


# --- scancel --------------------------------------------------------------------------------------------

def scancel_outcome(output: str) -> str:
    """``scancel`` exits 0 even when it fails; its stderr says what happened.

    Returns "ok", "finished" (already completing/completed), "unknown" (invalid job id) or "error".
    """
    low = output.lower()
    if "error" not in low:
        return "ok"
    if "already completing or completed" in low or "already completed" in low:
        return "finished"
    if "invalid job id" in low:
        return "unknown"
    return "error"


# --- sinfo ----------------------------------------------------------------------------------------------

# Node states in which the node's cards cannot be given to a new job (sinfo StateLong, lower case).
_UNAVAILABLE = ("down", "drain", "fail", "inval", "maint", "reserved", "future", "unknown", "not_responding",
                "powered_down", "powering_down", "reboot")


def node_available(state: str) -> bool:
    """sinfo ``StateLong``: ``idle``, ``mixed``, ``allocated`` are; ``down*``, ``drained``, ``draining``
    are not.

    A trailing ``*`` means the node does not respond; ``~`` (powered off, boots on demand) is available.
    """
    s = state.strip().lower()
    if s.endswith("*"):
        return False
    base = s.rstrip("~#!%$@^-+")
    return not any(base.startswith(word) for word in _UNAVAILABLE)


@dataclass(frozen=True)
class NodeRow:
    partition: str
    node: str
    gpus: int
    gpus_used: int
    state: str
    gres: str = ""  # as sinfo says it: gpu:h200:5(S:0-1),mps:500

    @property
    def available(self) -> bool:
        return node_available(self.state)


def node_state_word(state: str) -> str:
    """How a node that admits no new job is named in a sentence: ``drained``, ``draining``, else ``down``
    (down, not responding, failed, in maintenance...). A drained node is up, but Slurm starts nothing there."""
    base = state.strip().lower().rstrip("*~#!%$@^-+")
    for word in ("draining", "drained"):
        if base.startswith(word):
            return word
    return "drained" if base.startswith("drain") else "down"


@dataclass
class PartitionGpus:
    name: str
    total: int = 0
    used: int = 0  # held by jobs of all users on nodes that take jobs
    # All the cards of nodes that admit no new job (down, drained, draining, not responding), those in use
    # included: a draining node's jobs finish, but its cards do not come back to the pool. Not also in `used`,
    # so PoolStatus.free (total - taken - used - down) subtracts no card twice, and the cards up (total - taken
    # - down) leave them all out.
    down: int = 0
    nodes: list[str] = field(default_factory=list)
    down_nodes: list[str] = field(default_factory=list)
    node_states: dict[str, str] = field(default_factory=dict)  # down_nodes -> node_state_word

    def down_note(self) -> str:
        """``1 node(s) draining: localhost`` / ``2 node(s) down: gpu03, gpu04; 1 node(s) drained: gpu05``; "" if
        every node takes jobs."""
        groups: dict[str, list[str]] = {}
        for node in self.down_nodes:
            groups.setdefault(self.node_states.get(node, "down"), []).append(node)
        return "; ".join(f"{len(nodes)} node(s) {word}: {', '.join(nodes)}" for word, nodes in groups.items())


def _sinfo_row(parts: list[str]) -> NodeRow:
    partition, node, gres, used, state = (p.strip() for p in parts[:5])
    return NodeRow(partition.rstrip("*"), node, gres_count(gres), gres_count(used), state, gres)


def read_sinfo_nodes(output: str) -> Answer[list[NodeRow]]:
    """``sinfo -h -N -O "PartitionName:|,NodeList:|,Gres:|,GresUsed:|,StateLong:|"`` -> one row per node
    per partition (a node in two partitions appears twice)."""
    return Answer(*_read(output, SINFO_MIN_FIELDS, _sinfo_row))


def parse_sinfo_nodes(output: str) -> list[NodeRow]:
    """read_sinfo_nodes' rows, for callers that take a line it could not read as no node."""
    return read_sinfo_nodes(output).rows


def node_hosts(rows: Iterable[NodeRow]) -> list[HostRow]:
    """One host row per node (a node in two partitions is one host): its state, GPUs and GPU types."""
    hosts: dict[str, HostRow] = {}
    for row in rows:
        hosts.setdefault(row.node, HostRow(row.node, row.state, ngpus=row.gpus, gpu_models=gres_types(row.gres)))
    return list(hosts.values())


def gres_types(gres: str) -> tuple[str, ...]:
    """The GPU types a node's Gres names (``gpu:h200:5(S:0-1)`` -> h200); untyped ``gpu:8`` names none."""
    types = []
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == GPU_GRES and len(parts) == 3 and parts[1] not in types:
            types.append(parts[1])
    return tuple(types)


def partition_gpus(rows: Iterable[NodeRow]) -> dict[str, PartitionGpus]:
    """GPUs per partition. All the cards of a node that admits no new job (down, drained, draining) are
    ``down``, those its running jobs hold included (not counted in ``used`` too): a new job cannot get them,
    now or when those jobs end, and the pool's size stays what the site declares (so a run sized for the whole
    pool waits for the node rather than fails)."""
    out: dict[str, PartitionGpus] = {}
    for row in rows:
        part = out.setdefault(row.partition, PartitionGpus(row.partition))
        if row.node in part.nodes:
            continue  # sinfo may list a node twice when it is in two states at once
        part.nodes.append(row.node)
        part.total += row.gpus
        if row.available:
            part.used += min(row.gpus, row.gpus_used)
        else:
            part.down += row.gpus
            part.down_nodes.append(row.node)
            part.node_states[row.node] = node_state_word(row.state)
    return out


PENDING_FORMAT = "%P|%b|%D"  # partition(s), GPUs per node as tres-per-node (gres:gpu:2), nodes


def parse_pending_partitions(output: str) -> dict[str, int]:
    """``squeue -h -t PENDING -o %P`` -> partition -> pending jobs (a job asking for "a,b" counts in both)."""
    return parse_pending(output)[0]


def parse_pending(output: str) -> tuple[dict[str, int], dict[str, int]]:
    """``squeue -h -t PENDING -o "%P|%b|%D"`` -> (partition -> pending jobs, partition -> their GPUs). A job asking
    for partitions "a,b" counts in both (it may start in either); ``gres:gpu:2`` on 2 nodes is 4 GPUs."""
    jobs: dict[str, int] = {}
    gpus: dict[str, int] = {}
    for line in output.splitlines():
        fields = line.strip().split("|")
        tres = re.sub(r"\bgres[:/]", "", fields[1]) if len(fields) > 1 else ""  # gres:gpu:2, gres/gpu:2 -> gpu:2
        nodes = int(fields[2]) if len(fields) > 2 and re.fullmatch(r"[0-9]+", fields[2].strip()) else 1  # not "²"
        n = gres_count(tres.strip()) * nodes
        for part in fields[0].strip().split(","):
            if part:
                jobs[part] = jobs.get(part, 0) + 1
                gpus[part] = gpus.get(part, 0) + n
    return jobs, gpus
