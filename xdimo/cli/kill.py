"""`xdimo-jobs kill ID... | --all`: stop runs through their own cluster's scheduler."""

from __future__ import annotations

import click

from xdimo.cli.common import App, verb
from xdimo.cli.logs_earlier import find_earlier_job
from xdimo.cli.matrix_arg import matrix_in_ledger
from xdimo.errors import NotFoundError, XdimoError
from xdimo.kill import kill_runs
from xdimo.ledger import Ledger, LedgerRun


@click.command()
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Kill every active run (of --cluster, if given).")
@click.option("--matrix", metavar="NAME", help="With --all: only the runs of this matrix.")
@click.option("--now", is_flag=True, help="LSF: no grace to save a checkpoint, the plain bkill at once (elsewhere "
              "the kill is sent at once anyway).")
@verb
def kill(app: App, ids: tuple[str, ...], everything: bool, matrix: str | None, now: bool) -> None:
    """Kill runs by run id (or a unique prefix) or scheduler job id.

    A run still SUBMITTING (its submitter died before the scheduler's answer was recorded) has no job id: the
    job the scheduler lists under the run's name is killed; if it lists none, the run is marked KILLED (or, while
    its submitter is alive or the scheduler may not list the job yet, the kill is refused: try again in a minute).

    The scheduler is asked first which runs are still active. On JH/LSF a kill counts as sent only when the
    answer says so (`Job <N> is being terminated`); any other answer is an error (exit 2) naming the command to
    check with, and the request stays in the ledger, so a job that did end by it is recorded KILLED. A job the
    scheduler no longer knows (`No matching job found`, Slurm's `Invalid job id specified`) had ended before the
    kill: nothing was killed, it is said so (exit 0), and the run ends as its job did, not KILLED.

    On LSF a running job first gets `bkill -s USR1`: it saves its checkpoint at its next step and exits. `kill`
    waits for that (a line on stderr every few seconds) up to `kill_grace_s` seconds, set under `options:` in the
    cluster file (default 60; e.g. `kill_grace_s: 180` for a large checkpoint on slow NFS; 0: no grace), then
    sends the plain `bkill` if the job still runs. Several runs (`--all`) share one grace: every one gets its
    USR1 first. --now skips the grace. Ctrl-C in the grace stops waiting: the USR1s were sent and the kills are
    recorded (the message names the runs); kill them again (or with --now) to end them. JH's `jctrl kill` and
    Slurm's scancel (SIGTERM, then KillWait) are sent at once.

    \b
    Examples:
      xdimo-jobs kill demo-5a4dab58                  # a run id (`status` lists them; this is the demo's)
      xdimo-jobs kill 10061                          # a scheduler job id, from `status`'s job column
      xdimo-jobs --cluster xdimo-jh kill 10061       # a job id two clusters share
      xdimo-jobs kill --all --matrix hw-4gpu
      xdimo-jobs --cluster lsf-example kill 4711     # LSF: USR1, up to kill_grace_s, then bkill
      xdimo-jobs --cluster lsf-example kill --now 4711   # LSF: bkill at once (a checkpoint gets LSF's 10 s)
    """
    ledger = app.ws.existing_ledger()
    if ids and everything:
        raise XdimoError("give run/job ids or --all, not both")
    if not ids and not everything:
        if matrix:
            raise XdimoError(f"give run/job ids or --all: --matrix {matrix} limits --all to that matrix "
                             f"(`xdimo-jobs kill --all --matrix {matrix}`)")
        raise XdimoError("give run/job ids or --all (with --matrix NAME to limit it to one matrix)")
    if ids and matrix:
        raise XdimoError("--matrix goes with --all only: the ids name their runs already (drop --matrix, or "
                         "use --all --matrix NAME)")
    if matrix:  # a typo is an error naming the matrices, not "no active runs"
        matrix = matrix_in_ledger(app.ws, ledger, matrix, app.cluster_name)
    runs = None if everything else once_each([named_run(app, ledger, i) for i in ids])  # all found first
    result = kill_runs(app.ws, runs, cluster=app.cluster_name, matrix=matrix, now=now)
    for failure in result.poll_failures:  # which runs are active was decided on the ledger's last view
        click.echo(f"warning: could not poll {failure}: decided on the ledger's last view", err=True)
    killed, skipped, failed = result.killed, result.ended + result.settled, result.failed
    empty = "" if failed or result.gone or result.interrupted else "no active runs"
    app.emit({"killed": [describe(r) for r in killed], "skipped": [r.run_id for r in skipped],
              # the scheduler no longer knew their jobs (they had ended): nothing was killed, the request withdrawn
              "gone": [describe(r) | {"state": r.state.value, "exit_code": r.exit_code} for r in result.gone],
              "skipped_runs": [describe(r) | {"state": r.state.value, "exit_code": r.exit_code} for r in skipped],
              # "failures": a list, as in `submit --json`; "warnings": clusters that could not be polled first
              "failed": failed, "failures": failed, "warnings": result.poll_failures,
              "interrupted": result.interrupted or None},  # Ctrl-C in an LSF kill's grace: what to do next
             lambda: "\n".join([f"kill sent to job {r.job_id} ({r.run_id}) on {r.cluster}" for r in killed]
                               + [f"job {r.job_id} (run {r.run_id}): the scheduler no longer knows it (it had "
                                  f"ended); nothing was killed; {settled_by(r)}" for r in result.gone]
                               + [f"{r.run_id}: already {outcome(r)}, nothing to kill" for r in result.ended]
                               + [f"{r.run_id}: no job listed under its name, now {outcome(r)}, nothing to kill"
                                  for r in result.settled]) or empty)
    if result.interrupted:  # after what was sent: the run it stopped at, then exit 130 as every verb's Ctrl-C
        if failed:
            click.echo("error: could not kill " + "; ".join(failed), err=True)
        click.echo(result.interrupted, err=True)
        raise KeyboardInterrupt
    if failed:
        raise XdimoError("could not kill " + "; ".join(failed))


