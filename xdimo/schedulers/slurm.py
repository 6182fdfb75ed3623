"""Slurm: sbatch of the rendered script (stdin), sinfo for pools, one squeue + one sacct per poll, one squeue
for a run's live jobs before a submission, scancel.

A thin runner over the pure parsers in slurm_parse.py. Every command goes through the shared runner
(timeout + retry on transient failure); sbatch is retried only when it certainly never reached slurmctld,
because a retry after a socket timeout could submit the job twice. An sbatch that outlives SUBMIT_TIMEOUT
is never run again either (slurmctld may have taken the job and answered late): the run stays SUBMITTING,
and reconcile finds its job by name (:meth:`find`).

submitit serves where the workload is a Python function rather than a script: :meth:`submit_function`
hands it to submitit's executor with the same partition / GPU / CPU rules, the job's files under
logs/<run_id>/submitit. The experiment matrices go through sbatch like every other backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from xdimo.config import Cluster
from xdimo.errors import ConfigError, SchedulerError
from xdimo.rules import cpu_slots
from xdimo.rundir import RunDir
from xdimo.schedulers import slurm_parse as sp
from xdimo.schedulers.base import HostRow, JobStatus, LedgerJob, PoolStatus, other_job_name
from xdimo.schedulers.marker import KILL_EXIT_CODES, read_exit_marker, state_for_exit
from xdimo.schedulers.runner import CommandResult, NoAnswer, command_error, looks_transient, run_command
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.text import excerpt

QUERY_TIMEOUT = 60.0
SUBMIT_TIMEOUT = 120.0


class SlurmScheduler:
    kind = "slurm"
    poll_interval: float | None = None  # a shared controller: watchers back off (backoff.PollBackoff)
    job_id_pattern = "%j"  # sbatch's filename pattern for the job id

    def __init__(self, cluster: Cluster, root: Path) -> None:
        self.cluster = cluster
        self.root = root
        # the cluster file's `options: {timeout_s: N}`, per query (squeue, sacct, sinfo, scancel), as on JH/LSF
        self.query_timeout = float(cluster.options.get("timeout_s", QUERY_TIMEOUT))

    # --- pools ----------------------------------------------------------------------------------------

    def pools(self) -> list[PoolStatus]:
        """Cards per pool from one ``sinfo`` (node GRES and GRES used, all users) and this user's pending
        jobs from one ``squeue``. Partitions that share nodes each see the shared cards as used."""
        sinfo = self._query(["sinfo", "-h", "-N", "-O", sp.SINFO_FIELDS])
        nodes = sp.read_sinfo_nodes(sinfo.stdout)
        if nodes.rows and nodes.unread:  # a node we cannot read may hold cards in use
            raise SchedulerError(f"sinfo answered a line that is not a node: {excerpt(nodes.unread[0])}; cannot "
                                 "count the cards in use")
        parts = sp.partition_gpus(nodes.rows)
        pending, pending_gpus = sp.parse_pending(
            self._query(["squeue", "-h", "--me", "-t", "PENDING", "-o", sp.PENDING_FORMAT]).stdout)
        out = []
        for pool in self.cluster.pools.values():
            part = parts.get(pool.queue_name)
            if not parts:  # an empty or unreadable answer is Slurm's problem, not the cluster file's
                raise SchedulerError("sinfo listed no partition at all: "
                                     f"{excerpt(sinfo.stdout) if sinfo.stdout.strip() else 'empty answer'}")
            if part is None:
                known = ", ".join(sorted(parts)) or "none"
                raise SchedulerError(f"pool {pool.name}: Slurm has no partition {pool.queue_name!r} "
                                     f"(sinfo shows: {known}); fix {self.cluster.path}")
            host_free, host_cards = nodes_room(nodes.rows, pool.queue_name, pool.taken)
            note = part.down_note()
            down = f"; {note}" if note else ""
            out.append(PoolStatus(name=pool.name, gpu_model=pool.gpu_model, total=part.total,
                                  taken=pool.taken, used=part.used,
                                  pending_jobs=pending.get(pool.queue_name, 0),
                                  source="sinfo GresUsed (all users)" + down, down=part.down,
                                  down_hosts=tuple(part.down_nodes),
                                  pending_gpus=pending_gpus.get(pool.queue_name, 0),
                                  host_free=host_free, host_cards=host_cards))
        return out

    # --- submit ---------------------------------------------------------------------------------------

    def submit(self, script: str, run: RunSpec) -> str:
        """``sbatch --parsable`` with the script on stdin; the job's output folder must exist first."""
        self._run_dir(run).path.mkdir(parents=True, exist_ok=True)
        partition = self.cluster.pool(run.pool).queue_name
        # A timeout is no answer: the job may exist, so it is not sent again (SchedulerTimeout: the ledger keeps the
        # run SUBMITTING). Only an answer saying slurmctld was never reached is retried.
        result = run_command(["sbatch", "--parsable"], stdin=script, timeout=SUBMIT_TIMEOUT, retries=2,
                             transient=_submit_unreached, retry_timeouts=False, cwd=str(self.root))
        job_id = sp.parse_sbatch_id(result.stdout) if result.ok else None
        if job_id is None:
            if result.ok:
                raise SchedulerError(f"sbatch answered without a job id: {result.output.strip()[:200]!r}")
            raise sp.submit_error(result.returncode, result.output, partition)
        return job_id

    def submit_function(self, run: RunSpec, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a Python function as a Slurm job through submitit, under the site rules of ``run``'s pool.

        Returns submitit's Job (``.job_id``, ``.result()``, ``.cancel()``); its pickles and logs go to
        logs/<run_id>/submitit. One task per node; torch.distributed users can build on
        ``submitit.helpers.TorchDistributedEnvironment`` inside ``fn``.
        """
        try:
            import submitit
        except ImportError:
            raise ConfigError("submitit is not installed: pip install 'xdimo-jobs[slurm]'") from None
        folder = self._run_dir(run).submitit_dir
        executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        params: dict[str, Any] = {
            "name": run.run_id,
            "slurm_partition": self.cluster.pool(run.pool).queue_name,
            "nodes": run.nodes,
            "tasks_per_node": 1,
            "gpus_per_node": run.gpus_per_node,
            "cpus_per_task": cpu_slots(self.cluster, run) // run.nodes,
        }
        if run.walltime_min:
            params["timeout_min"] = run.walltime_min
        executor.update_parameters(**params)
        return executor.submit(fn, *args, **kwargs)

    # --- poll -----------------------------------------------------------------------------------------

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        """ONE squeue for the jobs still queued or running, ONE sacct for those that left the queue; a job
        neither knows is settled from the marker its script writes, else LOST (UNKNOWN if sacct is down). A row
        whose name is not the run's (its run id) is another job under a reused id (slurmctld's ids restart on a
        fresh state): it is not the run's job, which is settled as one neither lists."""
        by_id = {j.job_id: j for j in jobs if j.job_id}
        if not by_id:
            return {}
        live, spoke = self._squeue(list(by_id))
        active = {i: row for i, row in live.items()
                  if i in by_id and not row.state.terminal and not other_job_name(row.name, by_id[i].run_id)}
        left = [i for i in by_id if i not in active]
        finished, accounting_ok = self._sacct(left, {i: by_id[i].run_id for i in left}) if left else ({}, True)
        if not (live or spoke or finished) and accounting_ok:
            unanswered = no_answer(list(by_id.values()))
            if len(unanswered.settled) < len(by_id):
                raise unanswered
            return unanswered.settled  # every job settled by its marker: nothing was left to the answer
        out = {}
        for job_id, job in by_id.items():
            if job_id in active:
                row = active[job_id]
                out[job_id] = JobStatus(row.state, reason=pending_note(row.reason), hosts=row.hosts,
                                        started_at=row.started_at)
            else:
                row, other = own_row(job.run_id, finished.get(job_id), live.get(job_id))
                status = settle(job, row, accounting_ok)
                out[job_id] = replace(status, other_job=other) if other else status
        return out

    def _squeue(self, ids: list[str]) -> tuple[dict[str, sp.SlurmJob], bool]:
        """squeue's rows for ``ids``, and whether it said that it does not know one (``Invalid job id``)."""
        argv = ["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", sp.SQUEUE_FORMAT]
        result = run_command(argv, timeout=self.query_timeout, retries=2, transient=_transient_query, env=_query_env())
        if not result.ok:
            if sp.squeue_no_such_job(result.output):
                return {}, True
            raise command_error(result)
        return readable_squeue(result.stdout, "tell which jobs are still queued"), False

    def _sacct(self, ids: list[str], names: dict[str, str]) -> tuple[dict[str, sp.SlurmJob], bool]:
        """sacct's record of each of ``ids`` (the one named ``names[id]`` where the id has several), and whether
        the answer was whole."""
        argv = ["sacct", "-n", "-P", "-X", "-j", ",".join(ids), "-o", sp.SACCT_FIELDS]
        result = run_command(argv, timeout=self.query_timeout, retries=2, transient=_transient_query, env=_query_env())
        if not result.ok:
            return {}, False  # accounting off or slurmdbd down: fall back on the markers
        answer = sp.read_sacct_records(result.stdout)
        # A line we cannot read may be one of the jobs asked about: the rows read still settle their jobs, but
        # the answer no longer proves a job it leaves out gone (as if accounting were down).
        return sp.named_records(answer.rows, names), not answer.unread

    def find(self, run_id: str) -> list[str]:
        """Every job of this user named `run_id` in the queue or, failing that, in a week of accounting, oldest
        first. This user's only: a colleague running the same matrix has the same run ids.

        `[]` settles a SUBMITTING run LOST (reconcile), so it comes only from answers that say "none": a failed
        sacct (slurmdbd down) or an sacct line that is not a job raises SchedulerError, as a failed or unreadable
        squeue does, and the run stays SUBMITTING for the next poll. A cluster without accounting at all (sacct:
        "accounting storage is disabled") has nothing more to say than squeue: its answer stands."""
        live = self._query(["squeue", "-h", "--me", "-t", "all", f"--name={run_id}", "-o", sp.SQUEUE_FORMAT])
        ids = list(readable_squeue(live.stdout, "tell whether a job of the run was submitted"))  # as the LSF family
        if not ids:
            argv = ["sacct", "-n", "-P", "-X", "-S", "now-7days", f"--name={run_id}", "-o", sp.SACCT_FIELDS]
            done = run_command(argv, timeout=self.query_timeout, retries=2, transient=_transient_query,
                               env=_query_env())
            if not done.ok:
                if sp.sacct_disabled(done.output):
                    return []
                raise command_error(done)
            ids = list(readable_sacct(done.stdout, "tell whether a job of the run was submitted"))
        return sorted(set(ids), key=lambda i: (len(i), i))

    def live_jobs(self, run_id: str) -> list[str]:
        """This user's jobs named `run_id` that may still run the training, oldest first, from ONE squeue
        (``--me --name=RUN -t LIVE_STATES``; no sacct: accounting only knows ended jobs). COMPLETING and
        STAGE_OUT are left out: the job script has ended, only Slurm's clean-up remains. A failed squeue, or an
        answer with text but no row, raises SchedulerError."""
        result = self._query(["squeue", "-h", "--me", f"--name={run_id}", "-t", ",".join(sp.LIVE_STATES),
                              "-o", sp.SQUEUE_FORMAT])
        rows = readable_squeue(result.stdout, "tell whether a job of the run is queued")
        ids = [i for i, row in rows.items() if row.raw_state.split(" ", 1)[0].upper() in sp.LIVE_STATES]
        return sorted(set(ids), key=lambda i: (len(i), i))

    # --- kill -----------------------------------------------------------------------------------------

    def kill(self, job_id: str, *, now: bool = False) -> bool:  # now: scancel has no grace of ours
        # Without -v scancel says nothing at all when the job is unknown or already over.
        result = run_command(["scancel", "-v", job_id], timeout=self.query_timeout, transient=_transient_query)
        outcome = sp.scancel_outcome(result.output)
        if outcome == "error" or (not result.ok and outcome != "unknown"):
            raise command_error(result)
        # "finished" (it ended before the signal came) and "unknown" (Slurm has forgotten it: it ended long
        # ago) are not errors, but nothing was killed: False, and the next poll settles the run by its own end.
        return outcome == "ok"

    # --- hosts ----------------------------------------------------------------------------------------

    def hosts(self) -> list[HostRow]:
        """One row per node from ``sinfo -N``: its state (idle, mixed, drained, down*), GPUs and GPU types."""
        return sp.node_hosts(sp.parse_sinfo_nodes(self._query(["sinfo", "-h", "-N", "-O", sp.SINFO_FIELDS]).stdout))

    # --- helpers --------------------------------------------------------------------------------------

    def _run_dir(self, run: RunSpec) -> RunDir:
        """The run's folder as the job script names it (symlinks resolved, like render.context)."""
        return RunDir.in_workspace(self.root, run.run_id).resolved()

    def _query(self, argv: list[str]) -> CommandResult:
        result = run_command(argv, timeout=self.query_timeout, retries=2, transient=_transient_query, env=_query_env())
        if not result.ok:
            raise command_error(result)
        return result


