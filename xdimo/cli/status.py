"""`xdimo-jobs status [--watch]`: one batched poll per cluster, the ledger updated, every run accounted for."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from xdimo.cli.common import (
    App,
    PollSeconds,
    StoppedFollowing,
    progress,
    progress_done,
    read_only_line,
    table,
    verb,
    workload,
)
from xdimo.cli.matrix_arg import matrix_in_ledger
from xdimo.cli.unsent import find_unsent, unsent_json, unsent_lines
from xdimo.errors import XdimoError
from xdimo.follow import follow, poll_every
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import Refresh, RunStart, refresh
from xdimo.reconcile import SUBMIT_GRACE_S, SUBMIT_SETTLE_S
from xdimo.rules import cpu_slots_for_gpus
from xdimo.run_time import TIME_LABELS, TIME_MEANING, label_key, run_clock
from xdimo.schedulers.base import Scheduler
from xdimo.states import ACTIVE_STATES, TERMINAL_STATES, JobState
from xdimo.workspace import Workspace

if TYPE_CHECKING:
    from xdimo.plan import Unsent

RECENT = 30  # ended runs shown without --all (the summary line counts every run)
@click.command()
@click.option("--matrix", metavar="NAME", help="Only the runs of this matrix (its name, or its file as `submit` "
              "takes it); one the ledger has no run of is an error that lists those it has.")
@click.option("--active", is_flag=True, help="Only runs that hold or wait for cards.")
@click.option("--all", "show_all", is_flag=True, help=f"Every run (default: active ones and the {RECENT} "
              "most recently ended).")
@click.option("--watch", is_flag=True, help="Poll until every active run has ended, printing each change (on a "
              "terminal the table comes first too). With no active run it ends at once, exit 0 (an empty ledger "
              "says \"no runs in the ledger yet\"). Ctrl-C stops watching: exit 130; with --json the runs as last "
              "polled are printed.")
@click.option("--interval", type=PollSeconds(), default=None, metavar="SECONDS",
              help="Seconds between polls with --watch (default: 2 locally; on a scheduler 20 s growing to "
                   "3 min while nothing changes).")
@verb
def status(app: App, matrix: str | None, active: bool, show_all: bool, watch: bool, interval: float | None) -> None:
    """Poll the schedulers (once per cluster, for all active runs) and show the runs in the ledger.

    Runs act on their own cluster as stored in the ledger; --cluster only filters. The time column says where
    each time comes from (a legend line under the table): the scheduler's or the job script's own clock (a
    running job's from its real start, however late it was first polled), the polls, or the submission. --json
    lists every selected run, with time_s and time_source (scheduler, job_script, polls, submitted).

    A matrix whose file in jobs/ has runs the ledger never had (a --batch left them unsent) is named under the
    table, at the end of --watch too, with the `submit FILE --batch next` that sends them; --json gives each run
    matrix_unsent (null where the matrix's file is not found: nothing is guessed).

    Exit codes: 0 every scheduler answered (also with no runs); 2 a poll failed (the table shows the last known
    states, which may be stale) or bad input; 130 Ctrl-C (stops --watch).

    \b
    Examples:
      xdimo-jobs status
      xdimo-jobs status --watch                 # until every run has ended
      xdimo-jobs status --matrix hw-4gpu --json
    """
    app.ws.read_only_ok = True  # a ledger that cannot be written here is shown as it is, not polled
    ledger = app.ws.existing_ledger()
    if matrix:  # a name the ledger has no run of is a typo (or a matrix not submitted): said, not an empty table
        matrix = matrix_in_ledger(app.ws, ledger, matrix, app.cluster_name)

    def live() -> list[LedgerRun]:
        return ledger.runs(cluster=app.cluster_name, matrix=matrix, states=ACTIVE_STATES)

    def polled() -> list[LedgerRun]:  # and the runs lately marked LOST, which the scheduler may list again
        return ledger.runs(cluster=app.cluster_name, matrix=matrix, states=(*ACTIVE_STATES, JobState.LOST))

    def shown() -> list[LedgerRun]:
        if active:
            return live()
        if show_all or app.json:
            return ledger.runs(cluster=app.cluster_name, matrix=matrix)
        ended = ledger.runs(cluster=app.cluster_name, matrix=matrix, states=tuple(TERMINAL_STATES), limit=RECENT)
        return sorted(live() + ended, key=lambda r: (r.created_at, r.run_id))

    def unsent() -> dict[str, Unsent]:  # the selected matrices' runs never submitted (read when shown)
        return find_unsent(app, ledger, app.cluster_name, matrix)

    starts: dict[str, RunStart] = {}  # the last poll's real starts of running jobs (run_clock)
    schedulers: dict[str, Scheduler] = {}  # one backend per cluster for every poll of this command
    if ledger.read_only:
        failures = unpolled(ledger, live())
    else:
        first = refresh(app.ws, ledger, polled(), schedulers)
        failures, starts = first.failures, first.starts
    if watch and not ledger.read_only:
        if not app.json and stdout_is_terminal() and live():  # job ids and states while the watch runs
            click.echo(render(shown(), ledger.count_by_state(cluster=app.cluster_name, matrix=matrix),
                              submit_in_progress=ledger.submit_in_progress, starts=starts,
                              unsent=lambda: unsent_lines(unsent())))
        try:
            failures = watch_until_ended(app, ledger, live, interval, polled, starts, schedulers)
        except KeyboardInterrupt:  # Ctrl-C: the normal way to stop watching
            stopped_watching(app, shown, starts, unsent)
            raise StoppedFollowing from None

    counts = ledger.count_by_state(cluster=app.cluster_name, matrix=matrix)
    # the end of --watch too: every run DONE is not the study done while some of its matrix were never sent
    app.emit(lambda: runs_json(app.ws, shown(), starts, unsent()),
             lambda: render(shown(), counts, lambda: nothing(ledger, app.cluster_name, watch),
                            ledger.submit_in_progress, starts, lambda: unsent_lines(unsent())))
    if failures:  # the table shows the last known states; the exit code says they may be stale
        raise XdimoError("could not poll " + "; ".join(failures))


def stdout_is_terminal() -> bool:
    """Whether the table goes to a terminal: only there does --watch show it first too (stdout in a pipe or a
    file stays the one table, as the runs ended)."""
    return sys.stdout.isatty()


def unpolled(ledger: Ledger, active: list[LedgerRun]) -> list[str]:
    """A ledger opened read-only: nothing is polled (a poll's answer could not be recorded). With active runs that
    is a poll that failed (the failures status ends with: exit 2 after the table, whose states may be stale);
    without, one warning line (an archived study: its states are final)."""
    if active:
        return [f"{len(active)} active run(s): {read_only_line(str(ledger.path), ledger.read_only)}"]
    click.echo(f"warning: {read_only_line(str(ledger.path), ledger.read_only)}", err=True)
    return []


def stopped_watching(app: App, shown: Callable[[], list[LedgerRun]],
                     starts: dict[str, RunStart] | None = None,
                     unsent: Callable[[], dict[str, Unsent]] | None = None) -> None:
    """`status --watch` stopped by Ctrl-C: the progress line is ended, and with --json the runs as the last poll
    left them are printed (a script reading stdout gets valid JSON, not nothing); nothing when the ledger cannot
    be read now."""
    progress_done()
    if not app.json:
        return
    try:
        data = runs_json(app.ws, shown(), starts, unsent() if unsent else None)
    except (XdimoError, sqlite3.Error):
        return
    app.emit(data, "")


def watch_until_ended(app: App, ledger: Ledger, live: Callable[[], list[LedgerRun]],
                      interval: float | None, polled: Callable[[], list[LedgerRun]] | None = None,
                      starts: dict[str, RunStart] | None = None,
                      schedulers: dict[str, Scheduler] | None = None) -> list[str]:
    """Poll (``polled``, default ``live``) until nothing is ``live``, printing each change; a scheduler that
    fails is reported and asked again next time. The caller has just refreshed: the first poll waits.
    ``starts`` is kept to the last poll's (Refresh.starts).

    On a terminal the "next poll" line is redrawn at every poll; elsewhere (a log file, a pipe) it is printed
    first, after a poll that printed a change or a warning, and when the number of active runs changes, so
    quiet polls (a short --interval: many a minute) add no lines."""
    failures: list[str] = []
    said = None  # the active count the last "next poll" line gave, off a terminal
    for beat in follow(app.ws, ledger, live, interval=interval, wait_first=True, asked=polled,
                       sleep=time.sleep, refresh=refresh, poll_every=poll_every, schedulers=schedulers):
        news = False
        if beat.poll is not None:
            news = bool(beat.poll.changes) or beat.poll.failures != failures
            failures = report(beat.poll, failures)
            if starts is not None:
                starts.clear()
                starts.update(beat.poll.starts)
        if not beat.ended and (news or len(beat.runs) != said or sys.stderr.isatty()):
            said = len(beat.runs)
            progress(f"{said} run(s) still active; next poll in {fmt_wait(beat.wait)} s")
    return failures


def where(failure: str) -> str:
    """The cluster a poll failure names (poll.refresh writes "cluster NAME: why")."""
    return failure.split(": ", 1)[0]


def fmt_wait(seconds: float) -> str:
    """0.1, 2, 2.5, 23, 180: what --interval was given, whole seconds from 10 on (the back-off's jitter)."""
    return f"{seconds:.2g}" if seconds < 10 else f"{seconds:.0f}"


def report(result: Refresh, before: list[str]) -> list[str]:
    """Print one poll's changes, and its failures that the poll ``before`` did not have (a scheduler down for an
    hour is one warning, not one a poll), and each cluster that answers again; return the failures."""
    failing = {where(line) for line in result.failures}
    for cluster in dict.fromkeys(where(line) for line in before):
        if cluster not in failing:
            progress(f"polled again: {cluster} answers")
            progress_done()
    for change in result.changes:  # lines that stay: on a terminal the next "next poll" line must not erase them
        progress(f"{change.run_id} (job {change.job_id}): {change.old.value} -> {change.new.value}")
        progress_done()
    for line in result.failures:
        if line not in before:
            progress(f"warning: could not poll {line}; trying again")
            progress_done()
    return result.failures


def nothing(ledger: Ledger, cluster: str | None, watch: bool = False) -> str:
    """What `status` says when it has no run to show: an empty ledger, or none on ``--cluster`` (its runs are
    elsewhere: not an error, as `collect --cluster` and `kill --all --cluster` take it). ``watch``: --watch, which
    ends at once (exit 0) with nothing to watch; said as such, above all while a first submit is still handing
    its runs over (they are not in the ledger yet)."""
    if cluster and ledger.count_by_state():
        others = ledger.clusters()
        line = f"no runs on cluster {cluster!r} in the ledger (its runs are on cluster {', '.join(others)})"
        return line + ("; nothing to watch" if watch else "")
    if not watch:
        return "no runs in the ledger (try `xdimo-jobs submit MATRIX --batch first`)"
    if ledger.submit_in_progress():
        return ("no runs in the ledger yet, so nothing to watch: a submit is running and its runs appear as it "
                "hands them over (`xdimo-jobs status --watch` again in a moment)")
    return "no runs in the ledger yet, so nothing to watch (try `xdimo-jobs submit MATRIX --batch first`)"


def render(runs: list[LedgerRun], counts: dict[str, int], empty: Callable[[], str] | None = None,
           submit_in_progress: Callable[[], bool] | None = None,
           starts: dict[str, RunStart] | None = None, unsent: Callable[[], list[str]] | None = None) -> str:
    """The table; ``empty`` says why there is none (called only then: it may read the whole ledger).
    ``submit_in_progress`` (Ledger.submit_in_progress) tells a SUBMITTING run's note whether its submitter lives;
    asked once, only when a run is SUBMITTING. ``starts``: the last poll's (run_clock). ``unsent``: the lines
    under the summary on the runs of its matrices never submitted (unsent_lines)."""
    if not counts:
        return empty() if empty else "no runs in the ledger (try `xdimo-jobs submit MATRIX --batch first`)"
    after = "".join(f"\n{line}" for line in (unsent() if unsent else []))
    if not runs:  # `--active` with every run ended: no empty table, and not the --all hint as if it were missing
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"no active runs; {sum(counts.values())} run(s): {summary} (`status --all` lists them){after}"
    now = time.time()
    rows, sources = [], set()
    submitter: list[bool] = []  # submit_in_progress(), once asked
    for r in runs:
        seconds, source = run_clock(r, now, (starts or {}).get(r.run_id))
        label = label_key(r, source)
        sources.add(label)
        note = r.reason
        if r.state is JobState.SUBMITTING and not note:
            if not submitter:
                submitter.append(submit_in_progress() if submit_in_progress else False)
            note = submitting_note(r, now, submitter[0])
        rows.append((r.run_id, r.job_id or "-", r.state.value, r.cluster, r.pool, r.gpus,
                     workload(r.spec), time_cell(seconds, label), "" if r.exit_code is None else r.exit_code,
                     note))
    total = sum(counts.values())
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    hidden = total - len(runs)
    more = f"; {hidden} older ended run(s) not shown (--all)" if hidden > 0 else ""
    meanings: dict[str, list[str]] = {}  # label -> what it means here ("ran": the scheduler's, the script's)
    for s in TIME_LABELS:
        if s in sources:
            meanings.setdefault(TIME_LABELS[s], []).append(TIME_MEANING[s])
    legend = [f"{label} = {' or '.join(means)}" for label, means in meanings.items()]
    return table(["run", "job", "state", "cluster", "pool", "gpus", "model", "time", "exit", "note"], rows) \
        + (f"\ntime: {'; '.join(legend)}" if legend else "") + f"\n{total} run(s): {summary}{more}{after}"


def submitting_note(run: LedgerRun, now: float, submitting: bool) -> str:
    """Why a run is SUBMITTING (handed to its scheduler's submit command, whether the scheduler took it unknown
    until its job id is recorded) and what comes of it, by reconcile's rule: while its submitter holds the ledger's
    submit lock (``submitting``) and for SUBMIT_GRACE_S at most, the submitter records the id; once it is gone every
    poll adopts the job the scheduler lists under the run's name, and one SUBMIT_SETTLE_S after the hand-over (or
    the grace) with none settles the run without it (LOST, unless its job left an exit marker)."""
    handed = time.strftime("%H:%M:%S", time.localtime(run.updated_at))
    age = now - run.updated_at
    if submitting and age < SUBMIT_GRACE_S:
        return f"handed to the submit command at {handed}; its job id is being confirmed"
    if age < SUBMIT_SETTLE_S and not submitting:
        at = time.strftime("%H:%M:%S", time.localtime(run.updated_at + SUBMIT_SETTLE_S))
        return (f"handed to the submit command at {handed}; its submitter stopped before recording the job id: "
                f"each poll looks for its job under the run's name (none from {at}: LOST, unless its job left an "
                "exit code)")
    return (f"handed to the submit command at {handed}; its submitter is gone: the next poll looks for its job "
            "under the run's name (none: LOST, unless its job left an exit code)")


def time_cell(seconds: float | None, label: str | None) -> str:
    return "-" if seconds is None or label is None else f"{fmt_duration(seconds)} {TIME_LABELS[label]}"


def runs_json(ws: Workspace, runs: list[LedgerRun], starts: dict[str, RunStart] | None = None,
              unsent: dict[str, Unsent] | None = None) -> list[dict[str, Any]]:
    """The ledger's rows, with each run's time (time_s, time_source: see run_clock; ``starts``, the last poll's),
    its spec's CPU slots as its job asks for them (a spec leaves cpus null for the site rule: the cluster file
    says how many, as `plan` shows; null when that file cannot be read now) and its matrix's runs never submitted
    (``unsent``, by matrix: matrix_unsent, null where its file is not found; a key of each run, as the output is a
    list scripts read)."""
    now, slots = time.time(), CpuSlots(ws)
    out = []
    for r in runs:
        d = r.to_dict()
        seconds, d["time_source"] = run_clock(r, now, (starts or {}).get(r.run_id))
        d["time_s"] = None if seconds is None else round(seconds, 1)
        if d["spec"].get("cpus") is None:
            d["spec"]["cpus"] = slots(r)
        d["matrix_unsent"] = unsent_json((unsent or {}).get(r.matrix))
        out.append(d)
    return out


class CpuSlots:
    """cpu_slots of each run by its own cluster file, each file read once."""

    def __init__(self, ws: Workspace) -> None:
        self.ws, self.clusters = ws, {}  # type: ignore[var-annotated]

    def __call__(self, run: LedgerRun) -> int | None:
        if run.cluster not in self.clusters:
            try:
                self.clusters[run.cluster] = self.ws.load_cluster(run.cluster)
            except XdimoError:
                self.clusters[run.cluster] = None
        cluster = self.clusters[run.cluster]
        return None if cluster is None else cpu_slots_for_gpus(cluster, run.gpus)


def fmt_duration(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