def named_run(app: App, ledger: Ledger, ident: str) -> LedgerRun:
    """The run ``ident`` names (run id, unique prefix, its current job id). An earlier attempt's job id is no
    run's now: the error says whose attempt it was and what to kill instead, as `logs` finds it."""
    try:
        return ledger.get(ident, cluster=app.cluster_name)
    except NotFoundError:
        earlier = find_earlier_job(app, ledger, ident)
        if earlier is None or earlier.run is None:
            raise
    run, which = earlier.run, f"attempt {earlier.attempt}" if earlier.attempt else "an earlier attempt"
    was = f"job {ident} was {which} of run {run.run_id}"
    if not run.state.active:
        now = f"job {run.job_id}" if run.job_id else "no job"
        raise XdimoError(f"{was}, which has ended since ({run.state.value}, {now}): nothing to kill")
    if not run.job_id:
        raise XdimoError(f"{was}, which is being submitted again (no job id yet); kill {run.run_id} to stop it")
    raise XdimoError(f"{was}, which now runs as job {run.job_id}; kill {run.run_id} to stop it")


def once_each(runs: list[LedgerRun]) -> list[LedgerRun]:
    """Each run once, in the order first named: `kill 106 106` or a job id and its run id name one run, and
    its kill is sent (and reported) once."""
    first: dict[str, LedgerRun] = {}
    for run in runs:
        first.setdefault(run.run_id, run)
    return list(first.values())


def describe(run: LedgerRun) -> dict[str, str | None]:
    return {"run_id": run.run_id, "job_id": run.job_id, "cluster": run.cluster}


def settled_by(run: LedgerRun) -> str:
    """What became of a run whose job the scheduler no longer knew: the poll after the kill may have settled it."""
    return f"now {outcome(run)}" if not run.state.active else "`status` settles the run"


def outcome(run: LedgerRun) -> str:
    """An ended run's state as `status` shows it: DONE (exit 0), FAILED (exit 1), LOST (never reached ...)."""
    if run.exit_code is not None:
        return f"{run.state.value} (exit {run.exit_code})"
    return f"{run.state.value} ({run.reason})" if run.reason else run.state.value
