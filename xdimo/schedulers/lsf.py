"""IBM Spectrum LSF: `bsub < script`, `bjobs`, `bhosts`, `bkill` (lsf_family.py does the work)."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence

from xdimo.errors import KillUnconfirmed, SchedulerError, XdimoError
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import HostRow, KillAnswer, KillAnswers, KillInterrupted, kill_each, unrecorded
from xdimo.schedulers.lsf_family import GONE_RE, MAX_IDS, Commands, LSFFamilyScheduler, kill_acknowledged
from xdimo.schedulers.runner import CommandResult, command_error, looks_transient
from xdimo.text import excerpt

log = logging.getLogger(__name__)

# What a batch command prints each time it cannot get an answer from mbatchd and would try again (IBM LSF 10.1,
# "Customize batch command messages"; lsf.conf LSB_MBD_BUSY_MSG "LSF is processing your request. Please wait...",
# LSB_MBD_CONNECT_FAIL_MSG "Cannot connect to LSF. Please wait...", LSB_MBD_DOWN_MSG "LSF is down. Please
# wait...", LSB_MBD_QUERY_RETRY_MSG "Batch system concurrent job query limit exceeded. LSF is retrying. Please
# wait..."). With LSB_NTRIES=1 the command gives up after the first: a busy mbatchd is asked again (run_command's
# back-off, `retries`), not taken for a `bjobs -o` the site does not know or for a failed bkill. (bsub is never
# retried: LSFFamilyScheduler.submit.)
RETRY_MSG_RE = re.compile(r"Please\s+wait", re.IGNORECASE)

# `kill`: plain bkill sends SIGINT, SIGTERM, then SIGKILL JOB_TERMINATE_INTERVAL later (lsb.params, 10 s by default;
# IBM LSF 10.1, bkill): too short to write a checkpoint of several GB to NFS. `bkill -s USR1` sends that signal
# alone and kills nothing ("-s signal_value | signal_name": the name without SIG; answer `Job <N> is being
# signaled`); the workload saves at its next step and exits 138 (xdimo/train/stop.py StopRequests). The plain bkill
# follows if the job still runs once the grace is over. Default: torchrun's own wait for its signalled workers
# (render.STOP_GRACE_S); `kill_grace_s` in the cluster file, `kill --now` for none.
KILL_GRACE_S = 60.0
KILL_POLL_S = 5.0  # between two `bjobs` of the job during the grace (1, 2, 4 s first)
# What may still be saving: wait on. Any other live state cannot save now (pending, suspended): bkill at once.
STILL_RUNNING = frozenset({"RUN", "UNKWN", "UNKNOWN"})


class LSFScheduler(LSFFamilyScheduler):
    kind = "lsf"
    commands = Commands(("bsub",), ("bjobs",), ("bhosts",), ("bkill",), "#BSUB")
    # A site whose lsb.hosts defines host groups with CONDENSE=Y gets one `bhosts` row per such group, its name in
    # HOST_NAME: a down member is hidden and a pool's `hosts:` globs match no row. "The -l and -X options display
    # noncondensed output" (IBM LSF 10.1, bhosts command reference; "View host information": `bhosts -X`,
    # condensed host groups in an uncondensed format). JH's jhosts documents no -X (scheduler-formats.md).
    hosts_args = ("-X", "-w")
    # ZOMBI: a job killed while UNKWN (its host unreachable) or removed with `bkill -r`; LSF changes it to EXIT
    # only once the host answers and the job is gone (IBM LSF 10.1, "LSF terms and concepts", job states ZOMBI;
    # bjobs command reference, STAT). Until then it may still run on its GPUs; a job stuck on an unreachable host
    # keeps its resources "unavailable to the cluster" until LSF "moves the job to the EXIT state to free up
    # resources" ("Removing hung jobs from LSF"). So it holds its cards here: counting them free could send a
    # run onto cards that are taken, or onto a host that is unreachable.
    # Its run is settled KILLED all the same (lsf_parse.FINAL): what is left of it is not ours to wait for.
    # JH lists ZOMBI among its final states (scheduler-formats.md) and is left as it was.
    holding_states = P.HOLDING | {"ZOMBI"}

    def transient(self, res: CommandResult) -> bool:
        return looks_transient(res) or (not res.ok and RETRY_MSG_RE.search(res.output) is not None)

    def command_env(self) -> dict[str, str]:
        # Every batch command retries contacting mbatchd until it answers, for ever unless LSB_NTRIES is set (IBM
        # LSF 10.1 configuration reference, lsf.conf LSB_NTRIES, also read from the environment: not defined, a
        # command retries indefinitely; LSB_QUERY_RETRY_INTERVAL_STEP: retries go on "until the attempt succeeds
        # or the LSB_NTRIES value is reached"). With mbatchd down, `bjobs`, `bhosts` and `bkill` print "LSF is
        # down. Please wait..." (LSB_MBD_DOWN_MSG) and hang until our timeout, which then reports a timeout instead
        # of LSF's words. One try each (runner.run_command retries what looks transient with back-off, `retries`
        # in the cluster file), so `status` fails fast saying what LSF said.
        # And past MAX_PEND_JOBS, bsub prints "Pending job threshold reached. Retrying in 60 seconds..." and
        # retries forever unless LSB_NTRIES is set (lsb.params MAX_PEND_JOBS): one try, so the refusal comes back
        # to us as a PendingLimitError. A user's own LSB_NTRIES wins.
        return {"LSB_NTRIES": "1", **os.environ}

    def hosts(self) -> list[HostRow]:
        rows = super().hosts()
        if not self.cluster.options.get("host_gpu_models", True):
            return rows
        gpus = P.parse_bhosts_gpu(self.run(["bhosts", "-w", "-gpu"]).output)
        by_host: dict[str, list[str]] = {}
        for g in gpus:
            by_host.setdefault(g.host, []).append(g.model)
        return [HostRow(r.name, r.status, r.max_slots, r.njobs, r.run,
                        gpu_models=tuple(by_host.get(r.name, ())),
                        ngpus=len(by_host[r.name]) if r.name in by_host else None) for r in rows]

    # -- kill: USR1 to every job, one grace for all of them, then the plain bkill ------------------------------

    def kill(self, job_id: str, *, now: bool = False) -> bool:
        answer = self.kill_many([job_id], now=now)[job_id]
        if isinstance(answer, XdimoError):
            raise answer
        return answer

    def kill_many(self, job_ids: list[str], *, now: bool = False,
                  before: Callable[[str], None] = lambda job_id: None,
                  answered: Callable[[str, KillAnswer], None] = lambda job_id, answer: None) -> dict[str, KillAnswer]:
        """`bkill -s USR1` to every job first, then ONE grace for all those signalled (a `bjobs -a` of those
        still saving every few seconds), then the plain bkill for those still running once it is over: n jobs
        take one grace, not n. Each job's answer is the one kill() gives it alone (base.kill_many), handed to
        ``answered`` as soon as it is known. Ctrl-C raises KillInterrupted naming the jobs signalled and not
        bkilled, and saying in which phase it came."""
        grace = 0.0 if now else float(self.cluster.options.get("kill_grace_s", KILL_GRACE_S))
        if grace <= 0:
            return kill_each(super().kill, job_ids, before, answered)
        answers = KillAnswers(answered)
        reached: list[str] = []
        start: float | None = None
        bkilling = False
        try:
            for job_id in job_ids:
                if (refused := unrecorded(before, job_id)) is not None:
                    answers[job_id] = refused
                    continue
                reached.append(job_id)
                if (answer := self.signal_or_answer(job_id)) is not None:
                    answers[job_id] = answer
            start = time.monotonic()
            still = self.wait_for_checkpoints([j for j in reached if j not in answers], grace, start, answers)
            bkilling = True
            for job_id in still:
                answers[job_id] = self.kill_after_signal(job_id)
        except KeyboardInterrupt:
            left = tuple(j for j in reached if j not in answers)
            if not left:
                raise KillInterrupted("interrupted before the next kill was sent", (), answers, grace=False) from None
            waited = None if start is None else time.monotonic() - start
            raise KillInterrupted(grace_interrupted(left, grace, waited, bkilling), left, answers) from None
        return answers

    def signal_or_answer(self, job_id: str) -> KillAnswer | None:
        """USR1 to one job. None: signalled (it waits out the grace). Else its answer: False when it had ended
        (nothing sent: xdimo/kill.py withdraws the request), the plain bkill's where USR1 was not taken (a
        pending job has nothing to save), or the error (LSF unreachable: nothing sent)."""
        try:
            sent = self.signal_checkpoint(job_id)
            if sent is None:
                return super().kill(job_id)
            return None if sent else False
        except XdimoError as exc:
            return exc

    def signal_checkpoint(self, job_id: str) -> bool | None:
        """`bkill -s USR1 N`. True: signalled; False: the job had ended (nothing sent); None: another answer (a
        pending job cannot be signalled), for the plain bkill to decide. LSF unreachable: raises, nothing sent."""
        res = self.run(["bkill", "-s", "USR1", job_id])
        if GONE_RE.search(res.output):
            log.info("`bkill -s USR1 %s` answered %s: no signal was sent", job_id, excerpt(res.output))
            return False
        if kill_acknowledged(res.output, job_id):
            return True
        if not res.ok and self.transient(res):
            raise command_error(res)
        log.info("`bkill -s USR1 %s` answered %s: sending the plain bkill at once", job_id, excerpt(res.output))
        return None

    def wait_for_checkpoints(self, job_ids: list[str], grace: float, start: float,
                             answers: dict[str, KillAnswer]) -> list[str]:
        """Poll `bjobs -a` of the jobs still saving every few seconds until each has left RUN or ``grace``
        seconds have passed since ``start``, a line on stderr each time. A job that ended (or left the queue)
        needs no bkill: its answer is True. One that cannot save now (pending, suspended) gets the plain bkill at
        once. Returns those still running once the grace is over (for the plain bkill)."""
        waiting = list(job_ids)
        step = 1.0  # a job that ends at once is seen at once; then every KILL_POLL_S
        while waiting and (waited := time.monotonic() - start) < grace:
            self.progress(f"{jobs_named(waiting)}: USR1 sent, waiting for {its(waiting)} checkpoint"
                          f"{'' if len(waiting) == 1 else 's'} ({waited:.0f} s of {grace:g})")
            time.sleep(min(step, grace - waited))
            step = min(KILL_POLL_S, step * 2)
            where = self.after_signal(waiting)
            for job_id in [j for j in waiting if where[j] != "running"]:
                answers[job_id] = True if where[job_id] == "ended" else self.kill_after_signal(job_id)
                waiting.remove(job_id)
        return waiting

    def after_signal(self, job_ids: list[str]) -> dict[str, str]:
        """Each job's "ended", "running" (or may be: a failed or unclear answer, UNKWN) or "stopped" (pending,
        suspended), from ONE `bjobs -a ID...` (`-u all` past MAX_IDS ids, as poll())."""
        try:
            answer = self.query_jobs(["-a"] + (job_ids if len(job_ids) <= MAX_IDS else ["-u", "all"]))
        except SchedulerError as exc:  # asked again at the next step; the plain bkill's answer decides at the end
            log.info("`bjobs -a %s` during the kill grace: %s", " ".join(job_ids), exc)
            return dict.fromkeys(job_ids, "running")
        rows = answer.by_id()
        return {job_id: after_signal_state(answer, rows.get(job_id), job_id) for job_id in job_ids}

    def kill_after_signal(self, job_id: str) -> KillAnswer:
        """The plain bkill once the grace is over. The USR1 went through, so a kill was sent whatever this one
        answers: a job that ended meanwhile is True, and a failure is KillUnconfirmed (the ledger's request
        stays: if the job ends by the USR1 it is KILLED), never a withdrawn request."""
        try:
            super().kill(job_id)
        except SchedulerError as exc:
            return KillUnconfirmed(f"`bkill -s USR1 {job_id}` was sent; the bkill after the grace: {exc}")
        return True

    def progress(self, line: str) -> None:
        """A progress line of the kill grace, on stderr (stdout stays the verb's answer, --json included)."""
        print(line, file=sys.stderr, flush=True)


def after_signal_state(answer: P.JobsAnswer, row: P.JobRow | None, job_id: str) -> str:
    """"ended", "running" or "stopped" for one job of a `bjobs -a` answer (LSFScheduler.after_signal)."""
    if row is None:
        return "ended" if answer.gone(job_id) and not answer.unparsed else "running"
    if row.stat in P.FINAL:
        return "ended"
    return "running" if row.stat in STILL_RUNNING else "stopped"


def grace_interrupted(job_ids: tuple[str, ...], grace: float, waited: float | None, bkilling: bool = False) -> str:
    """What Ctrl-C before the plain bkills were over left: the USR1 sent to ``job_ids`` (``waited``: seconds into
    the grace; None: while USR1 was still being sent, so the last one may not have gone); ``bkilling``: the grace
    was over and the plain bkills were being sent, so one may have gone."""
    one = len(job_ids) == 1
    they, saving = ("it", f"{its(job_ids)} checkpoint") if one else ("they", f"{its(job_ids)} checkpoints")
    named = jobs_named(job_ids)
    if waited is None:
        return (f"{named}: interrupted while USR1 was being sent, before {its(job_ids)} {grace:g} s grace: {they} "
                f"may be saving {saving}; no bkill followed")
    if bkilling:
        return (f"{named}: interrupted after {its(job_ids)} {grace:g} s grace, while the plain bkill was being sent: "
                f"it may have gone; USR1 was sent and {they} may still be saving {saving}")
    # int(): never "2 s into its 1.5 s grace"
    return (f"{named}: interrupted {int(min(waited, grace))} s into {its(job_ids)} {grace:g} s grace: USR1 was sent "
            f"and {they} may still be saving {saving}; no bkill followed")


def jobs_named(job_ids: Sequence[str], shown: int = 8) -> str:
    """`job 141` / `jobs 141, 142` (`and N more` past ``shown``)."""
    if len(job_ids) == 1:
        return f"job {job_ids[0]}"
    more = f" and {len(job_ids) - shown} more" if len(job_ids) > shown else ""
    return "jobs " + ", ".join(job_ids[:shown]) + more


def its(job_ids: Sequence[str]) -> str:
    """The possessive for one job or several."""
    return "its" if len(job_ids) == 1 else "their"
