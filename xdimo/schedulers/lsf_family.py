"""The LSF-family backend: JH UniScheduler and IBM LSF differ only in command names and a few site facts.

A thin runner (runner.run_command) over the pure parsers in lsf_parse.py / jh_parse.py:

- submit: the script on stdin (`jsub < script`, never `jsub script`: dask-jobqueue #372); the job id is
  `Job <N>` anywhere in stdout+stderr; never retried (submitting is not idempotent).
- poll: ONE `jjobs -a` call for all the ledger's jobs; a job the answer says is gone (`Job <N> is not found`,
  or left out of a whole listing) is settled from the summary the scheduler appended to its -o file, else
  from the marker file the script wrote, else LOST (JobStatus.unlisted: poll.py keeps the run's state for
  poll.LOST_AFTER_S first); a job a partial answer does not mention is UNKNOWN, unlisted. An answer with a
  line that is no job, or with nothing at all (exit 0), is a SchedulerError: it settles nothing. A row whose
  JOB_NAME is not the run's (its run id) is another job under a reused id: the run's job is gone, as above.
- live_jobs: ONE `jjobs -J NAME` (no -a: unfinished jobs only) before a submission.
- pools: ONE `jjobs -u all` call; GPUs in use per queue = sum over jobs holding slots (RUN, suspended,
  UNKWN; on LSF also ZOMBI) of the job's GPU field when the site's `-o` has one (options.jobs_gpu_field), else of
  ceil(slots / cpu_per_gpu) from EXEC_HOST (the site rule is slots = cpu_per_gpu x GPUs). Pools that list
  `hosts` in the cluster file (the queue-to-host map is not documented for JH) add ONE `jhosts -w` call
  (`bhosts -X -w` on LSF): a listed host whose status admits no job takes its cards out of the pool
  (PoolStatus.down), and each up host's free cards (cards_per_node less the GPUs jobs hold there by EXEC_HOST)
  are PoolStatus.host_free, for the planner to place a single-node run on one host.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from xdimo.config import Cluster, Pool
from xdimo.errors import KillUnconfirmed, PendingLimitError, SchedulerError, SubmitRefused
from xdimo.rundir import RunDir
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import HostRow, JobStatus, LedgerJob, PoolStatus, other_job_name
from xdimo.schedulers.marker import read_exit_marker, state_for_exit
from xdimo.schedulers.runner import CommandResult, NoAnswer, command_error, looks_transient, run_command, said
from xdimo.spec import RunSpec
from xdimo.states import JobState
from xdimo.text import excerpt, one_line

log = logging.getLogger(__name__)

O_FIELDS = ("jobid", "user", "stat", "queue", "exec_host", "job_name")  # job_name last: it may hold '|'
# A running job's start, asked with the fields above (LSF 10.1 documents it for `bjobs -o`; JH's manual lists no
# fields, so a refused `jjobs -o` is asked again without it: query_o).
START_FIELD = "start_time"
MAX_IDS = 200  # above this, one `-u all -a` answer is cheaper than a long argv
HOST_ROWS_REUSE_S = 5.0  # `hosts --nodes` lists the rows pools() fetched a moment ago instead of asking again
GONE_RE = re.compile(r"is\s+not\s+found|No\s+(unfinished|matching)\s+job|already\s+finished|has\s+already",
                     re.IGNORECASE)


@dataclass(frozen=True)
class Commands:
    submit: tuple[str, ...]
    jobs: tuple[str, ...]
    hosts: tuple[str, ...]
    kill: tuple[str, ...]
    directive: str  # "#JSUB" / "#BSUB"
    max_script_bytes: int | None = None  # JH refuses longer scripts


class LSFFamilyScheduler:
    """Scheduler protocol over one LSF-family command set (subclasses fill `kind` and `commands`)."""

    kind = "lsf"
    commands = Commands(("bsub",), ("bjobs",), ("bhosts",), ("bkill",), "#BSUB")
    poll_interval: float | None = None  # a shared scheduler: watchers back off (backoff.PollBackoff)
    job_id_pattern = "%J"  # bsub's (and jsub's) -o / -e pattern for the job id
    hosts_args: tuple[str, ...] = ("-w",)  # the host status call: `jhosts -w` (LSF adds -X: lsf.py)
    # Job states whose slots and GPUs count as in use (pools()); LSF adds ZOMBI (lsf.py)
    holding_states: frozenset[str] = P.HOLDING

    def __init__(self, cluster: Cluster, root: Path) -> None:
        self.cluster = cluster
        self.root = Path(root)
        opts = cluster.options
        self.timeout = float(opts.get("timeout_s", 60))
        self.retries = int(opts.get("retries", 2))
        self.use_o_format = bool(opts.get("jobs_o_format", True))
        self.gpu_field = str(opts.get("jobs_gpu_field") or "")
        self.start_field = START_FIELD  # "" once the site's `-o` refused it
        self.user = str(opts.get("user") or _whoami())
        self.settle_grace_s = float(opts.get("settle_grace_s", 120))
        self._host_rows: tuple[float, list[HostRow]] | None = None  # (monotonic time, rows) of the last call
        self._warned: set[str] = set()  # config warnings already given (a follower polls every minute)
        # This user's jobs the site may count as pending: its PEND rows in the last pools() answer, plus what this
        # object submitted since (a job waits for dispatch a moment even when its cards are free). Only for
        # saying which jobs hold the room when the site refuses one more (pending_limit_message); no call.
        self._my_pending: list[str] = []

    # -- running commands ---------------------------------------------------------------------------

    def run(self, argv: list[str], stdin: str | None = None, retries: int | None = None,
            env: dict[str, str] | None = None) -> CommandResult:
        return run_command(argv, stdin=stdin, timeout=self.timeout, env=self.command_env() if env is None else env,
                           retries=self.retries if retries is None else retries, transient=self.transient)

    def transient(self, res: CommandResult) -> bool:
        """A failed answer that says the scheduler could not be reached this time (retried; not a format)."""
        return looks_transient(res)

    def command_env(self) -> dict[str, str] | None:
        """Environment for every scheduler command: queries, kills and the submit (None: inherit)."""
        return None

    def submit_env(self) -> dict[str, str] | None:
        """Environment for the submit command (None: inherit)."""
        return self.command_env()

    def jobs_argv(self, extra: list[str], o_format: bool) -> list[str]:
        argv = list(self.commands.jobs) + extra
        if o_format:
            optional = tuple(f for f in (self.start_field, self.gpu_field) if f)
            fields = O_FIELDS[:-1] + optional + O_FIELDS[-1:]
            return argv + ["-o", P.jobs_o_format(fields)]
        return argv + ["-w"]

    def query_jobs(self, extra: list[str]) -> P.JobsAnswer:
        """One jobs call; the `-o` form where the site supports it, the default table otherwise. A failed `-o`
        call means "no -o here" (default table from now on) only once the default table answers: a cluster
        that cannot be reached is reported as the failure it is, and the next call tries `-o` again."""
        refused = None
        if self.use_o_format:
            answer, refused = self.query_o(extra)
            if answer is not None:
                return answer
        res = self.run(self.jobs_argv(extra, False))
        answer = self.read_jobs(res, P.parse_jobs_default)
        if not _answered(answer):
            if res.ok and not res.output.strip():
                raise self.silent(res)
            raise command_error(res) if refused is None else self.neither(refused, res)
        if refused is not None:
            where = self.cluster.path or f"clusters/{self.cluster.name}.yaml"
            log.warning("`%s -o` not understood (%s); using the default format for the rest of this command. "
                        "Every command tries `-o` first: set `jobs_o_format: false` under `options:` in %s to "
                        "skip that try (and this warning)", self.commands.jobs[0], said(refused.output, 200), where)
            self.use_o_format = False
        return answer

    def query_o(self, extra: list[str]) -> tuple[P.JobsAnswer | None, CommandResult]:
        """The `-o` call: its answer, or None and the refusal. A refusal is asked again without the start field
        (JH's manual lists no `-o` fields, and a site may refuse it without naming it), which the rest of this
        command keeps where that answers: a field we added must never cost the site its `-o` answers."""
        answer, res = self.query_o_once(extra)
        if answer is None and self.start_field:
            self.start_field = ""
            answer, res = self.query_o_once(extra)
            if answer is not None:
                log.info("`%s -o` does not know %s: running jobs' times come from their job.wall",
                         self.commands.jobs[0], START_FIELD)
            else:
                self.start_field = START_FIELD  # not what refused `-o`: the next command asks again
        return answer, res

    def read_jobs(self, res: CommandResult, parse: Callable[[str], P.JobsAnswer]) -> P.JobsAnswer:
        """A jobs answer: rows from stdout only; stderr adds the tools' notices (`Job <N> is not found`, `No
        unfinished job found`). Other stderr text (a site wrapper's "WARNING: license server slow") is no job
        and blocks nothing: one warning per command, where the command answered."""
        answer, other = P.with_stderr(parse(res.stdout), res.stderr)
        if other and _answered(answer):
            self.warn_once(f"`{self.commands.jobs[0]}` also said on stderr: {said(' / '.join(other), 200)} "
                           "(ignored: jobs are read from stdout)")
        return answer

    def neither(self, refused: CommandResult, res: CommandResult) -> SchedulerError:
        """Both forms of the jobs call answered something that is no jobs listing: each command with its own
        answer (the fallback is not to blame for what `-o` said)."""
        return SchedulerError(f"neither jobs listing could be read: {self.answered(refused)}; then "
                              f"{self.answered(res)}")

    def answered(self, res: CommandResult) -> str:
        return f"`{_short_argv(res.argv)}` answered (exit {res.returncode}) {said(res.output, 150)}"

    def query_o_once(self, extra: list[str]) -> tuple[P.JobsAnswer | None, CommandResult]:
        res = self.run(self.jobs_argv(extra, True))
        answer = self.read_jobs(res, P.parse_jobs_delimited)
        if _answered(answer):
            return answer, res
        if res.ok and not res.output.strip():
            raise self.silent(res)  # says nothing about `-o`: no second call
        if res.output.strip() and self.transient(res):  # "cannot connect" & co: unreachable, not a format
            raise command_error(res)
        return None, res

    def silent(self, res: CommandResult) -> SchedulerError:
        """An answer of nothing at all with exit 0. The tools never give it: with no job to list they say
        `No unfinished job found` (stderr), for an id they do not know `Job <N> is not found`; so it is no
        "none" (a job or a card in use may hide behind it), and settles nothing."""
        return SchedulerError(f"`{_short_argv(res.argv)}` answered nothing at all (exit 0; with no job it says "
                              "`No unfinished job found`): taken as no answer")

    # -- the Scheduler protocol -----------------------------------------------------------------------

    def submit(self, script: str, run: RunSpec) -> str:
        self.check_script(script, run)
        for folder in output_dirs(script, self.commands.directive):
            try:
                folder.mkdir(parents=True, exist_ok=True)  # the scheduler does not create the -o/-e folder
            except OSError as exc:  # nothing was sent: a definite no, so the ledger undoes the intent
                raise SubmitRefused(f"cannot create the log folder {folder}: {exc.strerror}") from None
        res = self.run(list(self.commands.submit) + self.submit_args(run), stdin=script, retries=0,
                       env=self.submit_env())
        answer = P.parse_submit(res.output)
        for warning in answer.warnings:
            log.warning("%s: %s", self.commands.submit[0], warning)
        if answer.job_id:
            self._my_pending.append(answer.job_id)
            return answer.job_id
        name = self.commands.submit[0]
        if answer.pending_limit:
            raise PendingLimitError(self.pending_limit_message(run, answer))
        if res.returncode != 0 and res.output.strip() and not self.transient(res):
            raise SubmitRefused(f"{name} refused run {run.run_id} (exit {res.returncode}): "
                                f"{answer.first_problem}")
        # We cannot tell whether the job exists: the ledger keeps the run as SUBMITTING, never resubmits it.
        raise SchedulerError(f"{name} gave no job id for run {run.run_id} (exit {res.returncode}): "
                             f"{answer.first_problem}; check `{self.commands.jobs[0]}` before resubmitting")

    def pending_limit_message(self, run: RunSpec, answer: P.SubmitAnswer) -> str:
        """What the site's pending-limit refusal means here. LSF's own text promises a retry ("Retrying in 60
        seconds...") that LSB_NTRIES=1 cut short: nothing retries.

        The site counts a job that waits for dispatch as pending, even one that starts at once on free cards
        (`submit` plans those as starting, not pending): a refusal right after such a job is no sign that
        max_pending is too high. "Lower max_pending" is advice only where it can help: max_pending above 1 and
        fewer of the user's jobs known pending than it allows (the site's limit is lower, or it counts jobs we
        do not see)."""
        name, limit = self.commands.submit[0], self.cluster.max_pending
        ids = sorted(set(self._my_pending), key=_id_key)
        text = (f"{name} refused run {run.run_id}: the scheduler allows no more pending jobs "
                f"({P.pending_limit_words(answer.text)}); xdimo-jobs does not retry it. ")
        if ids:
            shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
            text += (f"The site counts a job that waits for dispatch as pending, even one that starts at once on "
                     f"free cards: your job(s) {shown} are pending (or were a moment ago); run `submit --batch "
                     "next` once they have started (`status` shows them)")
        else:
            text += ("The site counts a job that waits for dispatch as pending, even one that starts at once on "
                     "free cards, and a job of yours is pending now that this command did not see (another "
                     "session's?); run `submit --batch next` once it has started")
        if limit > 1 and len(ids) < limit:
            text += (f". The scheduler's limit is below max_pending: {limit} in "
                     f"{self.cluster.path or 'the cluster file'} (or it counts pending jobs not listed to you): "
                     "lower max_pending there to the site's limit")
        return text

    def submit_args(self, run: RunSpec) -> list[str]:
        """Command-line options that cannot go into the script (none on LSF)."""
        return []

    def check_script(self, script: str, run: RunSpec) -> None:
        limit = self.commands.max_script_bytes
        size = len(script.encode())
        if limit and size > limit:
            raise SubmitRefused(f"job script for run {run.run_id} is {size} bytes; {self.commands.submit[0]} "
                                f"refuses scripts over {limit} bytes (shorten the cluster's setup lines or "
                                "the run's env)")

    def poll(self, jobs: list[LedgerJob]) -> dict[str, JobStatus]:
        if not jobs:
            return {}
        ids = sorted({j.job_id for j in jobs if j.job_id}, key=_id_key)
        extra = ["-a"] + (ids if len(ids) <= MAX_IDS else ["-u", "all"])
        # A line we cannot read may be one of these jobs: the whole answer settles nothing (the caller reports
        # the failure and the ledger keeps what it had).
        shown = " ".join(extra[:3]) + (" ..." if len(extra) > 3 else "")
        answer = self.understood(self.query_jobs(extra), shown, "tell which jobs are still queued")
        if answer.says_nothing and len(ids) <= MAX_IDS:
            # A header alone for the ids asked: UniScheduler's answer for jobs it no longer lists (dpdispatcher),
            # and a loaded one's for jobs it still runs. The whole listing tells them apart: one that lists other
            # jobs and leaves these out is complete, so they are gone (a job no file settles is then held for
            # poll.LOST_AFTER_S, and asked about again for a day); a header alone again is no answer.
            shown = "-a -u all"
            answer = self.understood(self.query_jobs(["-a", "-u", "all"]), shown, "tell which jobs are still queued")
        if answer.says_nothing:
            unanswered = self.no_answer(jobs, shown)
            if set(unanswered.settled) < set(ids):
                raise unanswered
            return unanswered.settled  # every job settled by its own files: nothing was left to the answer
        rows = answer.by_id()
        out = {}
        for job in jobs:
            row = rows.get(job.job_id)
            other = other_job(row, job.run_id)
            if other:  # the id now names another job: the run's own is gone (the scheduler forgot it)
                out[job.job_id] = replace(self.settle(job, None, gone=True), other_job=other)
            elif row is not None and row.stat not in P.FINAL:
                out[job.job_id] = JobStatus(row.state, reason=row.stat, hosts=row.hosts, started_at=row.started_at)
            else:
                # Gone only where the answer says so: an id it names as not found, or one its whole listing
                # leaves out. An answer that names only some ids leaves the others UNKNOWN (asked again).
                out[job.job_id] = self.settle(job, row, gone=answer.gone(job.job_id))
        return out

    def no_answer(self, jobs: list[LedgerJob], args: str) -> NoAnswer:
        """A jobs answer that names none of ``jobs`` and says nothing of them (a header alone): no answer. A
        loaded UniScheduler gives it for jobs it still runs, so it proves none gone; only what a job's own files
        say (the scheduler's summary, the exit marker) settles it, and the rest keep their state."""
        statuses = {j.job_id: self.settle(j, None, gone=False) for j in jobs}
        settled = {i: st for i, st in statuses.items() if st.state is not JobState.UNKNOWN}
        left = len(statuses) - len(settled)
        return NoAnswer(f"`{self.commands.jobs[0]} {args}` answered a header and no line about the {len(statuses)} "
                        f"job(s) asked (no row, no `Job <N> is not found`): taken as no answer; {left} job(s) keep "
                        "their run's last state", settled)

    def understood(self, answer: P.JobsAnswer, args: str, purpose: str) -> P.JobsAnswer:
        """``answer`` when every line of it was read; a line that is not a job, a header or a notice may be a
        job we cannot see (a scheduler hiccup, a format change), so counting without it would be a guess."""
        if answer.unparsed:
            raise SchedulerError(f"`{self.commands.jobs[0]} {args}` answered a line that is not a job: "
                                 f"{said(answer.unparsed[0], 200)}; cannot {purpose}")
        return answer

    def find(self, run_id: str) -> list[str]:
        """Every job the scheduler still lists under the name `run_id` (job names are run ids), oldest
        first: reconciles a run whose submitter died between the scheduler's answer and the ledger's write."""
        answer = self.named(run_id, ["-a"], "tell whether a job of the run was submitted")
        rows = [r for r in answer.rows if r.name == run_id]
        return sorted({r.job_id for r in rows}, key=_id_key)

    def named(self, run_id: str, extra: list[str], purpose: str) -> P.JobsAnswer:
        """The jobs answer about the name ``run_id`` (`-J NAME`). A header alone there is UniScheduler's answer
        for a name it no longer lists, and a loaded one's for jobs it still runs: the whole listing (`-u all`),
        asked once more, tells them apart (its rows are filtered by name as these are). With no job of anyone's
        queued, that too is a header alone: then there is none."""
        answer = self.understood(self.query_jobs([*extra, "-J", run_id]), f"{' '.join(extra)} -J {run_id}".strip(),
                                 purpose)
        if not answer.header_only:
            return answer
        return self.understood(self.query_jobs([*extra, "-u", "all"]), f"{' '.join(extra)} -u all".strip(), purpose)

    def live_jobs(self, run_id: str) -> list[str]:
        """This user's unfinished jobs named `run_id` (pending, running, suspended, UNKWN), oldest first, from
        ONE `jjobs -J NAME` / `bjobs -J NAME` (without -a the tools list unfinished jobs only; a final row is
        left out all the same; a header alone is checked against the whole listing: named). `[]` where the jobs
        command is not on PATH (a laptop's --dry-run, as pools()), or where the answer says there is none: `No
        unfinished job found`, a header alone (for the whole listing too), or `Job <NAME> is not found` (LSF's
        answer for a name no job has). Anything else raises SchedulerError."""
        name = self.commands.jobs[0]
        if not self.jobs_command_found():
            return []
        answer = self.named(run_id, [], "tell whether a job of the run is queued")
        if not (answer.rows or answer.no_jobs or answer.header_only or run_id in answer.not_found):
            found = ", ".join(sorted(answer.not_found))
            raise SchedulerError(f"`{name} -J {run_id}` answered about other jobs ({found} not found), "
                                 "not about this name: cannot tell whether a job of the run is queued")
        # A state that still holds its cards counts as live even where it reads final: LSF's ZOMBI (its host
        # unreachable) may come back and go on writing the run's folder, so no second job may join it.
        rows = [r for r in answer.rows if r.name == run_id and (r.stat not in P.FINAL or r.stat in self.holding_states)]
        return sorted({r.job_id for r in rows}, key=_id_key)

    def settle(self, job: LedgerJob, row: P.JobRow | None, gone: bool) -> JobStatus:
        """A job in a final state, or no longer listed: its -o summary, else its marker, else LOST."""
        return settle_from_logs(Path(job.log_dir), job.job_id, row, gone, self.settle_grace_s)

    def kill(self, job_id: str, *, now: bool = False) -> bool:
        """The plain kill (`jctrl kill N` / `bkill N`). ``now`` changes nothing here: JH documents no signal
        option for `jctrl kill` (scheduler-formats.md); LSF gives the job a grace first (lsf.py)."""
        res = self.run(list(self.commands.kill) + [job_id])
        text = res.output
        if GONE_RE.search(text):
            # "No matching job found" / "not found" / "already finished": no kill was sent, the job had ended (or
            # left the queue) before it. Not an error (nothing is left to kill), but no kill either: False, so
            # the caller withdraws its request and the polls settle the run by its own evidence (xdimo/kill.py).
            command = " ".join(self.commands.kill)
            log.info("`%s %s` answered %s: no kill was sent", command, job_id, excerpt(text))
            return False
        if not res.ok:
            raise command_error(res)
        if not kill_acknowledged(text, job_id):
            # An answer we do not know may not have acted: not reported as sent (the ledger keeps the request,
            # recorded before the command; the job's fate comes from the polls).
            said = excerpt(text) if text.strip() else "nothing"
            command = " ".join(self.commands.kill)
            raise KillUnconfirmed(f"`{command} {job_id}` answered {said}, not `Job <{job_id}> is being terminated`: "
                                  f"the kill may not have been sent; check with `{self.commands.jobs[0]} {job_id}` "
                                  "that the job ends (kill it again if not)")
        log.info("%s %s: %s", self.commands.kill[-1], job_id, excerpt(text))
        return True

    def jobs_command_found(self) -> bool:
        """Whether `jjobs` / `bjobs` is on PATH. Without it (a laptop's --dry-run, `hosts` off the login node)
        pools() and live_jobs() answer from the cluster file alone: one warning line on stderr says what that
        costs, once per command (a real submit fails anyway with "command not found" from `jsub`)."""
        name = self.commands.jobs[0]
        if shutil.which(name) is not None:
            return True
        self.warn_once(f"warning: {name} is not on PATH: every card of the cluster file counts as free (jobs of "
                       "all users unseen), and no live job can be found under a run's name (the duplicate-submit "
                       "guard is off)")
        return False

    def pools(self) -> list[PoolStatus]:
        if not self.jobs_command_found():
            # Not on a login node: the cluster file is all we know, and saying so beats failing.
            return PoolStatus.from_cluster_file(self.cluster, f"{self.commands.jobs[0]} not on PATH")
        answer = self.understood(self.query_jobs(["-u", "all"]), "-u all", "count the cards in use")
        source_note = ""
        if not answer.rows and not answer.no_jobs:
            source_note = self.confirm_no_jobs()
        used: dict[str, int] = {}
        held_on: dict[str, dict[str, int]] = {}  # queue -> host -> GPUs its jobs hold there
        mine_pending: dict[str, int] = {}
        mine_pending_gpus: dict[str, int] = {}
        my_pending_ids: list[str] = []
        for row in answer.rows:
            if row.stat in self.holding_states:
                gpus = self.job_gpus(row)
                used[row.queue] = used.get(row.queue, 0) + gpus
                on = held_on.setdefault(row.queue, {})
                for host, n in P.gpus_by_host(row, gpus).items():
                    on[host] = on.get(host, 0) + n
            elif row.stat in ("PEND", "PSUSP") and row.user == self.user:
                mine_pending[row.queue] = mine_pending.get(row.queue, 0) + 1
                # GPUs where the site's gpu field says; a PEND row has no slots yet: 0, the ledger's count stands
                mine_pending_gpus[row.queue] = mine_pending_gpus.get(row.queue, 0) + self.job_gpus(row)
                my_pending_ids.append(row.job_id)
        self._my_pending = my_pending_ids
        how = "gpu field" if self.gpu_field else f"slots / {self.cluster.cpu_per_gpu}"
        source = f"{self.commands.jobs[0]} -u all ({how}){source_note}"
        health = self.host_health(held_on)
        out = []
        for p in self.cluster.pools.values():
            ph = health.get(p.name, PoolHosts())
            h = ph.health
            out.append(PoolStatus(name=p.name, gpu_model=p.gpu_model, total=p.cards, taken=p.taken,
                                  used=used.get(p.queue_name, 0), pending_jobs=mine_pending.get(p.queue_name, 0),
                                  source=source + ph.note, down=h.down_cards if h else 0,
                                  down_hosts=h.down_hosts if h else (),
                                  pending_gpus=mine_pending_gpus.get(p.queue_name, 0), host_free=ph.free,
                                  host_cards=ph.cards))
        return out

    def confirm_no_jobs(self) -> str:
        """`-u all` answered a header alone (or only notices about ids): not the tools' own word for "no job
        at all" (`No unfinished job found`), and a header alone is also what a loaded UniScheduler answers for
        jobs it does list. Counting no card in use on that would start runs on cards that are taken, so the
        hosts command decides: no job on any host confirms it (a note for `source`), else SchedulerError."""
        jobs, hosts = self.commands.jobs[0], self.hosts_call
        said = f"`{jobs} -u all` answered a header and no job line (with no job it says `No unfinished job found`)"
        try:
            # fresh: it decides "no job at all"
            rows = self.host_status() if shutil.which(self.commands.hosts[0]) else None
        except SchedulerError as exc:
            raise SchedulerError(f"{said}, and `{hosts}` failed too ({exc}): cannot count the cards in use") \
                from None
        if rows is None:
            raise SchedulerError(f"{said}, and {self.commands.hosts[0]} is not on PATH to confirm it: cannot count "
                                 "the cards in use")
        busy = [r for r in rows if r.njobs is None or r.njobs > 0 or (r.run or 0) > 0]
        if not rows or busy:
            seen = f"jobs on {len(busy)} host(s), e.g. {busy[0].name}" if busy else "it lists no host"
            raise SchedulerError(f"{said}, and `{hosts}` does not confirm it ({seen}): cannot count the cards "
                                 "in use; try again in a minute")
        return f"; no job: {hosts} shows none on {len(rows)} host(s)"

    def host_health(self, held_on: dict[str, dict[str, int]]) -> dict[str, PoolHosts]:
        """Pool name -> (its listed hosts' health, a note for `source`, the free cards on each of its up hosts),
        for the pools that list hosts: ONE hosts call for all (also made where a pool lists none: a down host no
        pool names is warned of). Without an answer the cluster file's capacity stands, the hosts' free cards are
        unknown (None), and the note says so."""
        listed = [p for p in self.cluster.pools.values() if p.hosts]
        name = self.commands.hosts[0]
        try:
            if shutil.which(name) is None:
                raise SchedulerError(f"{name} not on PATH")
            # Up/down is all this needs: the `-w` rows alone (confirm_no_jobs may have fetched them a moment ago:
            # one call, not two), never hosts(), which on JH adds `jhosts attrib -w` and one `-l` per host.
            rows = self.status_rows()
        except SchedulerError as exc:
            if listed:
                self.warn_once(f"no host status ({exc}): pool capacity from the cluster file")
            return {p.name: PoolHosts(note=f"; host status unknown ({exc}): capacity from the cluster file")
                    for p in listed}
        if len(listed) < len(self.cluster.pools):
            self.warn_unlisted_down(rows)
        held = held_anywhere(held_on)
        out: dict[str, PoolHosts] = {}
        for p in listed:
            h = P.pool_health(p.hosts, p.per_node, p.cards, rows, held_on.get(p.queue_name))
            if h.unmatched:
                self.warn_once(f"pool {p.name}: no host in `{self.hosts_call}` matches {', '.join(h.unmatched)} "
                               "(capacity unchanged)")
            if h.matched > p.cards // p.per_node:
                self.warn_once(f"pool {p.name}: its hosts match {h.matched} hosts, more than its {p.cards} "
                               f"cards / {p.per_node} per node")
            out[p.name] = PoolHosts(h, f"; {self.hosts_call}: {h.describe()}", *hosts_room(p, rows, held))
        return out

    def warn_unlisted_down(self, rows: list[HostRow]) -> None:
        """A down host that no pool's `hosts:` names is invisible to the card count: if it is a GPU host of a
        pool that lists none, its cards still count as free, and a run sent there would pend. Say so."""
        patterns = [h for p in self.cluster.pools.values() for h in p.hosts]
        down = tuple(r for r in rows if P.host_down(r) and not any(P.match_host(r.name, h) for h in patterns))
        if not down:
            return
        bare = ", ".join(p.name for p in self.cluster.pools.values() if not p.hosts)
        where = Path(self.cluster.path).name or "the cluster file"
        self.warn_once(f"`{self.hosts_call}`: {P.PoolHealth(down=down).describe()}, in no pool's "
                       f"`hosts:`; if it serves {bare}, its cards still count as free: list the pool's hosts "
                       f"(`hosts: [name-*]`, `cards_per_node:`) in {where}")

    def job_gpus(self, row: P.JobRow) -> int:
        """A job's GPUs: the site's gpu field when configured, else its slots / cpu_per_gpu rounded up."""
        return row.gpus if row.gpus is not None else P.gpus_from_slots(row.slots, self.cluster.cpu_per_gpu)

    def warn_once(self, message: str) -> None:
        """A cluster-file or host-status problem is worth one warning per scheduler object (one per command;
        `submit --batch all` polls through one), not one per poll."""
        if message not in self._warned:
            self._warned.add(message)
            # no logging handler is set: Python's last resort prints the bare message, so the word goes in it
            log.warning("%s", message if message.startswith("warning:") else f"warning: {message}")

    def hosts(self) -> list[HostRow]:
        """Hosts and their status (`jhosts -w` / `bhosts -w`; subclasses add GPU models): the rows pools()
        fetched within HOST_ROWS_REUSE_S (`hosts --nodes` shows both, from one call), else a fresh call."""
        return self.status_rows()

    def status_rows(self) -> list[HostRow]:
        """The `-w` rows only (status and slots, no GPU models): those fetched within HOST_ROWS_REUSE_S, else
        ONE fresh call. What every poll cycle may ask (pools() -> host_health, confirm_no_jobs)."""
        if self._host_rows and time.monotonic() - self._host_rows[0] < HOST_ROWS_REUSE_S:
            return list(self._host_rows[1])
        return self.host_status()

    @property
    def hosts_call(self) -> str:
        """The host status command as run and as messages name it: `jhosts -w`, `bhosts -X -w`."""
        return " ".join(self.commands.hosts + self.hosts_args)

    def host_status(self) -> list[HostRow]:
        """`jhosts -w` / `bhosts -X -w`: one call, remembered for hosts()."""
        res = self.run(list(self.commands.hosts) + list(self.hosts_args))
        rows = list(P.parse_hosts(res.stdout))  # stderr holds no host (a wrapper's warning would read as one)
        if not rows and not res.ok:
            raise command_error(res)
        self._host_rows = (time.monotonic(), rows)
        return rows