def nodes_room(rows: list[sp.NodeRow], partition: str, taken: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(free, total) GPUs on each available node of the partition (PoolStatus.host_free, host_cards), from the
    rows pools() already read (``sinfo -N``: Gres and GresUsed of all users; no further call). An ``allocated``
    node has every CPU given out, so Slurm starts nothing more there whatever its GPUs: 0 free. A node that admits
    no job is left out (PoolStatus.down has it); ``taken`` cards as the LSF family's (PoolStatus.level_down)."""
    seen: set[str] = set()  # the first row of a node listed twice decides, as in partition_gpus
    free: list[int] = []
    cards: list[int] = []
    for row in rows:
        if row.partition != partition or row.node in seen:
            continue
        seen.add(row.node)
        if row.available:
            allocated = row.state.strip().lower().rstrip("*~#!%$@^-+") == "allocated"
            free.append(0 if allocated else max(0, row.gpus - row.gpus_used))
            cards.append(row.gpus)
    return PoolStatus.level_down(free, taken), PoolStatus.level_down(cards, taken)


def readable_squeue(output: str, purpose: str) -> dict[str, sp.SlurmJob]:
    """squeue's rows, when every line of its answer is one (``-h``: no header; nothing at all is "no job").
    A line that is not a row may hide a job: SchedulerError, so that nothing is settled on the answer."""
    answer = sp.read_squeue(output)
    if answer.unread and not answer.rows:
        raise SchedulerError(f"squeue answered nothing readable: {excerpt(output)}")
    if answer.unread:
        raise SchedulerError(f"squeue answered a line that is not a job: {excerpt(answer.unread[0])}; "
                             f"cannot {purpose}")
    return answer.rows


def readable_sacct(output: str, purpose: str) -> dict[str, sp.SlurmJob]:
    """sacct's rows, when every line of its answer is one (``-n``: no header; nothing at all is "no job"). A
    line that is not a row may be the job asked about: SchedulerError, so that nothing is settled on it."""
    answer = sp.read_sacct(output)
    if answer.unread:
        raise SchedulerError(f"sacct answered a line that is not a job: {excerpt(answer.unread[0])}; "
                             f"cannot {purpose}")
    return answer.rows


def no_answer(jobs: list[LedgerJob]) -> NoAnswer:
    """An empty squeue (exit 0, not `Invalid job id`) and an empty sacct for every job asked: neither names one,
    so neither proves one gone (a controller restart, an accounting lag). Only a job's exit marker settles it."""
    settled = {j.job_id: st for j in jobs if (st := settle(j, None, accounting_ok=False)).state is not JobState.UNKNOWN}
    return NoAnswer(f"squeue and sacct answered nothing about the {len(jobs)} job(s) asked (no row, no `Invalid job "
                    f"id`): taken as no answer; {len(jobs) - len(settled)} job(s) keep their run's last state", settled)


def own_row(run_id: str, *rows: sp.SlurmJob | None) -> tuple[sp.SlurmJob | None, str]:
    """The first of ``rows`` (accounting's, then squeue's) that is the run's job (its name, or none given), and "";
    else None and the name the last one gives the id now. squeue's comes last: slurmdbd records a job just sent as
    `allocation` until its start reaches it (seen on Slurm 22.05), squeue names it at once."""
    given = [r for r in rows if r is not None]
    for row in given:
        if not other_job_name(row.name, run_id):
            return row, ""
    return None, given[-1].name if given else ""


def settle(job: LedgerJob, row: sp.SlurmJob | None, accounting_ok: bool) -> JobStatus:
    """The state of a job that is no longer queued: from accounting, refined by its marker file (judged by the
    rule every backend shares: marker.state_for_exit). Accounting's Start and End come with it: the ledger takes
    the job's wall time from them (Slurm's clock, the span the job held its nodes)."""
    marker = read_exit_marker(job.log_dir)
    if row is not None and row.state is not JobState.UNKNOWN:
        word = row.raw_state.split(" ", 1)[0].rstrip("+*").upper()  # "CANCELLED by 0" -> CANCELLED
        code = row.exit_code if row.exit_code is not None else marker
        # sacct's 0:0 for an allocation Slurm ended (cancelled, perhaps before it ran; timed out; its node failed)
        # is no exit code: the marker's, else none. A job Slurm ended for its own reasons (TIMEOUT, NODE_FAIL)
        # is FAILED even when its script trapped the signal and wrote 143, as LSF's TERM_RUNLIMIT is: only a
        # marker of 0 (it finished as the limit struck) turns it DONE. KILLED is for a stop someone asked for.
        ended_by_slurm = row.state is JobState.KILLED or (row.state is JobState.FAILED and word != "FAILED")
        if ended_by_slurm and not code:
            code = marker
        reason = row.raw_state if row.state is not JobState.DONE else ""
        state = row.state
        if row.state is JobState.DONE and marker not in (None, 0):
            state, code, reason = state_for_exit(marker), marker, f"marker says exit {marker}"
        elif row.state is JobState.FAILED and ended_by_slurm and not row.exit_code and code is not None:
            state = JobState.DONE if code == 0 else JobState.FAILED  # the reason still says Slurm's word
        elif word == "FAILED" and code in KILL_EXIT_CODES:  # SIGTERM/SIGINT from outside: a kill
            state = JobState.KILLED  # (TIMEOUT, NODE_FAIL stay FAILED)
        return JobStatus(state, code, reason, row.hosts, started_at=row.started_at, ended_at=row.ended_at)
    if marker is not None:
        return JobStatus(state_for_exit(marker), marker, "settled from the job's marker file")
    if not accounting_ok:
        return JobStatus(JobState.UNKNOWN, reason="not in squeue and sacct unavailable; no marker yet", unlisted=True)
    return JobStatus(JobState.LOST, reason="not in squeue or sacct, and no marker file", unlisted=True)


# Why a job waits, in words; anything else is shown as Slurm says it.
_PENDING_NOTES = {
    "Resources": "Resources (waiting for free cards)",
    "Priority": "Priority (other jobs are ahead)",
    "QOSMaxJobsPerUserLimit": "QOSMaxJobsPerUserLimit (your running-jobs cap in this QOS)",
    "ReqNodeNotAvail": "ReqNodeNotAvail (nodes down, drained or reserved)",
    "PartitionConfig": "PartitionConfig (asks more than the partition allows: it will never start)",
    "BadConstraints": "BadConstraints (no node can ever satisfy it: it will never start)",
}


def pending_note(reason: str) -> str:
    if not reason:
        return ""
    key = reason.split(",", 1)[0].strip("()").split(" ", 1)[0]
    return _PENDING_NOTES.get(key, reason)


def _query_env() -> dict[str, str]:
    """This process's environment, with the time format the parsers read (sp.TIME_FORMAT_ENV)."""
    return {**os.environ, **sp.TIME_FORMAT_ENV}


def _transient_query(result: CommandResult) -> bool:
    """Read-only commands are safe to retry on any hiccup, but "invalid job id" is an answer."""
    return looks_transient(result) and not sp.squeue_no_such_job(result.output)


def _submit_unreached(result: CommandResult) -> bool:
    return not result.ok and sp.submit_unreached(result.output)