# -- free cards per host ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolHosts:
    """What a pool's listed hosts say (host_health): their health, a note for PoolStatus.source, and the free and
    total cards on each up host (PoolStatus.host_free, host_cards; None: unknown)."""

    health: P.PoolHealth | None = None
    note: str = ""
    free: tuple[int, ...] | None = None
    cards: tuple[int, ...] | None = None


def held_anywhere(held_on: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """queue -> host -> GPUs  ->  host (lower case: names are case-insensitive) -> GPUs held there by jobs of any
    queue: a host that serves two queues has the cards of both's jobs in use."""
    out: dict[str, int] = {}
    for hosts in held_on.values():
        for host, n in hosts.items():
            out[host.lower()] = out.get(host.lower(), 0) + n
    return out


def hosts_room(pool: Pool, rows: list[HostRow], held: Mapping[str, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(free, total) cards on each up host the pool's `hosts:` match (PoolStatus.host_free, host_cards): a host has
    cards_per_node, free less the GPUs jobs hold there; a host closed by its work (closed_Full/Excl/Busy) admits
    no job now: 0 free. A down host is left out (its cards are in PoolStatus.down). The pool's `taken` cards sit
    on hosts the cluster file does not name: PoolStatus.level_down takes them from the hosts with the most free
    cards (the conservative choice)."""
    up: dict[str, HostRow] = {}
    for row in rows:
        if any(P.match_host(row.name, h) for h in pool.hosts) and not P.host_down(row):
            up.setdefault(row.name.lower(), row)
    free = [0 if P.host_busy(r) else max(0, pool.per_node - held.get(name, 0)) for name, r in up.items()]
    return PoolStatus.level_down(free, pool.taken), PoolStatus.level_down([pool.per_node] * len(up), pool.taken)


# -- settling a job from its logs ---------------------------------------------------------------------------


def other_job(row: P.JobRow | None, run_id: str) -> str:
    """The name ``row`` gives a job that is not ``run_id``'s (base.other_job_name): "" for no row, a row without
    a name, or the run's own. A name cut to ``*tail`` (JOB_NAME past its width) is the run's where its id ends so."""
    if row is None or (row.name_truncated and run_id.endswith(row.name[1:])):
        return ""
    return other_job_name(row.name, run_id)



def settle_from_logs(log_dir: Path, job_id: str, row: P.JobRow | None, gone: bool,
                     grace_s: float = 120.0, now: float | None = None) -> JobStatus:
    """The summary appended to ``<log_dir>/<job_id>.output`` decides; then ``<log_dir>/job.exit`` (the exit
    code rule every backend shares: marker.state_for_exit).

    A row in a final state without either: DONE -> DONE 0, EXIT -> FAILED (code unknown), ZOMBI -> KILLED,
    except that EXIT/ZOMBI stay UNKNOWN while the -o file changed within ``grace_s`` (the summary may follow).
    No row and no evidence: LOST when the scheduler definitely no longer knows the job, UNKNOWN when the
    answer was not definite, or when the -o file changed within ``grace_s`` (the summary may still come).
    """
    out_file = RunDir(log_dir).output(job_id)
    text = _read(out_file)
    summary = P.parse_summary(text) if text else None
    # A summary without its verdict line (still being written) settles nothing.
    if summary is not None and summary.state is not None:
        hosts = tuple(h.host for h in summary.hosts)
        return JobStatus(summary.state, summary.exit_code, f"summary: {summary.reason}", hosts,
                         started_at=summary.started_at, ended_at=summary.ended_at)
    hosts = row.hosts if row else ()
    code = read_exit_marker(log_dir)
    if code is not None:
        return JobStatus(state_for_exit(code), code, f"marker: exit {code}", hosts)
    mtime = _mtime(out_file)
    recent = mtime is not None and (now or time.time()) - mtime < grace_s
    if row is not None:
        state = P.map_state(row.stat)
        if state is not JobState.DONE and recent:  # the exit code (and whether it was a kill) may still come
            return JobStatus(JobState.UNKNOWN, reason=f"{row.stat}; waiting for its summary", hosts=hosts)
        return JobStatus(state, 0 if state is JobState.DONE else None, f"{row.stat}, no summary", hosts)
    if not gone or recent:
        return JobStatus(JobState.UNKNOWN, reason="not in the scheduler's answer; asked again", unlisted=True)
    return JobStatus(JobState.LOST, reason="left the queue without a summary or marker", unlisted=True)


# What bkill (and JH's `jctrl kill`, in LSF's words) answers when it acts on a job: `Job <126> is being
# terminated` (a signal sent: `... is being signaled`). Anything else (no answer, an error, noise) is not a kill.
# Any spacing, as for the submit answer (`Job<126>is being terminated`, `Job < 126 >  is being terminated`).
KILL_ACK = r"\bJob\s*<\s*{}\s*>\s*is\s+being\s+(?:terminated|signal(?:l)?ed|killed)"


def kill_acknowledged(text: str, job_id: str) -> bool:
    return re.search(KILL_ACK.format(re.escape(job_id)), text, re.IGNORECASE) is not None


def output_dirs(script: str, directive: str) -> list[Path]:
    """Folders of the -o/-e files named on the script's directive lines (``%J`` stays in the file name)."""
    cwd, files = "", []
    for line in script.splitlines():
        if not line.startswith(directive):
            continue
        words = shlex.split(line[len(directive):], posix=True)
        for flag, value in zip(words, words[1:], strict=False):
            if flag in ("-o", "-e", "-oo", "-eo"):
                files.append(value)
            elif flag == "-cwd":
                cwd = value
    return [(Path(cwd) / f).parent if cwd and not os.path.isabs(f) else Path(f).parent for f in files]


def _short_argv(argv: tuple[str, ...]) -> str:
    """A jobs command as messages name it: its `-o` field list shown as `...`."""
    before = ("",) + argv[:-1]
    return one_line(" ".join("..." if prev == "-o" else word for prev, word in zip(before, argv, strict=True)), 200)


def _answered(answer: P.JobsAnswer) -> bool:
    """The tool answered in a shape we know: rows, a header (with or without lines we could not read, which the
    caller refuses to count on: understood()), or a definite 'none' / 'not found'. An answer of nothing at all
    is none of these (the tools never give it; LSFFamilyScheduler.silent)."""
    return bool(answer.rows or answer.header_only or answer.no_jobs or answer.not_found or answer.unparsed)


def _mtime(path: Path) -> float | None:
    """A log's modification time; None where it is gone (removed between two looks: no race, no traceback)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _id_key(job_id: str) -> tuple[int, str]:
    digits = re.match(r"\d+", job_id)
    return (int(digits.group(0)) if digits else 0, job_id)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")
